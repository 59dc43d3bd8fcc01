"""Writes the S5 / Hyena / Hyena-S5 golden files tests/golden/lm_s5*.safetensors, lm_hyena*.safetensors.

    /usr/bin/python3 tests/ref/golden_ssm.py            # sanity checks, then write
    /usr/bin/python3 tests/ref/golden_ssm.py --no-check # write only

Same file layout and procedure as golden_lm.py (whose write_case it reuses):
the model is torch_lm.LM with the mixers of torch_ssm.py, the module keys in
the config YAML as seqlab's dotted section keys (mixer.ssm_size: 8, ...).
Initial parameters (float32, seeded): the shell as golden_lm (N(0, 0.02),
LayerNorm 1 + N(0, 0.1) / N(0, 0.05)); then the mixers' from a second
generator, at sizes that keep the models well conditioned (see init_ssm).

Checks first, in float64: torch.autograd.gradcheck of S5 (every activation,
ZOH and bilinear, conj_sym on/off, bidirectional, the eigenvalue clip with a
clipped entry, step_rescale) and of Hyena (implicit filter of order 2 and 3,
with and without short convolution, filter bias and window; S5 filters;
identity), w.r.t. the input and every parameter; causality of every causal
variant; the spec's closed forms (identity filter without short convolution:
out = W_out(x_0 ⊙ x_1 [⊙ x_2] ⊙ v) + b_out; conj_sym equivalence T-S5-4; the
kernel view T-S5-2; bidirectional = reversed forward scan T-S5-7; direct ==
FFT long convolution; an impulse filter is the identity; the short
convolution == torch's Conv1d padded on the left; the positional features and
window values of T-HY-4); and for every golden case float64 autograd vs
central finite differences and causality of the whole model.
"""

import argparse
import math
import os
import sys

import torch
from torch.nn.utils.stateless import functional_call

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_lm  # noqa: E402
import torch_lm  # noqa: E402
import torch_ssm as ts  # noqa: E402

# The trunk of every case: 2 layers "sfsf", pre-norm, no positions, tied head, tanh-GELU MLP,
# AdamW with a cosine schedule, clipping on. n_head / d_head are unused by these mixers.
SHELL = dict(
    arch="sfsf", norm="pre", activation="gelu_tanh", pos="none", tie_weight=True, causal=True,
    d_model=16, n_head=2, d_head=8, d_inner=32, batch_size=2,
    optim="adamw", scheduler="cosine", warmup_step=2, max_step=10, lr=0.01, min_lr=0.001,
    weight_decay=0.1, decay_groups="linear,embedding", clip=0.5, beta1=0.9, beta2=0.99, eps=1e-8)


def s5_keys(prefix, **kw):
    """Every S5 key the reference depends on, as dotted config keys."""
    k = dict(ssm_size=8, blocks=2, conj_sym=True, discretization="zoh", activation="half_glu2", gelu="exact",
             clip_eigs=True, step_rescale=1.0, bidirectional=False)
    k.update(kw)
    return {prefix + n: v for n, v in k.items()}


def hyena_keys(**kw):
    k = {"order": 2, "short_filter_order": 3, "drop_rate": 0.0, "filter.name": "implicit", "filter_order": 8,
         "emb_dim": 5, "num_inner_mlps": 2, "filter_bias": True, "modulate": True, "fast_decay_pct": 0.3,
         "slow_decay_pct": 1.5, "target": 0.01, "shift": 0.0}
    k.update(kw)
    return {"mixer." + n: v for n, v in k.items()}


