import AxialCore
import AxialEval
import AxialImaging
import FuzzSupport

// Tables users hand in: labels (clinical) tables checked against a task, lesion tables (DeepLesion
// DL_info.csv and Axial's own), and the CSV parser under both.
let task = try! TaskSpec.parse("""
    name: stage
    kind: binary
    column: stage
    positive_values: ["1", "III", "IV"]
    negative_values: ["0", "I", "II"]
    unknown_values: ["", "NA"]
    """, path: "<fuzz task>")

func fuzzCSV(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzz(data, size) { bytes in
        guard let text = FuzzScratch.text(bytes) else { return }
        _ = try? CSV.records(text, path: "<fuzz>")
        if let table = try? CSVTable.parse(text, path: "<fuzz>") {
            _ = Cohort.check(table, path: "<fuzz>", task: task, featureFiles: ["P0001", "P0002"])
            _ = Cohort.check(table, path: "<fuzz>", task: task, featureFiles: nil)
        }
        let url = FuzzScratch.file("lesions.csv", bytes)
        _ = try LesionTable.read(url)
    }
}

fuzzMain { data, size in fuzzCSV(data, size) }
