#!/usr/bin/env python3
"""Re-check examples/tiny-gpt2/ with an independent numpy GPT-2 (dev-only).

Reads config.json and model.safetensors (parsed by hand), runs a float64
forward pass with Hugging Face GPT2LMHeadModel semantics, and compares with
what train_tiny_gpt2.py recorded: the prompt logits in reference.json, the
greedy ids in greedy.json and the heldout_ids.json perplexities.  Needs only
numpy.

    python3 examples/train/check_reference_numpy.py [model_dir]
"""
import json
import math
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "tiny-gpt2")
cfg = json.load(open(os.path.join(d, "config.json")))
raw = open(os.path.join(d, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
base = 8 + n
W = {k: np.frombuffer(raw[base + v["data_offsets"][0]:base + v["data_offsets"][1]], dtype="<f4")
     .reshape(v["shape"]).astype(np.float64)
     for k, v in hdr.items() if k != "__metadata__"}
assert all(v["dtype"] == "F32" for k, v in hdr.items() if k != "__metadata__")
assert n % 8 == 0 and len(W) == 4 + 12 * cfg["n_layer"]


def ln(x, w, b):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + cfg["layer_norm_epsilon"]) * w + b


def gelu_new(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(ids):
    T, C, H = len(ids), cfg["n_embd"], cfg["n_head"]
    D = C // H
    x = W["transformer.wte.weight"][ids] + W["transformer.wpe.weight"][:T]
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        h = ln(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"]) @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]
        q, k, v = (t.reshape(T, H, D).transpose(1, 0, 2) for t in np.split(h, 3, axis=-1))
        a = q @ k.transpose(0, 2, 1) / math.sqrt(D)
        a = np.where(np.tril(np.ones((T, T), bool)), a, -np.inf)
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        y = (a @ v).transpose(1, 0, 2).reshape(T, C)
        x = x + y @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        h = gelu_new(ln(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"]) @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"])
        x = x + h @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
    return ln(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"]) @ W["transformer.wte.weight"].T


greedy = json.load(open(os.path.join(d, "greedy.json")))
ref = json.load(open(os.path.join(d, "reference.json")))
ok = True

diff = np.abs(forward(ref["prompt_last_logits"]["prompt_ids"])[-1] - np.array(ref["prompt_last_logits"]["logits"])).max()
print(f"prompt logits: max |numpy - reference.json| = {diff:.2e}")
ok &= diff < 1e-3

seq = list(greedy["prompt_ids"])
for _ in range(len(greedy["ids"])):
    seq.append(int(forward(seq)[-1].argmax()))
same = seq[len(greedy["prompt_ids"]):] == greedy["ids"]
print(f"greedy ids match greedy.json: {same}")
ok &= same

ids = json.load(open(os.path.join(d, "heldout_ids.json")))
for w, r in ref["heldout_ids_nll"]["by_window"].items():
    w, tot, cnt = int(w), 0.0, 0
    for s in range(0, len(ids), w):
        c = ids[s:s + w]
        if len(c) < 2:
            continue
        lg = forward(c[:-1])
        lg = lg - lg.max(-1, keepdims=True)
        lp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
        tot -= lp[np.arange(len(c) - 1), c[1:]].sum()
        cnt += len(c) - 1
    print(f"heldout_ids window {w}: nll {tot / cnt:.6f} (reference {r['mean_nll']}), {cnt} predictions")
    ok &= abs(tot / cnt - r["mean_nll"]) < 1e-4 and cnt == r["predictions"]

print("OK" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
