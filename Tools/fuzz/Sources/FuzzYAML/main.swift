import AxialEval
import AxialPipeline
import Foundation
import FuzzSupport

// Task YAML and config YAML (`axial … --config`), against a schema with every value type.
let schema = ConfigSchema([
    ConfigSection(name: "ingest", summary: "fuzz", keys: [
        ConfigKey("input", .path, required: true, positional: true, help: "input"),
        ConfigKey("out", .path, help: "out"),
        ConfigKey("windows", .commaList, .list(["lung", "mediastinum"]), help: "windows"),
        ConfigKey("size", .integer, .integer(224), help: "size"),
        ConfigKey("fraction", .number, .number(0.2), help: "fraction"),
        ConfigKey("resume", .boolean, .boolean(false), help: "resume"),
        ConfigKey("mode", .choice(["a", "b"]), .string("a"), help: "mode"),
        ConfigKey("task", .nameOrPath, help: "task"),
        ConfigKey("inputs", .pathList, help: "inputs"),
        ConfigKey("name", .string, help: "name"),
    ]),
    ConfigSection(name: "crossval", summary: "fuzz", keys: [
        ConfigKey("folds", .integer, .integer(5), help: "folds"),
        ConfigKey("lr", .number, .number(1e-3), help: "lr"),
    ]),
])

func fuzzYAML(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzz(data, size) { bytes in
        guard let text = FuzzScratch.text(bytes) else { return }
        _ = try? TaskSpec.parse(text, path: "<fuzz task>")
        _ = try? AxialConfig.parse(text, path: "<fuzz config>", baseDirectory: URL(fileURLWithPath: "/tmp"), schema: schema)
        // The way the CLI reads it: from a file named by --config, merged with the command line.
        let url = FuzzScratch.file("axial.yaml", bytes)
        _ = try ConfigArguments.merge(schema: schema, ["ingest", "--config", url.path, "--size", "96"])
    }
}

fuzzMain { data, size in fuzzYAML(data, size) }
