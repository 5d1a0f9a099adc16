import AxialNN
import AxialTensor
import Foundation
import AxialTestSupport
import Testing
@testable import AxialModels

/// `axial extract --adapters`' embedding against the torch reference of
/// Tools/goldens/make_anomaly_goldens.py (`adapted_embedding`: per level the mean over patch tokens
/// of the seg, then det adapter tokens, levels concatenated).
@Suite struct CLIPAdaptedEncoderTests {
    @Test func pooledAdaptedTokensMatchTorch() throws {
        let f = try AnomalyTests.fixture.get()
        let d = try f.detector(.templates)
        let state = d.stateDict()
        let levels = f.config["levels"] as! [Int]
        let m = try CLIPAdaptedEncoder.make(tower: d.clip.visual, state: state, levels: levels, file: "anomaly fixture")
        #expect(m.featureDimension == 2 * levels.count * (f.config["bottleneck"] as! Int))
        let y = withNoGrad { m.encode(f["images"]) }
        #expect(y.shape == f["adapted_embedding"].shape)
        #expect(anomalyMismatch(y, f["adapted_embedding"]) == nil, "\(anomalyMismatch(y, f["adapted_embedding"]) ?? "")")
        // The same with the levels left to the default (the tower's quarter points = the fixture's 1…4).
        let m2 = try CLIPAdaptedEncoder.make(tower: d.clip.visual, state: state, levels: nil, file: "anomaly fixture")
        #expect(withNoGrad { m2.encode(f["images"]) }.scalars == y.scalars)
    }

    @Test func adaptersThatDoNotFitAreRefusedNamingTheFile() throws {
        let f = try AnomalyTests.fixture.get()
        let d = try f.detector(.templates)
        let state = d.stateDict()
        func message(_ s: [String: Tensor], levels: [Int]? = nil) -> String {
            do { _ = try CLIPAdaptedEncoder.make(tower: d.clip.visual, state: s, levels: levels, file: "a.safetensors"); return "no error" }
            catch { return "\(error)" }
        }
        #expect(message([:]).contains("a.safetensors: no seg_adapters.0.fc1.0.weight"))
        #expect(message(state, levels: [1, 2, 3]).contains("4 adapter levels in the file, but the levels are [1, 2, 3]"))
        #expect(message(state, levels: [1, 2, 3, 9]).contains("outside blocks 1…4"))
        var wrong = state
        wrong["det_adapters.2.fc2.0.weight"] = Tensor(zeros: [3, 3])
        #expect(message(wrong).contains("adapter weights do not fit"))
    }
}
