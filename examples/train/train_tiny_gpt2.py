#!/usr/bin/env python3
"""Train the bundled example checkpoint ``examples/tiny-gpt2/`` (dev-only).

This script is NOT needed to build, test or run wasmformer: its output is
committed.  It exists so the checkpoint can be regenerated and audited.

Requirements
    Python 3.9+, PyTorch (tested with 1.13.1, CPU only) and numpy (optional).
    No ``transformers``, ``tokenizers`` or ``safetensors`` packages are used:
    the byte-level BPE trainer, the GPT-2 model, the tokenizer.json writer and
    the safetensors writer are all implemented here.  Node.js >= 20 with
    ``npm ci`` done in the repository root is used (optionally) to check that
    ``@huggingface/tokenizers`` reads the tokenizer exactly like we do.

How to run (from the repository root)
    python3 examples/train/train_tiny_gpt2.py            # full run, ~10 min
    python3 examples/train/train_tiny_gpt2.py --steps 50 --out /tmp/tg2   # smoke test

    It runs single-threaded (torch.set_num_threads(1)) with fixed seeds, so a
    rerun with the same torch and BLAS should reproduce the same files.  The
    default 1500 steps take ~10 minutes (~0.4 s/step) with OpenBLAS (Debian:
    apt-get install libopenblas0-serial); Debian's python3-torch on the
    reference BLAS (libblas3) is several times slower.
    examples/train/check_reference_numpy.py re-checks the exported files with
    an independent numpy implementation (no torch needed).

Training text and its license
    The Vim user manual, ``/usr/share/vim/vim90/doc/usr_[0-9]*.txt`` as shipped
    by Debian's ``vim-runtime`` package (Vim 9.0; about 630 KB of English
    prose).  Copyright (c) 1988-2003 Bram Moolenaar; parts come from the book
    "Vi IMproved - Vim" by Steve Oualline.  Distributed under the Open
    Publication License v1.0 or later with no license options exercised (see
    ``:help manual-copyright`` in usr_01.txt and
    /usr/share/doc/vim-runtime/copyright; Debian considers it DFSG-free).  The
    files are read in sorted order and separated by <|endoftext|>; the last 5%
    of the token stream (the end of usr_90.txt etc.) is held out from model
    training; the tokenizer is trained on the first 95% of the characters.

Outputs (in --out, default examples/tiny-gpt2/)
    config.json, generation_config.json, model.safetensors, tokenizer.json,
    tokenizer_config.json, heldout_ids.json, greedy.json, reference.json,
    README.md.
"""

import argparse
import glob
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
import unicodedata

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CORPUS_GLOB = "/usr/share/vim/vim90/doc/usr_[0-9]*.txt"
EOT = "<|endoftext|>"
DEFAULT_OUT = os.path.join(REPO, "examples", "tiny-gpt2")


# ---------------------------------------------------------------------------
# Byte-level BPE (GPT-2 style)
# ---------------------------------------------------------------------------

