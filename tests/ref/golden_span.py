"""Writes the adaptive-span golden files tests/golden/lm_span*.safetensors.

    /usr/bin/python3 tests/ref/golden_span.py            # checks, then write
    /usr/bin/python3 tests/ref/golden_span.py --no-check # write only
    /usr/bin/python3 tests/ref/golden_span.py --only lm_span,...
    /usr/bin/python3 tests/ref/golden_span.py --search lm_span --seeds 5000:5020   # z margins per seed

Same file layout and procedure as golden_lm.py (whose write_case it reuses):
the model is torch_lm.LM with the mixer adaptive_span (torch_span.py, spec
moe-brainformer.md §2.2, §3.1-§3.3), one block from an empty past (no
memory), the mixer keys as dotted section keys (mixer.attn_span: 12, ...;
every key the reference reads written explicitly). Parameters: the mixers'
proj_query / proj_key / proj_val / proj_out.weight, adaptive_span.current_val
(the per-head z), and the model's one key_pe (d, S).

Initial parameters (float32, seeded, init_span): the shell as golden_lm
(N(0, 0.02), LayerNorm 1 + N(0, 0.1) / N(0, 0.05)), then from a second
generator (seed + 77), in named_parameters order: embed.weight
N(0, EMBED_STD), key_pe N(0, PE_STD), the projections N(0, PROJ_STD), and
each current_val U(z_lo, z_hi) of the case (explicit values away from the
mask's kinks, not adapt_span_init's 0, which sits exactly on them at δ = 1 and
δ = R + 1).

Kinks: the mask clamp((z S − (δ − 1)) / R + 1, 0, 1) has kinks at u = 0 and
u = 1, where float32 and float64 could take different sides. The seed of each
case was chosen (--search) so that in float64 every u over every head,
distance and forward (the initial one and the 10 training steps) stays at
least MARGIN_MIN from 0 and 1 (asserted when writing), which also keeps z
inside (0, 1): the post-step clamp never fires in the golden runs.

The span loss λ S mean(z) (training only, once per mixer) is part of the
differentiated objective, not of the stored losses (torch_lm.LM.with_aux).
The trainer clamps z into [0, 1] after every update (torch_lm.train).

Checks first, in float64: gradcheck of the mixer alone (x and every parameter
incl. z and key_pe, S < M and S > M, a wide ramp, without adapt_span), each
variant also against a naive per-query loop; the spec's oracles §3.4 (m(1) =
1; with z = 0, m(δ) = 1 − (δ−1)/R up to δ = R + 1 and 0 beyond; Σ A' =
ΣAm/(ΣAm + 1e-8); the span-loss gradient λ S / H per z; trimming (§3.3) ==
the untrimmed computation up to the 1e-8 term, the trimmed distances' mask
exactly 0); causality, reach (a key at distance > S does not matter, at S it
does) and "never itself" (a query's own key and value do not matter) of the
mixer; per LM case finite differences of cross-entropy + span loss,
causality, float32 vs float64 (logits, losses, z over a 10-step run); the LM's
reach with S = 2 (2 layers: 4 tokens back); the shared key_pe's gradient ==
the sum of per-layer copies' gradients; the span loss's value / gradient in
the LM; the post-step clamp; adapt_span false ignores z.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_lm  # noqa: E402
import safetensors_io  # noqa: E402
import torch_lm  # noqa: E402
import torch_span as tsp  # noqa: E402

# keys written to the YAML when a case sets them (see golden_lm.yaml_text)
for _k in ("arch_grammar", "head_bias"):
    if _k not in golden_lm.YAML_KEYS_IF_SET:
        golden_lm.YAML_KEYS_IF_SET.append(_k)

D64 = torch.float64
MARGIN_MIN = 1e-3  # min over heads, distances, forwards of min(|u|, |u - 1|)
EMBED_STD = 0.5
PE_STD = 0.5
PROJ_STD = 0.3

# The trunk of every case: AdamW with a cosine schedule and clipping, as golden_moe's cases.
SHELL = dict(
    mixer="adaptive_span", vocab_size=11, d_model=16, n_head=2, d_head=8, d_inner=32, batch_size=2,
    tgt_len=9, max_len=9, causal=True,
    optim="adamw", scheduler="cosine", warmup_step=2, max_step=10, lr=0.01, min_lr=0.001,
    weight_decay=0.1, decay_groups="linear,embedding", clip=0.5, beta1=0.9, beta2=0.99, eps=1e-8)


def span_keys(**kw):
    """Every adaptive_span key the reference reads (and the cache flag), as dotted config keys."""
    k = dict(n_head=2, attn_span=12, adapt_span=True, adapt_span_loss=0.0, adapt_span_ramp=4,
             adapt_span_init=0.0, adapt_span_cache=False, dropout=0.0)
    k.update(kw)
    return {"mixer." + n: v for n, v in k.items()}


# (name, seed, config, (z_lo, z_hi))
CASES = [
    # plain grammar, pre-LN, learned positions, tied head; S 12 > T 9, ramp 4, span loss 0.01
    ("lm_span", 5015, dict(
        SHELL, arch="sfsf", arch_grammar="plain", norm="pre", activation="relu", pos="learned",
        tie_weight=True, head_bias=False,
        **span_keys(attn_span=12, adapt_span=True, adapt_span_loss=0.01, adapt_span_ramp=4)), (0.2, 0.8)),
    # the Brainformer model's shape: brainformer grammar (2 layers s f), post-LN, no positions, untied head
    # with bias; S 160, ramp 8, spans z S in (24, 64) so that max_size <= 96 and seqlab trims 64 (Se 96)
    ("lm_span_post_trim", 5029, dict(
        SHELL, arch="sf.sf", arch_grammar="brainformer", norm="post", activation="relu", pos="none",
        tie_weight=False, head_bias=True,
        **span_keys(attn_span=160, adapt_span=True, adapt_span_loss=0.0, adapt_span_ramp=8,
                    adapt_span_cache=True)), (0.15, 0.4)),
    # adapt_span false: no mask, z unused (gradient 0, never moves); S 9 > T 8
    ("lm_span_fixed", 5003, dict(
        SHELL, arch="sfsf", arch_grammar="plain", norm="pre", activation="gelu", pos="none",
        tie_weight=True, head_bias=False, tgt_len=8, max_len=8,
        **span_keys(attn_span=9, adapt_span=False, adapt_span_loss=0.0, adapt_span_ramp=4)), (0.05, 0.9)),
]


def init_span_fn(z_range):
    lo, hi = z_range

    def init(model, seed):
        """torch_lm.init_params for the shell, then (generator seed + 77) embed.weight N(0, EMBED_STD),
        key_pe N(0, PE_STD), the projections N(0, PROJ_STD), current_val U(lo, hi)."""
        torch_lm.init_params(model, seed)
        g = torch.Generator().manual_seed(seed + 77)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name == "embed.weight":
                    v = EMBED_STD * torch.randn(p.shape, generator=g, dtype=torch.float32)
                elif name == "key_pe":
                    v = PE_STD * torch.randn(p.shape, generator=g, dtype=torch.float32)
                elif ".mixer.proj_" in name:
                    v = PROJ_STD * torch.randn(p.shape, generator=g, dtype=torch.float32)
                elif name.endswith(".mixer.adaptive_span.current_val"):
                    v = lo + (hi - lo) * torch.rand(p.shape, generator=g, dtype=torch.float32)
                else:
                    continue
                p.copy_(v.to(p.dtype))

    return init


def case(name):
    return [c for c in CASES if c[0] == name][0]


# ------------------------------------------------------------------ helpers

def randn(g, *shape, std=1.0):
    return std * torch.randn(*shape, generator=g, dtype=D64)


def mixer_params(g, C, H, S, z):
    """(Wq, Wk, Wv, Wo, z, key_pe) in float64: projections N(0, 0.5), key_pe N(0, 1), z given."""
    W = [randn(g, C, C, std=0.5) for _ in range(4)]
    return W + [torch.tensor(z, dtype=D64), randn(g, C // H, S)]


def span_fn(S, R, adapt, n_dist=None):
    return lambda x, *p: tsp.span_layer(x, *p, S=S, R=R, adapt=adapt, n_dist=n_dist)


# ------------------------------------------------------------------ checks of the mixer alone

MIXER_VARIANTS = [
    # label, B, M, C, H, S, R, adapt, z
    ("S 4 < M 7, R 2", 2, 7, 6, 2, 4, 2.0, True, [0.37, 0.62]),
    ("S 9 > M 6, R 3", 2, 6, 6, 2, 9, 3.0, True, [0.23, 0.58]),
    ("S 5, R 8 (every distance past 1 inside the ramp)", 1, 6, 6, 3, 5, 8.0, True, [0.05, 0.11, 0.17]),
    ("S 6 = M, R 1", 2, 6, 4, 2, 6, 1.0, True, [0.41, 0.095]),
    ("adapt_span false, S 5 < M 7", 2, 7, 6, 2, 5, 2.0, False, [0.3, 0.6]),
]


def check_mixer_gradients(log):
    labels = []
    for i, (label, B, M, C, H, S, R, adapt, z) in enumerate(MIXER_VARIANTS):
        g = torch.Generator().manual_seed(100 + i)
        x = randn(g, B, M, C)
        params = mixer_params(g, C, H, S, z)
        margin = tsp.kink_margin(params[4], S, R)
        if adapt:
            assert margin >= 1e-2, (label, margin)
        f = span_fn(S, R, adapt)
        # against the naive loop
        with torch.no_grad():
            q, k, v = (tsp.split_heads(torch.nn.functional.linear(x, W), H) for W in params[:3])
            loop = tsp.span_attention_loop(q, k, v, params[5], params[4], S, R, adapt)
            want = torch.nn.functional.linear(tsp.merge_heads(loop), params[3])
            d = (f(x, *params) - want).abs().max().item()
        assert d < 1e-13, (label, d)
        inputs = [x.clone().requires_grad_(True)] + [p.clone().requires_grad_(True) for p in params]
        if not adapt:  # z unused: leave it out of gradcheck, check its gradient is None / 0 below
            inputs_g = inputs[:5] + inputs[6:]
            fg = lambda x_, a, b, c, d_, pe, f=f, z_=inputs[5]: f(x_, a, b, c, d_, z_.detach(), pe)  # noqa: E731
        else:
            inputs_g, fg = inputs, f
        assert torch.autograd.gradcheck(fg, inputs_g, eps=1e-6, atol=1e-8, rtol=1e-6), label
        # z gets gradient with adapt_span, none without
        y = f(*inputs)
        gz = torch.autograd.grad(y.square().sum(), inputs[5], allow_unused=True)[0]
        if adapt:
            assert gz is not None and gz.abs().min().item() > 1e-6, (label, gz)
        else:
            assert gz is None or gz.abs().max().item() == 0.0, (label, gz)
        labels.append(f"{label}" + (f" (kink margin {margin:.3f})" if adapt else ""))
    log("check: adaptive-span mixer gradcheck (float64; x, the four projections, z, key_pe; atol 1e-8, rtol "
        "1e-6) and == a naive per-query loop (< 1e-13): " + "; ".join(labels) + "; z has a gradient with "
        "adapt_span, none without")


def check_oracles(log):
    g = torch.Generator().manual_seed(200)
    # m(1) = 1 for any z in [0, 1]
    S, R = 20, 6.0
    z = torch.rand(50, generator=g, dtype=D64)
    z[0], z[1] = 0.0, 1.0
    m = tsp.span_mask(z, S, R)
    assert torch.all(m[:, 0] == 1.0)
    # z = 0: m(δ) = 1 − (δ−1)/R for δ ≤ R + 1, 0 beyond (R integer here)
    R = 6.0
    m0 = tsp.span_mask(torch.zeros(1, dtype=D64), S, R)[0]
    want = torch.tensor([max(0.0, 1 - (dl - 1) / R) if dl <= R + 1 else 0.0 for dl in range(1, S + 1)], dtype=D64)
    assert (m0 - want).abs().max().item() < 1e-15 and m0[int(R)].item() == 0.0 and m0[int(R) - 1].item() > 0
    # z S + 1 fully kept, the next R ramp: z = 0.25, S 20: δ <= 6 -> 1, δ = 7..12 ramp, δ >= 12 -> 0
    m1 = tsp.span_mask(torch.tensor([0.25], dtype=D64), S, R)[0]
    assert torch.all(m1[:6] == 1.0) and torch.all(m1[11:] == 0.0) and torch.all((m1[6:11] > 0) & (m1[6:11] < 1))
    # the inclusive bounds: at z = 0, δ = 1 (u = 1) and δ = R + 1 (u = 0) carry gradient to z
    zz = torch.zeros(1, dtype=D64, requires_grad=True)
    mm = tsp.span_mask(zz, S, R)[0]
    g1 = torch.autograd.grad(mm[0], zz, retain_graph=True)[0].item()
    g7 = torch.autograd.grad(mm[int(R)], zz, retain_graph=True)[0].item()
    g8 = torch.autograd.grad(mm[int(R) + 1], zz)[0].item()
    assert abs(g1 - S / R) < 1e-14 and abs(g7 - S / R) < 1e-14 and g8 == 0.0, (g1, g7, g8)

    # Σ A' = Σ A m / (Σ A m + 1e-8)
    B, H, M, d, S, R = 2, 3, 10, 4, 7, 3.0
    q, k = randn(g, B, H, M, d), randn(g, B, H, M, d)
    pe = randn(g, d, S)
    z = torch.tensor([0.05, 0.4, 0.77], dtype=D64)
    A = tsp.span_weights(q, k, pe, z, S, R, True)
    A0 = tsp.span_weights(q, k, pe, z, S, R, False)
    am = (A0 * tsp.span_mask(z, S, R)[None, :, None, :]).sum(-1)
    dsum = (A.sum(-1) - am / (am + 1e-8)).abs().max().item()
    dev = (A.sum(-1) - 1).abs().max().item()
    assert dsum < 1e-15 and dev < 1e-7 and torch.allclose(A0.sum(-1), torch.ones_like(am), atol=1e-15)

    # the span-loss gradient λ S / H per z
    lam, S = 0.01, 12
    m = tsp.AdaptiveSpanAttention(8, 2, S, True, lam, 4, 0.0, 0.0).to(D64)
    with torch.no_grad():
        m.z.copy_(torch.tensor([0.3, 0.7]))
    loss = m.span_loss()
    gz = torch.autograd.grad(loss, m.z)[0]
    assert abs(loss.item() - lam * S * 0.5) < 1e-16 and torch.all((gz - lam * S / 2).abs() < 1e-17), (loss, gz)

    # trimming (§3.3): S 200, R 32, z (0, 0.1) -> max_size 52, trim 128, Se 72 (M 100 > Se: real tokens trimmed)
    B, H, M, d, S, R = 2, 2, 100, 4, 200, 32.0
    z = torch.tensor([0.0, 0.1], dtype=D64)
    trim, Se, max_size = tsp.trim_of(z, S, R)
    assert (trim, Se, max_size) == (128, 72, 52), (trim, Se, max_size)
    assert torch.all(tsp.span_mask(z, S, R)[:, Se:] == 0.0)
    assert tsp.trim_of(torch.zeros(1), 2048, 32) == (1984, 64, 32)  # the spec's example
    q, k, v = randn(g, B, H, M, d), randn(g, B, H, M, d), randn(g, B, H, M, d)
    pe = randn(g, d, S)
    full = tsp.span_attention(q, k, v, pe, z, S, R, True)
    trimmed = tsp.span_attention(q, k, v, pe, z, S, R, True, n_dist=Se)
    dtrim = (full - trimmed).abs().max().item()
    # exactly: the trimmed softmax is A / P with P = Σ_{δ <= Se} A, so trimming == the full formula with
    # the renormalisation's 1e-8 scaled by P (the only difference)
    A0 = tsp.span_weights(q, k, pe, z, S, R, False)
    mask = tsp.span_mask(z, S, R)[None, :, None, :]
    P = A0[..., :Se].sum(-1, keepdim=True)
    Am = A0 * mask
    A_eps = Am / (Am.sum(-1, keepdim=True) + 1e-8 * P)
    via = (A_eps.unsqueeze(-1) * tsp.gather_rows(v, S)).sum(3)
    dvia = (via - trimmed).abs().max().item()
    bound = (1e-8 * (1 - P) / Am.sum(-1, keepdim=True)).max().item()  # relative change of the weights
    assert dvia < 1e-14 and dtrim <= 1.01 * bound * v.abs().max().item() * 1.0 + 1e-15, (dvia, dtrim, bound)
    wrong = tsp.span_attention(q, k, v, pe, z, S, R, True, n_dist=40)  # trimming into the ramp does change it
    assert (full - wrong).abs().max().item() > 1e-3
    log(f"check: §3.4 oracles: m(1) = 1 (z in [0, 1]); z = 0: m(δ) = 1 − (δ−1)/R up to δ = R+1, 0 beyond; "
        f"z S + 1 distances kept, R ramped; at z = 0 the bounds δ = 1 and δ = R+1 pass dm/dz = S/R; Σ A' = "
        f"ΣAm/(ΣAm + 1e-8) (|Σ A' − 1| <= {dev:.1e}); span loss λ S mean(z), gradient λ S / H per z; trimming "
        f"S 200, R 32, z (0, 0.1): max_size 52, trim 128, Se 72, trimmed distances' mask 0, trimmed == "
        f"untrimmed up to {dtrim:.1e} (the 1e-8 term: == the full formula with 1e-8 × Σ_(δ<=Se) A, to {dvia:.1e}); "
        f"S 2048, z 0: trim 1984, Se 64")


def check_mixer_causality_reach(log):
    g = torch.Generator().manual_seed(300)
    B, M, C, H, S, R = 2, 12, 6, 2, 4, 2.0
    x = randn(g, B, M, C)
    params = mixer_params(g, C, H, S, [0.9, 0.6])  # mask at δ = S non-zero in both heads
    assert torch.all(tsp.span_mask(params[4], S, R)[:, S - 1] > 0.1)
    f = span_fn(S, R, True)
    with torch.no_grad():
        base = f(x, *params)
        for t in (0, 5, 10):  # causality: inputs after t change, outputs <= t bit-identical
            x2 = x.clone()
            x2[:, t + 1:] += randn(g, B, M - t - 1, C)
            y = f(x2, *params)
            assert torch.equal(y[:, :t + 1], base[:, :t + 1]), t
            assert (y[:, t + 1:] - base[:, t + 1:]).abs().min().item() > 0
        for j in (0, 3, 6):  # reach: input j changes outputs j .. j + S, not beyond
            x2 = x.clone()
            x2[:, j] += randn(g, B, C)
            y = f(x2, *params)
            diff = (y - base).abs().amax(dim=(0, 2))
            assert torch.all(diff[:j] == 0) and torch.all(diff[j + S + 1:] == 0), (j, diff)
            assert torch.all(diff[j + 1:j + S + 1] > 1e-6), (j, diff)
            # output j through its query, except output 0, whose keys are all zero rows: it is exactly 0
            assert (diff[j] > 1e-6) if j > 0 else (diff[0] == 0 and base[:, 0].abs().max() == 0), (j, diff)
        # never itself: a query's own key and value do not matter (its key / value change the later queries)
        q, k, v = (tsp.split_heads(torch.nn.functional.linear(x, W), H) for W in params[:3])
        o = tsp.span_attention(q, k, v, params[5], params[4], S, R, True)
        for i in (0, 4, 11):
            k2, v2 = k.clone(), v.clone()
            k2[:, :, i] += randn(g, B, H, C // H)
            v2[:, :, i] += randn(g, B, H, C // H)
            o2 = tsp.span_attention(q, k2, v2, params[5], params[4], S, R, True)
            assert torch.equal(o2[:, :, :i + 1], o[:, :, :i + 1]), i
            if i + 1 < M:
                assert (o2[:, :, i + 1] - o[:, :, i + 1]).abs().max().item() > 1e-6
    log(f"check: adaptive-span mixer (S {S}, M {M}): causal (outputs <= t bit-identical when inputs after t "
        f"change), reach (input j moves outputs j .. j+S only; output 0, over zero rows only, is exactly 0), never itself (query i's own key / value "
        f"do not change output i, they do change i+1)")


# ------------------------------------------------------------------ LM checks

def build(cfg, seed, z_range):
    c = golden_lm.full_case(cfg)
    ids, targets = golden_lm.make_batch(c, seed + 500)
    m32, m64 = golden_lm.build(c, seed, init_span_fn(z_range))
    return c, ids, targets, m32, m64


def objective(m, ids, targets):
    """(loss tensor to differentiate, value of cross-entropy + span losses)."""
    loss, _ = m(ids, targets)
    return loss, loss.item() + (m.last_aux.item() if m.last_aux is not None else 0.0)


def check_finite_differences(name, seed, cfg, z_range, log, per_tensor=4, h=1e-6):
    c, ids, targets, _, m = build(cfg, seed, z_range)
    m.zero_grad(set_to_none=True)
    loss, _ = objective(m, ids, targets)
    loss.backward()
    n, worst, worst_abs = golden_lm.finite_difference_sweep(m, lambda: objective(m, ids, targets)[1], seed,
                                                           per_tensor, h, what=f"{name}: ")
    log(f"check: {name}: finite differences of ce + span loss ok over {n} elements, worst |autograd - fd| "
        f"{worst_abs:.1e}, worst relative (|grad| > 1e-4) {worst:.1e}")


def run_spans(m, c, ids, targets):
    """The initial forward (as write_case) + 10 training steps; returns (logits, losses, span log)."""
    tsp.SPAN_LOG = []
    try:
        with torch.no_grad():
            _, logits = m(ids, targets)
        losses, _, _ = torch_lm.train(m, c, ids, targets, golden_lm.STEPS)
        return logits, losses, tsp.SPAN_LOG
    finally:
        tsp.SPAN_LOG = None


def span_summary(entries):
    """Per mixer path: z per forward, min kink margin (adapt only), (trim, Se) per forward."""
    paths = []
    for e in entries:
        if e["path"] not in paths:
            paths.append(e["path"])
    out = []
    for p in paths:
        es = [e for e in entries if e["path"] == p]
        S, R, adapt = es[0]["S"], es[0]["R"], es[0]["adapt"]
        margins = [tsp.kink_margin(e["z"], S, R) for e in es]
        trims = sorted({tsp.trim_of(e["z"], S, R)[:2] for e in es})
        out.append(dict(path=p, S=S, R=R, adapt=adapt, z=[e["z"].double() for e in es],
                        margin=min(margins) if adapt else float("inf"), per_step=margins, trims=trims))
    return out


def check_float32(name, seed, cfg, z_range, log):
    """float32 and float64 agree: initial logits, the 10 training losses, and z over the run stays much
    closer than the kink margin."""
    c = golden_lm.full_case(cfg)
    ids, targets = golden_lm.make_batch(c, seed + 500)
    runs = {}
    for dt in (torch.float32, torch.float64):
        m32, m64 = golden_lm.build(c, seed, init_span_fn(z_range))
        logits, losses, entries = run_spans(m32 if dt == torch.float32 else m64, c, ids, targets)
        runs[dt] = (logits.double(), losses, entries)
    (l32, s32, e32), (l64, s64, e64) = runs[torch.float32], runs[torch.float64]
    d_logits = (l32 - l64).abs().max().item()
    d_loss = max(abs(a - b) for a, b in zip(s32, s64))
    assert d_logits < 1e-4 and d_loss < 1e-4, (d_logits, d_loss)
    assert len(e32) == len(e64)
    d_z = max((a["z"].double() - b["z"].double()).abs().max().item() for a, b in zip(e32, e64))
    summ = span_summary(e64)
    margin = min(s["margin"] for s in summ)
    S, R = summ[0]["S"], summ[0]["R"]
    du = d_z * S / R
    if summ[0]["adapt"]:
        assert du < margin / 100, (du, margin)
    log(f"check: {name}: float32 vs float64: initial logits max |diff| {d_logits:.1e}, training losses {d_loss:.1e}, "
        f"z over the run {d_z:.1e} (u {du:.1e}" + (f", {margin / max(du, 1e-30):.0f}x below the kink margin "
                                                   f"{margin:.1e})" if summ[0]["adapt"] else ")"))


def check_lm_reach(log):
    """S = 2 in two attention layers: a token reaches 4 positions ahead, not 5."""
    name, seed, cfg, zr = case("lm_span")
    cfg = dict(cfg, **{"mixer.attn_span": 2})
    c, ids, targets, _, m = build(cfg, seed, zr)
    with torch.no_grad():
        _, base = m(ids)
        for t0 in (0, 3):
            ids2 = ids.clone()
            ids2[:, t0] = (ids2[:, t0] + 1) % c["vocab_size"]
            _, lg = m(ids2)
            diff = (lg - base).abs().amax(dim=(0, 2))
            assert torch.all(diff[:t0] == 0) and torch.all(diff[t0 + 5:] == 0), (t0, diff)
            assert torch.all(diff[t0:t0 + 5] > 1e-7), (t0, diff)
    log("check: LM reach (sfsf, S 2): the token at t0 moves logits t0 .. t0+4 (two layers of distance <= 2), "
        "later ones bit-identical")


def check_lm_span_parts(log):
    # 1. the shared key_pe: its gradient == the sum of the gradients of per-layer copies
    for name in ("lm_span", "lm_span_post_trim"):
        nm, seed, cfg, zr = case(name)
        c, ids, targets, _, m = build(cfg, seed, zr)
        assert len(m.spans) == 2 and "key_pe" in dict(m.named_parameters())
        loss, _ = m(ids, targets)
        loss.backward()
        shared = m.key_pe.grad.clone()
        copies = [m.key_pe.detach().clone().requires_grad_(True) for _ in m.spans]
        for sp, cp in zip(m.spans, copies):
            sp.key_pe_source = lambda cp=cp: cp
        loss2, _ = m(ids, targets)
        gs = torch.autograd.grad(loss2, copies)
        assert loss2.item() == loss.item()
        rel = (shared - sum(gs)).abs().max().item() / shared.abs().max().item()
        assert rel < 1e-13 and min(gg.abs().max().item() for gg in gs) > 1e-6, rel
    # 2. the span loss in the LM: value of the loss = ce (== the eval forward's), aux = Σ λ S mean(z),
    #    grad z(λ) − grad z(0) = λ S / H
    nm, seed, cfg, zr = case("lm_span")
    lam = cfg["mixer.adapt_span_loss"]
    grads = {}
    for a in (lam, 0.0):
        c, ids, targets, _, m = build(dict(cfg, **{"mixer.adapt_span_loss": a}), seed, zr)
        loss, _ = m(ids, targets)
        loss.backward()
        grads[a] = (loss.item(), m.last_aux, [sp.z.grad.clone() for sp in m.spans], m)
    l_a, aux, gz_a, m = grads[lam]
    l_0, _, gz_0, _ = grads[0.0]
    want = sum(lam * sp.attn_span * sp.z.detach().mean() for sp in m.spans).item()
    assert l_a == l_0 and abs(aux.item() - want) < 1e-15, (l_a, l_0, aux, want)
    m.eval()
    with torch.no_grad():
        l_eval, _ = m(ids, targets)
    assert l_eval.item() == l_a and m.last_aux is None
    m.train()
    S, H = cfg["mixer.attn_span"], cfg["mixer.n_head"]
    dz = max((a - b - lam * S / H).abs().max().item() for a, b in zip(gz_a, gz_0))
    assert dz < 1e-15, dz
    # 3. the post-step clamp: z pushed outside [0, 1] comes back to the bounds exactly
    with torch.no_grad():
        m.spans[0].z.copy_(torch.tensor([-0.3, 1.4]))
    torch_lm.train(m, c, ids, targets, 1)
    assert m.spans[0].z.tolist() == [0.0, 1.0], m.spans[0].z
    assert all(0.0 <= v <= 1.0 for sp in m.spans for v in sp.z.tolist())
    # 4. adapt_span false: z changes nothing, its gradient is exactly 0, it never moves
    nm, seed, cfg, zr = case("lm_span_fixed")
    c, ids, targets, _, m = build(cfg, seed, zr)
    z0 = [sp.z.detach().clone() for sp in m.spans]
    loss, lg = m(ids, targets)
    loss.backward()
    assert all(torch.all(sp.z.grad == 0.0) for sp in m.spans)
    with torch.no_grad():
        for sp in m.spans:
            sp.z.mul_(0.5)
        _, lg2 = m(ids, targets)
        for sp, z in zip(m.spans, z0):
            sp.z.copy_(z)
    assert torch.equal(lg, lg2)
    torch_lm.train(m, c, ids, targets, golden_lm.STEPS)
    assert all(torch.equal(sp.z.detach(), z) for sp, z in zip(m.spans, z0))
    log(f"check: key_pe shared by both layers: its gradient == the sum of per-layer copies' (lm_span, "
        f"lm_span_post_trim); span loss: the loss value is the cross-entropy (== the eval forward's), aux = "
        f"Σ λ S mean(z), grad z(λ) − grad z(0) = λ S / H = {lam * S / H:g} (to {dz:.1e}); the post-step clamp "
        f"brings z = (−0.3, 1.4) to (0, 1) exactly; adapt_span false: z changes nothing, gradient 0, never moves")


# ------------------------------------------------------------------ golden cases

def search(name, seeds, log):
    nm, _, cfg, zr = case(name)
    c = golden_lm.full_case(cfg)
    for s in seeds:
        ids, targets = golden_lm.make_batch(c, s + 500)
        _, m64 = golden_lm.build(c, s, init_span_fn(zr))
        _, losses, entries = run_spans(m64, c, ids, targets)
        summ = span_summary(entries)
        log(f"{name} seed {s}: min margin {min(x['margin'] for x in summ):.4f}; " + "; ".join(
            f"{x['path']}: z0 {[round(v, 4) for v in x['z'][0].tolist()]} margin {x['margin']:.4f} trims "
            f"{x['trims']}" for x in summ) + f"; loss {losses[0]:.4f} -> {losses[-1]:.4f}")


def write_all(cases, log):
    for name, seed, cfg, zr in cases:
        tsp.SPAN_LOG = []
        try:
            golden_lm.write_case(name, seed, cfg, log, init=init_span_fn(zr))
            entries = tsp.SPAN_LOG
        finally:
            tsp.SPAN_LOG = None
        path = os.path.join(golden_lm.OUT_DIR, name + ".safetensors")
        t, meta = safetensors_io.load(path)
        for x in span_summary(entries):
            zs = torch.stack(x["z"])
            final = t["final." + x["path"] + ".adaptive_span.current_val"]
            z0 = x["z"][0].tolist()
            zs_txt = ", ".join(f"{v:.6f}" for v in z0)
            zS_txt = ", ".join(f"{v * x['S']:.3f}" for v in z0)
            fin_txt = ", ".join(f"{v:.6f}" for v in final.tolist())
            log(f"  {x['path']}: z initial [{zs_txt}] (z S [{zS_txt}]), final [{fin_txt}], "
                f"range over the forwards [{zs.min().item():.4f}, {zs.max().item():.4f}]; (trim, Se) per forward "
                f"{x['trims']}")
            if x["adapt"]:
                log(f"    min kink margin min(|u|, |u-1|) {x['margin']:.4f}; per forward (init, steps 0..9): "
                    + " ".join(f"{v:.4f}" for v in x["per_step"]))
                assert x["margin"] >= MARGIN_MIN, f"{name}: kink margin {x['margin']} < {MARGIN_MIN}"
                assert final.min() > 0 and final.max() < 1
            else:
                assert (t["param." + x["path"] + ".adaptive_span.current_val"] == final).all()
                assert (t["grad." + x["path"] + ".adaptive_span.current_val"] == 0).all()
        if name == "lm_span_post_trim":
            assert all(x["trims"] == [(64, 96)] for x in span_summary(entries)), "lm_span_post_trim: trim 64"


def main():
    run = golden_lm.family_command_line(__doc__, "z margins", "5000:5020", search, CASES)
    if run is None:
        return
    args, log, cases = run
    if not args.no_check:
        check_mixer_gradients(log)
        check_oracles(log)
        check_mixer_causality_reach(log)
        check_lm_span_parts(log)
        check_lm_reach(log)
        for name, seed, cfg, zr in cases:
            check_finite_differences(name, seed, cfg, zr, log)
        for name, seed, cfg, zr in cases:
            golden_lm.check_causality(cfg, seed, log, init=init_span_fn(zr))
        for name, seed, cfg, zr in cases:
            check_float32(name, seed, cfg, zr, log)
    write_all(cases, log)


if __name__ == "__main__":
    main()