CASES = [
    # S5 alone: P_full 8 in 2 blocks of 4, conj_sym (4 stored states), ZOH, half_glu2, clip on; one
    # Lambda_re per layer starts above -1e-4 (clip_probe), so the clip is active and its gradient 0
    ("lm_s5", 2001, dict(
        SHELL, mixer="s5", vocab_size=20, tgt_len=24, max_len=24, clip_probe=True, **s5_keys("mixer."))),
    # bidirectional (not causal), bilinear, full_glu with the tanh GELU, all 8 states stored, step_rescale 0.8;
    # decay also on the GLU biases
    ("lm_s5_bidir_bilinear", 2002, dict(
        SHELL, mixer="s5", causal=False, vocab_size=21, tgt_len=16, max_len=16,
        decay_groups="linear,embedding,bias",
        **s5_keys("mixer.", conj_sym=False, discretization="bilinear", activation="full_glu", gelu="tanh",
                  clip_eigs=False, step_rescale=0.8, bidirectional=True))),
    # implicit filter, order 2; T = 100 > 96 (FFTCONV_DIRECT_MAX): seqlab's FFT path
    ("lm_hyena", 2003, dict(
        SHELL, mixer="hyena", vocab_size=19, tgt_len=100, max_len=100, **hyena_keys(l_max=100))),
    # order 3 (gates x_2 then x_1, interleaved filter columns); l_max 24 > max_len 20: features of 24, sliced
    ("lm_hyena_order3", 2004, dict(
        SHELL, mixer="hyena", vocab_size=20, tgt_len=20, max_len=20, **hyena_keys(order=3, l_max=24))),
    # Hyena-S5 of order 3 (two S5 filters, filter.0 and filter.1), the associative-recall filter shape;
    # AdamW decays every group, as that config does
    ("lm_hyena_s5", 2005, dict(
        SHELL, mixer="hyena", vocab_size=20, tgt_len=24, max_len=24,
        decay_groups="linear,embedding,norm,bias,other",
        **hyena_keys(**{"order": 3, "filter.name": "s5"}),
        **s5_keys("mixer.filter.", ssm_size=4, blocks=1))),
]
for _, _, _c in CASES:  # the implicit filter's keys mean nothing to an S5 filter: leave them out
    if _c.get("mixer.filter.name") == "s5":
        for _k in ("filter_order", "emb_dim", "num_inner_mlps", "filter_bias", "modulate", "fast_decay_pct",
                   "slow_decay_pct", "target", "shift"):
            del _c["mixer." + _k]

MIXER_STD = 0.3  # Hyena weights and biases, S5 GLU weights and biases
S5_BC_STD = 0.5  # B, C and the S5 feed-through D
CLIP_PROBE = 0.05  # a Lambda_re above -1e-4: clipped, zero gradient


def init_ssm(model, seed):
    """torch_lm.init_params for the shell, then the mixer parameters (float32) from a second seeded
    generator: Lambda_re U[-0.9, -0.1], Lambda_im N(0, 1), log_step U[ln 0.01, ln 0.5], B, C, D
    N(0, 0.5); implicit_filter.freq 1 + N(0, 0.2) (not 10: smooth sines), filter_bias N(0, 1); every
    other mixer weight and bias N(0, 0.3). clip_probe: Lambda_re[0] of each S5 = 0.05."""
    torch_lm.init_params(model, seed)
    g = torch.Generator().manual_seed(seed + 77)
    probe = model.c.get("clip_probe", False)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".mixer." not in name:
                continue
            leaf = name.rsplit(".", 1)[1]
            shape = p.shape
            if leaf == "Lambda_re":
                v = -0.9 + 0.8 * torch.rand(shape, generator=g)
                if probe:
                    v[0] = CLIP_PROBE
            elif leaf == "Lambda_im":
                v = torch.randn(shape, generator=g)
            elif leaf == "log_step":
                lo, hi = math.log(0.01), math.log(0.5)
                v = lo + (hi - lo) * torch.rand(shape, generator=g)
            elif leaf in ("B", "C", "D"):
                v = S5_BC_STD * torch.randn(shape, generator=g)
            elif leaf == "freq":
                v = 1.0 + 0.2 * torch.randn(shape, generator=g)
            elif leaf == "filter_bias":
                v = torch.randn(shape, generator=g)
            else:
                v = MIXER_STD * torch.randn(shape, generator=g)
            p.copy_(v.to(p.dtype))


# ------------------------------------------------------------ module checks (float64)

