"""Writes the language-model golden files tests/golden/lm_*.safetensors.

    /usr/bin/python3 tests/ref/golden_lm.py            # sanity checks, then write
    /usr/bin/python3 tests/ref/golden_lm.py --no-check # write only

Each file holds one small configuration (see CASES), computed in float64 by the
independent PyTorch reference (torch_lm.py) from float32 initial parameters,
and stored as float32 (ids/targets as int32):

    metadata  config      flat YAML of the seqlab config keys
              vocab_size  V, as text
    ids, targets          (B, T) int32, targets[b, t] = ids[b, t + 1] of one longer draw
    param.<name>          initial parameters
    logits                (B, T, V) at the initial parameters
    loss                  [1], mean cross-entropy at the initial parameters
    grad.<name>           gradient of the mean loss, before clipping
    train.losses          [10], loss before each of 10 updates on the same batch
    train.grad_norms      [10], global gradient norm before clipping, per update
    train.lr              [10], learning rate of each update
    final.<name>          parameters after the 10 updates

Before writing, it checks the reference: float64 autograd gradients against
central finite differences, and that a causal model's logits at position t do
not depend on ids after t (and that a bidirectional one's do).
"""

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import torch_lm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "tests", "golden")
STEPS = 10

COMMON = dict(mixer="softmax", ffn="mlp", dropout=0.0, dropatt=0.0, init_std=0.02)

CASES = [
    ("lm_preln_causal", 1001, dict(
        arch="sfsf", norm="pre", activation="gelu_tanh", pos="learned", tie_weight=True, causal=True,
        vocab_size=37, d_model=32, n_head=4, d_head=8, d_inner=64, batch_size=2, tgt_len=11, max_len=16,
        optim="adamw", scheduler="cosine", warmup_step=3, max_step=10, lr=0.01, min_lr=0.001,
        weight_decay=0.1, decay_groups="linear,embedding", clip=0.5, beta1=0.9, beta2=0.99, eps=1e-8)),
    ("lm_postln_bidir", 1002, dict(
        arch="sffs", norm="post", activation="relu", pos="sinusoidal", tie_weight=False, causal=False,
        vocab_size=29, d_model=24, n_head=3, d_head=8, d_inner=48, batch_size=3, tgt_len=9, max_len=9,
        # plain Adam ignores weight_decay: it is set non-zero on purpose
        optim="adam", scheduler="inv_sqrt", warmup_step=4, max_step=10, lr=0.005, min_lr=0.0,
        weight_decay=0.1, decay_groups="linear", clip=0.0, beta1=0.9, beta2=0.999, eps=1e-8)),
    ("lm_long_tiles", 1003, dict(
        arch="sf", norm="pre", activation="gelu", pos="none", tie_weight=True, causal=True,
        vocab_size=19, d_model=16, n_head=2, d_head=8, d_inner=32, batch_size=2, tgt_len=150, max_len=150,
        optim="adamw", scheduler="constant", warmup_step=0, max_step=10, lr=0.003, min_lr=0.0,
        weight_decay=0.01, decay_groups="linear", clip=1.0, beta1=0.9, beta2=0.999, eps=1e-8)),
]

YAML_KEYS = [
    "arch", "n_layer", "mixer", "ffn", "d_model", "n_head", "d_head", "d_inner", "norm", "activation",
    "pos", "tie_weight", "causal", "dropout", "dropatt", "init_std", "max_len",
    "batch_size", "tgt_len", "max_step", "optim", "lr", "min_lr", "warmup_step", "scheduler",
    "beta1", "beta2", "eps", "weight_decay", "decay_groups", "clip",
]


def full_case(cfg):
    c = dict(COMMON)
    c.update(cfg)
    c["n_layer"] = c["arch"].count("s")
    return c


def yaml_text(c):
    lines = []
    for k in YAML_KEYS:
        v = c[k]
        if isinstance(v, bool):
            s = "true" if v else "false"
        elif isinstance(v, float):
            s = repr(v)
        else:
            s = str(v)
        lines.append(f"{k}: {s}")
    return "\n".join(lines) + "\n"


def make_batch(c, seed):
    g = torch.Generator().manual_seed(seed)
    seq = torch.randint(0, c["vocab_size"], (c["batch_size"], c["tgt_len"] + 1), generator=g)
    return seq[:, :-1].contiguous(), seq[:, 1:].contiguous()


def build(c, seed):
    """float32 model with seeded initial values, and its float64 copy."""
    m32 = torch_lm.LM(c)
    torch_lm.init_params(m32, seed)
    m64 = torch_lm.LM(c).to(torch.float64)
    m64.load_state_dict({k: v.double() for k, v in m32.state_dict().items()})
    return m32, m64


def f32(t):
    return t.detach().to(torch.float32).cpu().numpy()


