#!/usr/bin/env python3
"""Convert a PyTorch checkpoint (.pth / .pt / .bin / .ckpt) to .safetensors for `axial extract --weights`.

    python Tools/convert_weights.py IN OUT [--fp16] [--keep-projector] [--ema] [--strip-prefix P ...]
                                           [--select-prefix P] [--keep-int] [--dry-run]

Handles
  * OpenAI CLIP releases (TorchScript archives such as ViT-B-16.pt) and plain CLIP state dicts:
    the non-weight entries `input_resolution`, `context_length`, `vocab_size` are dropped;
  * open_clip training checkpoints ({'epoch', 'name', 'state_dict', 'optimizer', ...}), DDP `module.`;
  * MoCo v3 / CLEAR checkpoints ({'state_dict': {'module.base_encoder.…', 'module.momentum_encoder.…',
    'module.predictor.…'}}): keeps the base encoder only, drops the momentum encoder and the predictor,
    and drops the projector MLP that MoCo v3 puts in the base encoder's classifier slot (`head.` for
    ViTs, `fc.` for ResNets) unless --keep-projector;
  * timm checkpoints (plain state dict, or {'model' | 'state_dict' | 'state_dict_ema': ...}; --ema picks
    the EMA weights when present);
  * Hugging Face pytorch_model.bin (a plain state dict).
Floating tensors are written as F32 (or F16 with --fp16); BatchNorm `num_batches_tracked` counters are
dropped (inference does not use them); other integer tensors are dropped unless --keep-int (written as
stored). Every kept / dropped key is reported. The output is written to a temporary name and renamed.
"""
import argparse
import collections
import os
import sys
import warnings
import zipfile

import torch
from safetensors.torch import save_file

CONTAINER_KEYS = ("state_dict", "model", "module", "model_state", "model_state_dict", "net", "network")
CLIP_META_KEYS = ("input_resolution", "context_length", "vocab_size")


class ConversionError(Exception):
    pass


def load_checkpoint(path):
    """Returns (object, how) where object is whatever the file holds."""
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    # OpenAI CLIP ships TorchScript archives (a zip with constants.pkl and code/); torch.jit.load reads them.
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            torchscript = any(n.endswith("/constants.pkl") for n in z.namelist())
        if torchscript:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    return torch.jit.load(path, map_location="cpu").state_dict(), "torchscript"
                except Exception as e:
                    raise ConversionError(f"{path}: unreadable TorchScript archive ({e})") from e
    try:
        return torch.load(path, map_location="cpu", weights_only=True), "torch.load(weights_only)"
    except Exception as safe_error:
        print(f"note: weights-only load failed ({type(safe_error).__name__}); loading with full unpickling "
              "(only do this for files you trust)", file=sys.stderr)
        try:
            return torch.load(path, map_location="cpu", weights_only=False), "torch.load"
        except Exception as e:
            raise ConversionError(f"{path}: not a PyTorch checkpoint ({e})") from e


def find_state_dict(obj, prefer_ema=False):
    """Digs the tensor dictionary out of a checkpoint container."""
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict(), "nn.Module"
    if not isinstance(obj, dict):
        raise ConversionError(f"checkpoint holds a {type(obj).__name__}, not a state dict")
    if prefer_ema:
        for key in ("state_dict_ema", "model_ema", "ema"):
            if isinstance(obj.get(key), dict):
                return obj[key], key
        print("note: --ema given but the checkpoint has no EMA weights; using the regular ones", file=sys.stderr)
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, "top level"
    for key in CONTAINER_KEYS:
        if isinstance(obj.get(key), dict):
            inner, where = find_state_dict(obj[key])
            return inner, f"{key}/{where}" if where != "top level" else key
        if isinstance(obj.get(key), torch.nn.Module):
            return obj[key].state_dict(), key
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if tensors:
        return tensors, "top level (non-tensor entries ignored)"
    raise ConversionError(f"no state dict found; top-level keys: {sorted(obj)[:20]}")


def common_prefix_strip(keys, prefix):
    return all(k.startswith(prefix) for k in keys)


