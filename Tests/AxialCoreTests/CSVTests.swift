import Foundation
import AxialTestSupport
import Testing
@testable import AxialCore

@Suite struct CSVTests {
    @Test func quotingRoundTrip() throws {
        let rows = [["a", "b,c", "say \"hi\""], ["multi\nline", "", " padded "], ["crlf\r\nx", "ü", "plain"]]
        let text = CSV.format(rows)
        #expect(text == "a,\"b,c\",\"say \"\"hi\"\"\"\n\"multi\nline\",,\" padded \"\n\"crlf\r\nx\",ü,plain\n")
        #expect(try CSV.parse(text) == rows)
    }

    @Test func rfc4180Examples() throws {
        #expect(try CSV.parse("aaa,bbb,ccc\r\nzzz,yyy,xxx\r\n") == [["aaa", "bbb", "ccc"], ["zzz", "yyy", "xxx"]])
        #expect(try CSV.parse("aaa,bbb,ccc\r\nzzz,yyy,xxx") == [["aaa", "bbb", "ccc"], ["zzz", "yyy", "xxx"]])
        #expect(try CSV.parse("\"aaa\",\"b\r\nbb\",\"ccc\"\r\n") == [["aaa", "b\r\nbb", "ccc"]])
        #expect(try CSV.parse("\"aaa\",\"b\"\"bb\",\"ccc\"") == [["aaa", "b\"bb", "ccc"]])
        #expect(try CSV.parse("a,,\n,\n") == [["a", "", ""], ["", ""]])
        #expect(try CSV.parse("\"\"\n") == [[""]])
        #expect(try CSV.parse("") == [])
    }

    @Test func malformedInputNamesTheLine() {
        #expect(throws: FileError.csv(path: "t.csv", line: 2, reason: "unterminated quoted field")) {
            try CSV.parse("a,b\n\"open,x\ny\n", path: "t.csv")
        }
        #expect(throws: FileError.csv(path: "t.csv", line: 1, reason: "stray quote inside an unquoted field")) {
            try CSV.parse("ab\"c\n", path: "t.csv")
        }
        #expect(throws: FileError.csv(path: "t.csv", line: 3, reason: "1 fields, header has 2")) {
            try CSVTable.parse("x,y\n1,2\n3\n", path: "t.csv")
        }
    }

    @Test func tableColumnsAndAtomicWrite() throws {
        let dir = temporaryFolder("csv")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("labels.csv")
        let t = CSVTable(header: ["patient_id", "stage"], rows: [["P1", "T2"], ["P,2", "T\"3"]])
        try t.write(to: url)
        let back = try CSVTable.read(url)
        #expect(back == t)
        #expect(try back.column("stage") == ["T2", "T\"3"])
        #expect(throws: FileError.csv(path: url.path, line: 1, reason: "no column 'age' (columns: patient_id, stage)")) {
            try back.column("age", path: url.path)
        }
        #expect(try CSVTable.parse("\u{FEFF}a,b\n1,2\n").header == ["a", "b"])
    }

    @Test func appenderWritesHeaderOnceAndAppends() throws {
        let dir = temporaryFolder("append")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.csv")
        do {
            let a = try CSVAppender(url: url, header: ["k", "v"])
            try a.append([["1", "x,y"]])
        }
        do {
            let a = try CSVAppender(url: url, header: ["k", "v"])
            try a.append([["2", "z"], ["3", ""]])
        }
        #expect(try CSVTable.read(url) == CSVTable(header: ["k", "v"], rows: [["1", "x,y"], ["2", "z"], ["3", ""]]))
    }
}
