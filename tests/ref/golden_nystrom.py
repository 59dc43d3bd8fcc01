"""Writes the Nyström golden files: tests/golden/lm_nystrom*.safetensors and nystrom_masked.safetensors.

    /usr/bin/python3 tests/ref/golden_nystrom.py            # sanity checks, then write
    /usr/bin/python3 tests/ref/golden_nystrom.py --no-check # write only

The LM cases have golden_lm.py's layout and procedure (write_case): a
bidirectional pre-LN model whose mixer is torch_nystrom.NystromAttention.
nystrom_masked.safetensors is one mixer on its own with a padding mask (the
LM files have none), in the shape of the C tests' rig (d_model 12, 3 heads of
4), computed in float64 from float32 values:

    metadata  entries     "key=value;..." the C test sets (module keys)
              B, T        as text
    x, r                  (B, T, 12): input and upstream gradient
    mask                  (B, T): 1 real, 0 padding
    param.<name>          the mixer's parameters (seqlab's names)
    y                     the output
    dx, grad.<name>       gradients of sum(r * y)

Initial values: golden_lm's shell (N(0, 0.02), LayerNorm 1 + N(0, 0.1) /
N(0, 0.05)); W_q, W_k weights N(0, 0.3) and the convolution N(0, 0.3) from a
second generator, so the attention is far from uniform and the landmark
matrix A well conditioned (at N(0, 0.02) every softmax is nearly flat and A
nearly rank one).

Checks first, in float64: torch.autograd.gradcheck of the mixer (input and
every parameter; approximate path with padding, uneven length, per-matrix
scale, exact path); the exact path equals softmax attention with scale
1/sqrt(d) and masked keys; the pseudo-inverse against torch.linalg.inv on
A = 0.7I + 0.3 11^T/M (||AZ - I||_F < 1e-5 after 6 iterations, falling at
every iteration until float64 rounding); the one-cycle schedule (lr and
beta1) against torch.optim.lr_scheduler.OneCycleLR; the spec's l = 1 oracle (A Z A V ~ A V for a peaked,
well-conditioned A); for every LM case float64 autograd vs central finite
differences, and that a bidirectional model's earlier logits see later ids.
"""

import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_lm  # noqa: E402
import safetensors_io  # noqa: E402
import torch_lm  # noqa: E402
import torch_nystrom as tn  # noqa: E402

SHELL = dict(
    arch="sfsf", norm="pre", activation="gelu_tanh", pos="learned", tie_weight=True, causal=False, mixer="nystrom",
    d_model=16, n_head=2, d_head=8, d_inner=32, batch_size=2,
    optim="adamw", scheduler="cosine", warmup_step=2, max_step=10, lr=0.01, min_lr=0.001,
    weight_decay=0.1, decay_groups="linear,embedding", clip=0.5, beta1=0.9, beta2=0.99, eps=1e-8)

# The seed's pretraining optimizer (tasks-fmm-nystrom.md B.4): AdamW eps 1e-6, weight decay 0.01 on every
# parameter, no clipping, PyTorch's OneCycleLR with beta1 cycled 0.95 -> 0.85 -> 0.95 (pct_start raised from
# 0.01 so that 10 updates see both phases: the rise ends at update 2).
SEED_OPTIMIZER = dict(optim="adamw", scheduler="one_cycle", lr=0.01, pct_start=0.3, div_factor=25.0,
                      final_div_factor=1e4, cycle_momentum=True, base_momentum=0.85, max_momentum=0.95, beta2=0.999,
                      eps=1e-6, weight_decay=0.01, decay_groups="linear,embedding,norm,bias,other", clip=0.0)

CASES = [
    # T 11 with 4 landmarks: rounded up to 12, segments of 3; the conv skip; the batch-wide scale; the seed's optimizer
    ("lm_nystrom", 1101, dict(SHELL, vocab_size=23, tgt_len=11, max_len=11, **SEED_OPTIMIZER, **{
        "mixer.num_landmarks": 4, "mixer.conv_kernel_size": 3, "mixer.pinv_iterations": 6,
        "mixer.pinv_init": "global"})),
    # T 14: segments of 4, the last with two rows of padding; the per-matrix scale, no conv
    ("lm_nystrom_per_matrix", 1102, dict(SHELL, vocab_size=19, tgt_len=14, max_len=14, **{
        "mixer.num_landmarks": 4, "mixer.conv_kernel_size": 0, "mixer.pinv_iterations": 6,
        "mixer.pinv_init": "per_matrix"})),
    # T <= landmarks: the exact path
    ("lm_nystrom_exact", 1103, dict(SHELL, vocab_size=17, tgt_len=7, max_len=7, **{
        "mixer.num_landmarks": 8, "mixer.conv_kernel_size": 5, "mixer.pinv_iterations": 6,
        "mixer.pinv_init": "global"})),
]

