"""Writes the mixture-of-experts golden files tests/golden/lm_moe*.safetensors.

    /usr/bin/python3 tests/ref/golden_moe.py            # checks, then write
    /usr/bin/python3 tests/ref/golden_moe.py --no-check # write only
    /usr/bin/python3 tests/ref/golden_moe.py --only lm_moe,...
    /usr/bin/python3 tests/ref/golden_moe.py --search lm_moe --seeds 4000:4100   # routing margins per seed

Same file layout and procedure as golden_lm.py (whose write_case it reuses):
the model is torch_lm.LM with 'g' sublayers (torch_moe.MoE, spec
moe-brainformer.md §4) in the plain or the brainformer arch grammar (§5.2:
'.'-separated layers, a repeated letter inside one is the same sublayer,
named after its first position), the MoE keys as dotted section keys
(moe.num_experts: 4, ...; every key the reference reads written explicitly,
eval_top_k = top_k so that the evaluation forward routes as the training
one). Initial parameters (float32, seeded): the shell as golden_lm (N(0,
0.02), LayerNorm 1 + N(0, 0.1) / N(0, 0.05)); then the MoE parameters from a
second generator (init_moe): gate.weight N(0, GATE_STD) (logits of order 1,
so the k-th and (k+1)-th are well apart), experts' weights N(0, EXPERT_STD),
every MoE bias N(0, 0.1).

Routing: the seed of each case was chosen (--search) so that in float64 every
token's k-th and (k+1)-th largest logit differ by at least MARGIN_MIN relative
to max(1, max |logit|) at the initial forward and at each of the 10 training
steps, in every use of every MoE (asserted when writing; the float32 C run must
route identically). The balance loss (lm_moe_balance) is part of the
differentiated objective, not of the stored losses: see torch_lm.LM.with_aux.
The smoedropout case's gate is fixed: final.<gate> == param.<gate>, its
gradient is stored, and the gradient norm / clipping leave it out.

Checks first, in float64: torch.autograd.gradcheck of the MoE alone (x and
every parameter; k = 1, 2, 3, E; relu, gelu, gelu_tanh, silu; with and without
the balance loss, whose term is a second output), routing fixed (margins
asserted, every call of the check routed the same); the spec's oracles §4.4
(E = 1, k = 1 == a dense MLP with the same weights; k = E == sum_e
softmax(logits)_e expert_e(x), values and gradients; a permutation of the
tokens permutes the outputs and leaves the parameter gradients; an expert no
token picks gets exactly zero gradient, its gate row too without the balance
loss; the 3-D Kaiming-uniform bound 1/sqrt(out in)); the balance loss
against a naive loop and its logit gradient against the closed form, the tie
rule (all logits equal: experts 0..k-1, aux = a / k); evaluation routes to
eval_top_k and adds no aux; the brainformer grammar's expansion and the shared
LM == a plain LM with copied weights whose copies' gradients sum to the shared
one's; per golden case finite differences of cross-entropy + aux, causality,
and float32 vs float64 (logits, losses, and every routing decision of a
float32 10-step training run equal to the float64 run's).
"""

import math
import os
import sys

import torch
from torch.nn.utils.stateless import functional_call

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_lm  # noqa: E402
import safetensors_io  # noqa: E402
import torch_lm  # noqa: E402
import torch_moe as tmo  # noqa: E402

# the grammar key is written to the YAML when a case sets it (see golden_lm.yaml_text)
if "arch_grammar" not in golden_lm.YAML_KEYS_IF_SET:
    golden_lm.YAML_KEYS_IF_SET.append("arch_grammar")

D64 = torch.float64
MARGIN_MIN = 1e-3  # min (l_(k) - l_(k+1)) / max(1, max |l|) over every token, MoE use and forward of a case
GATE_STD = 0.3
EXPERT_STD = 0.3
BIAS_STD = 0.1

# The trunk of every case: softmax attention, learned positions, tied head, AdamW with a cosine schedule
# and clipping (on in most steps, so that leaving the fixed gate out of the norm matters).
SHELL = dict(
    mixer="softmax", pos="learned", tie_weight=True, causal=True, vocab_size=11,
    d_model=16, n_head=2, d_head=8, d_inner=32, batch_size=2, tgt_len=9, max_len=9,
    optim="adamw", scheduler="cosine", warmup_step=2, max_step=10, lr=0.01, min_lr=0.001,
    weight_decay=0.1, decay_groups="linear,embedding", clip=0.5, beta1=0.9, beta2=0.99, eps=1e-8)


