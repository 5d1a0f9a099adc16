"""Python half of Tools/check_encoders.sh: real-size encoders with fresh random weights.

For each model this writes, under OUT (default /tmp/axial_encoder_check):
  <name>.weights.safetensors   the library's own state dict (timm: model.state_dict(); open_clip:
                               the whole CLIP state dict), as `axial extract --weights` takes it
  <name>.ref.safetensors       images [2,3,S,S] (random, already normalised) and features (timm:
                               forward_head(forward_features(x), pre_logits=True); open_clip:
                               encode_image(x)); CLIP text towers also text_features
                               (L2-normalised encode_text of metadata 'phrases')
and prints one line `<name> <axial encoder> <weights> <reference> [<text encoder> [<vocab>]]` per model
to OUT/cases.txt. Needs torch, timm, open_clip, transformers, safetensors; no network
(pretrained=False; BiomedCLIP is built from its published open_clip config, restated below,
with a local stand-in WordPiece vocabulary).

    python Tools/check_encoders.py [--out DIR] [--models vit_small,clip_b16,...] [--perturb]

--perturb adds N(0, 0.02²) to every float parameter and buffer after init (zero biases, unit norms
and BN statistics of a fresh init hide some loading mistakes).
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file

PHRASES = ["a CT slice showing the liver", "lung nodule", "a scan of the brain with a subdural haematoma",
           "kidney", ""]


def save(path, tensors, meta=None):
    tensors = {k: v.detach().float().contiguous().clone() for k, v in tensors.items()}
    tmp = path + ".tmp"
    save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, path)


def save_state(path, sd):
    out = {}
    for k, v in sd.items():
        out[k] = v.detach().contiguous().clone()   # keep the library's dtypes (int64 num_batches_tracked, …)
    tmp = path + ".tmp"
    save_file(out, tmp)
    os.replace(tmp, path)


def perturb(model, on):
    if not on:
        return
    with torch.no_grad():
        for n, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.is_floating_point() and "attn_mask" not in n:   # open_clip's causal mask stays exact
                t.add_(0.02 * torch.randn_like(t))
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_var.abs_().add_(0.5)


def timm_case(out, name, timm_name, encoder, args):
    import timm
    torch.manual_seed(0)
    m = timm.create_model(timm_name, pretrained=False).eval()
    perturb(m, args.perturb)
    s = m.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    x = torch.randn(2, 3, s, s)
    with torch.no_grad():
        f = m.forward_head(m.forward_features(x), pre_logits=True)
    w, r = f"{out}/{name}.weights.safetensors", f"{out}/{name}.ref.safetensors"
    save_state(w, m.state_dict())
    save(r, {"images": x, "features": f})
    return f"{name} {encoder} {w} {r}"


def clip_case(out, name, oc_name, encoder, text_encoder, args):
    import open_clip
    torch.manual_seed(0)
    m = open_clip.create_model(oc_name, pretrained=None).eval()
    perturb(m, args.perturb)
    tok = open_clip.get_tokenizer(oc_name)
    s = m.visual.image_size[0] if isinstance(m.visual.image_size, (tuple, list)) else m.visual.image_size
    x = torch.randn(2, 3, s, s)
    with torch.no_grad():
        f = m.encode_image(x)
        t = m.encode_text(tok(PHRASES), normalize=True) if text_encoder else None
    w, r = f"{out}/{name}.weights.safetensors", f"{out}/{name}.ref.safetensors"
    save_state(w, m.state_dict())
    ref = {"images": x, "features": f}
    if t is not None:
        ref["text_features"] = t
    save(r, ref, {"phrases": json.dumps(PHRASES)})
    return f"{name} {encoder} {w} {r}" + (f" {text_encoder}" if text_encoder else "")


def stand_in_vocab(path):
    """A small BERT-style vocab.txt ([PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103, as BiomedBERT's)."""
    words = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:-()'")
    words += chars + ["##" + c for c in chars if c.isalnum()]
    words += ["a", "ct", "slice", "showing", "the", "liver", "lung", "nodule", "scan", "of", "brain", "with",
              "sub", "##dural", "ha", "##ema", "##toma", "kid", "##ney"]
    with open(path, "w") as fh:
        fh.write("\n".join(words) + "\n")


def biomedclip_case(out, name, args):
    """open_clip CustomTextCLIP as hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224's
    open_clip_config.json states it: embed_dim 512; vision timm vit_base_patch16_224, pool '', proj
    'linear'; text HF BiomedBERT-base (BERT-base uncased, vocab 30522), pooler cls_last_hidden_state,
    proj mlp, context 256. The BERT config is built locally (no network)."""
    from open_clip.hf_model import HFTextEncoder
    from open_clip.timm_model import TimmModel
    from transformers import BertConfig, BertTokenizer
    torch.manual_seed(0)
    visual = TimmModel("vit_base_patch16_224", embed_dim=512, image_size=224, pool="", proj="linear", pretrained=False)
    bert = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072, max_position_embeddings=512, pad_token_id=0, hidden_act="gelu")
    text = HFTextEncoder(None, output_dim=512, config=bert, pooler_type="cls_last_hidden_state_pooler", proj_type="mlp")
    visual.eval(); text.eval()
    perturb(visual, args.perturb); perturb(text, args.perturb)
    vocab = f"{out}/{name}.vocab.txt"
    stand_in_vocab(vocab)
    tok = BertTokenizer(vocab, do_lower_case=True)
    ids = tok(PHRASES, max_length=256, padding="max_length", truncation=True, return_tensors="pt")["input_ids"]
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        f = visual(x)
        t = torch.nn.functional.normalize(text(ids), dim=-1)
    sd = {"visual." + k: v for k, v in visual.state_dict().items()}
    sd.update({"text." + k: v for k, v in text.state_dict().items() if ".pooler." not in k})
    sd["logit_scale"] = torch.tensor(4.6052)
    w, r = f"{out}/{name}.weights.safetensors", f"{out}/{name}.ref.safetensors"
    save_state(w, sd)
    save(r, {"images": x, "features": f, "text_features": t}, {"phrases": json.dumps(PHRASES)})
    return f"{name} biomedclip {w} {r} biomedclip {vocab}"


CASES = {
    "vit_small": lambda o, a: timm_case(o, "vit_small", "vit_small_patch16_224", "vit_small", a),
    "vit_base": lambda o, a: timm_case(o, "vit_base", "vit_base_patch16_224", "vit_base", a),
    "mambaout_femto": lambda o, a: timm_case(o, "mambaout_femto", "mambaout_femto", "mambaout_femto", a),
    "mambaout_tiny": lambda o, a: timm_case(o, "mambaout_tiny", "mambaout_tiny", "mambaout_tiny", a),
    "clip_b16_quickgelu": lambda o, a: clip_case(o, "clip_b16_quickgelu", "ViT-B-16-quickgelu", "clip_vit_b16", "clip_vit_b16", a),
    "clip_b16": lambda o, a: clip_case(o, "clip_b16", "ViT-B-16", "clip_vit_b16_gelu", "clip_vit_b16_gelu", a),
    "clip_rn50": lambda o, a: clip_case(o, "clip_rn50", "RN50", "clip_rn50", None, a),
    "biomedclip": lambda o, a: biomedclip_case(o, "biomedclip", a),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="/tmp/axial_encoder_check")
    p.add_argument("--models", default=",".join(CASES))
    p.add_argument("--perturb", action="store_true")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(2)
    lines = []
    for n in a.models.split(","):
        lines.append(CASES[n](a.out, a))
        print(lines[-1], flush=True)
    with open(f"{a.out}/cases.txt", "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
