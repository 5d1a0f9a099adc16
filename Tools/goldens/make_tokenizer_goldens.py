#!/usr/bin/env python3
"""Token-id goldens for AxialModels' CLIP BPE and BERT WordPiece tokenizers.

Writes Tests/AxialModelsTests/Fixtures/tokenizers.json and .../wordpiece_vocab.txt.

* CLIP: open_clip.get_tokenizer('ViT-B-16') (SimpleTokenizer over bpe_simple_vocab_16e6.txt.gz,
  context 77), ids with trailing zero padding removed.
* WordPiece: the real PubMedBERT vocab.txt (BiomedCLIP's text tower) could not be obtained offline,
  so a small WordPiece vocabulary is built here deterministically from a medical corpus (frequent
  characters, words and "##" substrings; laid out like PubMedBERT's: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3
  [MASK]=4), and the ids
  of three reference implementations over it are recorded (context 256, trailing [PAD] removed):
    - hf_fast:   transformers.BertTokenizer (tokenizers backend)      on the raw text
    - hf_slow:   transformers BertTokenizerLegacy (pure Python)        on the raw text
    - open_clip: open_clip.tokenizer.HFTokenizer(clean='whitespace') — what BiomedCLIP runs
Run: "$(Tools/python-env)" Tools/goldens/make_tokenizer_goldens.py
"""
import collections
import json
import os
import random
import tempfile

import open_clip
from open_clip.tokenizer import HFTokenizer
from transformers import BertTokenizer
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "Tests", "AxialModelsTests", "Fixtures")

LONG = ("The chest CT demonstrates a 3.5 cm spiculated mass in the right upper lobe with ipsilateral "
        "hilar lymphadenopathy, small bilateral pleural effusions, and no evidence of distant metastasis; "
        "findings are compatible with stage T2N1M0 non-small cell lung carcinoma. ") * 12

PHRASES = [
    "a chest CT scan",
    "A photo of a lung nodule.",
    "Ground-glass opacity in the right upper lobe",
    "3.5 cm spiculated mass, T2N1M0",
    "T2N1M0 NSCLC; EGFR+ (exon 19 del)",
    "no pneumothorax. no pleural effusion!",
    "HU values: -1000 to +400",
    "ratio 1:2, p<0.05, 95% CI [0.8-1.2]",
    "patient's lesion wasn't measurable; they'll re-scan",
    "it's THE RADIOLOGIST'S REPORT",
    "Hepatocellular carcinoma (HCC) ≥ 2 cm",
    "SUVmax ≈ 12.4 ± 0.3",
    "dose: 5 µg/kg and 10 μL",
    "Métastase hépatique, carcinome à cellules claires",
    "naïve café résumé Ångström",
    "肺结节 lung nodule 肺癌",
    "肝细胞癌 and 胃癌 (gastric cancer)",
    "emoji test 🫁 lungs 😷 mask 🧠",
    "   extra    whitespace\t\tand\nnewlines   ",
    "&lt;b&gt;bold&lt;/b&gt; &amp; more &quot;quoted&quot;",
    "AT&amp;T and 5 &gt; 3 &#x41;&#66; &eacute;",
    "double escaped &amp;amp; entity",
    "“curly quotes” and ‘single’ ones",
    "ﬁbrosis with ﬂuid (ligatures)",
    "ＦＵＬＬＷＩＤＴＨ ＣＴ　１２３",
    "em—dash – en–dash … ellipsis",
    "x-ray/CT/MRI & PET-CT",
    "e-mail: doctor@hospital.org, url http://x.org/a?b=c",
    "C1\x85control and zero\u200bwidth",
    "tab\tseparated\u00a0nbsp",
    "UPPER lower MiXeD CaSe",
    "12345678901234567890",
    "3rd-degree; 2nd; 1st",
    "Non-contrast CT of the abdomen and pelvis",
    "IV contrast: 100 mL Omnipaque-350",
    "Σ of lesions, ΔHU and β-catenin",
    "κ = 0.81; α-fetoprotein",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "x" * 120,
    "[CLS] special [SEP] tokens [MASK] in text",
    "",
    LONG,
]

CORPUS_EXTRA = [
    "computed tomography of the chest abdomen pelvis with and without contrast",
    "nodule mass lesion opacity consolidation effusion pneumothorax atelectasis emphysema fibrosis",
    "carcinoma adenocarcinoma metastasis lymphadenopathy hepatocellular squamous cell",
    "patient report findings impression recommend follow up months",
    "right left upper lower lobe bilateral ipsilateral contralateral",
    "the a of and in with no is are was were to for on by at",
]


MOJIBAKE_STEPS = {"decode_inconsistent_utf8", "encode", "decode", "transcode_encoding", "restore_byte_a0",
                  "replace_lossy_sequences"}