def moe_keys(**kw):
    """Every MoE key the reference reads, as dotted config keys."""
    k = dict(num_experts=4, top_k=2, eval_top_k=2, d_inner=24, activation="relu", dropout=0.0,
             output_dropout=0.0, balance_loss=0.0, policy="smoe")
    k.update(kw)
    if "eval_top_k" not in kw:
        k["eval_top_k"] = k["top_k"]
    return {"moe." + n: v for n, v in k.items()}


CASES = [
    # plain grammar, pre-LN: attention, MoE, attention, MLP; E 4, k 2, relu experts of width 24 (the MLP 32);
    # output_dropout -1 (= dropout = 0)
    ("lm_moe", 4119, dict(
        SHELL, arch="sgsf", arch_grammar="plain", norm="pre", activation="gelu",
        **moe_keys(num_experts=4, top_k=2, d_inner=24, activation="relu", output_dropout=-1.0))),
    # the Brainformer grammar: 2 layers of attn -> MoE -> FF -> MoE -> FF -> MoE, the three g and the two f of
    # a layer one sublayer each (blocks.0 s, blocks.1 g, blocks.2 f; blocks.6, 7, 8); post-LN, gelu experts
    ("lm_moe_brainformer", 4087, dict(
        SHELL, arch="sgfgfg.sgfgfg", arch_grammar="brainformer", norm="post", activation="relu",
        **moe_keys(num_experts=4, top_k=2, d_inner=20, activation="gelu"))),
    # k 1 (the gate gets gradient only from the balance loss), E 3, balance_loss 0.1, tanh-GELU experts
    ("lm_moe_balance", 4074, dict(
        SHELL, arch="sgsg", arch_grammar="plain", norm="pre", activation="gelu",
        **moe_keys(num_experts=3, top_k=1, d_inner=24, activation="gelu_tanh", balance_loss=0.1))),
    # smoedropout: the gate fixed at its initial value; silu experts
    ("lm_moe_frozen_gate", 4024, dict(
        SHELL, arch="sg", arch_grammar="plain", norm="pre", activation="gelu",
        **moe_keys(num_experts=4, top_k=2, d_inner=24, activation="silu", policy="smoedropout"))),
]


def init_moe(model, seed):
    """torch_lm.init_params for the shell, then every MoE parameter (float32) from a second seeded
    generator: gate.weight N(0, GATE_STD), experts' weights N(0, EXPERT_STD), biases N(0, BIAS_STD)."""
    torch_lm.init_params(model, seed)
    g = torch.Generator().manual_seed(seed + 77)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".moe." not in name:
                continue
            z = torch.randn(p.shape, generator=g, dtype=torch.float32)
            tail = name.split(".moe.", 1)[1]
            if tail == "gate.weight":
                v = GATE_STD * z
            elif tail.endswith(".weight"):
                v = EXPERT_STD * z
            elif tail.endswith(".bias"):
                v = BIAS_STD * z
            else:
                raise AssertionError(f"init_moe: unexpected parameter {name}")
            p.copy_(v.to(p.dtype))


# ------------------------------------------------------------------ helpers

def randn(g, *shape, std=1.0):
    return std * torch.randn(*shape, generator=g, dtype=D64)


def make_moe(E, k, act="gelu", C=6, F=5, balance=0.0, eval_k=None, seed=0, gate_std=0.5, policy="smoe"):
    """A float64 MoE, every parameter drawn: gate N(0, gate_std), experts N(0, 0.5), biases N(0, 0.2)."""
    m = tmo.MoE(C, E, k, eval_k or k, F, torch_lm.activation_fn(act), 0.0, 0.0, balance, policy).to(D64)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(randn(g, *p.shape, std=gate_std if n == "gate.weight" else 0.2 if n.endswith("bias") else 0.5))
    return m


def min_margin(m, x):
    logits = torch.matmul(x.reshape(-1, m.C), m.gate.weight.t()) + m.gate.bias
    return tmo.routing_gaps(logits, m.top_k if m.training else m.eval_top_k)[1].min().item()


def moe_with_margin(E, k, x, margin=1e-2, tries=200, **kw):
    """The first seed whose MoE routes x with every gap >= margin (relative)."""
    for s in range(tries):
        m = make_moe(E, k, seed=s, **kw)
        if min_margin(m, x) >= margin:
            return m
    raise AssertionError(f"no MoE (E={E}, k={k}) with margin {margin} in {tries} seeds")


