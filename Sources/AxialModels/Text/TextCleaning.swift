import Foundation

/// The text cleaning open_clip applies before tokenising (`open_clip/tokenizer.py`):
///
///     basic_clean(t)      = html.unescape(html.unescape(ftfy.fix_text(t))).strip()
///     whitespace_clean(t) = " ".join(t.split()).strip()
///     'lower'      (CLIP SimpleTokenizer)  = whitespace_clean(basic_clean(t)).lower()
///     'whitespace' (HFTokenizer, BiomedCLIP) = whitespace_clean(basic_clean(t))
///
/// `ftfy.fix_text` is reproduced for everything except its mojibake repair (`fix_encoding`,
/// `restore_byte_a0`, `replace_lossy_sequences`, `decode_inconsistent_utf8`), which is a
/// statistical heuristic over wrongly-decoded text (it fired on 7 of 600 adversarial random strings,
/// e.g. "é“æ"; never on clean text). Everything else goes through ftfy's remaining fixers exactly:
/// HTML entities (only when a line has no `<`), C1 controls as Windows-1252, Latin ligatures,
/// full/half-width forms, curly quotes, line breaks, terminal escapes, control characters, NFC;
/// each line repeated until nothing changes, as ftfy does.
/// `html.unescape` is Python's, with the full HTML5 entity table (`Resources/html5_entities.json`,
/// dumped from Python's `html.entities.html5`).
public enum OpenCLIPTextCleaning {
    public enum Mode: String, Sendable {
        case lower, whitespace
    }

    public static func clean(_ text: String, mode: Mode) -> String {
        let cleaned = whitespaceClean(basicClean(text))
        return mode == .lower ? pythonLower(cleaned) : cleaned
    }

    /// `basic_clean`: ftfy.fix_text, html.unescape twice, strip.
    public static func basicClean(_ text: String) -> String {
        var t = fixText(text)
        t = htmlUnescape(htmlUnescape(t))
        return pythonStrip(t)
    }

