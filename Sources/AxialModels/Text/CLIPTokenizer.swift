import CZlib
import Foundation

/// Errors raised while loading a tokenizer vocabulary.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case missingResource(name: String)
    case unreadableVocabulary(path: String, reason: String)
    case malformedVocabulary(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case .missingResource(let name):
            return "tokenizer resource '\(name)' is missing from the AxialModels bundle"
        case .unreadableVocabulary(let path, let reason):
            return "cannot read tokenizer vocabulary \(path): \(reason)"
        case .malformedVocabulary(let path, let line, let reason):
            return "malformed tokenizer vocabulary \(path) line \(line): \(reason)"
        }
    }
}

/// Inflates a gzip (or zlib) stream with the system zlib.
enum Gzip {
    static func inflate(_ data: Data, path: String) throws -> Data {
        var stream = z_stream()
        // windowBits 15 + 32: detect gzip or zlib headers automatically.
        guard inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw TokenizerError.unreadableVocabulary(path: path, reason: "zlib inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        var output = Data()
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        var status: Int32 = Z_OK
        try data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            repeat {
                status = buffer.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(chunk)
                    return CZlib.inflate(&stream, Z_NO_FLUSH)
                }
                guard status == Z_OK || status == Z_STREAM_END else {
                    let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                    throw TokenizerError.unreadableVocabulary(path: path, reason: message)
                }
                output.append(contentsOf: buffer[0..<(chunk - Int(stream.avail_out))])
                if status == Z_OK && stream.avail_in == 0 && stream.avail_out != 0 {
                    throw TokenizerError.unreadableVocabulary(path: path, reason: "truncated gzip stream")
                }
            } while status != Z_STREAM_END
        }
        return output
    }
}

/// OpenAI CLIP / open_clip byte-level BPE tokenizer (`open_clip.tokenizer.SimpleTokenizer`).
///
///     text → clean ('lower': ftfy, html.unescape ×2, whitespace collapse, lower-case)
///          → pre-tokens  <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+
///          → UTF-8 bytes mapped to printable code points (`bytes_to_unicode`)
///          → BPE merges (lowest rank first, last symbol carries "</w>") → ids
///     tokenize(text) = [49406] + ids + [49407], truncated to `contextLength` with the last
///     slot forced to <end_of_text>, zero-padded.
///
/// Vocabulary (49408 ids): 256 byte symbols, the same 256 + "</w>", the first 48894 merges of
/// `bpe_simple_vocab_16e6.txt.gz` (shipped gzipped in `Resources/`, inflated with zlib), then
/// `<start_of_text>` = 49406 and `<end_of_text>` = 49407.
/// The pre-tokenizer is a hand-written matcher of that pattern over Unicode scalars, like
/// Python's `regex` on `str`. BPE results are cached per pre-token (thread-safe).
public final class CLIPTokenizer: @unchecked Sendable {
    public static let defaultContextLength = 77
    public static let vocabularyResource = "bpe_simple_vocab_16e6.txt"

    public let vocabularySize: Int
    public let startOfTextID: Int
    public let endOfTextID: Int
    public let contextLength: Int

    /// Symbol string → id, and id → symbol string.
    private let encoder: [String: Int]
    private let decoder: [String]
    /// (left id, right id) → (merge rank, merged id).
    private let merges: [Int: (rank: Int, merged: Int)]
    /// Byte b → id of its symbol without / with "</w>".
    private let byteID: [Int]
    private let byteEndID: [Int]
    private let byteEncoder: [Unicode.Scalar]
    private let specialTokens: [String: Int]

    private let lock = NSLock()
    private var cache: [String: [Int]] = [:]

    private static let sharedLock = NSLock()
    nonisolated(unsafe) private static var sharedInstance: CLIPTokenizer?

    /// The tokenizer over the bundled open_clip vocabulary, loaded once.
    public static func shared() throws -> CLIPTokenizer {
        sharedLock.lock()
        defer { sharedLock.unlock() }
        if let t = sharedInstance { return t }
        let t = try CLIPTokenizer()
        sharedInstance = t
        return t
    }