def moe_function(m):
    """(f, params): (y, aux) of the MoE as a function of (x, its parameters); aux 0 without the balance loss."""
    names = [n for n, _ in m.named_parameters()]

    def f(x, *params):
        m.aux_terms = []
        y = functional_call(m, dict(zip(names, params)), (x,))
        aux = m.aux_terms[0] if m.aux_terms else (x * 0).sum()
        return y, aux

    return f, [p.detach().clone().requires_grad_(True) for p in m.parameters()]


# ------------------------------------------------------------------ checks of the MoE alone

def check_moe_gradients(log):
    g = torch.Generator().manual_seed(11)
    x = randn(g, 2, 6, 6)
    variants = [
        ("E4 k2 relu", dict(E=4, k=2, act="relu")),
        ("E4 k2 gelu, balance 0.3", dict(E=4, k=2, act="gelu", balance=0.3)),
        ("E3 k1 gelu_tanh, balance 0.5", dict(E=3, k=1, act="gelu_tanh", balance=0.5)),
        ("E4 k3 silu", dict(E=4, k=3, act="silu")),
        ("E4 k4 (= E) gelu, balance 0.2", dict(E=4, k=4, act="gelu", balance=0.2)),
        ("E5 k2 silu, balance 1.0", dict(E=5, k=2, act="silu", balance=1.0)),
    ]
    labels = []
    for label, kw in variants:
        m = moe_with_margin(kw.pop("E"), kw.pop("k"), x, **kw)
        if kw.get("act") == "relu":  # no pre-activation at the kink
            h = torch.einsum("nc,efc->nef", x.reshape(-1, 6), m.experts.fc1.weight) + m.experts.fc1.bias
            assert h.abs().min().item() > 1e-4
        f, params = moe_function(m)
        tmo.ROUTING_LOG = []
        try:
            xi = x.clone().requires_grad_(True)
            assert torch.autograd.gradcheck(f, [xi] + params, eps=1e-6, atol=1e-8, rtol=1e-6), label
            log_ = tmo.ROUTING_LOG
        finally:
            tmo.ROUTING_LOG = None
        assert all(torch.equal(e["idx"], log_[0]["idx"]) for e in log_), f"{label}: routing changed in gradcheck"
        # the gate has a non-zero gradient (k = 1: only through the balance loss)
        params_g = [p.detach().clone().requires_grad_(True) for p in m.parameters()]
        y, aux = f(x, *params_g)
        (y.square().sum() + aux).backward()
        gate_norm = params_g[0].grad.norm().item()
        assert gate_norm > 1e-3, (label, gate_norm)
        if m.top_k == 1:
            params_g = [p.detach().clone().requires_grad_(True) for p in m.parameters()]
            y, _ = f(x, *params_g)
            y.square().sum().backward()
            assert params_g[0].grad.abs().max().item() == 0.0  # w = softmax of one logit = 1: no gate gradient
        labels.append(f"{label} (margin {min_margin(m, x):.3f}, {len(log_)} calls)")
    log("check: MoE gradcheck (float64, x and every parameter, outputs y and aux; atol 1e-8, rtol 1e-6), "
        "routing identical in every call: " + "; ".join(labels) + "; k = 1: the gate's gradient is the "
        "balance loss's alone (exactly 0 without it)")


