import AxialPipeline
import Foundation
import Testing
@testable import axial

/// The `config` rows of the malformed corpus (Tests/Fixtures/malformed/manifest.tsv, see
/// MalformedCorpusTests in AxialPipelineTests): `AxialConfig.load` with the CLI's derived schema
/// refuses each with the manifest's substring and the file's name.
@Suite struct MalformedConfigTests {
    @Test func everyMalformedConfigIsRefused() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/malformed")
        let text = try String(contentsOf: root.appendingPathComponent("manifest.tsv"), encoding: .utf8)
        var n = 0
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f[1] == "config" else { continue }
            n += 1
            do {
                _ = try AxialConfig.load(root.appendingPathComponent(f[0]), schema: CommandSchema.schema)
                Issue.record("\(f[0]): accepted")
            } catch {
                #expect("\(error)".contains(f[2]) && "\(error)".contains(f[0]), "\(f[0]): \(error)")
            }
        }
        #expect(n >= 4)
    }
}