def random_texts(n=300, seed=7):
    """Adversarial random strings over letters, digits, punctuation, accents, Greek, CJK, emoji,
    combining marks, odd whitespace, C1 controls, ligatures, full-width forms, HTML entities, contractions
    and special-token spellings. Strings on which ftfy applies its mojibake repair (which Axial does not
    reproduce; see OpenCLIPTextCleaning) are skipped and counted."""
    import ftfy
    rng = random.Random(seed)
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"()[]{}<>-_/\\@#$%^&*+=~`|")
            + list("éèêëàâäïîôöùûüçñÉÀÇØøåÅæœßµμΣσςΔδβαγλ") + list("肺癌结节肝细胞胃")
            + ["😷", "🧠", "👍", "🫁", "❤️", "🏳️‍🌈", "\u0301", "\u0308", "\u200b", "\u00a0", "\t", "\n", "\r\n",
               "\u3000", "\u2028", "\x85", "\x92", "ﬁ", "ﬂ", "ＡＢ", "１２", "“", "”", "‘", "’", "—", "–", "…", "≥",
               "≤", "±", "×", "°", "½", "²", "ⅰ", "Ⅻ", "٣", "०", "&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x41;",
               "&eacute;", "&EACUTE;", "&nbsp;", "&amp;amp;", "&copy", "&notin;", "&#128;", "'s", "'ll", "'RE",
               "<start_of_text>", "<end_of_text>", "[CLS]", "[MASK]", "[sep]"])
    texts, skipped = [], 0
    while len(texts) < n:
        t = "".join(rng.choice(pool) for _ in range(rng.randint(1, 25)))
        steps = {step for _, step in (ftfy.fix_and_explain(t).explanation or [])}
        if steps & MOJIBAKE_STEPS or any(ftfy.fix_and_explain(line).explanation and
                                         {s for _, s in ftfy.fix_and_explain(line).explanation} & MOJIBAKE_STEPS
                                         for line in t.splitlines(keepends=True)):
            skipped += 1
            continue
        texts.append(t)
    return texts, skipped


def build_vocab(corpus):
    from transformers.models.bert.tokenization_bert_legacy import BasicTokenizer
    basic = BasicTokenizer(do_lower_case=True)
    words = collections.Counter(w for t in corpus for w in basic.tokenize(t))
    chars = collections.Counter(c for w, n in words.items() for c in w for _ in range(n))
    alphabet = sorted(c for c, n in chars.items() if n >= 2)          # rarer characters become [UNK]
    whole = [w for w, n in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if n >= 3 and len(w) > 1][:120]
    subs = collections.Counter()
    for w, n in words.items():
        for k in (2, 3, 4):
            for i in range(1, len(w) - k + 1):
                subs[w[i:i + k]] += n
    pieces = ["##" + p for p, n in sorted(subs.items(), key=lambda kv: (-kv[1], kv[0])) if n >= 3][:150]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + alphabet + ["##" + c for c in alphabet] + whole + pieces
    seen, out = set(), []
    for v in vocab:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def main():
    tok = open_clip.get_tokenizer("ViT-B-16")
    fuzz, fuzz_skipped = random_texts()
    n_phrases = len(PHRASES)
    PHRASES.extend(fuzz)
    clip_ids = tok(PHRASES).tolist()

    # A small, deterministic WordPiece vocabulary (HF `tokenizers` training is not reproducible run to
    # run): specials, frequent characters and their "##" forms, frequent words, frequent "##" substrings.
    corpus = PHRASES[:n_phrases - 1] + CORPUS_EXTRA * 3 + [LONG[:400]]
    vocab = build_vocab(corpus)
    vocab_path = os.path.join(FIX, "wordpiece_vocab.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")

    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(vocab) + "\n")
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512}, f)
        fast = BertTokenizer.from_pretrained(d)
        slow = BertTokenizerLegacy(vocab_file=vocab_path, do_lower_case=True)
        oc = HFTokenizer(d, context_length=256, clean="whitespace")
        kw = dict(max_length=256, padding="max_length", truncation=True)
        hf_fast = fast(PHRASES, **kw)["input_ids"]
        hf_slow = slow(PHRASES, **kw)["input_ids"]
        oc_ids = oc(PHRASES).tolist()

    def trim(row, pad=0):
        while row and row[-1] == pad:
            row = row[:-1]
        return row

    cases = []
    for i, text in enumerate(PHRASES):
        cases.append({
            "text": text,
            "clip": trim(clip_ids[i]),
            "hf_fast": trim(list(hf_fast[i])),
            "hf_slow": trim(list(hf_slow[i])),
            "open_clip_hf": trim(oc_ids[i]),
            "random": i >= n_phrases,
        })
        if cases[-1]["hf_fast"] != cases[-1]["hf_slow"]:
            print("note: fast/slow HF differ on", repr(text[:40]))
    out = {
        "clip_context_length": 77,
        "wordpiece_context_length": 256,
        "wordpiece_vocab": "wordpiece_vocab.txt",
        "versions": {"open_clip": open_clip.__version__, "transformers": __import__("transformers").__version__,
                     "tokenizers": __import__("tokenizers").__version__, "ftfy": __import__("ftfy").__version__},
        "random_cases": len(fuzz),
        "random_skipped_for_mojibake_repair": fuzz_skipped,
        "cases": cases,
    }
    path = os.path.join(FIX, "tokenizers.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=True, indent=0)
    os.replace(tmp, path)
    print(f"wrote {path} ({len(cases)} cases, {len(fuzz)} random; {fuzz_skipped} random strings skipped because "
          f"ftfy repaired mojibake in them), {vocab_path} ({len(vocab)} tokens)")


if __name__ == "__main__":
    main()
