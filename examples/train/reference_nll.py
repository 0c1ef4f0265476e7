#!/usr/bin/env python3
"""PyTorch reference NLLs of examples/tiny-gpt2 on heldout_ids.json, fp32 and fake-quantized.

DEV-ONLY: the TypeScript tests read the committed output,
examples/tiny-gpt2/nll_reference.json, and never run this.  Needs Python 3 with
torch (1.13; no transformers, no safetensors) and numpy.  The safetensors file is
parsed by hand and GPT-2 re-implemented with Hugging Face GPT2LMHeadModel
eval-mode numerics, in float32, on one thread.

Schemes (weights fake-quantized, i.e. quantized and dequantized back to f32, for
the 16 matrices `wasmformer compile --quantize` stores quantized: attn.c_attn,
attn.c_proj, mlp.c_fc, mlp.c_proj of each layer, and the tied wte, quantized for the
head and the lookup alike; wpe stays f32):

  fp32     no quantization
  q8_0     GGUF Q8_0 (ggml quantize_row_q8_0_ref): per block of 32, d = max|w| / 127
           in f32, codes roundf(w * (1/d)) clamped to +-127, value code * f16(d)
  q4_0     GGUF Q4_0 (ggml quantize_row_q4_0_ref): per block of 32, m = the value of
           largest magnitude (the first on a tie), d = m / -8 in f32,
           q = min(15, (int8_t)(w * (1/d) + 8.5f)), value (q - 8) * f16(d)
  q4_1     GGUF Q4_1 (ggml quantize_row_q4_1_ref): per block of 32, d = (max - min) / 15
           in f32, q = min(15, (int8_t)((w - min) * (1/d) + 0.5f)), value q * f16(d) + f16(min)
  q8_0+a8  q8_0 weights, and each matrix's input rows quantized on the fly as
           wasmformer's int8 kernels do (blocks of 32, f32 d = max|x| / 127,
           codes nearest-even(x * (1/d)), the scale kept in f32)
  q4_0+a8  q4_0 weights with the same activation quantization (ggml's CPU path
           for Q4_0 also multiplies by q8_0-quantized activations)

HF Conv1D stores these matrices as [in, out]; blocks run along the input
dimension (32 consecutive input features of one output).

Windows (the protocol of reference.json and `wasmformer eval`): windows of
`window` ids start every `stride` ids, each scored from position 0 with a fresh
context; a window scores the targets the previous one did not (so with stride ==
window the first id of each window is unpredicted, and the last window may be
shorter).  Mean natural-log NLL over all scored targets, from log-softmax in
float64 of the f32 logits.

    /usr/bin/python3 examples/train/reference_nll.py [--check-only]
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

torch.set_num_threads(1)

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "tiny-gpt2")
OUT = os.path.join(MODEL, "nll_reference.json")
WINDOWS = [(256, 256), (128, 128), (256, 128)]
SCHEMES = ["fp32", "q8_0", "q4_0", "q4_1", "q8_0+a8", "q4_0+a8"]
QUANTIZED = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]
BLOCK = 32


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (k, v["dtype"])
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").reshape(v["shape"]).copy()
    return out


def f16(x):
    """f32 -> nearest-even f16 -> f32 (GGML_FP32_TO_FP16 and back)."""
    return x.astype(np.float16).astype(np.float32)


def roundf(x):
    """C roundf (half away from zero) of f32 values, exactly (in f64)."""
    x = x.astype(np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def blocks_of(w_in_out):
    """[in, out] -> [out, in/32, 32] f32 blocks along the input dimension."""
    k, n = w_in_out.shape
    assert k % BLOCK == 0
    return np.ascontiguousarray(w_in_out.T).reshape(n, k // BLOCK, BLOCK).astype(np.float32)


def unblock(b, shape):
    return np.ascontiguousarray(b.reshape(shape[1], shape[0]).T)


def fake_q8_0(w):
    b = blocks_of(w)
    d = (np.abs(b).max(-1, keepdims=True) / np.float32(127)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0)).astype(np.float32)
    q = np.clip(roundf((b * inv).astype(np.float32)), -127, 127)
    return unblock((q.astype(np.float32) * f16(d)).astype(np.float32), w.shape)


def fake_q4_0(w):
    b = blocks_of(w)
    first_max = np.abs(b).argmax(-1)[..., None]  # argmax returns the first of equal magnitudes
    m = np.take_along_axis(b, first_max, -1)
    d = (m / np.float32(-8)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0)).astype(np.float32)
    x = ((b * inv).astype(np.float32) + np.float32(8.5)).astype(np.float32)
    q = np.minimum(15, np.trunc(x.astype(np.float64)))
    return unblock(((q - 8).astype(np.float32) * f16(d)).astype(np.float32), w.shape)


def fake_q4_1(w):
    b = blocks_of(w)
    lo = b.min(-1, keepdims=True)
    hi = b.max(-1, keepdims=True)
    d = ((hi - lo).astype(np.float32) / np.float32(15)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0)).astype(np.float32)
    x = (((b - lo).astype(np.float32) * inv).astype(np.float32) + np.float32(0.5)).astype(np.float32)
    q = np.minimum(15, np.trunc(x.astype(np.float64)))
    return unblock(((q.astype(np.float32) * f16(d)).astype(np.float32) + f16(lo)).astype(np.float32), w.shape)


def fake_a8(x):
    """wasmformer's on-the-fly activation quantization of each row of a matrix input."""
    t, k = x.shape
    b = x.detach().numpy().reshape(t, k // BLOCK, BLOCK).astype(np.float32)
    d = (np.abs(b).max(-1, keepdims=True) / np.float32(127)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0)).astype(np.float32)
    q = np.clip(np.rint((b * inv).astype(np.float32)), -127, 127)
    return torch.from_numpy((q.astype(np.float32) * d).astype(np.float32).reshape(t, k))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def make_forward(cfg, W, scheme):
    """GPT2LMHeadModel forward (eval mode) over weights W, fake-quantized per `scheme`."""
    wq = {"q8_0": fake_q8_0, "q4_0": fake_q4_0, "q4_1": fake_q4_1}.get(scheme.split("+")[0])
    T = {}
    for k, v in W.items():
        if wq and k.endswith(".weight") and any(f".{m}." in k for m in QUANTIZED):
            v = wq(v)
        T[k] = torch.from_numpy(v)
    # the tied wte is quantized too, for the head and the lookup alike
    # (the fake quantizers take Conv1D's [in, out] layout; wte is [vocab, in])
    if wq:
        T["transformer.wte.weight"] = torch.from_numpy(np.ascontiguousarray(wq(np.ascontiguousarray(W["transformer.wte.weight"].T)).T))
    head = T["transformer.wte.weight"]
    a8 = scheme.endswith("+a8")
    C, H, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]

    def conv1d(x, name):
        if a8:
            x = fake_a8(x)
        return torch.addmm(T[name + ".bias"], x, T[name + ".weight"])

    def ln(x, name):
        return torch.nn.functional.layer_norm(x, (C,), T[name + ".weight"], T[name + ".bias"], eps)

    @torch.no_grad()
    def forward(ids):
        n = len(ids)
        x = T["transformer.wte.weight"][torch.tensor(ids)] + T["transformer.wpe.weight"][:n]
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        for i in range(cfg["n_layer"]):
            p = f"transformer.h.{i}."
            q, k, v = conv1d(ln(x, p + "ln_1"), p + "attn.c_attn").split(C, dim=1)
            q, k, v = (t.view(n, H, C // H).transpose(0, 1) for t in (q, k, v))
            att = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
            att = torch.softmax(att.masked_fill(~causal, torch.finfo(att.dtype).min), dim=-1)
            x = x + conv1d((att @ v).transpose(0, 1).reshape(n, C), p + "attn.c_proj")
            x = x + conv1d(gelu_new(conv1d(ln(x, p + "ln_2"), p + "mlp.c_fc")), p + "mlp.c_proj")
        h = ln(x, "transformer.ln_f")
        return (fake_a8(h) if a8 else h) @ head.t()

    return forward


def mean_nll(forward, ids, window, stride):
    """Windowed mean NLL (see the module docstring); returns (mean, scored targets, windows)."""
    total, count, calls, scored, start = 0.0, 0, 0, 0, 0
    while True:
        end = min(start + window, len(ids))
        first = max(start + 1, scored)
        if first < end:
            logits = forward(ids[start:end - 1]).double()
            lp = torch.log_softmax(logits, dim=-1)
            t = torch.arange(first, end)
            total -= lp[t - 1 - start, torch.tensor(ids[first:end])].sum().item()
            count += end - first
            calls += 1
        scored = end
        if end == len(ids):
            return total / count, count, calls
        start += stride


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check-only", action="store_true", help="print the numbers, write nothing")
    args = ap.parse_args()
    cfg = json.load(open(os.path.join(MODEL, "config.json")))
    W = read_safetensors(os.path.join(MODEL, "model.safetensors"))
    ids = json.load(open(os.path.join(MODEL, "heldout_ids.json")))
    quantized = sorted(k for k in W if k.endswith(".weight") and any(f".{m}." in k for m in QUANTIZED))
    assert len(quantized) == 4 * cfg["n_layer"]

    results, fp32 = [], {}
    for scheme in SCHEMES:
        fwd = make_forward(cfg, W, scheme)
        for window, stride in WINDOWS:
            nll, n, calls = mean_nll(fwd, ids, window, stride)
            r = {"scheme": scheme, "window": window, "stride": stride, "tokens": n, "windows": calls,
                 "mean_nll": round(nll, 7), "perplexity": round(math.exp(nll), 5)}
            if scheme == "fp32":
                fp32[(window, stride)] = nll
            else:
                r["increase_pct"] = round(100 * (nll / fp32[(window, stride)] - 1), 4)
            results.append(r)
            print(json.dumps(r), flush=True)

    # the fp32 numbers must be reference.json's (computed by train_tiny_gpt2.py's own model code)
    ref = json.load(open(os.path.join(MODEL, "reference.json")))["heldout_ids_nll"]["by_window"]
    for w, r in ref.items():
        got = fp32[(int(w), int(w))]
        assert abs(got - r["mean_nll"]) < 2e-6, (w, got, r["mean_nll"])
    print("fp32 matches reference.json", flush=True)
    if args.check_only:
        return

    doc = {
        "about": "PyTorch mean NLL of heldout_ids.json under model.safetensors, fp32 and with weights "
                 "fake-quantized as GGUF Q8_0 / Q4_0 / Q4_1 (see the generator's docstring for each scheme).",
        "generator": "examples/train/reference_nll.py",
        "torch": torch.__version__, "numpy": np.__version__, "dtype": "float32 forward, float64 log-softmax",
        "threads": 1,
        "protocol": "windows of `window` ids starting every `stride` ids, each scored from position 0 "
                    "with a fresh context; a window scores only targets no earlier window scored (with "
                    "stride == window: non-overlapping windows, the first id of each unpredicted, the last "
                    "window shorter); mean natural-log NLL over all scored targets",
        "quantized_matrices": [f"transformer.h.{{i}}.{m}.weight" for m in QUANTIZED] + ["transformer.wte.weight"],
        "blocks": "32 consecutive input features (rows of the HF Conv1D [in, out] weight) of one output",
        "schemes": {
            "fp32": "no quantization",
            "q8_0": "weights as GGUF Q8_0: d = max|w|/127 (f32), codes roundf(w/d) clamped to +-127, value code * f16(d)",
            "q4_0": "weights as GGUF Q4_0 (quantize_row_q4_0_ref): d = m/-8 (m: value of largest magnitude), "
                    "q = min(15, (int8_t)(w/d + 8.5f)), value (q-8) * f16(d)",
            "q4_1": "weights as GGUF Q4_1 (quantize_row_q4_1_ref): d = (max-min)/15, q = min(15, (int8_t)((w-min)/d + 0.5f)), "
                    "value q * f16(d) + f16(min)",
            "q8_0+a8": "q8_0 weights; each quantized matrix's input rows quantized per block of 32 "
                       "(f32 d = max|x|/127, nearest-even codes), as wasmformer's int8 kernels do",
            "q4_0+a8": "q4_0 weights with the same activation quantization",
        },
        "n_ids": len(ids),
        "results": results,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT)}")


if __name__ == "__main__":
    sys.exit(main())
