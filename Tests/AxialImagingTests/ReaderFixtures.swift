import Foundation
import AxialTestSupport
import Testing
@testable import AxialImaging

/// Fixtures written by Tools/fixtures/make_imaging_fixtures.py (pydicom, nibabel, SimpleITK).
enum ReaderFixtures {
    static let root: URL = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("readers")

    struct Case: Decodable {
        var input: String
        var source: String
        var series: [Expected]
        var problems: [String]?
        var ignored: [String]?
    }
    struct Expected: Decodable {
        var shape: [Int]
        var spacing: [Double?]
        var origin: [Double]
        var direction: [Double]
        var hu_min: Double
        var hu_max: Double
        var hu_mean: Double
        var probes: [[Double]]
        var warnings: [String]
    }

    static let expected: [String: Case] = {
        let data = try! Data(contentsOf: root.appendingPathComponent("expected.json"))
        return try! JSONDecoder().decode([String: Case].self, from: data)
    }()

    static var caseNames: [String] { expected.keys.sorted() }

    static func url(_ c: Case) -> URL { root.appendingPathComponent(c.input) }

    /// Reads every series under `url` with both readers.
    static func volumes(_ url: URL) throws -> (volumes: [Volume], problems: [InputProblem]) {
        let source = VolumeSource()
        let found = try source.scan(url)
        return (try found.series.map { try source.read($0) }, found.problems)
    }
}
