import Foundation
import AxialTestSupport
import Testing
@testable import AxialModels

/// Token ids against open_clip / Hugging Face, from Tools/goldens/make_tokenizer_goldens.py.
struct TokenizerGoldens: Decodable {
    struct Case: Decodable {
        let text: String
        let clip: [Int]
        let hf_fast: [Int]
        let hf_slow: [Int]
        let open_clip_hf: [Int]
    }
    let clip_context_length: Int
    let wordpiece_context_length: Int
    let wordpiece_vocab: String
    let cases: [Case]

    static let fixtures: URL = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    static let shared: TokenizerGoldens = {
        let data = try! Data(contentsOf: fixtures.appendingPathComponent("tokenizers.json"))
        return try! JSONDecoder().decode(TokenizerGoldens.self, from: data)
    }()

    static func padded(_ ids: [Int], _ length: Int, pad: Int) -> [Int] {
        ids + [Int](repeating: pad, count: length - ids.count)
    }
}

@Suite("CLIP BPE tokenizer")
struct CLIPTokenizerTests {
    let goldens = TokenizerGoldens.shared

    @Test func vocabularyLayout() throws {
        let t = try CLIPTokenizer.shared()
        #expect(t.vocabularySize == 49408)
        #expect(t.startOfTextID == 49406)
        #expect(t.endOfTextID == 49407)
        #expect(t.symbol(256 + 0x69 - 0x21) == "i</w>")   // printable bytes come first, from '!'
        #expect(t.symbol(320) == "a</w>")
    }

    @Test(arguments: 0..<TokenizerGoldens.shared.cases.count)
    func matchesOpenCLIP(_ index: Int) throws {
        let c = goldens.cases[index]
        let t = try CLIPTokenizer.shared()
        let expected = TokenizerGoldens.padded(c.clip, goldens.clip_context_length, pad: 0)
        let got = t.tokenize(c.text)
        #expect(got == expected, "text: \(c.text.debugDescription)")
    }

    @Test func truncationKeepsEndOfText() throws {
        let t = try CLIPTokenizer.shared()
        let row = t.tokenize(String(repeating: "lung nodule ", count: 100))
        #expect(row.count == 77)
        #expect(row.first == t.startOfTextID)
        #expect(row.last == t.endOfTextID)
        #expect(!row.contains(0))
        let short = t.tokenize("lung", contextLength: 5)
        #expect(short.count == 5 && short[0] == 49406 && short.last == 0)
    }

    @Test func decodeRoundTrip() throws {
        let t = try CLIPTokenizer.shared()
        #expect(t.decode(t.encode("ground-glass opacity 3.5 cm")) == "ground - glass opacity 3 . 5 cm ")   // as SimpleTokenizer.decode
        #expect(t.decode(t.encode("métastase µg 肺")) == "métastase µg 肺 ")
    }

    @Test func preTokenizerMatchesPattern() {
        #expect(CLIPTokenizer.preTokenize("it's 12ab!!? x<end_of_text>y") ==
                ["it", "'s", "1", "2", "ab", "!!?", "x", "<end_of_text>", "y"])
        #expect(CLIPTokenizer.preTokenize("''s naïve") == ["''", "s", "naïve"])
    }

    @Test func badVocabularyFileIsReported() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("axial-bad-bpe-\(UUID().uuidString).txt")
        try "#version\na b\n".write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: TokenizerError.self) { try CLIPTokenizer(vocabularyURL: url) }
        let gz = url.appendingPathExtension("gz")
        try Data([0x1F, 0x8B, 0x08, 0x00, 0x01, 0x02]).write(to: gz)
        defer { try? FileManager.default.removeItem(at: gz) }
        #expect(throws: TokenizerError.self) { try CLIPTokenizer(vocabularyURL: gz) }
    }
}

@Suite("open_clip text cleaning")
struct TextCleaningTests {
    @Test func htmlUnescapeAsPython() {
        #expect(OpenCLIPTextCleaning.htmlUnescape("&lt;b&gt; &amp;amp; &#x41;&#66;&#0; &notit; &eacute") == "<b> &amp; AB\u{FFFD} ¬it; é")
        #expect(OpenCLIPTextCleaning.htmlUnescape("&#128;&#x110000;&#1;x") == "€\u{FFFD}x")
    }

    @Test func ftfySubset() {
        #expect(OpenCLIPTextCleaning.fixText("ﬁ “a” ＣＴ\u{3000}x\u{1B}[31mred\u{7F}") == "fi \"a\" CT xred")
        #expect(OpenCLIPTextCleaning.fixText("P&EACUTE;REZ e\u{301}") == "PÉREZ é")
        #expect(OpenCLIPTextCleaning.pythonLower("ΟΔΟΣ ΣΑ") == "οδος σα")
    }
}

@Suite("BERT WordPiece tokenizer")
struct WordPieceTokenizerTests {
    let goldens = TokenizerGoldens.shared
    var vocabURL: URL { TokenizerGoldens.fixtures.appendingPathComponent(goldens.wordpiece_vocab) }

    @Test(arguments: 0..<TokenizerGoldens.shared.cases.count)
    func matchesHuggingFace(_ index: Int) throws {
        let c = goldens.cases[index]
        let raw = try WordPieceTokenizer(vocabularyURL: vocabURL, cleaning: nil)
        let length = goldens.wordpiece_context_length
        let got = raw.tokenize(c.text)
        #expect(got == TokenizerGoldens.padded(c.hf_fast, length, pad: raw.padID), "fast, text: \(c.text.debugDescription)")
        #expect(got == TokenizerGoldens.padded(c.hf_slow, length, pad: raw.padID), "slow, text: \(c.text.debugDescription)")
    }

    @Test(arguments: 0..<TokenizerGoldens.shared.cases.count)
    func matchesOpenCLIPHFTokenizer(_ index: Int) throws {
        let c = goldens.cases[index]
        let biomed = try WordPieceTokenizer(vocabularyURL: vocabURL, cleaning: .whitespace)
        let got = biomed.tokenize(c.text)
        #expect(got == TokenizerGoldens.padded(c.open_clip_hf, goldens.wordpiece_context_length, pad: biomed.padID),
                "text: \(c.text.debugDescription)")
    }

    @Test func truncationAndMask() throws {
        let t = try WordPieceTokenizer(vocabularyURL: vocabURL, contextLength: 8)
        let row = t.tokenize("a chest ct of the abdomen and pelvis with contrast")
        #expect(row.count == 8 && row.first == t.clsID && row.last == t.sepID)
        let short = t.tokenize("chest")
        #expect(t.attentionMask(short) == [1, 1, 1, 0, 0, 0, 0, 0])
        #expect(t.wordPieces(String(repeating: "a", count: 101)) == ["[UNK]"])
    }

    @Test func missingSpecialTokenIsReported() {
        #expect(throws: TokenizerError.self) { try WordPieceTokenizer(tokens: ["[PAD]", "a"]) }
    }
}