def check_moe_oracles(log):
    g = torch.Generator().manual_seed(12)
    x = randn(g, 3, 5, 6)
    r = randn(g, 3, 5, 6)

    # 1. E = 1, k = 1: a dense MLP with the same weights
    m = make_moe(1, 1, act="gelu", seed=3)
    mlp = torch_lm.MLP(6, 5, "gelu", 0.0).to(D64)
    with torch.no_grad():
        mlp.fc1.weight.copy_(m.experts.fc1.weight[0])
        mlp.fc1.bias.copy_(m.experts.fc1.bias[0])
        mlp.fc2.weight.copy_(m.experts.fc2.weight[0])
        mlp.fc2.bias.copy_(m.experts.fc2.bias[0])
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = m(xa), mlp(xb)
    d1 = (ya - yb).abs().max().item()
    (ya * r).sum().backward()
    (yb * r).sum().backward()
    d1g = max((xa.grad - xb.grad).abs().max().item(),
              (m.experts.fc1.weight.grad[0] - mlp.fc1.weight.grad).abs().max().item(),
              (m.experts.fc2.weight.grad[0] - mlp.fc2.weight.grad).abs().max().item())
    assert d1 < 1e-14 and d1g < 1e-13, (d1, d1g)
    assert m.gate.weight.grad.abs().max().item() == 0.0 and m.gate.bias.grad.abs().max().item() == 0.0

    # 2. k = E: sum_e softmax(logits)_e expert_e(x), values and gradients
    m = make_moe(4, 4, act="silu", seed=4)
    params = [p.detach().clone().requires_grad_(True) for p in m.parameters()]
    f, _ = moe_function(m)
    xa = x.clone().requires_grad_(True)
    ya, _ = f(xa, *params)
    (ya * r).sum().backward()
    ga = [xa.grad] + [p.grad for p in params]
    xb = x.clone().requires_grad_(True)
    pb = [p.detach().clone().requires_grad_(True) for p in m.parameters()]
    wg, bg, w1, b1, w2, b2 = pb
    xs = xb.reshape(-1, 6)
    p_all = torch.softmax(xs @ wg.t() + bg, dim=-1)
    act = torch_lm.activation_fn("silu")
    yb = sum(p_all[:, e:e + 1] * (act(xs @ w1[e].t() + b1[e]) @ w2[e].t() + b2[e]) for e in range(4)).reshape(x.shape)
    (yb * r).sum().backward()
    gb = [xb.grad] + [p.grad for p in pb]
    d2 = (ya - yb).abs().max().item()
    d2g = max((a - b).abs().max().item() for a, b in zip(ga, gb))
    assert d2 < 1e-14 and d2g < 1e-13, (d2, d2g)

    # 3. permutation of the tokens: outputs permuted, parameter gradients and aux unchanged
    m = moe_with_margin(4, 2, x, act="gelu", balance=0.3)
    f, _ = moe_function(m)
    perm = torch.randperm(15, generator=g)
    xp = x.reshape(15, 6)[perm].reshape(3, 5, 6)
    rp = r.reshape(15, 6)[perm].reshape(3, 5, 6)
    pa = [p.detach().clone().requires_grad_(True) for p in m.parameters()]
    ya, auxa = f(x, *pa)
    ((ya * r).sum() + auxa).backward()
    pb = [p.detach().clone().requires_grad_(True) for p in m.parameters()]
    yb, auxb = f(xp, *pb)
    ((yb * rp).sum() + auxb).backward()
    d3 = (ya.reshape(15, 6)[perm] - yb.reshape(15, 6)).abs().max().item()
    d3g = max((a.grad - b.grad).abs().max().item() for a, b in zip(pa, pb))
    assert d3 < 1e-14 and d3g < 1e-13 and abs(auxa.item() - auxb.item()) < 1e-15, (d3, d3g)

    # 4. an expert no token picks: exactly zero gradient (its gate row too, without the balance loss)
    for balance in (0.0, 0.4):
        m = make_moe(5, 2, act="relu", seed=5, balance=balance)
        with torch.no_grad():
            m.gate.bias[3] = -50.0
        f, params = moe_function(m)
        tmo.ROUTING_LOG = []
        try:
            y, aux = f(x, *params)
            counts = tmo.ROUTING_LOG[0]["counts"]
        finally:
            tmo.ROUTING_LOG = None
        assert counts[3].item() == 0 and (counts[[0, 1, 2, 4]] > 0).all(), counts
        ((y * r).sum() + aux).backward()
        names = [n for n, _ in m.named_parameters()]
        for n, p in zip(names, params):
            if n.startswith("experts."):
                assert torch.all(p.grad[3] == 0.0), n
                for e in (0, 1, 2, 4):
                    assert p.grad[e].abs().max().item() > 1e-3, (n, e)
        if balance == 0.0:
            assert torch.all(params[0].grad[3] == 0.0) and params[1].grad[3].item() == 0.0
        else:
            assert params[0].grad[3].abs().max().item() < 1e-15  # softmax e^-50: nonzero, negligible

    # 6. the 3-D Kaiming-uniform init's bound 1/sqrt(out in) (spec §4.1)
    w = torch.empty(8, 24, 16, dtype=D64)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5))
    bound = 1.0 / math.sqrt(24 * 16)
    assert w.abs().max().item() <= bound and w.abs().max().item() > 0.95 * bound
    log(f"check: MoE oracles: E=1,k=1 == dense MLP (max |diff| {d1:.1e}, gradients {d1g:.1e}, gate gradient 0); "
        f"k=E == sum_e softmax_e expert_e (values {d2:.1e}, gradients {d2g:.1e}); token permutation (outputs "
        f"{d3:.1e}, parameter gradients {d3g:.1e}, aux equal); an expert no token picks: gradient exactly 0 "
        f"(its gate row too without the balance loss; < 1e-15 with it); 3-D Kaiming bound 1/sqrt(out in) ok")