    /// Loads the merges from `vocabularyURL` (a `.txt` or `.txt.gz` file), or from the bundled
    /// `bpe_simple_vocab_16e6.txt.gz` when nil.
    public init(vocabularyURL: URL? = nil, contextLength: Int = CLIPTokenizer.defaultContextLength) throws {
        let url: URL
        if let vocabularyURL {
            url = vocabularyURL
        } else if let bundled = Bundle.module.url(forResource: Self.vocabularyResource, withExtension: "gz", subdirectory: "Resources")
                    ?? Bundle.module.url(forResource: Self.vocabularyResource, withExtension: "gz") {
            url = bundled
        } else {
            throw TokenizerError.missingResource(name: Self.vocabularyResource + ".gz")
        }
        let raw: Data
        do { raw = try Data(contentsOf: url) } catch {
            throw TokenizerError.unreadableVocabulary(path: url.path, reason: "\(error)")
        }
        let bytes = raw.starts(with: [0x1F, 0x8B]) ? try Gzip.inflate(raw, path: url.path) : raw
        guard let text = String(data: bytes, encoding: .utf8) else {
            throw TokenizerError.unreadableVocabulary(path: url.path, reason: "not UTF-8")
        }
        // merges = lines[1 : 49152-256-2+1]
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let mergeCount = 49152 - 256 - 2
        guard lines.count > mergeCount else {
            throw TokenizerError.malformedVocabulary(path: url.path, line: lines.count, reason: "expected at least \(mergeCount + 1) lines")
        }

        let byteEncoder = Self.bytesToUnicode()
        // Python's dict keeps insertion order: printable bytes first, then the remapped ones.
        let ordered = Self.bytesToUnicodeOrder().map { byteEncoder[$0] }
        var vocab: [String] = ordered.map { String($0) }
        vocab += ordered.map { String($0) + "</w>" }
        var mergePairs: [(String, String)] = []
        mergePairs.reserveCapacity(mergeCount)
        for (k, line) in lines[1...mergeCount].enumerated() {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2 else {
                throw TokenizerError.malformedVocabulary(path: url.path, line: k + 2, reason: "expected two symbols, got '\(line)'")
            }
            mergePairs.append((String(parts[0]), String(parts[1])))
            vocab.append(String(parts[0]) + String(parts[1]))
        }
        let specials = ["<start_of_text>", "<end_of_text>"]
        vocab += specials
        var encoder: [String: Int] = [:]
        encoder.reserveCapacity(vocab.count)
        for (i, v) in vocab.enumerated() { encoder[v] = i }   // later duplicates win, as dict(zip(...))
        var merges: [Int: (rank: Int, merged: Int)] = [:]
        merges.reserveCapacity(mergeCount)
        for (rank, (a, b)) in mergePairs.enumerated() {
            guard let ia = encoder[a], let ib = encoder[b], let m = encoder[a + b] else {
                throw TokenizerError.malformedVocabulary(path: url.path, line: rank + 2, reason: "merge of unknown symbols '\(a) \(b)'")
            }
            merges[Self.pairKey(ia, ib)] = (rank, m)   // dict(zip(merges, range)): a repeated pair keeps its last rank
        }
        self.encoder = encoder
        self.decoder = vocab
        self.merges = merges
        self.byteEncoder = byteEncoder
        self.byteID = byteEncoder.map { encoder[String($0)]! }
        self.byteEndID = byteEncoder.map { encoder[String($0) + "</w>"]! }
        self.specialTokens = Dictionary(uniqueKeysWithValues: specials.map { ($0, encoder[$0]!) })
        self.startOfTextID = encoder["<start_of_text>"]!
        self.endOfTextID = encoder["<end_of_text>"]!
        self.vocabularySize = encoder.count
        self.contextLength = contextLength
    }

    @inline(__always) private static func pairKey(_ a: Int, _ b: Int) -> Int { a << 20 | b }

    /// Byte values in `bytes_to_unicode()`'s insertion order.
    static func bytesToUnicodeOrder() -> [Int] {
        let printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        return printable + (0..<256).filter { !printable.contains($0) }
    }

    /// GPT-2's reversible byte → printable code point table, indexed by byte value.
    static func bytesToUnicode() -> [Unicode.Scalar] {
        var bs = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var cs = bs
        var n = 0
        for b in 0..<256 where !bs.contains(b) {
            bs.append(b)
            cs.append(256 + n)
            n += 1
        }
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        for (b, c) in zip(bs, cs) { table[b] = Unicode.Scalar(UInt32(c))! }
        return table
    }

    // MARK: Encoding

    /// Token ids of `text` without <start_of_text>/<end_of_text> (`SimpleTokenizer.encode`).
    public func encode(_ text: String) -> [Int] {
        let cleaned = OpenCLIPTextCleaning.clean(text, mode: .lower)
        var ids: [Int] = []
        for token in Self.preTokenize(cleaned) {
            if let special = specialTokens[token] {
                ids.append(special)
            } else {
                ids += bpe(token)
            }
        }
        return ids
    }