def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode character table."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1))
          + list(range(ord("\xae"), ord("\xff") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {c: b for b, c in BYTE_ENCODER.items()}


def _char_class(pred):
    """Python `re` character-class body for all code points satisfying pred."""
    ranges, start, prev = [], None, None
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            ok = False
        else:
            ok = pred(chr(cp))
        if ok:
            if start is None:
                start = cp
            prev = cp
        elif start is not None:
            ranges.append((start, prev))
            start = None
    if start is not None:
        ranges.append((start, prev))

    def esc(cp):
        return "\\U%08x" % cp

    return "".join(esc(a) if a == b else esc(a) + "-" + esc(b) for a, b in ranges)


def build_pretokenizer():
    """The GPT-2 / ByteLevel(use_regex=true) split regex, made exact for Python.

    JS (what @huggingface/tokenizers runs, flag u):
        's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
    Python's `re` has no \\p{..}, so the classes are spelled out from
    unicodedata general categories (L* and N*), and \\s uses the ECMAScript
    definition of white space (Python's \\s differs in a few code points).
    """
    L = _char_class(lambda c: unicodedata.category(c).startswith("L"))
    N = _char_class(lambda c: unicodedata.category(c).startswith("N"))
    S = ("\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029"
         "\\u202f\\u205f\\u3000\\ufeff")
    pat = (r"'s|'t|'re|'ve|'m|'ll|'d"
           rf"| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+")
    return re.compile(pat)


PRETOK = None


def pretokenize(text):
    global PRETOK
    if PRETOK is None:
        PRETOK = build_pretokenizer()
    return ["".join(BYTE_ENCODER[b] for b in piece.encode("utf-8"))
            for piece in PRETOK.findall(text)]


def train_bpe(texts, vocab_size, min_frequency=2):
    """Classic BPE training on pre-tokenized, byte-mapped words.

    Returns (vocab dict token->id, merges list of (a, b)).  Ids 0..255 are the
    256 byte symbols in byte order, then one id per merge, and finally EOT.
    Ties between equally frequent pairs go to the lexicographically smallest
    pair so the result is deterministic.
    """
    counts = {}
    for t in texts:
        for w in pretokenize(t):
            counts[w] = counts.get(w, 0) + 1
    words = [list(w) for w in counts]
    freqs = [counts[w] for w in counts]
    pair_counts = {}
    where = {}
    for i, (w, f) in enumerate(zip(words, freqs)):
        for p in zip(w, w[1:]):
            pair_counts[p] = pair_counts.get(p, 0) + f
            where.setdefault(p, set()).add(i)

    vocab = {BYTE_ENCODER[b]: b for b in range(256)}
    merges = []
    n_merges = vocab_size - 256 - 1
    while len(merges) < n_merges and pair_counts:
        best = min(pair_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        pair, cnt = best
        if cnt < min_frequency:
            break
        a, b = pair
        new = a + b
        merges.append(pair)
        vocab[new] = len(vocab)
        for i in list(where.get(pair, ())):
            w, f = words[i], freqs[i]
            for p in zip(w, w[1:]):
                pair_counts[p] -= f
                if pair_counts[p] == 0:
                    del pair_counts[p]
                s = where.get(p)
                if s is not None:
                    s.discard(i)
            j, out = 0, []
            while j < len(w):
                if j < len(w) - 1 and w[j] == a and w[j + 1] == b:
                    out.append(new)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            for p in zip(out, out[1:]):
                pair_counts[p] = pair_counts.get(p, 0) + f
                where.setdefault(p, set()).add(i)
        where.pop(pair, None)
    vocab[EOT] = len(vocab)
    return vocab, merges


class BPETokenizer:
    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.inv = {i: t for t, i in vocab.items()}
        self.ranks = {p: i for i, p in enumerate(merges)}
        self.eot_id = vocab[EOT]
        self.cache = {}

    def _bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = list(token)
        while len(word) > 1:
            best, best_rank = None, None
            for i in range(len(word) - 1):
                r = self.ranks.get((word[i], word[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best is None:
                break
            a, b = word[best], word[best + 1]
            out, j = [], 0
            while j < len(word):
                if j < len(word) - 1 and word[j] == a and word[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(word[j])
                    j += 1
            word = out
        self.cache[token] = word
        return word

    def encode(self, text):
        ids = []
        for k, part in enumerate(text.split(EOT)):
            if k:
                ids.append(self.eot_id)
            for w in pretokenize(part):
                ids.extend(self.vocab[t] for t in self._bpe(w))
        return ids

    def decode(self, ids):
        out, buf = [], []
        for i in ids:
            if i == self.eot_id:
                out.append(bytes(buf).decode("utf-8", errors="replace"))
                buf = []
                out.append(EOT)
            else:
                buf.extend(BYTE_DECODER[c] for c in self.inv[i])
        out.append(bytes(buf).decode("utf-8", errors="replace"))
        return "".join(out)


def tokenizer_json(vocab, merges):
    eot_id = vocab[EOT]
    bpe_vocab = {t: i for t, i in vocab.items() if t != EOT}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{
            "id": eot_id, "content": EOT, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": True,
        }],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
                          "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True,
                           "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True,
                    "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None,
            "continuing_subword_prefix": "", "end_of_word_suffix": "",
            "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": bpe_vocab,
            "merges": [a + " " + b for a, b in merges],
        },
    }


def tokenizer_config_json(vocab, n_positions):
    eot_id = vocab[EOT]
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {str(eot_id): {
            "content": EOT, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": True}},
        "bos_token": EOT,
        "clean_up_tokenization_spaces": False,
        "eos_token": EOT,
        "errors": "replace",
        "model_max_length": n_positions,
        "pad_token": None,
        "tokenizer_class": "GPT2Tokenizer",
        "unk_token": EOT,
    }


# ---------------------------------------------------------------------------
# GPT-2 (mirrors transformers' GPT2LMHeadModel, eval-mode numerics)
# ---------------------------------------------------------------------------

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Conv1D(nn.Module):
    """HF Conv1D: weight stored [in, out], y = x @ W + b."""

    def __init__(self, n_in, n_out, std):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_in, n_out) * std)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


class Block(nn.Module):
    def __init__(self, cfg, drop):
        super().__init__()
        C, eps = cfg["n_embd"], cfg["layer_norm_epsilon"]
        proj_std = 0.02 / math.sqrt(2 * cfg["n_layer"])
        self.n_head = cfg["n_head"]
        self.ln_1 = nn.LayerNorm(C, eps=eps)
        self.attn = nn.Module()
        self.attn.c_attn = Conv1D(C, 3 * C, 0.02)
        self.attn.c_proj = Conv1D(C, C, proj_std)
        self.ln_2 = nn.LayerNorm(C, eps=eps)
        self.mlp = nn.Module()
        self.mlp.c_fc = Conv1D(C, 4 * C, 0.02)
        self.mlp.c_proj = Conv1D(4 * C, C, proj_std)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        B, T, C = x.shape
        H = self.n_head
        D = C // H
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(C, dim=2)
        q = q.view(B, T, H, D).transpose(1, 2)
        k = k.view(B, T, H, D).transpose(1, 2)
        v = v.view(B, T, H, D).transpose(1, 2)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~causal, torch.finfo(att.dtype).min)
        att = self.drop(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.drop(self.attn.c_proj(y))
        h = self.mlp.c_proj(gelu_new(self.mlp.c_fc(self.ln_2(x))))
        return x + self.drop(h)


class GPT2(nn.Module):
    def __init__(self, cfg, drop=0.0):
        super().__init__()
        C = cfg["n_embd"]
        self.wte = nn.Parameter(torch.randn(cfg["vocab_size"], C) * 0.02)
        self.wpe = nn.Parameter(torch.randn(cfg["n_positions"], C) * 0.01)
        self.h = nn.ModuleList(Block(cfg, drop) for _ in range(cfg["n_layer"]))
        self.ln_f = nn.LayerNorm(C, eps=cfg["layer_norm_epsilon"])
        self.drop = nn.Dropout(drop)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.drop(self.wte[idx] + self.wpe[:T])
        for blk in self.h:
            x = blk(x)
        return self.ln_f(x) @ self.wte.t()  # tied lm_head

    def hf_state_dict(self):
        """Parameters under transformers' GPT2LMHeadModel names (lm_head is tied)."""
        out = {"transformer.wte.weight": self.wte, "transformer.wpe.weight": self.wpe}
        for i, b in enumerate(self.h):
            p = f"transformer.h.{i}."
            out[p + "ln_1.weight"] = b.ln_1.weight
            out[p + "ln_1.bias"] = b.ln_1.bias
            out[p + "attn.c_attn.weight"] = b.attn.c_attn.weight
            out[p + "attn.c_attn.bias"] = b.attn.c_attn.bias
            out[p + "attn.c_proj.weight"] = b.attn.c_proj.weight
            out[p + "attn.c_proj.bias"] = b.attn.c_proj.bias
            out[p + "ln_2.weight"] = b.ln_2.weight
            out[p + "ln_2.bias"] = b.ln_2.bias
            out[p + "mlp.c_fc.weight"] = b.mlp.c_fc.weight
            out[p + "mlp.c_fc.bias"] = b.mlp.c_fc.bias
            out[p + "mlp.c_proj.weight"] = b.mlp.c_proj.weight
            out[p + "mlp.c_proj.bias"] = b.mlp.c_proj.bias
        out["transformer.ln_f.weight"] = self.ln_f.weight
        out["transformer.ln_f.bias"] = self.ln_f.bias
        return {k: v.detach().float().contiguous() for k, v in out.items()}


def write_safetensors(path, tensors):
    """Minimal safetensors writer: u64 LE header size, JSON header, raw LE data."""
    assert sys.byteorder == "little"
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        assert t.dtype == torch.float32
        data = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)  # keep the data 8-byte aligned, like the reference writer
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).view(info["shape"])
    return out


@torch.no_grad()
def load_hf_state_dict(model, tensors):
    own = model.hf_state_dict()  # detached copies; map names back to parameters
    params = {"transformer.wte.weight": model.wte, "transformer.wpe.weight": model.wpe,
              "transformer.ln_f.weight": model.ln_f.weight, "transformer.ln_f.bias": model.ln_f.bias}
    for i, b in enumerate(model.h):
        p = f"transformer.h.{i}."
        for mod, name in [(b.ln_1, "ln_1"), (b.ln_2, "ln_2"), (b.attn.c_attn, "attn.c_attn"),
                          (b.attn.c_proj, "attn.c_proj"), (b.mlp.c_fc, "mlp.c_fc"),
                          (b.mlp.c_proj, "mlp.c_proj")]:
            params[p + name + ".weight"] = mod.weight
            params[p + name + ".bias"] = mod.bias
    assert sorted(params) == sorted(own)
    for k, v in tensors.items():
        assert params[k].shape == v.shape, k
        params[k].copy_(v)


@torch.no_grad()
def chunk_nll(model, ids, window):
    """Mean next-token NLL over non-overlapping chunks of `window` tokens.

    Each chunk is scored independently from position 0; all (len(chunk) - 1)
    predictions in every chunk are averaged.  Returns (mean_nll, n_predictions).
    """
    total, n = 0.0, 0
    for s in range(0, len(ids), window):
        c = ids[s:s + window]
        if len(c) < 2:
            continue
        x = torch.tensor(c, dtype=torch.long)[None]
        logits = model(x[:, :-1])
        total += F.cross_entropy(logits[0].double(), x[0, 1:], reduction="sum").item()
        n += len(c) - 1
    return total / n, n


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--corpus", default=CORPUS_GLOB)
    ap.add_argument("--vocab-size", type=int, default=1024)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-positions", type=int, default=256)
    ap.add_argument("--ctx", type=int, default=256, help="training context length")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--skip-js-check", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    t_start = time.time()

    # ---- corpus ----------------------------------------------------------
    files = sorted(glob.glob(args.corpus))
    if not files:
        sys.exit(f"no corpus files match {args.corpus} (Debian: apt-get install vim-runtime)")
    docs = [open(f, encoding="utf-8").read() for f in files]
    n_chars = sum(len(d) for d in docs)
    print(f"corpus: {len(files)} files, {n_chars} chars", flush=True)

    # The tokenizer is trained on the first 95% of the characters only.
    cut = int(n_chars * 0.95)
    train_texts, acc = [], 0
    for d in docs:
        if acc + len(d) <= cut:
            train_texts.append(d)
        else:
            train_texts.append(d[:cut - acc])
            break
        acc += len(d)

    # ---- tokenizer ----------------------------------------------------------
    t0 = time.time()
    vocab, merges = train_bpe(train_texts, args.vocab_size)
    tok = BPETokenizer(vocab, merges)
    print(f"bpe: vocab {len(vocab)} ({len(merges)} merges) in {time.time() - t0:.1f}s", flush=True)
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(vocab, merges), f, ensure_ascii=False, indent=2)
    with open(os.path.join(args.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_config_json(vocab, args.n_positions), f, indent=2)

    stream = []
    for d in docs:
        ids = tok.encode(d)
        assert tok.decode(ids) == d
        stream.extend(ids)
        stream.append(tok.eot_id)
    n_held = len(stream) // 20
    train_ids, held_ids = stream[:-n_held], stream[-n_held:]
    print(f"tokens: {len(stream)} total ({n_chars / len(stream):.2f} chars/token), "
          f"{len(train_ids)} train, {len(held_ids)} held out", flush=True)

    # ---- JS cross-check -----------------------------------------------------
    js_result = "skipped"
    if not args.skip_js_check:
        js_result = js_check(args.out, tok, docs)

    # ---- model ----------------------------------------------------------------
    cfg = {
        "vocab_size": len(vocab), "n_embd": args.n_embd, "n_head": args.n_head,
        "n_layer": args.n_layer, "n_positions": args.n_positions,
        "layer_norm_epsilon": 1e-5,
    }
    model = GPT2(cfg, drop=args.dropout)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and not n.startswith("wpe")]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() == 2 and not n.startswith("wpe"))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    data = torch.tensor(train_ids, dtype=torch.long)
    warm = max(1, args.steps // 20)

    def lr_at(s):
        if s < warm:
            return args.lr * (s + 1) / warm
        p = (s - warm) / max(1, args.steps - warm)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))

    g = torch.Generator().manual_seed(args.seed)
    t_train = time.time()
    model.train()
    ema = None
    for step in range(args.steps):
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step)
        starts = torch.randint(0, len(data) - args.ctx - 1, (args.batch,), generator=g)
        xb = torch.stack([data[s:s + args.ctx + 1] for s in starts.tolist()])
        logits = model(xb[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), xb[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 50 == 0 or step == args.steps - 1:
            extra = ""
            if step % 250 == 0 and step:
                model.eval()
                extra = f"  held-out {chunk_nll(model, held_ids, args.ctx)[0]:.4f}"
                model.train()
            print(f"step {step:5d}  loss {loss.item():.4f}  ema {ema:.4f}  lr {lr_at(step):.2e}  "
                  f"{time.time() - t_train:6.1f}s{extra}", flush=True)
    train_s = time.time() - t_train
    model.eval()

    train_loss, _ = chunk_nll(model, train_ids[-len(held_ids):], args.ctx)
    held_loss, held_n = chunk_nll(model, held_ids, args.ctx)
    print(f"trained {args.steps} steps in {train_s:.0f}s; tail-of-train loss {train_loss:.4f}, "
          f"held-out loss {held_loss:.4f} (ppl {math.exp(held_loss):.2f}) over {held_n} predictions",
          flush=True)

    # ---- export -----------------------------------------------------------------
    eot = tok.eot_id
    config = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": args.dropout,
        "bos_token_id": eot,
        "embd_pdrop": args.dropout,
        "eos_token_id": eot,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-5,
        "model_type": "gpt2",
        "n_ctx": args.n_positions,
        "n_embd": args.n_embd,
        "n_head": args.n_head,
        "n_inner": None,
        "n_layer": args.n_layer,
        "n_positions": args.n_positions,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": args.dropout,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": len(vocab),
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": eot, "eos_token_id": eot, "do_sample": False,
                   "max_new_tokens": 40}, f, indent=2)

    st_path = os.path.join(args.out, "model.safetensors")
    write_safetensors(st_path, model.hf_state_dict())

    # Reload the file we just wrote and use *it* for every reference number.
    ref = GPT2(cfg).eval()
    loaded = read_safetensors(st_path)
    assert sorted(loaded) == sorted(model.hf_state_dict())
    load_hf_state_dict(ref, loaded)

    heldout = held_ids[:2000]
    with open(os.path.join(args.out, "heldout_ids.json"), "w") as f:
        json.dump(heldout, f)

    prompt = "The quick"
    prompt_ids = tok.encode(prompt)
    seq, margins = list(prompt_ids), []
    first_logits = None
    with torch.no_grad():
        for _ in range(10):  # greedy, full recomputation each step
            logits = ref(torch.tensor(seq)[None])[0, -1]
            if first_logits is None:
                first_logits = logits.clone()
            top2 = torch.topk(logits, 2)
            margins.append(round((top2.values[0] - top2.values[1]).item(), 5))
            seq.append(int(top2.indices[0]))
    gen = seq[len(prompt_ids):]
    gen_text = tok.decode(gen)
    print(f"greedy: {prompt!r} -> {gen_text!r}  (top1-top2 logit margins {margins})", flush=True)
    with open(os.path.join(args.out, "greedy.json"), "w") as f:
        json.dump({"prompt": prompt, "prompt_ids": prompt_ids, "ids": gen,
                   "text": gen_text, "top1_top2_margins": margins}, f, indent=2)

    ref_metrics = {}
    for w in (128, 256):
        if w <= args.n_positions:
            nll, n = chunk_nll(ref, heldout, w)
            ref_metrics[str(w)] = {"mean_nll": round(nll, 6), "perplexity": round(math.exp(nll), 5),
                                   "predictions": n}
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump({
            "about": "Reference numbers computed with PyTorch (float32) from model.safetensors.",
            "heldout_ids_nll": {
                "protocol": "heldout_ids split into non-overlapping chunks of `window` tokens "
                            "(last chunk shorter); each chunk scored independently from position 0; "
                            "mean natural-log NLL over all len(chunk)-1 next-token predictions",
                "by_window": ref_metrics,
            },
            "prompt_last_logits": {"prompt_ids": prompt_ids,
                                   "logits": [round(v, 5) for v in first_logits.tolist()]},
        }, f)
    print(f"heldout_ids reference: {ref_metrics}", flush=True)

    total_s = time.time() - t_start
    write_readme(args, cfg, n_params, files, len(stream), len(train_ids), len(held_ids), train_loss,
                 held_loss, held_n, ref_metrics, gen_text, train_s, total_s, js_result,
                 os.path.getsize(st_path))
    print(f"done in {total_s:.0f}s; wrote {args.out}", flush=True)


