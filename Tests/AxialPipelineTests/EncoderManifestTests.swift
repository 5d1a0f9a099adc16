import AxialModels
import Foundation
import AxialTestSupport
import Testing
import Yams

/// Manifests/encoders/<name>.yaml state the same facts as the EncoderRegistry entry.
@Suite struct EncoderManifestTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Manifests/encoders").standardizedFileURL

    @Test(arguments: EncoderRegistry.names)
    func manifestMatchesRegistry(_ name: String) throws {
        let url = Self.folder.appendingPathComponent("\(name).yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        let y = try #require(try Yams.load(yaml: text) as? [String: Any])
        let spec = try EncoderRegistry.spec(name)
        #expect(y["name"] as? String == name)
        #expect(y["feature_dim"] as? Int == spec.featureDimension)
        let pre = try #require(y["preprocessing"] as? [String: Any])
        #expect(pre["input_size"] as? Int == spec.preprocessing.inputSize)
        #expect((pre["mean"] as? [Double])?.map(Float.init) == spec.preprocessing.mean)
        #expect((pre["std"] as? [Double])?.map(Float.init) == spec.preprocessing.std)
        #expect(pre["interpolation"] as? String == spec.preprocessing.interpolation)
        #expect(pre["crop_pct"] as? Double == spec.preprocessing.cropPct)
        let arch = try #require(y["architecture"] as? [String: Any])
        switch spec.architecture {
        case .vit(let c):
            #expect(y["family"] as? String == "vit")
            #expect(arch["embed_dim"] as? Int == c.embedDim && arch["depth"] as? Int == c.depth && arch["num_heads"] as? Int == c.numHeads)
            #expect(arch["patch_size"] as? Int == c.patchSize && arch["image_size"] as? Int == c.imageSize)
            #expect(arch["position_embedding"] as? String == c.positionEmbedding.rawValue && arch["stem"] as? String == c.stem.rawValue)
        case .mambaout(let c):
            #expect(y["family"] as? String == "mambaout")
            #expect(arch["depths"] as? [Int] == c.depths && arch["dims"] as? [Int] == c.dims)
            #expect(arch["num_features"] as? Int == c.numFeatures && arch["head_hidden_size"] as? Int == c.headHiddenSize)
        default:
            break   // CLIP-family towers: architecture fields are checked by their own tests
        }
        #expect((y["weight_key_map"] as? [String])?.isEmpty == false)
    }
}
