import AxialTensor
import Foundation

/// Errors reading checkpoints.
public enum CheckpointError: Error, CustomStringConvertible {
    case invalid(path: String, reason: String)
    public var description: String {
        switch self { case let .invalid(path, reason): return "checkpoint \(path): \(reason)" }
    }
}

/// A training checkpoint in one safetensors file (written to a temporary name, then renamed):
/// tensors `model.<key>` (the module's state dict) and `optimizer.<key>` (the optimizer's named
/// state); `__metadata__` strings `format` = "axial-checkpoint-1", `step`, `rng.<name>` (the four
/// xoshiro state words, decimal, comma-separated; `rng.default` = `DefaultGenerator`), `config`
/// (JSON text) and any `extra` entries (e.g. a scheduler's JSON).
public enum Checkpoint {
    public static let format = "axial-checkpoint-1"

    /// What `load` restores besides the model and optimizer.
    public struct Info: Sendable {
        public var step: Int
        public var rngStates: [String: [UInt64]]
        public var config: String?
        public var extra: [String: String]
    }

    /// Saves model + optimizer + step + RNG states + config. `DefaultGenerator`'s state is always
    /// saved as `rng.default`; pass other generators (data shuffling) in `generators`.
    public static func save(to url: URL, model: Module, optimizer: (any Optimizer)? = nil, step: Int,
                            generators: [String: RandomGenerator] = [:], config: String? = nil,
                            extra: [String: String] = [:]) throws {
        var tensors: [String: Tensor] = [:]
        for (k, t) in model.stateDict() { tensors["model." + k] = t }
        if let optimizer { for (k, t) in optimizer.stateDict() { tensors["optimizer." + k] = t } }
        var meta = extra
        meta["format"] = format
        meta["step"] = String(step)
        meta["rng.default"] = DefaultGenerator.state.map(String.init).joined(separator: ",")
        for (name, g) in generators { meta["rng." + name] = g.state.map(String.init).joined(separator: ",") }
        if let config { meta["config"] = config }
        try SafeTensors.write(tensors, metadata: meta, to: url)
    }

    /// Loads into `model` (strict) and `optimizer`, restores `DefaultGenerator`, and returns the
    /// step, all saved generator states (rebuild yours with `RandomGenerator(state:)`) and config.
    @discardableResult
    public static func load(from url: URL, model: Module, optimizer: (any Optimizer)? = nil) throws -> Info {
        let (tensors, dtypes, meta) = try SafeTensors.readTyped(url)
        guard meta["format"] == format else {
            throw CheckpointError.invalid(path: url.path, reason: "metadata format is \(meta["format"] ?? "missing"), expected \(format)")
        }
        guard let stepText = meta["step"], let step = Int(stepText) else {
            throw CheckpointError.invalid(path: url.path, reason: "metadata 'step' missing or not an integer")
        }
        var modelState: [String: Tensor] = [:], optState: [String: Tensor] = [:]
        for (k, t) in tensors {
            if k.hasPrefix("model.") { modelState[String(k.dropFirst(6))] = t }
            else if k.hasPrefix("optimizer.") { optState[String(k.dropFirst(10))] = t }
        }
        // Model weights: float dtypes only, finite (a NaN checkpoint would resume into NaN losses).
        try SafeTensors.checkWeights(modelState, dtypes: Dictionary(uniqueKeysWithValues: modelState.keys.compactMap { k in
            dtypes["model." + k].map { (k, $0) } }), path: url.path)
        do { try model.loadStateDict(modelState, strict: true) } catch {
            throw CheckpointError.invalid(path: url.path, reason: "model: \(error)")
        }
        if let optimizer {
            do { try optimizer.loadStateDict(optState) } catch {
                throw CheckpointError.invalid(path: url.path, reason: "optimizer: \(error)")
            }
        }
        var rng: [String: [UInt64]] = [:], extra: [String: String] = [:]
        for (k, v) in meta {
            if k.hasPrefix("rng.") {
                let words = v.split(separator: ",").compactMap { UInt64($0) }
                guard words.count == 4, words.contains(where: { $0 != 0 }) else {
                    throw CheckpointError.invalid(path: url.path, reason: "metadata \(k) is not four state words: \(v)")
                }
                rng[String(k.dropFirst(4))] = words
            } else if !["format", "step", "config"].contains(k) { extra[k] = v }
        }
        if let d = rng["default"] { DefaultGenerator.state = d }
        return Info(step: step, rngStates: rng, config: meta["config"], extra: extra)
    }
}