ATTN_STD = 0.3


def init_nystrom(model, seed):
    torch_lm.init_params(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith((".W_q.weight", ".W_k.weight", ".conv.weight")):
                p.copy_(ATTN_STD * torch.randn(p.shape, generator=g, dtype=torch.float32))


# ---------------------------------------------------------------- checks

def mixer(keys, dtype, seed):
    c = dict(d_model=12, n_head=3, d_head=4, **keys)
    m = tn.NystromAttention(c)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=torch.float32))
    return m.to(dtype)


def prefix_mask(lengths, T, dtype):
    return torch.tensor([[1.0 if t < n else 0.0 for t in range(T)] for n in lengths], dtype=dtype)


def check_gradients(log):
    cases = [("approximate, padding", {"mixer.num_landmarks": 4, "mixer.conv_kernel_size": 5}, 32, [32, 27]),
             ("uneven T 10, per matrix", {"mixer.num_landmarks": 4, "mixer.pinv_init": "per_matrix"}, 10, [10, 7]),
             ("exact path", {"mixer.num_landmarks": 8, "mixer.conv_kernel_size": 3}, 7, [7, 5])]
    for label, keys, T, lengths in cases:
        m = mixer(keys, torch.float64, 3)
        x = torch.randn(2, T, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(4), requires_grad=True)
        mask = prefix_mask(lengths, T, torch.float64)
        names = [n for n, _ in m.named_parameters()]

        def f(x, *params):
            out = torch.nn.utils.stateless.functional_call(m, dict(zip(names, params)), (x, mask))
            return out

        assert torch.autograd.gradcheck(f, (x, *[p.detach().requires_grad_() for p in m.parameters()]),
                                        eps=1e-6, atol=1e-6, rtol=1e-5)
        log(f"check: gradcheck of the mixer ({label}) ok")


def check_exact_is_softmax(log):
    g = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(2, 3, 7, 4, dtype=torch.float64, generator=g) for _ in range(3))
    mask = prefix_mask([7, 4], 7, torch.float64)
    got = tn.nystrom_core(q, k, v, mask, M=8)
    qm, km = q * mask[:, None, :, None], k * mask[:, None, :, None]
    s = qm @ km.transpose(-1, -2) / math.sqrt(4) - 1e9 * (1 - mask[:, None, None, :])
    want = torch.softmax(s, dim=-1) @ v
    err = (got - want).abs().max().item()
    assert err < 1e-12, err
    log(f"check: exact path == masked softmax attention, scale 1/sqrt(d) (max diff {err:.1e})")