def check_balance_and_modes(log):
    g = torch.Generator().manual_seed(13)
    N, E, k, a = 14, 5, 2, 0.3
    logits = randn(g, N, E, std=1.5).requires_grad_(True)
    idx, _ = tmo.route(logits, k)
    aux = tmo.balance_aux(logits, idx, E, a)
    # naive loop
    cnt = [0] * E
    for t in range(N):
        for j in range(k):
            cnt[idx[t, j].item()] += 1
    p = torch.softmax(logits.detach(), dim=-1)
    naive = a * E * sum(cnt[e] / (N * k) * sum(p[t, e].item() for t in range(N)) / (N * k) for e in range(E))
    assert abs(aux.item() - naive) < 1e-15, (aux.item(), naive)
    aux.backward()
    cnt_t = torch.tensor(cnt, dtype=D64)
    closed = a * E / (N * k) ** 2 * p * (cnt_t - (p * cnt_t).sum(-1, keepdim=True))
    dg = (logits.grad - closed).abs().max().item()
    assert dg < 1e-16, dg
    # ties: all logits equal -> experts 0..k-1 in order, aux = a / k
    flat = torch.zeros(N, E, dtype=D64, requires_grad=True)
    idx, w = tmo.route(flat, 3)
    assert torch.equal(idx, torch.tensor([[0, 1, 2]] * N)) and torch.allclose(w, torch.full_like(w, 1 / 3))
    aux0 = tmo.balance_aux(flat, idx, E, a).item()
    assert abs(aux0 - a / 3) < 1e-15, aux0
    # evaluation: eval_top_k experts, no aux; training: top_k
    x = randn(g, 2, 7, 6)
    m = make_moe(4, 2, eval_k=3, act="gelu", seed=7, balance=0.5)
    tmo.ROUTING_LOG = []
    try:
        m.train()
        m.aux_terms = []
        m(x)
        n_train_aux = len(m.aux_terms)
        m.eval()
        m.aux_terms = []
        with torch.no_grad():
            m(x)
        ks = [e["k"] for e in tmo.ROUTING_LOG]
    finally:
        tmo.ROUTING_LOG = None
    assert ks == [2, 3] and n_train_aux == 1 and m.aux_terms == [], (ks, n_train_aux)
    log(f"check: balance loss == naive loop, d aux / d logits == a E/(Nk)^2 p (c - sum c p) (max |diff| {dg:.1e}; "
        f"f without gradient); ties go to the lower index (all equal: experts 0..k-1, aux = a/k); training routes "
        f"to top_k and adds the aux term, evaluation to eval_top_k without it")


