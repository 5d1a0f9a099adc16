import Foundation

/// BERT WordPiece tokenizer, uncased (Hugging Face `BertTokenizer` / `BertTokenizerFast` with
/// `do_lower_case=True`), as BiomedCLIP's PubMedBERT text tower uses it through open_clip's
/// `HFTokenizer` (context 256).
///
///     text → [open_clip 'whitespace' clean: ftfy, html.unescape ×2, whitespace collapse]   (optional)
///          → split out the special tokens ([CLS], [SEP], [PAD], [UNK], [MASK]) written verbatim
///          → BasicTokenizer: drop NUL / U+FFFD / control chars (category C*, except \t \n \r),
///            whitespace (\t \n \r, Zs) → " ", spaces around CJK ideographs, NFC, split on
///            whitespace, lower-case, strip accents (NFD, drop Mn), split every punctuation char
///            (ASCII !…/ :…@ […` {…~ and category P*) into its own token
///          → WordPiece: greedy longest match first, continuations prefixed "##", a word longer than
///            100 scalars or with an unmatched piece becomes [UNK]
///     tokenize(text) = [CLS] + ids[..<contextLength-2] + [SEP], padded with [PAD].
///
/// The vocabulary is a `vocab.txt` (one token per line, id = line number).
public final class WordPieceTokenizer: Sendable {
    public static let defaultContextLength = 256
    public static let maxInputCharsPerWord = 100

    public let vocabulary: [String: Int]
    public let tokens: [String]
    public let padID: Int, unknownID: Int, clsID: Int, sepID: Int, maskID: Int?
    public let contextLength: Int
    /// open_clip's pre-cleaning (`HFTokenizer(clean='whitespace')`); nil = plain Hugging Face.
    public let cleaning: OpenCLIPTextCleaning.Mode?
    private let specialTokens: [String: Int]

