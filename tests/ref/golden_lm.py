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
not depend on ids after t (and that a bidirectional one's do); for the FMM
family (torch_mixers.py) also, per mixer variant, gradcheck and causality, and
the spec's identities (linear attention: quadratic form == running sums; band
with diag_size 1 == v and diag_size >= T == softmax; fmm mode 4 == softmax
with remapped weights; mode 2 with w_near = 0 == linear; the cosine_txl lr).
"""

import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import torch_lm  # noqa: E402
import torch_mixers as tm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "tests", "golden")
STEPS = 10

COMMON = dict(mixer="softmax", ffn="mlp", dropout=0.0, dropatt=0.0, init_std=0.02)

# qkv_net.weight of the FMM family cases is drawn N(0, QKV_STD), not N(0, 0.02): at 0.02 q and k
# are so small that elu and elu_flip (and the sum-normalisation) agree to second order, and a
# golden file could not tell the kernels apart. Not a seqlab config key (not in the YAML).
QKV_STD = 0.3

# The FMM trainer's model and optimizer shape (tasks-fmm-nystrom.md A.3-A.6), at test scale.
FMM_TRAINER = dict(
    norm="post", activation="relu", pos="sinusoidal_reversed", emb_scale="sqrt_d", tie_weight=True, causal=True,
    optim="adam", scheduler="cosine_txl", warmup_first_step_full_lr=True, warmup_step=3, max_step=12, lr=0.005,
    min_lr=0.0, weight_decay=0.0, decay_groups="linear", clip=0.25, beta1=0.9, beta2=0.999, eps=1e-8,
    qkv_std=QKV_STD)

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
    # The FMMformer family (torch_mixers.py). FMM trainer shape: post-LN, ReLU, reversed sinusoidal
    # positions, embedding x sqrt(d_model), tied head, plain Adam, Transformer-XL cosine with the
    # first-update quirk, clip 0.25 (tasks-fmm-nystrom.md A.3-A.6). linear_chunk is small and does
    # not divide T, so the C code crosses chunk boundaries and ends on a short chunk.
    ("lm_fmm_linear", 1004, dict(
        FMM_TRAINER, mixer="linear", linear_chunk=4,
        arch="sfsf", vocab_size=23, d_model=16, n_head=2, d_head=8, d_inner=32, batch_size=2, tgt_len=11, max_len=16)),
    ("lm_fmm_band", 1005, dict(
        FMM_TRAINER, mixer="band", diag_size=3,
        arch="sfsf", vocab_size=21, d_model=16, n_head=4, d_head=4, d_inner=32, batch_size=2, tgt_len=10, max_len=10)),
    ("lm_band_bidir", 1006, dict(
        mixer="band", diag_size=3, qkv_std=QKV_STD,
        arch="sf", norm="pre", activation="gelu_tanh", pos="learned", tie_weight=False, causal=False,
        vocab_size=25, d_model=16, n_head=2, d_head=8, d_inner=32, batch_size=2, tgt_len=13, max_len=13,
        optim="adamw", scheduler="cosine", warmup_step=2, max_step=10, lr=0.01, min_lr=0.001,
        weight_decay=0.1, decay_groups="linear", clip=0.5, beta1=0.9, beta2=0.99, eps=1e-8)),
    ("lm_fmm_2kernel", 1007, dict(
        FMM_TRAINER, mixer="fmm", sparse_ratio=2.5, kernels="elu,elu_flip", diag_size=3, linear_chunk=5,
        arch="sfsf", vocab_size=23, d_model=16, n_head=2, d_head=8, d_inner=32, batch_size=2, tgt_len=12, max_len=12)),
    ("lm_fmm_mode3", 1008, dict(
        FMM_TRAINER, mixer="fmm", sparse_ratio=3.5, kernels="elu,elu_flip", diag_size=4, linear_chunk=4,
        arch="sfsf", vocab_size=19, d_model=16, n_head=4, d_head=4, d_inner=32, batch_size=2, tgt_len=9, max_len=9)),
    # the FMM seeds' head: adaptive softmax (tied), three tail clusters so every cluster gets targets
    ("lm_fmm_adaptive", 1009, dict(
        FMM_TRAINER, mixer="fmm", sparse_ratio=2.5, kernels="elu", diag_size=3, linear_chunk=4,
        adaptive_softmax=True, cutoffs="6,12,20", arch="sfsf", vocab_size=29, d_model=16, n_head=4, d_head=4,
        d_inner=32, batch_size=3, tgt_len=10, max_len=10)),
    # div_val 2: cluster widths 16, 8, 4, adaptive input embedding, projections (tail ones shared with the input)
    ("lm_adaptive_div2", 1011, dict(
        arch="sf", norm="pre", activation="gelu", pos="learned", tie_weight=True, causal=True, mixer="softmax",
        adaptive_softmax=True, cutoffs="8,16", div_val=2, vocab_size=27, d_model=16, n_head=2, d_head=8, d_inner=32,
        batch_size=2, tgt_len=12, max_len=12, optim="adam", scheduler="constant", warmup_step=0, max_step=10,
        lr=0.01, min_lr=0.0, weight_decay=0.0, decay_groups="linear", clip=1.0, beta1=0.9, beta2=0.999, eps=1e-8)),
    ("lm_adaptive_untied", 1010, dict(
        arch="sf", norm="pre", activation="gelu", pos="learned", tie_weight=False, causal=True, mixer="softmax",
        adaptive_softmax=True, cutoffs="9", vocab_size=23, d_model=16, n_head=2, d_head=8, d_inner=32,
        batch_size=2, tgt_len=12, max_len=12, optim="adamw", scheduler="constant", warmup_step=0, max_step=10,
        lr=0.01, min_lr=0.0, weight_decay=0.1, decay_groups="linear,embedding", clip=1.0, beta1=0.9,
        beta2=0.999, eps=1e-8)),
]

YAML_KEYS = [
    "arch", "n_layer", "mixer", "ffn", "d_model", "n_head", "d_head", "d_inner", "norm", "activation",
    "pos", "tie_weight", "causal", "dropout", "dropatt", "init_std", "max_len",
    "batch_size", "tgt_len", "max_step", "optim", "lr", "min_lr", "warmup_step", "scheduler",
    "beta1", "beta2", "eps", "weight_decay", "decay_groups", "clip",
]
# Written only when a case sets them (so the files of the first cases stay as they were).
YAML_KEYS_IF_SET = [
    "emb_scale", "diag_size", "sparse_ratio", "kernels", "linear_chunk", "warmup_first_step_full_lr",
    "adaptive_softmax", "cutoffs", "div_val", "pct_start", "div_factor", "final_div_factor", "cycle_momentum",
    "base_momentum", "max_momentum",
]


def full_case(cfg):
    c = dict(COMMON)
    c.update(cfg)
    c["n_layer"] = c["arch"].count("s")
    c["_set"] = sorted(cfg)  # the keys the case gives (YAML_KEYS_IF_SET)
    c["_dotted"] = [k for k in cfg if "." in k]  # module keys ("mixer.order"), written last in case order
    return c


def yaml_text(c):
    lines = []
    for k in YAML_KEYS + [k for k in YAML_KEYS_IF_SET if k in c["_set"]] + c["_dotted"]:
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


def build(c, seed, init=None):
    """float32 model with seeded initial values (`init(model, seed)` when
    given, else torch_lm.init_params), and its float64 copy."""
    m32 = torch_lm.LM(c)
    if init is None:
        torch_lm.init_params(m32, seed, qkv_std=c.get("qkv_std"))
    else:
        init(m32, seed)
    m64 = torch_lm.LM(c).to(torch.float64)
    m64.load_state_dict({k: v.double() for k, v in m32.state_dict().items()})
    return m32, m64


def f32(t):
    return t.detach().to(torch.float32).cpu().numpy()


def write_case(name, seed, cfg, log, init=None):
    c = full_case(cfg)
    ids, targets = make_batch(c, seed + 500)
    m32, m64 = build(c, seed, init)
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

def finite_difference_sweep(m, value, seed, per_tensor=4, h=1e-6, what=""):
    """Central differences of value() (the objective's float) against the autograd gradients already
    in m's .grad, at per_tensor random elements of every parameter. Returns (elements, worst relative
    error where |grad| > 1e-4, worst absolute error); raises on a mismatch."""
    g = torch.Generator().manual_seed(seed + 7)
    worst, worst_abs, n = 0.0, 0.0, 0
    with torch.no_grad():
        for pname, p in m.named_parameters():
            flat, gflat = p.view(-1), p.grad.view(-1)
            for i in torch.randperm(flat.numel(), generator=g)[:per_tensor].tolist():
                old = flat[i].item()
                flat[i] = old + h
                lp = value()
                flat[i] = old - h
                lm = value()
                flat[i] = old
                fd = (lp - lm) / (2 * h)
                an = gflat[i].item()
                abs_err = abs(fd - an)
                err = abs_err / max(1e-6, abs(fd) + abs(an))
                worst_abs = max(worst_abs, abs_err)
                if abs(an) > 1e-4:
                    worst = max(worst, err)
                if err > 1e-5 and abs_err > 1e-9:
                    raise AssertionError(f"{what}finite differences: {pname}[{i}] autograd {an:.10g} fd {fd:.10g}")
                n += 1
    return n, worst, worst_abs


def check_finite_differences(cfg, seed, log, per_tensor=4, h=1e-6, init=None):
    c = full_case(cfg)
    ids, targets = make_batch(c, seed + 500)
    _, m = build(c, seed, init)
    m.zero_grad(set_to_none=True)
    loss, _ = m(ids, targets)
    loss.backward()
    _, worst, worst_abs = finite_difference_sweep(m, lambda: m(ids, targets)[0].item(), seed, per_tensor, h)
    log(f"check: finite differences ({c['mixer']}, {c['arch']}, {c['norm']}, {c['activation']}, pos {c['pos']}) "
        f"ok, worst |autograd - fd| {worst_abs:.1e}, worst relative error (|grad| > 1e-4) {worst:.1e}")


def check_causality(cfg, seed, log, init=None):
    c = full_case(cfg)
    ids, _ = make_batch(c, seed + 500)
    _, m = build(c, seed, init)
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
    log(f"check: {'causal' if c['causal'] else 'bidirectional'} ({c['mixer']}, {c['arch']}, T={T}) ok: logits at <= t "
        f"{'unchanged' if c['causal'] else 'change'} when ids after t change")


def check_dtypes(log):
    # float32 and float64 forward agree (the model supports both dtypes): softmax and fmm
    for name, seed, cfg in [CASES[0]] + [case for case in CASES if case[0] == "lm_fmm_mode3"]:
        c = full_case(cfg)
        ids, targets = make_batch(c, seed + 500)
        m32, m64 = build(c, seed)
        with torch.no_grad():
            l32, g32 = m32(ids, targets)
            l64, g64 = m64(ids, targets)
        d = (g32.double() - g64).abs().max().item()
        assert d < 1e-4, d
        log(f"check: float32 vs float64 logits ({c['mixer']}) max |diff| {d:.2e}")


# ------------------------------------------------ sanity checks of the FMM family

def mixer_config(**kw):
    """A small full config for one mixer (float64 checks)."""
    c = dict(d_model=6, n_head=2, d_head=3, causal=True, diag_size=3, mixer="fmm", sparse_ratio=2.5,
             kernels="elu")
    c.update(kw)
    return torch_lm.full_config(c)


def random_mixer(c, seed):
    """FmmAttention in float64 with every parameter drawn N(0, 0.5)
    (kernel_mix around 0.5), so every branch of the blend matters."""
    m = tm.FmmAttention(c).to(torch.float64)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in m.named_parameters():
            z = torch.randn(p.shape, generator=g, dtype=torch.float64)
            p.copy_(0.5 + 0.2 * z if n == "kernel_mix" else 0.5 * z)
    return m


def mixer_variants():
    """(label, config) of every blend mode with one and two kernels, and band both ways."""
    out = []
    for mode in range(6):
        for kernels in ("elu", "elu,elu_flip"):
            if mode == 4 and kernels != "elu":
                continue  # band only: kernels are ignored
            out.append((f"mode {mode} [{kernels}]", mixer_config(sparse_ratio=mode + 0.5, kernels=kernels)))
    out.append(("band bidirectional", mixer_config(mixer="band", causal=False)))
    out.append(("linear", mixer_config(mixer="linear")))
    return out


def check_linear_forms(log):
    # the quadratic masked form equals the spec's running sums S_t, z_t; out_0 = v_0/sqrt(d) up to eps
    g = torch.Generator().manual_seed(31)
    q, k, v = (torch.randn(2, 3, 13, 5, generator=g, dtype=torch.float64) for _ in range(3))
    worst = 0.0
    for kern in tm.KERNELS:
        quad = tm.linear_attention(q, k, v, kern)
        rec = tm.linear_attention_recurrent(q, k, v, kern)
        worst = max(worst, (quad - rec).abs().max().item())
        a = tm.sum_normalised(tm.feature_map(q[:, :, 0], kern))
        b = tm.sum_normalised(tm.feature_map(k[:, :, 0], kern))
        ab = (a * b).sum(-1, keepdim=True)
        out0 = v[:, :, 0] / math.sqrt(5) * ab / (ab + tm.LINEAR_EPS)
        assert (quad[:, :, 0] - out0).abs().max().item() < 1e-14
        x = torch.linspace(-3, 3, 61, dtype=torch.float64)
        assert torch.equal(tm.feature_map(x, "elu_flip"), torch.nn.functional.elu(-x) + 1)
    assert worst < 1e-12, worst
    log(f"check: linear attention quadratic form == running sums (both kernels), max |diff| {worst:.1e}; "
        f"out_0 = v_0/sqrt(d) * ab/(ab+eps)")


def check_band_special_cases(log):
    # diag_size 1: output = v exactly; diag_size >= T: the (causal or full) softmax
    g = torch.Generator().manual_seed(32)
    q, k, v = (torch.randn(2, 3, 9, 4, generator=g, dtype=torch.float64) for _ in range(3))
    for causal in (True, False):
        assert torch.equal(tm.band_attention(q, k, v, 1, causal), v)
        s = torch.matmul(q, k.transpose(-1, -2)) / 2.0
        if causal:
            s = s.masked_fill(torch.ones(9, 9, dtype=torch.bool).triu(1), float("-inf"))
        want = torch.matmul(torch.softmax(s, -1), v)
        d = (tm.band_attention(q, k, v, 9, causal) - want).abs().max().item()
        assert d < 1e-14, d
    mask = tm.band_mask(7, 3, True)
    assert mask.sum(1).tolist() == [1, 2, 3, 3, 3, 3, 3]
    assert tm.band_mask(7, 3, False).sum(1).tolist() == [3, 4, 5, 5, 5, 4, 3]
    log("check: band diag_size 1 == v; diag_size >= T == softmax (causal and bidirectional); keys per row ok")


def check_fmm_band_is_softmax(log):
    # fmm mode 4 with diag_size >= T is softmax attention once qkv_net's interleaved rows are mapped
    # to q_net and kv_net (K block, then V block)
    T = 8
    for causal in (True, False):
        c = mixer_config(sparse_ratio=4.5, diag_size=T, causal=causal)
        f = random_mixer(c, 41)
        H, d = c["n_head"], c["d_head"]
        att = torch_lm.Attention(c["d_model"], H, d, causal, 0.0).to(torch.float64)
        W = f.qkv_net.weight.detach().reshape(H, 3, d, c["d_model"])  # (head, q|k|v, feature, C)
        with torch.no_grad():
            att.q_net.weight.copy_(W[:, 0].reshape(H * d, -1))
            att.kv_net.weight.copy_(torch.cat([W[:, 1].reshape(H * d, -1), W[:, 2].reshape(H * d, -1)]))
            att.o_net.weight.copy_(f.o_net.weight)
        x = torch.randn(2, T, c["d_model"], generator=torch.Generator().manual_seed(42), dtype=torch.float64)
        with torch.no_grad():
            diff = (f(x) - att(x)).abs().max().item()
        assert diff < 1e-13, diff
    log("check: fmm mode 4, diag_size >= T == softmax attention with remapped weights (causal, bidirectional)")


def check_fmm_special_cases(log):
    # mode 2 with w_near = 0 is linear attention (1 kernel) or 0.5 (L1 + L2) (2 kernels, = mode 5);
    # two elu kernels with fixed weights 0.5 are one elu kernel
    x = torch.randn(2, 9, 6, generator=torch.Generator().manual_seed(43), dtype=torch.float64)

    def same_weights(dst, src):
        with torch.no_grad():
            dst.qkv_net.weight.copy_(src.qkv_net.weight)
            dst.o_net.weight.copy_(src.o_net.weight)
        return dst

    pairs = [
        ("mode 2, w_near = 0 == linear", mixer_config(sparse_ratio=2.5), mixer_config(mixer="linear")),
        ("mode 2 [elu,elu_flip], w_near = 0 == mode 5", mixer_config(sparse_ratio=2.5, kernels="elu,elu_flip"),
         mixer_config(sparse_ratio=5.5, kernels="elu,elu_flip")),
        ("mode 5 [elu,elu] == linear", mixer_config(sparse_ratio=7.0, kernels="elu,elu"),
         mixer_config(mixer="linear")),
        ("band == fmm mode 4", mixer_config(mixer="band"), mixer_config(sparse_ratio=4.0)),
    ]
    for label, ca, cb in pairs:
        a = random_mixer(ca, 44)
        if a.w_near is not None:
            with torch.no_grad():
                a.w_near.zero_()
        b = same_weights(random_mixer(cb, 45), a)
        with torch.no_grad():
            diff = (a(x) - b(x)).abs().max().item()
        assert diff < 1e-15, (label, diff)
    # and w_near does matter when it is not 0
    a = random_mixer(mixer_config(sparse_ratio=2.5), 46)
    b = same_weights(random_mixer(mixer_config(mixer="linear"), 47), a)
    with torch.no_grad():
        assert (a(x) - b(x)).abs().max().item() > 1e-3
    log("check: " + "; ".join(p[0] for p in pairs) + " (max |diff| < 1e-15)")


def mixer_function(m):
    """(f, inputs): the mixer as a function of (x, its parameters), for gradcheck."""
    names = [n for n, _ in m.named_parameters()]

    def f(x, *params):
        p = dict(zip(names, params))
        q, k, v = tm.split_qkv(torch.nn.functional.linear(x, p["qkv_net.weight"]), m.n_head, m.d_head)
        a = tm.fmm_core(q, k, v, m.mode, m.kernels, m.diag_size, m.causal,
                        p.get("w_near"), p.get("w_far"), p.get("kernel_mix"))
        return torch.nn.functional.linear(a, p["o_net.weight"])

    return f, [p.detach().clone().requires_grad_(True) for p in m.parameters()]


def check_mixer_gradients(log):
    # float64 autograd vs finite differences, every input and parameter of every mixer variant
    x = torch.randn(2, 7, 6, generator=torch.Generator().manual_seed(51), dtype=torch.float64)
    labels = []
    for i, (label, c) in enumerate(mixer_variants()):
        m = random_mixer(c, 52 + i)
        f, params = mixer_function(m)
        with torch.no_grad():
            assert (f(x, *params) - m(x)).abs().max().item() == 0.0
        xi = x.clone().requires_grad_(True)
        assert torch.autograd.gradcheck(f, [xi] + params, eps=1e-6, atol=1e-8, rtol=1e-6), label
        labels.append(label)
    log(f"check: mixer gradcheck (float64, atol 1e-8, rtol 1e-6) ok for {len(labels)} variants: {'; '.join(labels)}")


def check_mixer_causality(log):
    # causal variants: outputs at <= t bit-identical when inputs after t change
    g = torch.Generator().manual_seed(61)
    x = torch.randn(2, 10, 6, generator=g, dtype=torch.float64)
    n = 0
    for i, (label, c) in enumerate(mixer_variants()):
        m = random_mixer(c, 62 + i)
        with torch.no_grad():
            base = m(x)
            for t in (0, 4, 8):
                x2 = x.clone()
                x2[:, t + 1:] += torch.randn(2, 9 - t, 6, generator=g, dtype=torch.float64)
                y = m(x2)
                same = (y[:, :t + 1] - base[:, :t + 1]).abs().max().item()
                if c["causal"]:
                    assert same == 0.0, (label, t, same)
                else:
                    assert same > 1e-6, (label, t)
                assert (y[:, t + 1:] - base[:, t + 1:]).abs().max().item() > 1e-6
        n += 1
    log(f"check: mixer causality ok for {n} variants (bidirectional band: earlier outputs do change)")


def check_cosine_txl(log):
    # the update-1 quirk and the unshifted cosine of tasks-fmm-nystrom.md A.6, at the seed values
    c = dict(scheduler="cosine_txl", lr=2.5e-4, warmup_step=2000, max_step=500000, min_lr=0.0, d_model=128, n_head=8)
    lr = lambda s, full: torch_lm.lr_at(s, dict(c, warmup_first_step_full_lr=full))  # noqa: E731
    assert lr(0, True) == 2.5e-4 and lr(0, False) == 2.5e-4 / 2000
    assert lr(1, True) == 2.5e-4 / 2000 and lr(1999, True) == 2.5e-4 * 1999 / 2000
    assert abs(lr(2000, True) - 0.5 * 2.5e-4 * (1 + math.cos(math.pi * 2000 / 500000))) < 1e-20
    assert lr(500000, True) == 0.0 and lr(600000, True) == 0.0
    log("check: cosine_txl: update 0 at the full lr (quirk), k/warmup * lr after k updates, "
        "cosine over all of max_step")


def family_command_line(doc, search_what, seeds, search, cases):
    """The command line of the family scripts (golden_mega, golden_moe, golden_span): --no-check, --only
    CASE,..., --search CASE --seeds lo:hi (which prints `search_what` per seed). Returns (args, log,
    the cases --only keeps), or None once a --search has run."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-check", action="store_true", help="skip the checks")
    ap.add_argument("--only", default="", help="comma list of case names to write (default: all)")
    ap.add_argument("--search", default="", help=f"print the {search_what} of a case for --seeds")
    ap.add_argument("--seeds", default=seeds, help="lo:hi for --search")
    args = ap.parse_args()
    torch.set_num_threads(1)

    def log(s):
        print(s, flush=True)

    if args.search:
        lo, hi = (int(v) for v in args.seeds.split(":"))
        search(args.search, range(lo, hi), log)
        return None
    only = set(s for s in args.only.split(",") if s)
    return args, log, [case for case in cases if not only or case[0] in only]


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
        check_linear_forms(log)
        check_band_special_cases(log)
        check_fmm_band_is_softmax(log)
        check_fmm_special_cases(log)
        check_mixer_gradients(log)
        check_mixer_causality(log)
        check_cosine_txl(log)
    for name, seed, cfg in CASES:
        write_case(name, seed, cfg, log)


if __name__ == "__main__":
    main()