def check_grammar(log):
    ex = torch_lm.expand_arch
    assert [f for _, f in ex("sgfgfg.sgfgfg", "brainformer")] == [0, 1, 2, 1, 2, 1, 6, 7, 8, 7, 8, 7]
    assert [f for _, f in ex("sgsf", "brainformer")] == [0, 1, 0, 3]
    assert [f for _, f in ex("sgsf.sgsf", "brainformer")] == [0, 1, 0, 3, 4, 5, 4, 7]
    assert [f for _, f in ex("sgsf", "plain")] == [0, 1, 2, 3]
    assert ex("s..f", "brainformer") == [("s", 0), ("f", 1)]
    # the shared LM == a plain LM whose positions hold copies; the copies' gradients sum to the shared ones
    name, seed, cfg = [c for c in CASES if c[0] == "lm_moe_brainformer"][0]
    c = golden_lm.full_case(dict(cfg, **{"moe.balance_loss": 0.2}))
    ids, targets = golden_lm.make_batch(c, seed + 500)
    _, shared = golden_lm.build(c, seed, init_moe)
    names = sorted({n.split(".")[1] for n, _ in shared.named_parameters() if n.startswith("blocks.")}, key=int)
    assert names == ["0", "1", "2", "6", "7", "8"], names
    plain_cfg = dict(c, arch=c["arch"].replace(".", ""), arch_grammar="plain")
    plain = torch_lm.LM(plain_cfg).to(D64)
    first = [f for _, f in ex(c["arch"], "brainformer")]
    sd = shared.state_dict()
    want = {}
    for n in plain.state_dict():
        if n.startswith("blocks."):
            _, i, rest = n.split(".", 2)
            want[n] = sd[f"blocks.{first[int(i)]}.{rest}"]
        else:
            want[n] = sd[n]
    plain.load_state_dict(want)
    la, lg_a = shared(ids, targets)
    lb, lg_b = plain(ids, targets)
    assert torch.equal(lg_a, lg_b) and la.item() == lb.item()
    assert shared.last_aux.item() == plain.last_aux.item() and shared.last_aux.item() > 0
    la.backward()
    lb.backward()
    gp = dict(plain.named_parameters())
    worst = 0.0
    for n, p in shared.named_parameters():
        if not n.startswith("blocks."):
            sum_g = gp[n].grad
        else:
            _, i, rest = n.split(".", 2)
            sum_g = sum(gp[f"blocks.{j}.{rest}"].grad for j in range(len(first)) if first[j] == int(i))
        worst = max(worst, (p.grad - sum_g).abs().max().item() / max(1e-30, sum_g.abs().max().item()))
    assert worst < 1e-12, worst
    log(f"check: brainformer grammar: sgfgfg.sgfgfg -> uses of blocks 0 1 2 1 2 1 6 7 8 7 8 7 (sgsf shares its s); "
        f"the shared LM == the plain LM sgfgfgsgfgfg with copied weights (logits and loss bit-identical, aux "
        f"equal with balance 0.2), shared gradients == sum over the copies (relative {worst:.1e})")


# ------------------------------------------------------------------ LM checks

def objective(m, ids, targets):
    """(loss tensor to differentiate, value of cross-entropy + aux)."""
    loss, _ = m(ids, targets)
    return loss, loss.item() + (m.last_aux.item() if m.last_aux is not None else 0.0)


def check_finite_differences(cfg, seed, log, per_tensor=4, h=1e-6):
    """golden_lm.check_finite_differences for the objective cross-entropy + aux (the loss tensor's
    gradient; its value is the cross-entropy alone)."""
    c = golden_lm.full_case(cfg)
    ids, targets = golden_lm.make_batch(c, seed + 500)
    _, m = golden_lm.build(c, seed, init_moe)
    m.zero_grad(set_to_none=True)
    loss, _ = objective(m, ids, targets)
    loss.backward()
    tmo.ROUTING_LOG = []
    try:
        n, worst, worst_abs = golden_lm.finite_difference_sweep(m, lambda: objective(m, ids, targets)[1], seed,
                                                               per_tensor, h)
        routes = tmo.ROUTING_LOG
    finally:
        tmo.ROUTING_LOG = None
    n_moe = len([1 for ch in c["arch"] if ch == "g"])
    base = routes[:n_moe]
    for j, e in enumerate(routes):
        assert torch.equal(e["idx"], base[j % n_moe]["idx"]), "routing changed during finite differences"
    log(f"check: finite differences of ce + aux ({c['arch']}, {c['arch_grammar']}, {c['norm']}, "
        f"{c['moe.activation']}, E {c['moe.num_experts']} k {c['moe.top_k']}, balance {c['moe.balance_loss']}) ok "
        f"over {n} elements, worst |autograd - fd| {worst_abs:.1e}, worst relative (|grad| > 1e-4) {worst:.1e}; "
        f"routing unchanged")


def check_float32(cfg, seed, log):
    """float32 and float64 agree: initial logits, the 10 training losses, and every routing decision of
    a float32 training run equals the float64 run's (what the C code must reproduce)."""
    c = golden_lm.full_case(cfg)
    ids, targets = golden_lm.make_batch(c, seed + 500)
    logs = {}
    for dt in (torch.float32, torch.float64):
        m32, m64 = golden_lm.build(c, seed, init_moe)
        m = m32 if dt == torch.float32 else m64
        tmo.ROUTING_LOG = []
        try:
            with torch.no_grad():
                _, logits = m(ids, targets)
            losses, _, _ = torch_lm.train(m, c, ids, targets, golden_lm.STEPS)
            logs[dt] = (logits.double(), losses, tmo.ROUTING_LOG)
        finally:
            tmo.ROUTING_LOG = None
    d_logits = (logs[torch.float32][0] - logs[torch.float64][0]).abs().max().item()
    d_loss = max(abs(a - b) for a, b in zip(logs[torch.float32][1], logs[torch.float64][1]))
    assert d_logits < 1e-4 and d_loss < 1e-4, (d_logits, d_loss)
    r32, r64 = logs[torch.float32][2], logs[torch.float64][2]
    assert len(r32) == len(r64)
    assert all(torch.equal(a["idx"], b["idx"]) for a, b in zip(r32, r64)), "float32 and float64 routing differ"
    # how far float32 rounding moved the gate logits, against the smallest gap of the float64 run
    d_gate = max((a["logits"].double() - b["logits"]).abs().max().item() for a, b in zip(r32, r64))
    gap = min(b["gap"].min().item() for b in r64)
    log(f"check: float32 vs float64 ({c['arch']}): initial logits max |diff| {d_logits:.1e}, training losses max "
        f"|diff| {d_loss:.1e}; routing identical at all {len(r64)} MoE forwards; gate logits of the float32 run "
        f"off by at most {d_gate:.1e}, {gap / d_gate:.0f}x below the smallest gap {gap:.1e}")