def check_one_cycle(log):
    """torch_lm.one_cycle against PyTorch's own OneCycleLR (lr and beta1 of AdamW), at the golden case's
    settings, at the seed's pct_start 0.01 (over 50,000 updates: the seed's 500,000 take minutes of PyTorch
    steps) and at a GLUE-like 575 updates with pct_start 0.05 (a phase end between updates)."""
    for total, pct in ((10, 0.3), (50000, 0.01), (575, 0.05)):
        c = torch_lm.full_config(dict(SHELL, **dict(SEED_OPTIMIZER, max_step=total, pct_start=pct, lr=1e-4)))
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.AdamW([p], lr=1e-4, betas=(0.9, 0.999))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-4, total_steps=total, pct_start=pct,
                                                    anneal_strategy="linear", div_factor=25.0, final_div_factor=1e4,
                                                    base_momentum=0.85, max_momentum=0.95)
        worst = 0.0
        probe = set(range(12)) | {int(pct * total) - 1, int(pct * total), total // 2, total - 2, total - 1}
        for s in range(total):
            if s in probe:
                lr, b1 = torch_lm.one_cycle(s, c)
                g = opt.param_groups[0]
                worst = max(worst, abs(lr - g["lr"]) / g["lr"], abs(b1 - g["betas"][0]))
            opt.step()
            sched.step() if s < total - 1 else None
        assert worst < 1e-12, (total, pct, worst)
    log("check: one_cycle (lr, beta1) == torch.optim.lr_scheduler.OneCycleLR at 10, 50,000 and 575 updates")


def check_pinv(log):
    M = 16
    A = (0.7 * torch.eye(M, dtype=torch.float64) + 0.3 / M)[None, None]
    Z, iterates = tn.iterative_pinv(A, 6, per_matrix=False)
    eye = torch.eye(M, dtype=torch.float64)
    res = [torch.linalg.norm(A[0, 0] @ Zk[0, 0] - eye).item() for Zk in iterates]
    assert all(b < a or a < 1e-12 for a, b in zip(res, res[1:])), res  # falls until float64 rounding
    assert res[-1] < 1e-5, res
    inv_err = (Z[0, 0] - torch.linalg.inv(A[0, 0])).abs().max().item()
    log(f"check: pinv of 0.7I + 0.3/M: ||AZ_k - I|| {', '.join(f'{r:.1e}' for r in res)}; |Z - inv(A)| {inv_err:.1e}")
    # l = 1: F = A = Bm = softmax(q k^T), X = A pinv(A) A V ~ A V
    g = torch.Generator().manual_seed(6)
    q, k, v = (2.0 * torch.randn(1, 1, 16, 64, dtype=torch.float64, generator=g) for _ in range(3))
    A = torch.softmax(q @ k.transpose(-1, -2) / 8.0, dim=-1)
    Z, _ = tn.iterative_pinv(A, 6, per_matrix=False)
    r = torch.linalg.norm(A[0, 0] @ Z[0, 0] - torch.eye(16, dtype=torch.float64)).item()
    if r < 1e-4:
        rel = (torch.linalg.norm(A @ Z @ A @ v - A @ v) / torch.linalg.norm(A @ v)).item()
        assert rel < 1e-3, rel
        log(f"check: l = 1 oracle: ||A Z A V - A V|| / ||A V|| = {rel:.1e} (||AZ - I|| {r:.1e})")
    else:
        log(f"check: l = 1 oracle skipped, A ill-conditioned (||AZ - I|| {r:.1e})")


# ---------------------------------------------------------------- the masked mixer file

def f32(t):
    return t.detach().to(torch.float32).numpy()


def write_masked(log):
    B, T, lengths = 2, 10, [10, 6]
    entries = "mixer.num_landmarks=4;mixer.conv_kernel_size=5;mixer.pinv_init=global"
    keys = {k: (int(v) if v.isdigit() else v) for k, v in (e.split("=") for e in entries.split(";"))}
    m32 = mixer(keys, torch.float32, 7)
    m64 = tn.NystromAttention(dict(d_model=12, n_head=3, d_head=4, **keys)).to(torch.float64)
    m64.load_state_dict({k: v.double() for k, v in m32.state_dict().items()})
    g = torch.Generator().manual_seed(8)
    x = torch.randn(B, T, 12, generator=g, dtype=torch.float32)
    r = torch.randn(B, T, 12, generator=g, dtype=torch.float32)
    mask = prefix_mask(lengths, T, torch.float32)
    x64 = x.double().requires_grad_()
    y = m64(x64, mask.double())
    (y * r.double()).sum().backward()
    tensors = {"x": f32(x), "r": f32(r), "mask": f32(mask), "y": f32(y), "dx": f32(x64.grad)}
    for n, p in m32.named_parameters():
        tensors[f"param.{n}"] = f32(p)
    for n, p in m64.named_parameters():
        tensors[f"grad.{n}"] = f32(p.grad)
    path = os.path.join(golden_lm.OUT_DIR, "nystrom_masked.safetensors")
    safetensors_io.save(path, tensors, {"entries": entries, "B": str(B), "T": str(T)})
    log(f"nystrom_masked: B={B} T={T} lengths {lengths}; wrote {os.path.relpath(path, golden_lm.ROOT)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-check", action="store_true", help="skip the sanity checks")
    args = ap.parse_args()
    torch.set_num_threads(1)

    def log(s):
        print(s, flush=True)

    if not args.no_check:
        check_gradients(log)
        check_exact_is_softmax(log)
        check_one_cycle(log)
        check_pinv(log)
        for name, seed, cfg in CASES:
            golden_lm.check_finite_differences(cfg, seed, log, init=init_nystrom)
            golden_lm.check_causality(cfg, seed, log, init=init_nystrom)
    for name, seed, cfg in CASES:
        golden_lm.write_case(name, seed, cfg, log, init=init_nystrom)
    write_masked(log)


if __name__ == "__main__":
    main()