def js_check(out_dir, tok, docs):
    """Compare our encoder/decoder with @huggingface/tokenizers (tokenizers.js)."""
    script = os.path.join(HERE, "verify_tokenizer.mjs")
    first_lines = "".join(docs[0].splitlines(keepends=True)[:40])
    cases = [first_lines, docs[1][:3000], docs[-1][-3000:],
             "The quick brown fox jumps over the lazy dog.",
             "It's   two  spaces,\ttabs\t\tand\n\nnewlines  \n end ",
             "Numbers 12345 and 3.14, x²+y³ ½; ünïcödé naïve café — “quotes” 日本語 🙂",
             "you're we've I'm they'll he'd IT'S",
             f"end of one{EOT}start of the next {EOT} again",
             ""]
    cases.append(EOT.join(docs))  # the whole corpus, documents separated like the token stream
    cases = [{"text": c, "ids": tok.encode(c)} for c in cases]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)
        case_path = f.name
    try:
        r = subprocess.run(["node", script, out_dir, case_path], cwd=REPO,
                           capture_output=True, text=True)
    except FileNotFoundError:
        print("js check: node not found, skipped", flush=True)
        return "skipped (node not found)"
    os.unlink(case_path)
    print(r.stdout.strip(), flush=True)
    if r.returncode != 0:
        print(r.stderr, file=sys.stderr)
        sys.exit("tokenizer mismatch between Python and @huggingface/tokenizers")
    return r.stdout.strip().splitlines()[-1]