def check_frozen_gate(cfg, seed, log):
    """smoedropout: the gate never moves, its gradient is computed, the norm leaves it out; and the same
    run with the gate trainable does move it."""
    c = golden_lm.full_case(cfg)
    ids, targets = golden_lm.make_batch(c, seed + 500)
    _, m = golden_lm.build(c, seed, init_moe)
    fixed = torch_lm.fixed_param_names(m)
    assert fixed == {"blocks.1.moe.gate.weight", "blocks.1.moe.gate.bias"}, fixed
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    m.zero_grad(set_to_none=True)
    loss, _ = m(ids, targets)
    loss.backward()
    full = torch.sqrt(sum((p.grad ** 2).sum() for p in m.parameters())).item()
    trained = torch.sqrt(sum((p.grad ** 2).sum() for n, p in m.named_parameters() if n not in fixed)).item()
    gate_grad = m.blocks[1].moe.gate.weight.grad.norm().item()
    _, norms, clipped = torch_lm.train(m, c, ids, targets, golden_lm.STEPS)
    assert abs(norms[0] - trained) < 1e-12 * trained and full > trained * (1 + 1e-6), (norms[0], trained, full)
    for n, p in m.named_parameters():
        moved = not torch.equal(p.detach(), before[n])
        assert moved == (n not in fixed), (n, moved)
    _, m2 = golden_lm.build(dict(c, **{"moe.policy": "smoe"}), seed, init_moe)
    torch_lm.train(m2, dict(c, **{"moe.policy": "smoe"}), ids, targets, golden_lm.STEPS)
    assert not torch.equal(m2.blocks[1].moe.gate.weight.detach(), before["blocks.1.moe.gate.weight"])
    log(f"check: smoedropout: gate.weight / gate.bias unchanged after 10 steps (bit-identical), every other "
        f"parameter moved; gate gradient computed (norm {gate_grad:.3f}); gradient norm without the gate "
        f"{trained:.4f} (with it {full:.4f}); clipping in {sum(clipped)} of 10 steps; policy smoe moves the gate")


def aux_share(cfg, seed, log):
    """How much the balance loss adds to the gradient at the initial parameters."""
    c = golden_lm.full_case(cfg)
    ids, targets = golden_lm.make_batch(c, seed + 500)
    grads = {}
    for a in (c["moe.balance_loss"], 0.0):
        _, m = golden_lm.build(dict(c, **{"moe.balance_loss": a}), seed, init_moe)
        loss, _ = m(ids, targets)
        loss.backward()
        grads[a] = ({n: p.grad.clone() for n, p in m.named_parameters()}, m.last_aux)
    (g_all, aux), (g_ce, _) = grads[c["moe.balance_loss"]], grads[0.0]
    lines = []
    for part, sel in (("gates", lambda n: ".gate." in n), ("experts", lambda n: ".experts." in n),
                      ("trunk", lambda n: ".moe." not in n), ("all", lambda n: True)):
        d = torch.sqrt(sum(((g_all[n] - g_ce[n]) ** 2).sum() for n in g_all if sel(n))).item()
        t = torch.sqrt(sum((g_all[n] ** 2).sum() for n in g_all if sel(n))).item()
        lines.append(f"{part} {d:.3e} of {t:.3e} ({100 * d / t:.1f}%)")
    log(f"  balance loss: aux {aux.item():.6f} at init; its share of the gradient (|g(ce+aux) - g(ce)| of "
        f"|g(ce+aux)|): " + ", ".join(lines))