    /// `" ".join(text.split())`.
    public static func whitespaceClean(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        var pendingSpace = false
        for s in text.unicodeScalars {
            if isPythonSpace(s) {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(" ") }
                pendingSpace = false
                out.append(s)
            }
        }
        return String(out)
    }

    // MARK: Python string semantics

    /// Python `str.isspace()` (White_Space bidi classes WS/B/S or category Zs).
    public static func isPythonSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029,
             0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    static func pythonStrip(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var lo = 0, hi = scalars.count
        while lo < hi, isPythonSpace(scalars[lo]) { lo += 1 }
        while hi > lo, isPythonSpace(scalars[hi - 1]) { hi -= 1 }
        var v = String.UnicodeScalarView()
        v.append(contentsOf: scalars[lo..<hi])
        return String(v)
    }

    /// Python `str.lower()`: full Unicode lowercase mapping plus the Final_Sigma rule
    /// (Σ → ς at the end of a word), which Swift's `lowercased()` does not apply.
    public static func pythonLower(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        guard scalars.contains(where: { $0.value == 0x3A3 }) else { return text.lowercased() }
        var out = String.UnicodeScalarView()
        for (i, s) in scalars.enumerated() {
            if s.value == 0x3A3 && isFinalSigma(scalars, i) {
                out.append(Unicode.Scalar(0x3C2)!)
            } else {
                out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return String(out)
    }

    private static func isFinalSigma(_ s: [Unicode.Scalar], _ i: Int) -> Bool {
        var j = i - 1
        while j >= 0, s[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0, s[j].properties.isCased else { return false }
        var k = i + 1
        while k < s.count, s[k].properties.isCaseIgnorable { k += 1 }
        return !(k < s.count && s[k].properties.isCased)
    }

    // MARK: ftfy.fix_text (minus mojibake repair)

    public static func fixText(_ text: String) -> String {
        // ftfy fixes each line (up to and including its "\n") independently.
        var out = ""
        var line = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            line.append(s)
            if s == "\n" {
                out += fixSegment(String(line))
                line = String.UnicodeScalarView()
            }
        }
        if !line.isEmpty { out += fixSegment(String(line)) }
        return out
    }

    static func fixSegment(_ segment: String) -> String {
        let unescape = !segment.unicodeScalars.contains("<")
        var text = segment
        while true {
            let original = text
            if unescape { text = ftfyUnescapeHTML(text) }
            var scalars = Array(text.unicodeScalars)
            scalars = fixC1Controls(scalars)
            scalars = fixLatinLigatures(scalars)
            scalars = fixCharacterWidth(scalars)
            scalars = uncurlQuotes(scalars)
            scalars = fixLineBreaks(scalars)
            scalars = removeTerminalEscapes(scalars)
            scalars = scalars.filter { !isFtfyControl($0) }
            var v = String.UnicodeScalarView()
            v.append(contentsOf: scalars)
            text = String(v).precomposedStringWithCanonicalMapping
            if text.unicodeScalars.elementsEqual(original.unicodeScalars) { return text }
        }
    }

    /// Windows-1252 for 0x80…0x9F; the five undefined bytes stay as they are ("sloppy" cp1252).
    static let cp1252: [UInt32] = [
        0x20AC, 0x81, 0x201A, 0x192, 0x201E, 0x2026, 0x2020, 0x2021, 0x2C6, 0x2030, 0x160, 0x2039,
        0x152, 0x8D, 0x17D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
        0x2DC, 0x2122, 0x161, 0x203A, 0x153, 0x9D, 0x17E, 0x178,
    ]

    static func fixC1Controls(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        s.map { (0x80...0x9F).contains($0.value) ? Unicode.Scalar(cp1252[Int($0.value - 0x80)])! : $0 }
    }

    static let ligatures: [UInt32: String] = [
        0x132: "IJ", 0x133: "ij", 0x149: "\u{2BC}n", 0x1F1: "DZ", 0x1F2: "Dz", 0x1F3: "dz",
        0x1C4: "D\u{17D}", 0x1C5: "D\u{17E}", 0x1C6: "d\u{17E}", 0x1C7: "LJ", 0x1C8: "Lj", 0x1C9: "lj",
        0x1CA: "NJ", 0x1CB: "Nj", 0x1CC: "nj", 0xFB00: "ff", 0xFB01: "fi", 0xFB02: "fl", 0xFB03: "ffi",
        0xFB04: "ffl", 0xFB05: "\u{17F}t", 0xFB06: "st",
    ]

    static func fixLatinLigatures(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard s.contains(where: { ligatures[$0.value] != nil }) else { return s }
        return s.flatMap { ligatures[$0.value].map { Array($0.unicodeScalars) } ?? [$0] }
    }

    /// U+3000 → space; U+FF01…U+FFEF → their NFKC form where it differs (ftfy's WIDTH_MAP).
    static func fixCharacterWidth(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard s.contains(where: { $0.value == 0x3000 || (0xFF01...0xFFEF).contains($0.value) }) else { return s }
        return s.flatMap { c -> [Unicode.Scalar] in
            if c.value == 0x3000 { return [" "] }
            if (0xFF01...0xFFEF).contains(c.value) {
                return Array(String(c).precomposedStringWithCompatibilityMapping.unicodeScalars)
            }
            return [c]
        }
    }

    static func uncurlQuotes(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        s.map { c in
            switch c.value {
            case 0x2BC, 0x2018...0x201B: return "'"
            case 0x201C...0x201F: return "\""
            default: return c
            }
        }
    }

    static func fixLineBreaks(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == "\r" {
                out.append("\n")
                if i + 1 < s.count && s[i + 1] == "\n" { i += 1 }
            } else if c.value == 0x2028 || c.value == 0x2029 || c.value == 0x85 {
                out.append("\n")
            } else {
                out.append(c)
            }
            i += 1
        }
        return out
    }

    /// Removes ANSI sequences `ESC [ [0-9;]* [A-Za-z]`.
    static func removeTerminalEscapes(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard s.contains("\u{1B}") else { return s }
        var out: [Unicode.Scalar] = []
        var i = 0
        while i < s.count {
            if s[i] == "\u{1B}", i + 1 < s.count, s[i + 1] == "[" {
                var j = i + 2
                while j < s.count, (s[j].value >= 0x30 && s[j].value <= 0x39) || s[j] == ";" { j += 1 }
                if j < s.count, s[j].isASCII, s[j].properties.isAlphabetic {
                    i = j + 1
                    continue
                }
            }
            out.append(s[i])
            i += 1
        }
        return out
    }

    static func isFtfyControl(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x00...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x206A...0x206F, 0xFEFF, 0xFFF9...0xFFFC: return true
        default: return false
        }
    }

    // MARK: HTML entities

    /// Python's `html.entities.html5` (names with and without the trailing ';').
    static let html5Entities: [String: String] = {
        guard let url = Bundle.module.url(forResource: "html5_entities", withExtension: "json", subdirectory: "Resources")
                ?? Bundle.module.url(forResource: "html5_entities", withExtension: "json"),
              let data = try? Data(contentsOf: url),
              let table = try? JSONDecoder().decode([String: String].self, from: data)
        else { return ["amp;": "&", "lt;": "<", "gt;": ">", "quot;": "\"", "apos;": "'"] }
        return table
    }()

    /// ftfy's `unescape_html`: `&#?[0-9A-Za-z]{1,24};` replaced when it is a ';'-terminated HTML5
    /// entity, an upper-cased lowercase one (`&EACUTE;` → `É`), or a complete numeric reference.
    static let ftfyEntities: [String: String] = {
        var table: [String: String] = [:]
        for (name, value) in html5Entities where name.hasSuffix(";") {
            table["&" + name] = value
            if name == name.lowercased() {
                let upper = "&" + name.uppercased()
                if htmlUnescape(upper) == upper { table[upper] = value.uppercased() }
            }
        }
        return table
    }()

    static func ftfyUnescapeHTML(_ text: String) -> String {
        guard text.unicodeScalars.contains("&") else { return text }
        let s = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < s.count {
            if s[i] == "&" {
                var j = i + 1
                if j < s.count, s[j] == "#" { j += 1 }
                let start = j
                while j < s.count, j - start < 24, s[j].isASCII, s[j].properties.isAlphabetic || ("0"..."9").contains(s[j]) { j += 1 }
                if j > start, j < s.count, s[j] == ";" {
                    var v = String.UnicodeScalarView(); v.append(contentsOf: s[i...j])
                    let entity = String(v)
                    var replacement: String? = ftfyEntities[entity]
                    if replacement == nil, s[i + 1] == "#" {
                        let u = htmlUnescape(entity)
                        if !u.contains(";") { replacement = u }
                    }
                    if let r = replacement {
                        out.append(contentsOf: r.unicodeScalars)
                        i = j + 1
                        continue
                    }
                }
            }
            out.append(s[i])
            i += 1
        }
        return String(out)
    }

    static let invalidCharrefs: [UInt32: UInt32] = {
        var t: [UInt32: UInt32] = [0x00: 0xFFFD, 0x0D: 0x0D]
        for (k, v) in cp1252.enumerated() { t[UInt32(0x80 + k)] = v }
        return t
    }()

    static func isInvalidCodepoint(_ n: UInt32) -> Bool {
        switch n {
        case 0x1...0x8, 0xB, 0xE...0x1F, 0x7F...0x9F, 0xFDD0...0xFDEF: return true
        default: return (n & 0xFFFE) == 0xFFFE && n <= 0x10FFFF
        }
    }

    /// Python's `html.unescape`.
    public static func htmlUnescape(_ text: String) -> String {
        guard text.unicodeScalars.contains("&") else { return text }
        let s = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 0x30 && c.value <= 0x39 }
        func isHex(_ c: Unicode.Scalar) -> Bool { c.properties.isASCIIHexDigit }
        while i < s.count {
            guard s[i] == "&", i + 1 < s.count else { out.append(s[i]); i += 1; continue }
            if s[i + 1] == "#" {
                // &#[0-9]+;?  |  &#[xX][0-9a-fA-F]+;?
                var j = i + 2
                var hex = false
                if j < s.count, s[j] == "x" || s[j] == "X" { hex = true; j += 1 }
                let start = j
                while j < s.count, hex ? isHex(s[j]) : isDigit(s[j]) { j += 1 }
                if j == start { out.append(s[i]); i += 1; continue }
                var digits = String.UnicodeScalarView(); digits.append(contentsOf: s[start..<j])
                if j < s.count, s[j] == ";" { j += 1 }
                // Python ints are unbounded: anything beyond 0x10FFFF is U+FFFD.
                let num = UInt64(String(digits), radix: hex ? 16 : 10) ?? UInt64.max
                if num <= 0xFFFF_FFFF, let mapped = invalidCharrefs[UInt32(num)] {
                    out.append(Unicode.Scalar(mapped)!)
                } else if (0xD800...0xDFFF).contains(num) || num > 0x10FFFF {
                    out.append("\u{FFFD}")
                } else if !isInvalidCodepoint(UInt32(num)) {
                    out.append(Unicode.Scalar(UInt32(num))!)
                }
                i = j
                continue
            }
            // &[^\t\n\f <&#;]{1,32};?
            var j = i + 1
            while j < s.count, j - (i + 1) < 32, !"\t\n\u{0C} <&#;".unicodeScalars.contains(s[j]) { j += 1 }
            if j == i + 1 { out.append(s[i]); i += 1; continue }
            if j < s.count, s[j] == ";" { j += 1 }
            var nameView = String.UnicodeScalarView(); nameView.append(contentsOf: s[(i + 1)..<j])
            let name = Array(nameView)
            var replaced = false
            // Exact name, else the longest prefix (length ≥ 2) that is an entity.
            var length = name.count
            while length >= 2 {
                var prefix = String.UnicodeScalarView(); prefix.append(contentsOf: name[0..<length])
                if let value = html5Entities[String(prefix)] {
                    out.append(contentsOf: value.unicodeScalars)
                    out.append(contentsOf: name[length...])
                    replaced = true
                    break
                }
                length -= 1
            }
            if !replaced {
                out.append("&")
                out.append(contentsOf: name)
            }
            i = j
        }
        return String(out)
    }
}
