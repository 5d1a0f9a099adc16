import AxialTestSupport
import AxialPipeline
import ArgumentParser
import AxialModels
import AxialTensor
import Foundation

/// Hidden: `axial check-encoder --encoder NAME --weights W.safetensors --reference R.safetensors`
/// loads the encoder exactly as `axial extract --encoder NAME --weights W` does (EncoderRegistry),
/// encodes the reference file's `images` [B,3,S,S] and compares with its `features` (the source
/// library's output); with `--text-encoder` it also encodes the phrases of the reference file's
/// metadata `phrases` (JSON list) through `ClassNameEncoder` and compares with `text_features`
/// (L2-normalised). Prints one line per check and fails when max|Δ| / max|ref| > `--tolerance`.
/// Used by Tools/check_encoders.sh with random-init real-size models from timm / open_clip.
struct CheckEncoderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-encoder", abstract: "Compare an encoder's features with a reference file (Tools/check_encoders.sh).")

    @Option(help: "Registry name (as axial extract --encoder).") var encoder: String
    @Option(help: "Weights .safetensors (as axial extract --weights).") var weights: String
    @Option(help: "Reference .safetensors: images, features [, text_features + metadata phrases].") var reference: String
    @Option(help: "Text tower to check too (clip_vit_b16 | clip_vit_b16_gelu | biomedclip).") var textEncoder: String?
    @Option(help: "WordPiece vocab.txt for --text-encoder biomedclip.") var textVocab: String?
    @Option(help: "Largest allowed max|Δ| / max|reference|.") var tolerance: Double = 1e-4

    func run() throws {
        let (ref, meta) = try SafeTensors.read(URL(fileURLWithPath: reference))
        guard let images = ref["images"], let expected = ref["features"] else {
            throw ValidationError("\(reference): needs tensors 'images' and 'features'")
        }
        var failed = false
        func compare(_ what: String, _ got: Tensor, _ want: Tensor) {
            guard got.shape == want.shape else {
                print("FAIL \(encoder) \(what): shape \(got.shape) vs reference \(want.shape)"); failed = true; return
            }
            var diff: Float = 0, scale: Float = 0
            for (a, b) in zip(got.scalars, want.scalars) { diff = max(diff, abs(a - b)); scale = max(scale, abs(b)) }
            let rel = Double(diff / max(scale, 1e-12))
            let ok = rel <= tolerance && diff.isFinite
            if !ok { failed = true }
            print("\(ok ? "ok  " : "FAIL") \(encoder) \(what) \(got.shape): max|Δ| \(diff) scale \(scale) rel \(rel)")
        }
        let model = try EncoderRegistry.load(encoder, weights: URL(fileURLWithPath: weights))
        let got = withNoGrad { model.encode(images) }
        compare("image", got, expected)
        if let textEncoder {
            guard let kind = ClassNameEncoder.Kind(rawValue: textEncoder) else { throw ValidationError("unknown --text-encoder \(textEncoder)") }
            guard let want = ref["text_features"], let json = meta["phrases"],
                  let phrases = try? JSONDecoder().decode([String].self, from: Data(json.utf8)) else {
                throw ValidationError("\(reference): --text-encoder needs tensor 'text_features' and metadata 'phrases'")
            }
            let text = try ClassNameEncoder.load(kind, weights: URL(fileURLWithPath: weights), vocabulary: textVocab.map { URL(fileURLWithPath: $0) })
            compare("text", text.encode(phrases), want)
        }
        if failed { throw ExitCode(1) }
    }
}