# ------------------------------------------------------------------ golden cases

def run_routing(seed, cfg):
    """Write-free run of a case as write_case does it (float64 initial forward + 10 training steps),
    returning the routing log."""
    c = golden_lm.full_case(cfg)
    ids, targets = golden_lm.make_batch(c, seed + 500)
    _, m64 = golden_lm.build(c, seed, init_moe)
    tmo.ROUTING_LOG = []
    try:
        with torch.no_grad():
            m64(ids, targets)
        torch_lm.train(m64, c, ids, targets, golden_lm.STEPS)
        return tmo.ROUTING_LOG
    finally:
        tmo.ROUTING_LOG = None


def routing_summary(entries, n_uses):
    """Per MoE use (position of its 'g' in the expanded arch): margins per forward (initial, steps 0..9),
    expert counts at the first forward, how many forwards changed its routing."""
    out = []
    for u in range(n_uses):
        es = entries[u::n_uses]
        out.append(dict(use=u, path=es[0]["path"], margin=min(e["margin"] for e in es),
                        per_step=[e["margin"] for e in es], min_gap=min(e["gap"].min().item() for e in es),
                        counts=es[0]["counts"].tolist(), unused=sum(int((e["counts"] == 0).any()) for e in es),
                        changes=sum(not torch.equal(es[i]["idx"], es[i - 1]["idx"]) for i in range(1, len(es)))))
    return out


def n_moe_uses(cfg):
    return sum(ch == "g" for ch in cfg["arch"])


def search(name, seeds, log):
    case = [c for c in CASES if c[0] == name][0]
    for s in seeds:
        summ = routing_summary(run_routing(s, case[2]), n_moe_uses(case[2]))
        worst = min(x["margin"] for x in summ)
        log(f"{name} seed {s}: min margin {worst:.4f}; " + "; ".join(
            f"{x['path']}#{x['use']}: margin {x['margin']:.4f}, counts {x['counts']}, {x['changes']} changes"
            for x in summ))


def write_all(cases, log):
    for name, seed, cfg in cases:
        tmo.ROUTING_LOG = []
        try:
            golden_lm.write_case(name, seed, cfg, log, init=init_moe)
            entries = tmo.ROUTING_LOG
        finally:
            tmo.ROUTING_LOG = None
        # write_case: one forward for the stored logits / gradients, then the 10 training forwards
        summ = routing_summary(entries, n_moe_uses(cfg))
        for x in summ:
            log(f"  routing {x['path']} (use {x['use']}): counts per expert at init {x['counts']}, min relative "
                f"margin {x['margin']:.4f} (absolute gap {x['min_gap']:.4f}), routing changed in {x['changes']} "
                f"of {len(x['per_step']) - 1} forwards, a forward with an unused expert {x['unused']} times")
            log("    min margin per forward (init, steps 0..9): " + " ".join(f"{v:.4f}" for v in x["per_step"]))
            assert x["margin"] >= MARGIN_MIN, f"{name}: routing margin {x['margin']} < {MARGIN_MIN}"
        if cfg["moe.balance_loss"] > 0:
            aux_share(cfg, seed, log)
        if cfg["moe.policy"] == "smoedropout":
            path = os.path.join(golden_lm.OUT_DIR, name + ".safetensors")
            t, _ = safetensors_io.load(path)
            for n in [k[len("param."):] for k in t if k.startswith("param.") and ".moe.gate." in k]:
                assert (t["param." + n] == t["final." + n]).all(), n
                assert abs(t["grad." + n]).max() > 0, n
            log("  final.<gate> == param.<gate>; grad.<gate> stored (non-zero)")


def main():
    run = golden_lm.family_command_line(__doc__, "routing margins", "4000:4020", search, CASES)
    if run is None:
        return
    args, log, cases = run
    if not args.no_check:
        check_moe_gradients(log)
        check_moe_oracles(log)
        check_balance_and_modes(log)
        check_grammar(log)
        for name, seed, cfg in cases:
            check_finite_differences(cfg, seed, log)
        for name, seed, cfg in cases:
            golden_lm.check_causality(cfg, seed, log, init=init_moe)
        for name, seed, cfg in cases:
            check_float32(cfg, seed, log)
        for name, seed, cfg in cases:
            if cfg["moe.policy"] == "smoedropout":
                check_frozen_gate(cfg, seed, log)
    write_all(cases, log)


if __name__ == "__main__":
    main()
