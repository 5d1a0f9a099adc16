import AxialImaging
import AxialStore
import Foundation
import Testing
@testable import AxialPipeline

@Suite struct DemoTests {
    /// The demo end to end on real DICOM files (SyntheticCT → GDCM reader → ingest): labels match
    /// the phantoms, every slice is in the manifest, and a lesion's slice shows its brightness.
    @Test func demoCohortIngestsWithLabels() throws {
        let folder = scratch("demo")
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try Demo.run(.init(folder: folder, patients: 4, seed: 3, progress: .quiet))
        #expect(result.ingest.seriesIngested == 4 && result.ingest.seriesFailed == 0 && result.ingest.problems.isEmpty)
        #expect(result.mil?.contains("pooled AUROC") == true)
        let labels = try CSVTable.read(result.labels)
        #expect(labels.header == ["patient_id", "lesion", "lesion_count"])
        #expect(try labels.column("lesion") == ["0", "1", "0", "1"])
        let manifest = try CSVTable.read(result.ingest.manifest)
        #expect(manifest.rows.count == 4 * 24 * 2)

        // Patient 2's first lesion: the abdomen-window pixel at its centre is the lesion's 160 HU
        // (+ noise), i.e. well above soft tissue's 40 HU.
        let p = result.patients[1]
        let lesion = try #require(p.lesions.first)
        let k = Int(((lesion.center.z + 60) / 5).rounded())
        let row = try #require(manifest.rows.first { $0[0] == p.patientID && $0[3] == String(k) && $0[5] == "abdomen" })
        let image = try PNG.read(result.ingest.manifest.deletingLastPathComponent().appendingPathComponent(row[6]))
        let x = Int(((lesion.center.x + 63 * 2.5) / 5).rounded()), y = Int(((lesion.center.y + 63 * 2.5) / 5).rounded())
        let abdomen = try CTWindow.parse("abdomen")
        #expect(image.pixels[y * 64 + x] > abdomen.byte(100))
        #expect(abs(Double(row[4])! - (-60 + 5 * Double(k))) < 1e-3)
    }
}
