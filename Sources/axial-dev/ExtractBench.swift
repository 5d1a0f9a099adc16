import AxialTestSupport
import AxialPipeline
import AxialImaging
import AxialModels
import AxialTensor
import Foundation

extension Bench {
    /// `extract-vit-b16 <scratch> [patients] [slices] [batch]`: full `axial extract --encoder
    /// vit_base` (weights file read + SHA-256, PNG decode, bicubic resize 512 → 248, crop 224,
    /// normalise, ViT-B/16 forward with no tape, one HDF5 per patient) on an ingest folder of
    /// `patients` × `slices` × 2 windows (abdomen, lung) of 512 × 512 synthetic CT — 2 × 32 × 2 = 128
    /// images by default. Prepared once (untimed) under `<scratch>`: the DICOM series, their
    /// ingest, and `vit_base.safetensors` (random init, seed 0, timm's names) that the peer
    /// (`peers_extract.py`) loads too. Each run starts from an empty output folder.
    static let extractViTB16 = BenchWorkload(name: "extract-vit-b16",
                                             summary: "axial extract, ViT-B/16 at 224, ingest folder of 128 PNGs (512²)", prepare: { args in
        guard let first = args.first else {
            throw PipelineError.invalidOption(option: "extract-vit-b16", reason: "needs <scratch-folder> [patients] [slices] [batch]")
        }
        let scratch = URL(fileURLWithPath: first)
        let patients = args.count > 1 ? Int(args[1]) ?? 2 : 2, slices = args.count > 2 ? Int(args[2]) ?? 32 : 32
        let batch = args.count > 3 ? Int(args[3]) ?? 32 : 32
        let (ingest, weights) = try prepareExtractBench(scratch, patients: patients, slices: slices)
        let out = scratch.appendingPathComponent("out-axial")
        let options = ExtractOptions(input: ingest, output: out, encoder: "vit_base", weights: weights, batchSize: batch, progress: .quiet)
        return ({
            let s = try Extract.run(options)
            guard s.written == patients, s.failed == 0 else { throw PipelineError.nothingToDo(reason: "extract-vit-b16: \(s.text)") }
            FileHandle.standardError.write(Data(String(format: "extract-vit-b16: %.1f img/s; %@\n",
                                                       Double(s.slices) / s.seconds, s.timing.text).utf8))
        }, "\(patients) patients × \(slices) slices × 2 windows, 512² PNGs → vit_base (224, batch \(batch)), "
            + "threads \(Parallel.workerCount)")
    }, reset: { args in
        if let first = args.first { try? FileManager.default.removeItem(at: URL(fileURLWithPath: first).appendingPathComponent("out-axial")) }
    })

    /// `<scratch>/ingest` (abdomen + lung PNGs of `patients` synthetic 512² series) and
    /// `<scratch>/vit_base.safetensors`; reused when present.
    static func prepareExtractBench(_ scratch: URL, patients: Int, slices: Int) throws -> (ingest: URL, weights: URL) {
        let fm = FileManager.default
        let tag = "p\(patients)-s\(slices)"
        let ingest = scratch.appendingPathComponent("ingest-\(tag)"), weights = scratch.appendingPathComponent("vit_base.safetensors")
        if !fm.fileExists(atPath: ingest.appendingPathComponent("manifest.csv").path) {
            let dicom = scratch.appendingPathComponent("dicom-\(tag)")
            try? fm.removeItem(at: dicom)
            for p in 0..<patients {
                let ct = SyntheticCT(patientID: String(format: "BENCH%02d", p), rows: 512, columns: 512, slices: slices,
                                     pixelSpacing: 0.7, sliceSpacing: 2.5, firstZ: -40,
                                     lesions: [.init(center: SIMD3(20, -10, 0), radius: 15)], noise: 20, seed: UInt64(p + 1))
                _ = try ct.write(to: dicom.appendingPathComponent(ct.patientID))
            }
            let s = try Ingest.run(IngestOptions(input: dicom, output: ingest, windows: try CTWindow.parseList("abdomen,lung"), progress: .quiet))
            guard s.seriesIngested == patients else { throw PipelineError.nothingToDo(reason: "extract-vit-b16 prepare: \(s.text)") }
        }
        if !fm.fileExists(atPath: weights.path) {
            let model = try EncoderRegistry.spec("vit_base").makeModel(seed: 0)
            try SafeTensors.write(model.stateDict(), to: weights)
        }
        return (ingest, weights)
    }
}
