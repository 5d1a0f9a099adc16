import AxialCore
import AxialEval
import AxialModels
import AxialTensor
import Foundation

/// The text tower a PsPG MIL model's class-name embeddings came from (`axial crossval --text-encoder`),
/// stored in the model file's metadata (`text_tower`, JSON) so that `axial deploy --classes FILE`
/// can embed other class names the same way.
public struct TextTowerRecord: Codable, Sendable, Equatable {
    /// `ClassNameEncoder.Kind` raw value.
    public var encoder: String
    /// The checkpoint path given at training, and its SHA-256 (a deploy checks it).
    public var weights: String
    public var weightsSHA256: String
    /// BiomedCLIP's WordPiece vocab.txt, when used.
    public var vocabulary: String?
    public var template: String

    enum CodingKeys: String, CodingKey {
        case encoder, weights, vocabulary, template
        case weightsSHA256 = "weights_sha256"
    }

    public init(encoder: ClassNameEncoder.Kind, weights: URL, vocabulary: URL?, template: String) throws {
        self.encoder = encoder.rawValue; self.weights = weights.path; self.vocabulary = vocabulary?.path; self.template = template
        weightsSHA256 = try SHA256.hex(fileAt: weights)
    }

    public var json: String {
        let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]
        return String(decoding: try! e.encode(self), as: UTF8.self)
    }

    static let metadataKey = "text_tower"
}

/// Zero-shot scoring of class names never seen in training (`axial deploy --classes FILE`): the
/// names go through the model's own frozen text tower (same checkpoint, tokenizer and prompt
/// template as at training) and replace the class-name embeddings of every PsPG fold model; the
/// trained decoders, fusion and logit scale do the rest (`PsPGHead.withClassEmbeddings`).
///
/// The decoders' self-attention runs across the classes given together, so a class's score
/// depends on the other names in the list: the trained names, in any order, give exactly the
/// trained model's scores; a subset or a mix with new names gives other (still valid) scores.
public enum ZeroShot {
    /// `models` rebound to the class names of `classes` (one per line, blank lines skipped; an
    /// empty list or a repeated name is an error naming the file and line). Each model must be a
    /// PsPG model trained with `--text-encoder`. `textWeights` / `textVocabulary` override the
    /// recorded paths (the checkpoint must have the recorded SHA-256). With `embeddings` (a
    /// safetensors file with one [E] tensor per class name or id, or `embeddings` [C, E], as
    /// crossval's `--class-embeddings`) the names' embeddings come from that file instead, and no
    /// text tower is needed (embeddings that carry meaning made by other means).
    public static func rebind(_ models: [MILModel], classes: URL, textWeights: URL? = nil, textVocabulary: URL? = nil,
                              embeddings: URL? = nil) throws -> [MILModel] {
        let names = try ClassifyData.loadClasses(classes.path)
        let (task, yaml) = try task(names: names, trained: models[0].task, file: classes)
        var encoders: [String: ClassNameEncoder] = [:]
        return try models.map { model in
            let path = model.url?.path ?? "model"
            guard let head = model.head as? PsPGHead else {
                throw MILError.model(path: path, reason: "is a \(model.head.config.kind.rawValue) model; --classes (zero-shot class names) needs a PsPG model (crossval --head pspg)")
            }
            if let embeddings {
                var m = model
                let e = try ClassEmbeddings.load(task: task, file: embeddings, dimension: head.config.embeddingDimension)
                guard e.shape == [names.count, head.config.embeddingDimension] else {
                    throw MILError.model(path: embeddings.path, reason: "class embeddings \(e.shape), \(path) needs [\(names.count), \(head.config.embeddingDimension)]")
                }
                m.head = head.withClassEmbeddings(e)
                m.task = task; m.taskYAML = yaml
                return m
            }
            guard let record = model.textTower else {
                throw MILError.model(path: path, reason: "has no text tower: its class embeddings came from --class-embeddings or stand-in vectors, so new class names cannot be embedded; train with --text-encoder … --text-weights … for --classes")
            }
            guard let kind = ClassNameEncoder.Kind(rawValue: record.encoder) else {
                throw MILError.model(path: path, reason: "records an unknown text encoder '\(record.encoder)'")
            }
            let weights = textWeights ?? URL(fileURLWithPath: record.weights)
            guard FileManager.default.fileExists(atPath: weights.path) else {
                throw MILError.options("--text-weights: \(weights.path) (the text tower \(path) was trained with) does not exist; pass --text-weights <the same checkpoint>")
            }
            let key = "\(record.encoder)|\(weights.path)|\(record.vocabulary ?? "")"
            if encoders[key] == nil {
                let sha = try SHA256.hex(fileAt: weights)
                guard sha == record.weightsSHA256 else {
                    throw MILError.options("--text-weights: \(weights.path) has sha256 \(sha.prefix(12))…, \(path) was trained with \(record.weightsSHA256.prefix(12))… (\(record.weights)); zero-shot needs the same text tower")
                }
                let vocabulary = textVocabulary ?? record.vocabulary.map { URL(fileURLWithPath: $0) }
                encoders[key] = try ClassNameEncoder.load(kind, weights: weights, vocabulary: vocabulary)
            }
            let embeddings = encoders[key]!.encodeClassNames(names, template: record.template)
            guard embeddings.shape == [names.count, head.config.embeddingDimension] else {
                throw MILError.model(path: path, reason: "text tower gives \(embeddings.shape) embeddings, the head expects width \(head.config.embeddingDimension)")
            }
            var m = model
            m.head = head.withClassEmbeddings(embeddings)
            m.task = task; m.taskYAML = yaml
            return m
        }
    }

    /// The multi-label task of `names` (columns = the names, ids = their sanitised forms) and its YAML.
    static func task(names: [String], trained: TaskSpec, file: URL) throws -> (TaskSpec, String) {
        func quoted(_ s: String) -> String {
            String(decoding: try! JSONSerialization.data(withJSONObject: [s], options: [.fragmentsAllowed]), as: UTF8.self)
                .dropFirst().dropLast().description
        }
        let yaml = """
            # Zero-shot class names from \(file.lastPathComponent) (axial deploy --classes), scored by models trained on '\(trained.name)'.
            name: \(quoted(trained.name + "_zero_shot"))
            kind: multilabel
            description: \(quoted("zero-shot labels from \(file.path)"))
            classes: [\(names.map(quoted).joined(separator: ", "))]

            """
        let task: TaskSpec
        do { task = try TaskSpec.parse(yaml, path: file.path) } catch {
            throw MILError.options("--classes \(file.path): \(error)")
        }
        var seen: [String: String] = [:]
        for c in task.classes {
            if let other = seen[c.id] {
                throw MILError.options("--classes \(file.path): '\(other)' and '\(c.name)' both become the score column score_\(c.id); rename one")
            }
            seen[c.id] = c.name
        }
        return (task, yaml)
    }
}