def convert(state, keep_projector=False, strip_prefixes=(), select_prefix=None, keep_int=False):
    """Returns (kept: dict name → tensor, dropped: list of (name, reason), notes: list of str)."""
    notes, dropped = [], []
    state = {k: v for k, v in state.items()}

    # MoCo v3 / CLEAR: module.base_encoder.* is the network; the rest is training-only.
    moco = any(k.startswith(("module.base_encoder.", "base_encoder.", "module.momentum_encoder.", "momentum_encoder."))
               for k in state)
    if moco:
        notes.append("MoCo v3 layout: keeping base_encoder, dropping momentum_encoder and predictor")
        base = {}
        for k, v in state.items():
            for p in ("module.base_encoder.", "base_encoder."):
                if k.startswith(p):
                    base[k[len(p):]] = v
                    break
            else:
                dropped.append((k, "momentum encoder" if "momentum_encoder." in k else
                                "predictor" if "predictor." in k else "not part of the base encoder"))
        state = base
        projector_prefix = "head." if any(k.startswith("blocks.") or k == "cls_token" for k in state) else "fc."
        if not keep_projector:
            for k in [k for k in state if k.startswith(projector_prefix)]:
                dropped.append((k, f"projector MLP ({projector_prefix.rstrip('.')}; use --keep-projector to keep)"))
                del state[k]
        else:
            notes.append(f"keeping the projector MLP under '{projector_prefix}'")

    # DDP / DataParallel wrappers.
    while state and common_prefix_strip(state, "module."):
        state = {k[len("module."):]: v for k, v in state.items()}
        notes.append("stripped 'module.' prefix")
    for p in strip_prefixes:
        n = sum(k.startswith(p) for k in state)
        state = {(k[len(p):] if k.startswith(p) else k): v for k, v in state.items()}
        notes.append(f"stripped '{p}' from {n} keys")
    if select_prefix:
        for k in [k for k in state if not k.startswith(select_prefix)]:
            dropped.append((k, f"outside --select-prefix {select_prefix}"))
        state = {k[len(select_prefix):]: v for k, v in state.items() if k.startswith(select_prefix)}

    # OpenAI CLIP: scalar metadata stored beside the weights.
    for k in CLIP_META_KEYS:
        if k in state:
            dropped.append((k, "OpenAI CLIP metadata, not a weight"))
            del state[k]

    kept = {}
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            dropped.append((k, f"not a tensor ({type(v).__name__})"))
        elif k.endswith("num_batches_tracked"):
            dropped.append((k, "BatchNorm counter"))
        elif not (v.is_floating_point() or keep_int):
            dropped.append((k, f"integer tensor {str(v.dtype).replace('torch.', '')} (use --keep-int to keep)"))
        else:
            kept[k] = v
    if not kept:
        raise ConversionError("nothing left to write after filtering")
    return kept, dropped, notes


def write_safetensors(tensors, out, fp16=False, metadata=None):
    dtype = torch.float16 if fp16 else torch.float32
    prepared = {}
    for k, v in tensors.items():
        t = v.detach().to("cpu")
        if t.is_floating_point():
            t = t.to(dtype)
        prepared[k] = t.contiguous().clone()   # clone: safetensors refuses shared storage
    directory = os.path.dirname(os.path.abspath(out))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(out)}.tmp-{os.getpid()}")
    try:
        save_file(prepared, tmp, metadata=metadata or {})
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return prepared


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--fp16", action="store_true", help="write floating tensors as F16 (default F32)")
    ap.add_argument("--keep-projector", action="store_true", help="MoCo v3: keep the projector MLP (head./fc.)")
    ap.add_argument("--ema", action="store_true", help="timm: use state_dict_ema when present")
    ap.add_argument("--strip-prefix", action="append", default=[], help="remove this key prefix (repeatable)")
    ap.add_argument("--select-prefix", help="keep only keys under this prefix, with it removed (e.g. 'visual.')")
    ap.add_argument("--keep-int", action="store_true", help="keep integer tensors (other than BN counters)")
    ap.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    ap.add_argument("--quiet", action="store_true", help="summary only, no per-key listing")
    args = ap.parse_args(argv)

    try:
        obj, how = load_checkpoint(args.input)
        state, where = find_state_dict(obj, prefer_ema=args.ema)
        kept, dropped, notes = convert(state, keep_projector=args.keep_projector, strip_prefixes=args.strip_prefix,
                                       select_prefix=args.select_prefix, keep_int=args.keep_int)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    print(f"read {args.input} via {how}; state dict at: {where}; {len(state)} entries")
    for n in notes:
        print(f"  {n}")
    if not args.quiet:
        for k, v in kept.items():
            print(f"  keep  {k:60s} {tuple(v.shape)} {str(v.dtype).replace('torch.', '')}")
    reasons = collections.Counter(r for _, r in dropped)
    for k, r in dropped:
        if not args.quiet:
            print(f"  drop  {k:60s} ({r})")
    print(f"kept {len(kept)} tensors ({sum(v.numel() for v in kept.values()):,} values); dropped {len(dropped)}"
          + ("" if not reasons else ": " + ", ".join(f"{n}× {r}" for r, n in reasons.most_common())))
    if args.dry_run:
        return 0
    meta = {"format": "pt", "source": os.path.basename(args.input), "converted_by": "Tools/convert_weights.py",
            "dtype": "F16" if args.fp16 else "F32"}
    write_safetensors(kept, args.output, fp16=args.fp16, metadata=meta)
    print(f"wrote {args.output} ({os.path.getsize(args.output):,} bytes, {'F16' if args.fp16 else 'F32'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