    public convenience init(vocabularyURL url: URL, contextLength: Int = WordPieceTokenizer.defaultContextLength,
                cleaning: OpenCLIPTextCleaning.Mode? = .whitespace) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.unreadableVocabulary(path: url.path, reason: "\(error)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TokenizerError.unreadableVocabulary(path: url.path, reason: "not UTF-8")
        }
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        try self.init(tokens: lines, path: url.path, contextLength: contextLength, cleaning: cleaning)
    }

    public init(tokens: [String], path: String = "<memory>", contextLength: Int = WordPieceTokenizer.defaultContextLength,
                cleaning: OpenCLIPTextCleaning.Mode? = .whitespace) throws {
        var vocabulary: [String: Int] = [:]
        for (i, t) in tokens.enumerated() { vocabulary[t] = i }
        func require(_ name: String) throws -> Int {
            guard let id = vocabulary[name] else {
                throw TokenizerError.malformedVocabulary(path: path, line: tokens.count, reason: "no \(name) token")
            }
            return id
        }
        self.vocabulary = vocabulary
        self.tokens = tokens
        self.padID = try require("[PAD]")
        self.unknownID = try require("[UNK]")
        self.clsID = try require("[CLS]")
        self.sepID = try require("[SEP]")
        self.maskID = vocabulary["[MASK]"]
        self.contextLength = contextLength
        self.cleaning = cleaning
        var specials: [String: Int] = [:]
        for name in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] { specials[name] = vocabulary[name] }
        self.specialTokens = specials
    }

    // MARK: Public API

    /// Word pieces of `text` as strings (no [CLS]/[SEP]).
    public func wordPieces(_ text: String) -> [String] {
        var cleaned = text
        if let cleaning { cleaned = OpenCLIPTextCleaning.clean(text, mode: cleaning) }
        var out: [String] = []
        for (chunk, isSpecial) in splitSpecialTokens(cleaned) {
            if isSpecial { out.append(chunk); continue }
            for word in Self.basicTokenize(chunk) { out += wordPiece(word) }
        }
        return out
    }

    /// Ids of `text` without [CLS]/[SEP].
    public func encode(_ text: String) -> [Int] {
        wordPieces(text).map { vocabulary[$0] ?? unknownID }
    }

    /// `[CLS] + encode(text) + [SEP]`, truncated to `contextLength` and padded with [PAD].
    public func tokenize(_ text: String, contextLength: Int? = nil) -> [Int] {
        let length = contextLength ?? self.contextLength
        precondition(length >= 2, "WordPieceTokenizer: context length \(length) must hold [CLS] and [SEP]")
        let ids = encode(text)
        let body = ids.count > length - 2 ? Array(ids[0..<(length - 2)]) : ids
        let row = [clsID] + body + [sepID]
        return row + [Int](repeating: padID, count: length - row.count)
    }

    public func callAsFunction(_ texts: [String], contextLength: Int? = nil) -> [[Int]] {
        texts.map { tokenize($0, contextLength: contextLength) }
    }

    /// Attention mask of a tokenized row (1 up to and including [SEP], then 0).
    public func attentionMask(_ row: [Int]) -> [Int] {
        guard let last = row.lastIndex(of: sepID) else { return row.map { $0 == padID ? 0 : 1 } }
        return row.indices.map { $0 <= last ? 1 : 0 }
    }

    // MARK: Special tokens

    private func splitSpecialTokens(_ text: String) -> [(String, Bool)] {
        guard text.contains("[") else { return [(text, false)] }
        var chunks: [(String, Bool)] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "[") {
            var matched: String?
            for name in specialTokens.keys where rest[open...].hasPrefix(name) {
                matched = name
                break
            }
            if let name = matched {
                chunks.append((String(rest[..<open]), false))
                chunks.append((name, true))
                rest = rest[rest.index(open, offsetBy: name.count)...]
            } else {
                // Not special: keep scanning after this bracket.
                let next = rest.index(after: open)
                if let later = rest[next...].firstIndex(of: "["),
                   specialTokens.keys.contains(where: { rest[later...].hasPrefix($0) }) {
                    chunks.append((String(rest[..<later]), false))
                    rest = rest[later...]
                } else {
                    break
                }
            }
        }
        chunks.append((String(rest), false))
        return chunks.filter { !$0.0.isEmpty }
    }

    // MARK: BasicTokenizer

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
    }

    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let cp = s.value
        if (33...47).contains(cp) || (58...64).contains(cp) || (91...96).contains(cp) || (123...126).contains(cp) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    static func isChineseChar(_ cp: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(cp) || (0x3400...0x4DBF).contains(cp) || (0x20000...0x2A6DF).contains(cp)
            || (0x2A700...0x2B73F).contains(cp) || (0x2B740...0x2B81F).contains(cp) || (0x2B820...0x2CEAF).contains(cp)
            || (0xF900...0xFAFF).contains(cp) || (0x2F800...0x2FA1F).contains(cp)
    }

    /// `BasicTokenizer.tokenize` with do_lower_case=True, tokenize_chinese_chars=True.
    static func basicTokenize(_ text: String) -> [String] {
        var cleaned = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s.value == 0 || s.value == 0xFFFD || isControl(s) { continue }
            if isWhitespace(s) {
                cleaned.append(" ")
            } else if isChineseChar(s.value) {
                cleaned.append(" "); cleaned.append(s); cleaned.append(" ")
            } else {
                cleaned.append(s)
            }
        }
        let normalized = String(cleaned).precomposedStringWithCanonicalMapping
        var output: [String] = []
        for word in splitPythonWhitespace(normalized) {
            let lowered = OpenCLIPTextCleaning.pythonLower(word)
            var stripped = String.UnicodeScalarView()
            for s in lowered.decomposedStringWithCanonicalMapping.unicodeScalars
            where s.properties.generalCategory != .nonspacingMark {
                stripped.append(s)
            }
            var current = String.UnicodeScalarView()
            for s in stripped {
                if isPunctuation(s) {
                    if !current.isEmpty { output.append(String(current)); current = String.UnicodeScalarView() }
                    output.append(String(s))
                } else {
                    current.append(s)
                }
            }
            if !current.isEmpty { output.append(String(current)) }
        }
        // whitespace_tokenize(" ".join(split_tokens))
        return output.flatMap { splitPythonWhitespace($0) }
    }

    static func splitPythonWhitespace(_ text: String) -> [String] {
        var words: [String] = []
        var current = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if OpenCLIPTextCleaning.isPythonSpace(s) {
                if !current.isEmpty { words.append(String(current)); current = String.UnicodeScalarView() }
            } else {
                current.append(s)
            }
        }
        if !current.isEmpty { words.append(String(current)) }
        return words
    }

    // MARK: WordPiece

    func wordPiece(_ word: String) -> [String] {
        let chars = Array(word.unicodeScalars)
        if chars.count > Self.maxInputCharsPerWord { return ["[UNK]"] }
        var pieces: [String] = []
        var start = 0
        while start < chars.count {
            var end = chars.count
            var found: String?
            while start < end {
                var v = String.UnicodeScalarView()
                v.append(contentsOf: chars[start..<end])
                let piece = start > 0 ? "##" + String(v) : String(v)
                if vocabulary[piece] != nil { found = piece; break }
                end -= 1
            }
            guard let piece = found else { return [tokens[unknownID]] }
            pieces.append(piece)
            start = end
        }
        return pieces
    }
}