def write_case(name, seed, cfg, log):
    c = full_case(cfg)
    ids, targets = make_batch(c, seed + 500)
    m32, m64 = build(c, seed)
    tensors = {"ids": ids.to(torch.int32).numpy(), "targets": targets.to(torch.int32).numpy()}
    for n, p in m32.named_parameters():
        tensors[f"param.{n}"] = f32(p)

    m64.zero_grad(set_to_none=True)
    loss, logits = m64(ids, targets)
    loss.backward()
    tensors["logits"] = f32(logits)
    tensors["loss"] = np.array([loss.item()], dtype=np.float32)
    for n, p in m64.named_parameters():
        tensors[f"grad.{n}"] = f32(p.grad)

    log(f"{name}: B={c['batch_size']} T={c['tgt_len']} V={c['vocab_size']} loss {loss.item():.6f}")
    losses, norms, clipped = torch_lm.train(m64, c, ids, targets, STEPS, log=log)
    tensors["train.losses"] = np.array(losses, dtype=np.float32)
    tensors["train.grad_norms"] = np.array(norms, dtype=np.float32)
    tensors["train.lr"] = np.array([torch_lm.lr_at(s, c) for s in range(STEPS)], dtype=np.float32)
    for n, p in m64.named_parameters():
        tensors[f"final.{n}"] = f32(p)
    n_clip = sum(clipped)
    log(f"  clipping (clip={c['clip']}): triggered in {n_clip} of {STEPS} steps"
        + (f" {[i for i, x in enumerate(clipped) if x]}" if n_clip else ""))

    meta = {"config": yaml_text(c), "vocab_size": str(c["vocab_size"])}
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, name + ".safetensors")
    safetensors_io.save(path, tensors, meta)

    # round trip
    back, bmeta = safetensors_io.load(path)
    assert bmeta == meta, "metadata round trip"
    assert set(back) == set(tensors), "tensor names round trip"
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and np.array_equal(back[k], v), k
    log(f"  wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")


# ---------------------------------------------------------------- sanity checks

def check_finite_differences(cfg, seed, log, per_tensor=4, h=1e-6):
    c = full_case(cfg)
    ids, targets = make_batch(c, seed + 500)
    _, m = build(c, seed)
    m.zero_grad(set_to_none=True)
    loss, _ = m(ids, targets)
    loss.backward()
    g = torch.Generator().manual_seed(seed + 7)
    worst, worst_abs = 0.0, 0.0
    with torch.no_grad():
        for n, p in m.named_parameters():
            flat = p.view(-1)
            gflat = p.grad.view(-1)
            idx = torch.randperm(flat.numel(), generator=g)[:per_tensor]
            for i in idx.tolist():
                old = flat[i].item()
                flat[i] = old + h
                lp, _ = m(ids, targets)
                flat[i] = old - h
                lm, _ = m(ids, targets)
                flat[i] = old
                fd = (lp.item() - lm.item()) / (2 * h)
                an = gflat[i].item()
                abs_err = abs(fd - an)
                err = abs_err / max(1e-6, abs(fd) + abs(an))
                worst_abs = max(worst_abs, abs_err)
                if abs(an) > 1e-4:
                    worst = max(worst, err)
                if err > 1e-5 and abs_err > 1e-9:
                    raise AssertionError(f"finite differences: {n}[{i}] autograd {an:.10g} fd {fd:.10g}")
    log(f"check: finite differences ({c['arch']}, {c['norm']}, {c['activation']}, pos {c['pos']}) "
        f"ok, worst |autograd - fd| {worst_abs:.1e}, worst relative error (|grad| > 1e-4) {worst:.1e}")


def check_causality(cfg, seed, log):
    c = full_case(cfg)
    ids, _ = make_batch(c, seed + 500)
    _, m = build(c, seed)
    T = ids.shape[1]
    with torch.no_grad():
        _, base = m(ids)
        for t in [0, T // 2, T - 2]:
            ids2 = ids.clone()
            ids2[:, t + 1:] = (ids2[:, t + 1:] + 1 + torch.arange(T - t - 1)) % c["vocab_size"]
            _, lg = m(ids2)
            same = (lg[:, :t + 1] - base[:, :t + 1]).abs().max().item()
            diff = (lg[:, t + 1:] - base[:, t + 1:]).abs().max().item()
            if c["causal"]:
                assert same == 0.0, f"causal model: logits at <= {t} changed by {same}"
            else:
                assert same > 1e-6, "bidirectional model: earlier logits did not change"
            assert diff > 1e-6
    log(f"check: {'causal' if c['causal'] else 'bidirectional'} ({c['arch']}, T={T}) ok: logits at <= t "
        f"{'unchanged' if c['causal'] else 'change'} when ids after t change")


def check_dtypes(log):
    # float32 and float64 forward agree on one case (the model supports both dtypes)
    name, seed, cfg = CASES[0]
    c = full_case(cfg)
    ids, targets = make_batch(c, seed + 500)
    m32, m64 = build(c, seed)
    with torch.no_grad():
        l32, g32 = m32(ids, targets)
        l64, g64 = m64(ids, targets)
    d = (g32.double() - g64).abs().max().item()
    assert d < 1e-4, d
    log(f"check: float32 vs float64 logits max |diff| {d:.2e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-check", action="store_true", help="skip the sanity checks")
    args = ap.parse_args()
    torch.set_num_threads(1)

    def log(s):
        print(s, flush=True)

    if not args.no_check:
        for name, seed, cfg in CASES:
            check_finite_differences(cfg, seed, log)
        for name, seed, cfg in CASES:
            check_causality(cfg, seed, log)
        check_dtypes(log)
    for name, seed, cfg in CASES:
        write_case(name, seed, cfg, log)


if __name__ == "__main__":
    main()