    /// `[<start_of_text>] + encode(text) + [<end_of_text>]`, truncated to `contextLength` with
    /// the last id set to <end_of_text>, then zero-padded (`SimpleTokenizer.__call__`).
    public func tokenize(_ text: String, contextLength: Int? = nil) -> [Int] {
        let length = contextLength ?? self.contextLength
        precondition(length >= 2, "CLIPTokenizer: context length \(length) must hold <start_of_text> and <end_of_text>")
        var tokens = [startOfTextID] + encode(text) + [endOfTextID]
        if tokens.count > length {
            tokens = Array(tokens[0..<length])
            tokens[length - 1] = endOfTextID
        }
        return tokens + [Int](repeating: 0, count: length - tokens.count)
    }

    /// A batch as rows of `contextLength` ids.
    public func callAsFunction(_ texts: [String], contextLength: Int? = nil) -> [[Int]] {
        texts.map { tokenize($0, contextLength: contextLength) }
    }

    /// `SimpleTokenizer.decode`: ids → text with "</w>" as spaces (invalid UTF-8 replaced).
    public func decode(_ ids: [Int]) -> String {
        var byteDecoder: [Unicode.Scalar: UInt8] = [:]
        for (b, c) in byteEncoder.enumerated() { byteDecoder[c] = UInt8(b) }
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && id < decoder.count {
            let symbol = decoder[id].replacingOccurrences(of: "</w>", with: " ")
            for s in symbol.unicodeScalars {
                if let b = byteDecoder[s] { bytes.append(b) } else { bytes.append(contentsOf: Array(String(s).utf8)) }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Symbol string of an id (e.g. "hello</w>").
    public func symbol(_ id: Int) -> String? { id >= 0 && id < decoder.count ? decoder[id] : nil }

    /// BPE ids of one pre-token (`SimpleTokenizer.bpe`), cached.
    func bpe(_ token: String) -> [Int] {
        lock.lock()
        if let hit = cache[token] { lock.unlock(); return hit }
        lock.unlock()

        let bytes = Array(token.utf8)
        guard !bytes.isEmpty else { return [] }
        var word = bytes.dropLast().map { byteID[Int($0)] } + [byteEndID[Int(bytes.last!)]]
        while word.count > 1 {
            var best = Int.max, bestPair = (0, 0)
            for i in 0..<(word.count - 1) {
                if let m = merges[Self.pairKey(word[i], word[i + 1])], m.rank < best {
                    best = m.rank
                    bestPair = (word[i], word[i + 1])
                }
            }
            guard best != Int.max else { break }
            let merged = merges[Self.pairKey(bestPair.0, bestPair.1)]!.merged
            var next: [Int] = []
            next.reserveCapacity(word.count)
            var i = 0
            while i < word.count {
                if i < word.count - 1 && word[i] == bestPair.0 && word[i + 1] == bestPair.1 {
                    next.append(merged)
                    i += 2
                } else {
                    next.append(word[i])
                    i += 1
                }
            }
            word = next
        }
        lock.lock()
        cache[token] = word
        lock.unlock()
        return word
    }

    // MARK: Pre-tokenisation

    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    static func isSpace(_ s: Unicode.Scalar) -> Bool {
        s.properties.isWhitespace || OpenCLIPTextCleaning.isPythonSpace(s)
    }

    private static let specialPatterns: [[Unicode.Scalar]] = ["<start_of_text>", "<end_of_text>"].map { Array($0.unicodeScalars) }
    private static let contractions: [[Unicode.Scalar]] = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"].map { Array($0.unicodeScalars) }

    /// `re.findall(pat, text)` for open_clip's pattern (alternatives tried in order at each
    /// position; IGNORECASE only matters for the ASCII literals, compared case-insensitively).
    static func preTokenize(_ text: String) -> [String] {
        let s = Array(text.unicodeScalars)
        var tokens: [String] = []
        func emit(_ range: Range<Int>) {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: s[range])
            tokens.append(String(v))
        }
        func matches(_ literal: [Unicode.Scalar], at i: Int) -> Bool {
            guard i + literal.count <= s.count else { return false }
            for (k, c) in literal.enumerated() {
                let t = s[i + k]
                if t != c && !(t.isASCII && c.isASCII && t.properties.lowercaseMapping == String(c)) { return false }
            }
            return true
        }
        var i = 0
        outer: while i < s.count {
            for literal in specialPatterns + contractions where matches(literal, at: i) {
                emit(i..<(i + literal.count))
                i += literal.count
                continue outer
            }
            let c = s[i]
            if isLetter(c) {
                var j = i + 1
                while j < s.count, isLetter(s[j]) { j += 1 }
                emit(i..<j)
                i = j
            } else if isNumber(c) {
                emit(i..<(i + 1))
                i += 1
            } else if !isSpace(c) {
                var j = i + 1
                while j < s.count, !isSpace(s[j]), !isLetter(s[j]), !isNumber(s[j]) { j += 1 }
                emit(i..<j)
                i = j
            } else {
                i += 1
            }
        }
        return tokens
    }
}