def randomize(m, seed, clip_probe=False):
    """Every parameter of a float64 module drawn like init_ssm (N(0, 0.5) for the rest)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "Lambda_re":
                v = -0.9 + 0.8 * torch.rand(p.shape, generator=g, dtype=torch.float64)
                if clip_probe:
                    v[0] = CLIP_PROBE
            elif leaf == "log_step":
                v = math.log(0.01) + math.log(50.0) * torch.rand(p.shape, generator=g, dtype=torch.float64)
            elif leaf == "freq":
                v = 1.0 + 0.2 * torch.randn(p.shape, generator=g, dtype=torch.float64)
            elif leaf in ("Lambda_im", "filter_bias"):
                v = torch.randn(p.shape, generator=g, dtype=torch.float64)
            else:
                v = 0.5 * torch.randn(p.shape, generator=g, dtype=torch.float64)
            p.copy_(v)
    return m


def s5_variants(H=3, P=2):
    out = []
    for act in ts.S5_ACTIVATIONS:
        for disc in ("zoh", "bilinear"):
            out.append((f"S5 {act} {disc}", dict(H=H, P=P, activation=act, discretization=disc), False))
    out += [
        ("S5 half_glu2 conj_sym off", dict(H=H, P=2 * P, conj_sym=False, activation="half_glu2"), False),
        ("S5 gelu tanh, step_rescale 0.7", dict(H=H, P=P, activation="gelu", gelu="tanh", step_rescale=0.7), False),
        ("S5 clip_eigs with a clipped entry", dict(H=H, P=P, activation="half_glu2", clip_eigs=True), True),
        ("S5 bidirectional full_glu bilinear", dict(H=H, P=P, bidirectional=True, conj_sym=False,
                                                    activation="full_glu", discretization="bilinear"), False),
        ("S5 bidirectional none zoh", dict(H=H, P=P, bidirectional=True, activation="none"), False),
    ]
    return out


def hyena_variants(D=3, T=6):
    s5a = dict(P=2, activation="half_glu2", clip_eigs=True)
    return [
        ("Hyena implicit N=2", dict(D=D, order=2, filter_order=4, l_max=T + 2)),
        ("Hyena implicit N=3", dict(D=D, order=3, filter_order=4, l_max=T)),
        ("Hyena implicit N=3, no short conv, no bias, no window", dict(
            D=D, order=3, filter_order=4, l_max=T, short_filter_order=0, filter_bias=False, modulate=False)),
        ("Hyena implicit N=2, shift 0.1, 1 inner MLP", dict(D=D, order=2, filter_order=4, l_max=T, shift=0.1,
                                                           num_inner_mlps=1)),
        ("Hyena-S5 N=2", dict(D=D, order=2, filter="s5", s5=s5a)),
        ("Hyena-S5 N=3 gelu bilinear", dict(D=D, order=3, filter="s5", s5=dict(P=2, activation="gelu",
                                                                                discretization="bilinear"))),
        ("Hyena identity N=3", dict(D=D, order=3, filter="identity")),
    ]


def build_s5(kw):
    kw = dict(kw)
    return ts.S5(kw.pop("H"), kw.pop("P"), **kw).to(torch.float64)


def build_hyena(kw):
    kw = dict(kw)
    return ts.Hyena(kw.pop("D"), **kw).to(torch.float64)


def gradcheck_module(m, x, label):
    names = [n for n, _ in m.named_parameters()]

    def f(u, *params):
        return functional_call(m, dict(zip(names, params)), (u,))

    params = [p.detach().clone().requires_grad_(True) for p in m.parameters()]
    xi = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, [xi] + params, eps=1e-6, atol=1e-8, rtol=1e-6), label
    return len(names)


def check_module_gradients(log):
    g = torch.Generator().manual_seed(71)
    labels = []
    for i, (label, kw, probe) in enumerate(s5_variants()):
        m = randomize(build_s5(kw), 100 + i, clip_probe=probe)
        x = torch.randn(2, 5, kw["H"], generator=g, dtype=torch.float64)
        gradcheck_module(m, x, label)
        if probe:  # the clipped entry gets no gradient (T-S5-9)
            m.zero_grad()
            m(x).pow(2).sum().backward()
            assert m.Lambda_re.grad[0].item() == 0.0 and m.Lambda_re.grad[1].item() != 0.0
        labels.append(label)
    for i, (label, kw) in enumerate(hyena_variants()):
        m = randomize(build_hyena(kw), 200 + i)
        x = torch.randn(2, 6, kw["D"], generator=g, dtype=torch.float64)
        gradcheck_module(m, x, label)
        labels.append(label)
    log(f"check: gradcheck (float64, input and every parameter, atol 1e-8, rtol 1e-6) ok for {len(labels)} "
        f"modules: {'; '.join(labels)}; a clipped Lambda_re has gradient exactly 0")


def check_module_causality(log):
    g = torch.Generator().manual_seed(72)
    n = 0
    cases = [(label, build_s5(kw), kw["H"], probe) for label, kw, probe in s5_variants()]
    cases += [(label, build_hyena(kw), kw["D"], False) for label, kw in hyena_variants(T=10)]
    for i, (label, m, H, probe) in enumerate(cases):
        randomize(m, 300 + i, clip_probe=probe)
        bidir = isinstance(m, ts.S5) and m.bidirectional
        x = torch.randn(2, 10, H, generator=g, dtype=torch.float64)
        with torch.no_grad():
            base = m(x)
            for t in (0, 4, 8):
                x2 = x.clone()
                x2[:, t + 1:] += torch.randn(2, 9 - t, H, generator=g, dtype=torch.float64)
                y = m(x2)
                same = (y[:, :t + 1] - base[:, :t + 1]).abs().max().item()
                if bidir:
                    assert same > 1e-6, (label, t)
                else:
                    assert same == 0.0, (label, t, same)
                assert (y[:, t + 1:] - base[:, t + 1:]).abs().max().item() > 1e-6, (label, t)
        n += 1
    log(f"check: causality ok for {n} modules (outputs at <= t bit-identical when inputs after t change; "
        f"bidirectional S5: they do change)")


def check_identity_closed_form(log):
    # T-HS-2: identity filter, no short convolution: out = W_out(x_0 ⊙ x_1 [⊙ x_2] ⊙ v) + b_out
    g = torch.Generator().manual_seed(73)
    for N in (2, 3):
        m = randomize(build_hyena(dict(D=4, order=N, filter="identity", short_filter_order=0)), 400 + N)
        x = torch.randn(2, 7, 4, generator=g, dtype=torch.float64)
        with torch.no_grad():
            z = x @ m.in_proj.weight.t() + m.in_proj.bias
            prod = z[..., :4]
            for i in range(1, N + 1):
                prod = prod * z[..., 4 * i:4 * (i + 1)]
            want = prod @ m.out_proj.weight.t() + m.out_proj.bias
            d = (m(x) - want).abs().max().item()
        assert d < 1e-14, (N, d)
    log("check: identity filter without short conv == W_out(x_0 ⊙ x_1 [⊙ x_2] ⊙ v) + b_out (N = 2, 3)")


def check_conj_sym(log):
    # T-S5-4: P stored states with c = 2 == 2P states [Λ, conj Λ], [B̃; conj B̃], [C̃, conj C̃], c = 1
    g = torch.Generator().manual_seed(74)
    worst = 0.0
    for disc in ("zoh", "bilinear"):
        for act, bidir in (("none", False), ("half_glu2", False), ("full_glu", True)):
            kw = dict(H=3, P=3, activation=act, discretization=disc, clip_eigs=True, bidirectional=bidir)
            a = randomize(build_s5(kw), 500, clip_probe=True)
            b = build_s5(dict(kw, P=6, conj_sym=False))
            P = 3
            with torch.no_grad():
                b.Lambda_re.copy_(torch.cat([a.Lambda_re, a.Lambda_re]))
                b.Lambda_im.copy_(torch.cat([a.Lambda_im, -a.Lambda_im]))
                b.log_step.copy_(torch.cat([a.log_step, a.log_step]))
                conjB = a.B.clone()
                conjB[..., 1] = -conjB[..., 1]
                b.B.copy_(torch.cat([a.B, conjB]))
                conjC = a.C.clone()
                conjC[..., 1] = -conjC[..., 1]
                halves = [a.C[:, :P], conjC[:, :P]]
                if bidir:
                    halves += [a.C[:, P:], conjC[:, P:]]
                b.C.copy_(torch.cat(halves, dim=1))
                b.D.copy_(a.D)
                for lin in ("out1", "out2"):
                    if hasattr(a, lin):
                        getattr(b, lin).load_state_dict(getattr(a, lin).state_dict())
                x = torch.randn(2, 9, 3, generator=g, dtype=torch.float64)
                worst = max(worst, (a(x) - b(x)).abs().max().item())
    assert worst < 1e-13, worst
    log(f"check: conj_sym (P states, c = 2) == 2P states with the conjugates (c = 1): zoh, bilinear, "
        f"unidirectional and bidirectional, with a clipped eigenvalue; max |diff| {worst:.1e}")


def check_kernel_view(log):
    # T-S5-2: y_k = sum_{s=0}^{k-1} K_s u_{k-s} + D u_k, K_s = c Re(C̃ diag(Λ̄^s) B̄) (1-based k)
    g = torch.Generator().manual_seed(75)
    for conj in (True, False):
        m = randomize(build_s5(dict(H=3, P=4, conj_sym=conj, activation="none")), 600)
        x = torch.randn(2, 11, 3, generator=g, dtype=torch.float64)
        with torch.no_grad():
            abar, bbar = m.discretize()
            ct = torch.complex(m.C[..., 0], m.C[..., 1])
            c = 2.0 if conj else 1.0
            T = x.shape[1]
            K = [c * (ct @ torch.diag(abar ** s) @ bbar).real for s in range(T)]
            want = torch.zeros_like(x)
            for t in range(T):
                want[:, t] = m.D * x[:, t]
                for s in range(t + 1):
                    want[:, t] += x[:, t - s] @ K[s].t()
            d = (m(x) - want).abs().max().item()
        assert d < 1e-12, d
    log("check: S5 == its kernel view sum_s K_s u_{k-s} + D u_k (conj_sym on and off)")


def check_bidirectional(log):
    # T-S5-7: the reverse scan on u == the forward scan on reversed u, reversed back
    g = torch.Generator().manual_seed(76)
    for disc in ("zoh", "bilinear"):
        bi = randomize(build_s5(dict(H=3, P=2, bidirectional=True, activation="none", discretization=disc)), 700)
        uni = build_s5(dict(H=3, P=2, activation="none", discretization=disc))
        with torch.no_grad():
            for n in ("Lambda_re", "Lambda_im", "B", "log_step"):
                getattr(uni, n).copy_(getattr(bi, n))
            uni.C.copy_(bi.C[:, 2:])
            uni.D.zero_()
            only_back = build_s5(dict(H=3, P=2, bidirectional=True, activation="none", discretization=disc))
            only_back.load_state_dict(bi.state_dict())
            only_back.C[:, :2] = 0.0
            only_back.D.zero_()
            x = torch.randn(2, 8, 3, generator=g, dtype=torch.float64)
            d = (only_back(x) - uni(x.flip(1)).flip(1)).abs().max().item()
            # and the two halves add: fwd-only + bwd-only + D u == both
            only_fwd = build_s5(dict(H=3, P=2, bidirectional=True, activation="none", discretization=disc))
            only_fwd.load_state_dict(bi.state_dict())
            only_fwd.C[:, 2:] = 0.0
            d2 = (only_fwd(x) + only_back(x) - bi(x)).abs().max().item()
        assert d < 1e-13 and d2 < 1e-13, (d, d2)
    log("check: bidirectional S5: the backward half == a forward scan of the reversed sequence, reversed back")


def check_convolutions(log):
    g = torch.Generator().manual_seed(77)
    worst = 0.0
    for L in (1, 2, 5, 17, 64, 71):
        v = torch.randn(2, L, 3, generator=g, dtype=torch.float64)
        h = torch.randn(L, 3, generator=g, dtype=torch.float64)
        direct = ts.causal_conv(v, h)
        # explicit sum
        want = torch.zeros_like(v)
        for t in range(L):
            for s in range(t + 1):
                want[:, t] += h[s] * v[:, t - s]
        assert (direct - want).abs().max().item() < 1e-12
        worst = max(worst, (direct - ts.causal_conv_fft(v, h)).abs().max().item())
        impulse = torch.zeros(L, 3, dtype=torch.float64)
        impulse[0] = 1.0
        assert torch.equal(ts.causal_conv(v, impulse), v)  # T-HY-5: an impulse filter passes v through
    assert worst < 1e-12, worst
    # short convolution == torch's Conv1d (cross-correlation) padded K - 1 on the left
    for K in (1, 3, 4):
        z = torch.randn(2, 7, 5, generator=g, dtype=torch.float64)
        w = torch.randn(5, 1, K, generator=g, dtype=torch.float64)
        b = torch.randn(5, generator=g, dtype=torch.float64)
        want = torch.nn.functional.conv1d(torch.nn.functional.pad(z.transpose(1, 2), (K - 1, 0)), w, b,
                                          groups=5).transpose(1, 2)
        assert (ts.short_conv(z, w, b) - want).abs().max().item() < 1e-14
        if K == 3:  # the spec's 3-tap formula
            zp = torch.nn.functional.pad(z, (0, 0, 2, 0))
            f3 = w[:, 0, 0] * zp[:, :-2] + w[:, 0, 1] * zp[:, 1:-1] + w[:, 0, 2] * zp[:, 2:] + b
            assert (ts.short_conv(z, w, b) - f3).abs().max().item() < 1e-14
    log(f"check: direct causal convolution == explicit sum == FFT of length 2L (max |diff| {worst:.1e}); "
        f"impulse filter == identity; short conv == Conv1d padded left == w0 z[t-2] + w1 z[t-1] + w2 z[t] + b")


def check_filter_constants(log):
    # T-HY-4
    z, t = ts.positional_features(80, 5)
    assert torch.equal(z[0], torch.tensor([0.0, 1.0, 1.0, 0.0, 0.0], dtype=torch.float64))
    assert t[-1].item() == 1.0 and t[0].item() == 0.0
    d = ts.decay_rates(32)
    assert abs(d[0].item() + 3.070113) < 1e-6 and abs(d[-1].item() + 15.350567) < 1e-6
    m = build_hyena(dict(D=4, order=3, filter_order=4, l_max=10))
    window = torch.exp(-m.tpos[:, None] * m.deltas.abs()[None, :])
    assert torch.equal(window[0], torch.ones_like(window[0]))
    assert (window[-1] - torch.exp(-m.deltas.abs())).abs().max().item() == 0.0
    # features computed for l_max, then sliced: a filter at L < l_max is the first L rows of the one at l_max
    randomize(m, 800)
    with torch.no_grad():
        assert torch.equal(m.filters(6), m.filters(10)[:6])
    log("check: positional features z_0 = [0, 1, 1, 0, 0], t_last = 1; window 1 at k = 0, exp(-|δ|) at t = 1, "
        "δ from -3.070113 to -15.350567; filters of L < l_max are sliced")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-check", action="store_true", help="skip the sanity checks")
    ap.add_argument("--only", default="", help="comma list of case names to write (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    def log(s):
        print(s, flush=True)

    only = set(s for s in args.only.split(",") if s)
    cases = [case for case in CASES if not only or case[0] in only]
    if not args.no_check:
        check_filter_constants(log)
        check_convolutions(log)
        check_identity_closed_form(log)
        check_conj_sym(log)
        check_kernel_view(log)
        check_bidirectional(log)
        check_module_gradients(log)
        check_module_causality(log)
        for name, seed, cfg in cases:
            golden_lm.check_finite_differences(cfg, seed, log, init=init_ssm)
        for name, seed, cfg in cases:
            golden_lm.check_causality(cfg, seed, log, init=init_ssm)
    for name, seed, cfg in cases:
        golden_lm.write_case(name, seed, cfg, log, init=init_ssm)


if __name__ == "__main__":
    main()