def write_readme(args, cfg, n_params, files, n_tok, n_train, n_held, train_loss, held_loss,
                 held_n, ref_metrics, gen_text, train_s, total_s, js_result, st_size):
    names = ", ".join(os.path.basename(f) for f in files)
    refs = "\n".join(f"| {w} | {m['mean_nll']:.4f} | {m['perplexity']:.3f} | {m['predictions']} |"
                     for w, m in ref_metrics.items())
    if os.path.abspath(args.out) == os.path.abspath(DEFAULT_OUT):
        about = """# tiny-gpt2: the bundled example checkpoint

A very small GPT-2 (Hugging Face `GPT2LMHeadModel` layout and numerics) trained
from scratch on the Vim user manual, so that the quick start (`npm ci && npm
start`) has something real to compile and run with no downloads.  It produces
Vim-manual-flavoured English; it is a test fixture, not a useful language model."""
    else:
        about = f"""# {os.path.basename(os.path.abspath(args.out))}: a GPT-2 trained on the Vim user manual

A sibling of the bundled tiny-gpt2 (same text, tokenizer recipe and script), made with
`{' '.join(sys.argv[1:])}`; a benchmark fixture, not a useful language model."""
    text = f"""{about}

## Files

| file | what |
|---|---|
| `config.json` | HF `GPT2Config` |
| `model.safetensors` | float32 weights, HF names (`transformer.wte.weight`, `transformer.h.{{i}}.attn.c_attn.weight` [in, 3*out], ...); `lm_head` is tied to `wte` and not stored ({st_size} bytes) |
| `tokenizer.json`, `tokenizer_config.json` | byte-level BPE (GPT-2 style), vocab {cfg['vocab_size']} = 256 bytes + {cfg['vocab_size'] - 257} merges + `<|endoftext|>` (id {cfg['vocab_size'] - 1}) |
| `generation_config.json` | greedy, eos/bos = `<|endoftext|>` |
| `heldout_ids.json` | the first 2000 token ids of the held-out split, for perplexity tests |
| `greedy.json` | greedy continuation (10 tokens, argmax, full recomputation) of `"The quick"`, with top1-top2 logit margins per step |
| `reference.json` | PyTorch reference numbers: perplexity of `heldout_ids` and the logits after the prompt |

## Model

n_layer {cfg['n_layer']}, n_head {cfg['n_head']}, n_embd {cfg['n_embd']}, n_inner 4*n_embd,
n_positions {cfg['n_positions']}, vocab {cfg['vocab_size']}, gelu_new, LayerNorm eps 1e-5,
tied embeddings: {n_params} parameters.

## Training data and license

The Vim 9.0 user manual ({len(files)} files, `/usr/share/vim/vim90/doc/usr_[0-9]*.txt`
from Debian's `vim-runtime` package: {names}).
Copyright (c) 1988-2003 Bram Moolenaar, with parts from the book "Vi IMproved -
Vim" by Steve Oualline; distributed under the **Open Publication License v1.0
or later**, with no license options exercised (see `:help manual-copyright`;
Debian's copyright file records it as `OPL-1+` and considers it DFSG-free).
The weights, the tokenizer and `heldout_ids.json` are derived from that text.

The files are concatenated in sorted order, separated by `<|endoftext|>`.
{n_tok} tokens in total; the last 5% ({n_held} tokens) is held out from model
training (the tokenizer is trained on the first 95% of the characters).

## Results

Trained {args.steps} steps of AdamW (batch {args.batch} x {args.ctx} tokens, lr {args.lr} with
warmup and cosine decay, weight decay 0.1, dropout {args.dropout}) on one CPU thread in
{train_s / 60:.1f} minutes ({total_s / 60:.1f} minutes end to end).

* held-out loss: **{held_loss:.4f}** nats/token (perplexity {math.exp(held_loss):.2f}) over {held_n} predictions
  (non-overlapping {args.ctx}-token chunks); the same measure on the last {n_held} training tokens: {train_loss:.4f}
* `heldout_ids.json` (protocol in `reference.json`):

| window | mean NLL | perplexity | predictions |
|---|---|---|---|
{refs}

* greedy `"The quick"` -> `{gen_text!r}`
* tokenizer cross-check against `@huggingface/tokenizers`: {js_result}

## Regenerating

Needs Python 3 with PyTorch (no `transformers`), Debian's `vim-runtime`, and
`npm ci` done (for the tokenizer cross-check):

    python3 examples/train/train_tiny_gpt2.py
    python3 examples/train/check_reference_numpy.py   # optional, numpy only

See the docstring of `examples/train/train_tiny_gpt2.py` for options.  The
numbers above come from PyTorch 1.13.1 with OpenBLAS on one thread.
"""
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
