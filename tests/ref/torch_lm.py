"""Independent PyTorch reference of seqlab's language model, optimizer and schedule.

Written plainly from the specification (no torch.nn.Transformer*): embeddings
(optionally scaled by sqrt(d_model)), learned / sinusoidal / reversed
sinusoidal / no positions, pre- or post-LayerNorm residual sublayers given by an
arch string ('s' mixer, 'f' MLP, 'g' mixture of experts: torch_moe.py, section
keys "moe.<key>"; arch_grammar plain: every letter its own sublayer, or
brainformer: '.'-separated layers inside which a repeated letter reuses the
same sublayer, its norm included, named after its first position), optional
final LayerNorm, tied or separate output head, mean cross-entropy. The mixer
is softmax attention, one of the FMMformer family (linear, band, fmm;
torch_mixers.py), S5 / Hyena / Hyena-S5 (s5, hyena; torch_ssm.py, module keys
as "mixer.<key>"), Nyström attention (nystrom; torch_nystrom.py), or MEGA /
SeqBoat (mega, seqboat; torch_mega.py), which own their residual and norm:
their 's' sublayer is the layer itself, with no residual wrapper, or the
adaptive-span attention (adaptive_span; torch_span.py, keys "mixer.<key>"),
whose one key_pe (d, S) the LM owns (parameter `key_pe`) and shares with
every adaptive_span mixer. Works in float32 and float64
(model.to(torch.float64)).

With an MoE whose balance_loss > 0 (training only) the returned loss is
ce + (aux - aux.detach()): its value is the cross-entropy exactly, its
gradient that of ce + aux (the sum of every MoE use's aux term of this
forward, also kept as model.last_aux). The adaptive-span mixers add their
span loss λ S mean(z) the same way (training only, once per mixer), and
train clamps their z into [0, 1] after every optimizer step. The gate of an
smoedropout MoE is fixed (fixed_param_names): make_optimizer and train leave
it out of the updates and of the gradient norm. head_bias: the head (tied or
not) adds its own bias head.bias.

Model keys for the MEGA / SeqBoat LMs: final_norm_affine (false: the final
LayerNorm has no weight / bias), embed_init inv_sqrt_d (init_params draws the
token embedding N(0, d_model^-1/2)), emb_scale sqrt_d; an 'f' sublayer with
activation silu is MEGA's NFFN, its norm the residual wrapper's
(`residual.norm`, layernorm by default, also rmsnorm / scalenorm).

Parameter names match seqlab's exactly, e.g. embed.weight, pos_embed.weight,
blocks.0.norm.weight, blocks.0.mixer.q_net.weight, blocks.1.ffn.fc1.bias,
norm_f.weight, head.weight; for the FMM family blocks.0.mixer.qkv_net.weight,
blocks.0.mixer.w_near, blocks.0.mixer.w_far, blocks.0.mixer.kernel_mix; for 'g'
blocks.1.moe.gate.weight, blocks.1.moe.experts.fc1.weight (E, F, C), ...

    cfg = dict(arch="sf", d_model=32, n_head=4, d_head=8, d_inner=64, vocab_size=37, ...)
    model = LM(cfg)
    init_params(model, seed=0)
    loss, logits = model(ids, targets)
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import torch_mega
import torch_mixers
import torch_moe
import torch_nystrom
import torch_span
import torch_ssm

# Defaults for keys a config may leave out.
DEFAULTS = dict(
    arch="",
    arch_grammar="plain",
    n_layer=2,
    d_head=0,  # 0: d_model // n_head
    norm="pre",
    activation="gelu",
    pos="learned",
    emb_scale="none",
    tie_weight=True,
    head_bias=False,
    causal=True,
    dropout=0.0,
    dropatt=0.0,
    max_len=512,
    mixer="softmax",
    final_norm_affine=True,
    embed_init="scheme",
    diag_size=5,
    sparse_ratio=2.5,
    kernels="elu",
    linear_chunk=64,  # speed only in seqlab; the reference has no chunks
    adaptive_softmax=False,
    cutoffs="20000,40000,200000",
    div_val=1,
    optim="adamw",
    scheduler="cosine",
    lr=1e-3,
    min_lr=0.0,
    warmup_step=0,
    warmup_first_step_full_lr=False,
    max_step=1000,
    weight_decay=0.0,
    decay_groups="linear",
    clip=0.0,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    pct_start=0.3,
    div_factor=25.0,
    final_div_factor=1e4,
    cycle_momentum=True,
    base_momentum=0.85,
    max_momentum=0.95,
)

LN_EPS = 1e-5


def full_config(cfg):
    c = dict(DEFAULTS)
    c.update(cfg)
    if not c["arch"]:
        c["arch"] = "sf" * int(c["n_layer"])
    if not c.get("d_head"):
        c["d_head"] = c["d_model"] // c["n_head"]
    return c


class LayerNorm(nn.Module):
    def __init__(self, dim, affine=True):
        super().__init__()
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(dim))
            self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        if not self.affine:
            return F.layer_norm(x, (x.shape[-1],), None, None, LN_EPS)
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, LN_EPS)


class Attention(nn.Module):
    """Multi-head softmax attention, q_net / kv_net / o_net without biases."""

    def __init__(self, d_model, n_head, d_head, causal, dropatt):
        super().__init__()
        self.n_head, self.d_head, self.causal = n_head, d_head, causal
        hd = n_head * d_head
        self.q_net = nn.Linear(d_model, hd, bias=False)
        self.kv_net = nn.Linear(d_model, 2 * hd, bias=False)
        self.o_net = nn.Linear(hd, d_model, bias=False)
        self.dropatt = nn.Dropout(dropatt)

    def forward(self, x):
        B, T, _ = x.shape
        H, d = self.n_head, self.d_head
        hd = H * d
        q = self.q_net(x)
        kv = self.kv_net(x)
        k, v = kv[..., :hd], kv[..., hd:]
        # (B, T, H*d) -> (B, H, T, d): head h owns channels [h*d, (h+1)*d)
        q = q.reshape(B, T, H, d).transpose(1, 2)
        k = k.reshape(B, T, H, d).transpose(1, 2)
        v = v.reshape(B, T, H, d).transpose(1, 2)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d)  # (B, H, T, T)
        if self.causal:
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            s = s.masked_fill(mask, float("-inf"))
        p = torch.softmax(s, dim=-1)
        p = self.dropatt(p)
        o = torch.matmul(p, v)  # (B, H, T, d)
        o = o.transpose(1, 2).reshape(B, T, hd)
        return self.o_net(o)


def activation_fn(name):
    if name == "relu":
        return torch.relu
    if name == "gelu":
        return lambda x: 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if name == "gelu_tanh":
        return lambda x: 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "silu":
        return torch_mega.silu
    raise ValueError(f"unknown activation {name!r}")


class MLP(nn.Module):
    def __init__(self, d_model, d_inner, activation, dropout):
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_inner)
        self.fc2 = nn.Linear(d_inner, d_model)
        self.act = activation_fn(activation)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.fc2(self.drop(self.act(self.fc1(x))))


class Block(nn.Module):
    """One sublayer: its LayerNorm plus a mixer ('s'), an ffn ('f') or a mixture of experts ('g')."""

    def __init__(self, kind, c, index=0):
        super().__init__()
        self.kind = kind
        self.pre = c["norm"] == "pre"
        self.owns_residual = kind == "s" and c["mixer"] in ("mega", "seqboat")
        if self.owns_residual:  # the layer is Y of spec §4.2 / §6.5: no norm, no residual here
            self.mixer = torch_mega.mixer_from_config(c, layer_id=index)
            return
        norm_type = c.get("residual.norm", "layernorm")
        self.norm = LayerNorm(c["d_model"]) if norm_type == "layernorm" else torch_mega.Norm(norm_type, c["d_model"])
        if kind == "s" and c["mixer"] == "softmax":
            self.mixer = Attention(c["d_model"], c["n_head"], c["d_head"], c["causal"], c["dropatt"])
        elif kind == "s" and c["mixer"] in ("s5", "hyena"):
            self.mixer = torch_ssm.mixer_from_config(c)
        elif kind == "s" and c["mixer"] == "nystrom":
            self.mixer = torch_nystrom.NystromAttention(c)
        elif kind == "s" and c["mixer"] == "adaptive_span":
            self.mixer = torch_span.mixer_from_config(c)
            self.mixer.path = f"blocks.{index}.mixer"
        elif kind == "s":
            self.mixer = torch_mixers.FmmAttention(c)
        elif kind == "f":
            self.ffn = MLP(c["d_model"], c["d_inner"], c["activation"], c["dropout"])
        elif kind == "g":
            self.moe = torch_moe.moe_from_config(c, activation_fn)
            self.moe.path = f"blocks.{index}.moe"
        else:
            raise ValueError(f"unknown sublayer {kind!r}")
        self.drop = nn.Dropout(c["dropout"])

    def module(self, x):
        if self.kind == "g":
            return self.moe(x)
        return self.mixer(x) if self.kind == "s" else self.ffn(x)

    def forward(self, x):
        if self.owns_residual:
            return self.mixer(x)
        if self.pre:
            return x + self.drop(self.module(self.norm(x)))
        return self.norm(x + self.drop(self.module(x)))


def sinusoidal(T, C, dtype, reversed_positions=False):
    """(T, C) table: row t = sin(p f_j) in the first half, cos(p f_j) in the
    second, f_j = 10000^(-2j/C), with p = t, or p = T-1-t when reversed (the
    Transformer-XL / FMM trainer counts positions from the end)."""
    half = C // 2
    t = torch.arange(T, dtype=torch.float64)[:, None]
    if reversed_positions:
        t = (T - 1) - t
    j = torch.arange(half, dtype=torch.float64)[None, :]
    f = 1.0 / torch.pow(10000.0, 2.0 * j / C)
    P = torch.zeros(T, C, dtype=torch.float64)
    P[:, :half] = torch.sin(t * f)
    P[:, half:2 * half] = torch.cos(t * f)
    return P.to(dtype)


def expand_arch(arch, grammar):
    """[(letter, first)]: the sublayer uses of an arch string, `first` the
    position of the sublayer's first use (itself unless it is shared).
    plain: every letter its own; brainformer: '.'-separated layers, inside one
    a repeated letter reuses the layer's sublayer of that letter. Positions
    count the letters, dots removed."""
    uses = []
    if grammar == "plain":
        if "." in arch:
            raise ValueError(f"arch {arch!r}: '.' needs arch_grammar brainformer")
        return [(ch, i) for i, ch in enumerate(arch)]
    if grammar != "brainformer":
        raise ValueError(f"unknown arch_grammar {grammar!r}")
    for layer in arch.split("."):
        first = {}
        for ch in layer:
            i = len(uses)
            uses.append((ch, first.setdefault(ch, i)))
    return uses


class LM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = full_config(cfg)
        self.c = c
        V, C = c["vocab_size"], c["d_model"]
        self.adaptive_input = c["adaptive_softmax"] and int(c["div_val"]) > 1
        if self.adaptive_input:
            self.embed = AdaptiveInput(V, C, c["cutoffs"], int(c["div_val"]))
        else:
            self.embed = nn.Embedding(V, C)
        if c["pos"] == "learned":
            self.pos_embed = nn.Embedding(c["max_len"], C)
        elif c["pos"] not in ("sinusoidal", "sinusoidal_reversed", "none"):
            raise ValueError(f"unknown pos {c['pos']!r}")
        self.drop = nn.Dropout(c["dropout"])
        expanded = expand_arch(c["arch"], c["arch_grammar"])
        if c["arch_grammar"] == "plain":
            self.blocks = nn.ModuleList([Block(k, c, i) for i, (k, _) in enumerate(expanded)])
            self.uses = list(self.blocks)
        else:  # one module per first use, blocks.<first position>; self.uses repeats the shared ones
            self.blocks = nn.Module()
            for i, (k, first) in enumerate(expanded):
                if first == i:
                    self.blocks.add_module(str(i), Block(k, c, i))
            self.uses = [getattr(self.blocks, str(first)) for _, first in expanded]
        self.moes = [m for m in self.blocks.modules() if isinstance(m, torch_moe.MoE)]
        self.spans = [m for m in self.blocks.modules() if isinstance(m, torch_span.AdaptiveSpanAttention)]
        if self.spans:  # one key_pe (d, S) for every adaptive_span mixer of the model
            shapes = {(m.d_head, m.attn_span) for m in self.spans}
            if len(shapes) != 1:
                raise ValueError(f"adaptive_span mixers with different (d, S) share key_pe: {sorted(shapes)}")
            self.key_pe = nn.Parameter(torch.zeros(*shapes.pop()))
            for m in self.spans:
                m.key_pe_source = lambda: self.key_pe
        self.last_aux = None
        if c["norm"] == "pre":
            self.norm_f = LayerNorm(C, affine=bool(c["final_norm_affine"]))
        elif c["norm"] != "post":
            raise ValueError(f"unknown norm {c['norm']!r}")
        if c["adaptive_softmax"] and self.adaptive_input:
            self.head = ProjectedHead(V, C, c["cutoffs"], int(c["div_val"]), self.embed, c["tie_weight"])
        elif c["adaptive_softmax"]:
            self.head = AdaptiveHead(V, C, c["cutoffs"], own_weight=not c["tie_weight"])
        elif not c["tie_weight"]:
            self.head = nn.Linear(C, V, bias=bool(c["head_bias"]))
        elif c["head_bias"]:  # tied table, own bias
            self.head = nn.Module()
            self.head.bias = nn.Parameter(torch.zeros(V))
        if c["emb_scale"] not in ("none", "sqrt_d"):
            raise ValueError(f"unknown emb_scale {c['emb_scale']!r}")
        if c["embed_init"] not in ("scheme", "inv_sqrt_d"):
            raise ValueError(f"unknown embed_init {c['embed_init']!r}")

    def forward(self, ids, targets=None):
        B, T = ids.shape
        c = self.c
        if T > c["max_len"]:
            raise ValueError(f"sequence length {T} > max_len {c['max_len']}")
        x = self.embed(ids) if self.adaptive_input else self.embed.weight[ids]
        if c["emb_scale"] == "sqrt_d":
            x = x * math.sqrt(c["d_model"])
        if c["pos"] == "learned":
            x = x + self.pos_embed.weight[:T][None]
        elif c["pos"] in ("sinusoidal", "sinusoidal_reversed"):
            P = sinusoidal(T, c["d_model"], x.dtype, reversed_positions=c["pos"] == "sinusoidal_reversed")
            x = x + P.to(x.device)[None]
        x = self.drop(x)
        for moe in self.moes:
            moe.aux_terms = []
        for blk in self.uses:
            x = blk(x)
        if c["norm"] == "pre":
            x = self.norm_f(x)
        W = None if self.adaptive_input else self.embed.weight if c["tie_weight"] else self.head.weight
        if c["adaptive_softmax"]:
            logits = self.head.log_probs(x, W)  # log-probabilities, as seqlab's head_logits
            if targets is None:
                return None, logits
            nll = -logits.reshape(B * T, -1).gather(1, targets.reshape(B * T, 1).long())
            return self.with_aux(nll.mean()), logits
        logits = torch.matmul(x, W.t())
        if c["head_bias"]:
            logits = logits + self.head.bias
        if targets is None:
            return None, logits
        loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T).long())
        return self.with_aux(loss), logits

    def with_aux(self, loss):
        """loss + the MoE balance terms of this forward and (training only) the
        adaptive-span mixers' span losses, as a gradient only: (aux -
        aux.detach()) is exactly 0, so the value stays the cross-entropy."""
        terms = [t for m in self.moes for t in m.aux_terms]
        if self.training:
            terms += [m.span_loss() for m in self.spans]
        if not terms:
            self.last_aux = None
            return loss
        aux = terms[0]
        for t in terms[1:]:
            aux = aux + t
        self.last_aux = aux
        return loss + (aux - aux.detach())


class AdaptiveHead(nn.Module):
    """The adaptive softmax of the Transformer-XL trainer with div_val 1
    (tasks-fmm-nystrom.md A.4), written from the spec: the head scores the
    shortlist [0, c1) with the output table rows and bias, and each tail
    cluster i >= 1 with cluster row k - i (its "column -i"); a tail class adds
    its log-softmax within the cluster. Computed densely for every class."""

    def __init__(self, V, C, cutoffs, own_weight):
        super().__init__()
        if own_weight:
            self.weight = nn.Parameter(torch.zeros(V, C))
        cuts = [int(s) for s in cutoffs.split(",") if s.strip()]
        self.bounds = [0] + cuts + [V]
        k = len(cuts)
        self.bias = nn.Parameter(torch.zeros(V))
        if k:
            self.cluster_weight = nn.Parameter(torch.zeros(k, C))
            self.cluster_bias = nn.Parameter(torch.zeros(k))

    def log_probs(self, x, W):
        b, k = self.bounds, len(self.bounds) - 2
        full = torch.matmul(x, W.t()) + self.bias
        if k == 0:
            return torch.log_softmax(full, dim=-1)
        head = torch.cat([full[..., :b[1]], torch.matmul(x, self.cluster_weight.t()) + self.cluster_bias], dim=-1)
        head_lp = torch.log_softmax(head, dim=-1)
        parts = [head_lp[..., :b[1]]]
        for i in range(1, k + 1):
            tail_lp = torch.log_softmax(full[..., b[i]:b[i + 1]], dim=-1)
            parts.append(head_lp[..., head.shape[-1] - i:head.shape[-1] - i + 1] + tail_lp)
        return torch.cat(parts, dim=-1)


def cluster_bounds(V, cutoffs):
    return [0] + [int(s) for s in cutoffs.split(",") if s.strip()] + [V]


class Cluster(nn.Module):
    """One cluster of the adaptive input: a table (V_i, d_i) and its
    projection (C, d_i) to the model width."""

    def __init__(self, rows, C, d):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(rows, d))
        self.proj = nn.Parameter(torch.zeros(C, d))


class AdaptiveInput(nn.Module):
    """The Transformer-XL trainer's AdaptiveEmbedding with div_val > 1: token y
    of cluster i is its table row projected to the model width,
    x = E_i[y - c_i] P_i^T, widths d_i = C // div_val**i. Parameters
    embed.<i>.weight and embed.<i>.proj."""

    def __init__(self, V, C, cutoffs, div_val):
        super().__init__()
        self.bounds, self.C = cluster_bounds(V, cutoffs), C
        for i in range(len(self.bounds) - 1):
            self.add_module(str(i), Cluster(self.bounds[i + 1] - self.bounds[i], C, C // div_val ** i))

    def cluster(self, i):
        return getattr(self, str(i))

    def forward(self, ids):
        out = None
        for i in range(len(self.bounds) - 1):
            lo, hi = self.bounds[i], self.bounds[i + 1]
            m = self.cluster(i)
            inside = (ids >= lo) & (ids < hi)
            e = m.weight[(ids - lo).clamp(0, hi - lo - 1)]  # (B, T, d_i), rows of other clusters masked below
            x = torch.matmul(e, m.proj.t()) * inside.unsqueeze(-1).to(e.dtype)
            out = x if out is None else out + x
        return out


class ProjectedHead(nn.Module):
    """The adaptive softmax with div_val > 1 (ProjectedAdaptiveLogSoftmax):
    cluster i scores x P_i against its own table (the input embedding's when
    tied), P_0 the head's own (head.0.proj), the tails' P_i the input
    embedding's (tie_projs); head classes: the shortlist then the cluster rows,
    tail i at column -i. Returns log-probabilities of every class."""

    def __init__(self, V, C, cutoffs, div_val, embed, tied):
        super().__init__()
        self.bounds, self.embed, self.tied = cluster_bounds(V, cutoffs), [embed], tied
        k = len(self.bounds) - 2
        for i in range(k + 1):
            d = C // div_val ** i
            m = nn.Module()
            if not tied:
                m.weight = nn.Parameter(torch.zeros(self.bounds[i + 1] - self.bounds[i], d))
            if i == 0:
                m.proj = nn.Parameter(torch.zeros(C, d))
            self.add_module(str(i), m)
        self.bias = nn.Parameter(torch.zeros(V))
        if k:
            self.cluster_weight = nn.Parameter(torch.zeros(k, C))
            self.cluster_bias = nn.Parameter(torch.zeros(k))

    def table(self, i):
        return self.embed[0].cluster(i).weight if self.tied else getattr(self, str(i)).weight

    def proj(self, i):
        return getattr(self, "0").proj if i == 0 else self.embed[0].cluster(i).proj

    def log_probs(self, x, W=None):
        b, k = self.bounds, len(self.bounds) - 2
        logits = [torch.matmul(torch.matmul(x, self.proj(i)), self.table(i).t()) + self.bias[b[i]:b[i + 1]]
                  for i in range(k + 1)]
        if k == 0:
            return torch.log_softmax(logits[0], dim=-1)
        u0 = torch.matmul(x, self.proj(0))
        head = torch.cat([logits[0], torch.matmul(u0, self.cluster_weight.t()) + self.cluster_bias], dim=-1)
        head_lp = torch.log_softmax(head, dim=-1)
        parts = [head_lp[..., :b[1]]]
        for i in range(1, k + 1):
            parts.append(head_lp[..., head.shape[-1] - i:head.shape[-1] - i + 1] + torch.log_softmax(logits[i], dim=-1))
        return torch.cat(parts, dim=-1)


def param_group(name):
    """seqlab's parameter group of a parameter name."""
    if ".moe." in name:  # gate.weight, experts.fc1.weight, ... linear; their biases bias
        return "linear" if name.endswith(".weight") else "bias"
    span = torch_span.param_group(name)  # adaptive_span mixers and key_pe
    if span is not None:
        return span
    ssm = torch_ssm.param_group(name)  # S5 / Hyena mixers (None for every other name)
    if ssm is not None:
        return ssm
    mega = torch_mega.param_group(name)  # MEGA / SeqBoat mixers
    if mega is not None:
        return mega
    if name in ("embed.weight", "pos_embed.weight") or (name.startswith("embed.") and name.endswith(".weight")):
        return "embedding"
    if name.endswith(".proj") or (name.startswith("head.") and name.endswith(".weight")):
        return "linear"
    if name.startswith("norm_f.") or ".norm." in name:
        return "norm"
    projections = (".q_net.", ".kv_net.", ".qkv_net.", ".o_net.", ".fc1.", ".fc2.", ".W_q.", ".W_k.", ".W_v.", ".ff.")
    if name.endswith(".bias") and any(s in name for s in projections):
        return "bias"
    if name.endswith(".weight") and any(s in name for s in projections) or name.endswith(".mixer.conv.weight"):
        return "linear"
    if name in ("head.weight", "head.cluster_weight"):
        return "linear"
    if name in ("head.bias", "head.cluster_bias"):
        return "bias"
    return "other"


def is_blend_gate(name):
    return name.endswith(".mixer.w_near") or name.endswith(".mixer.w_far")


def init_params(model, seed, std=0.02, ln_w_std=0.1, ln_b_std=0.05, gate_std=0.5, mix_std=0.2, qkv_std=None):
    """Draws every parameter in float32 from a seeded torch generator, in
    named_parameters() order: N(0, std) for weights, embeddings and biases,
    LayerNorm weight 1 + N(0, ln_w_std), LayerNorm bias N(0, ln_b_std); the
    FMM blend gates w_near, w_far N(0, gate_std) and kernel_mix
    0.5 + N(0, mix_std), so that every branch of the blend matters (the
    original starts them at 0 and 0.5); qkv_net.weight N(0, qkv_std) when
    given (large enough that q, k leave the near-linear region of the
    feature maps, where elu and elu_flip agree to second order); with
    embed_init inv_sqrt_d the token embedding N(0, d_model^-1/2)."""
    g = torch.Generator().manual_seed(seed)
    inv_sqrt_d = getattr(model, "c", {}).get("embed_init") == "inv_sqrt_d"
    with torch.no_grad():
        for name, p in model.named_parameters():
            z = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name == "embed.weight" and inv_sqrt_d:
                v = model.c["d_model"] ** -0.5 * z
            elif param_group(name) == "norm":
                v = 1.0 + ln_w_std * z if name.endswith(".weight") else ln_b_std * z
            elif is_blend_gate(name):
                v = gate_std * z
            elif name.endswith(".mixer.kernel_mix"):
                v = 0.5 + mix_std * z
            elif name.endswith(".mixer.qkv_net.weight") and qkv_std is not None:
                v = qkv_std * z
            else:
                v = std * z
            p.copy_(v.to(p.dtype))


def fixed_param_names(model):
    """Parameters the optimizer never updates (their gradient is still
    computed): the gate of every smoedropout MoE."""
    fixed = set()
    for prefix, m in model.named_modules():
        if isinstance(m, torch_moe.MoE) and m.frozen_gate:
            fixed.update(f"{prefix}.gate.{n}" for n in ("weight", "bias"))
    return fixed


def trained_parameters(model):
    fixed = fixed_param_names(model)
    return [(n, p) for n, p in model.named_parameters() if n not in fixed]


def make_optimizer(model, cfg):
    c = full_config(cfg)
    betas = (c["beta1"], c["beta2"])
    named = trained_parameters(model)
    if c["optim"] == "adam":
        return torch.optim.Adam([p for _, p in named], lr=c["lr"], betas=betas, eps=c["eps"], weight_decay=0.0)
    if c["optim"] != "adamw":
        raise ValueError(f"unknown optim {c['optim']!r}")
    groups = set(s.strip() for s in c["decay_groups"].split(",") if s.strip())
    decay, no_decay = [], []
    for name, p in named:
        (decay if param_group(name) in groups else no_decay).append(p)
    return torch.optim.AdamW(
        [dict(params=decay, weight_decay=c["weight_decay"]), dict(params=no_decay, weight_decay=0.0)],
        lr=c["lr"], betas=betas, eps=c["eps"],
    )


def lr_cosine_txl(s, c):
    """Transformer-XL's cosine (the FMM trainer, tasks-fmm-nystrom.md A.6).
    The trainer sets the lr after each update from the count k of updates
    done: k/warmup * lr while k < warmup, then a cosine over all of max_step,
    not shifted by the warm-up. Update s (0-based) runs after k = s updates;
    update 0 runs at the lr the optimizer was created with (the full lr) with
    warmup_first_step_full_lr, else (seqlab's choice, not in the original)
    at lr/warmup, the first warm-up step."""
    lr, w = c["lr"], c["warmup_step"]
    if s == 0 and c["warmup_first_step_full_lr"]:
        return lr
    if s < w:
        return lr * max(s, 1) / w
    progress = min(1.0, s / c["max_step"])
    return c["min_lr"] + 0.5 * (lr - c["min_lr"]) * (1.0 + math.cos(math.pi * progress))


def one_cycle(s, c):
    """(lr, beta1) of update s under PyTorch's OneCycleLR, linear annealing,
    two phases, written from its definition: lr rises from lr/div_factor to
    lr until update pct_start*max_step - 1, then falls to
    lr/div_factor/final_div_factor at update max_step - 1; beta1 moves the
    other way between max_momentum and base_momentum."""
    first = c["lr"] / c["div_factor"]
    last = first / c["final_div_factor"]
    end1, end2 = c["pct_start"] * c["max_step"] - 1, c["max_step"] - 1
    hi, lo = c["max_momentum"], c["base_momentum"]
    if s <= end1:
        pct = s / end1
        return first + (c["lr"] - first) * pct, hi + (lo - hi) * pct
    pct = (s - end1) / (end2 - end1)
    return c["lr"] + (last - c["lr"]) * pct, lo + (hi - lo) * pct


def beta1_at(s, cfg):
    """Adam's beta1 of update s: the config's, or one_cycle's cycled momentum."""
    c = full_config(cfg)
    if c["scheduler"] == "one_cycle" and c["cycle_momentum"]:
        return one_cycle(s, c)[1]
    return c["beta1"]


def lr_at(s, cfg):
    """Learning rate of update s (0-based)."""
    c = full_config(cfg)
    lr, w = c["lr"], c["warmup_step"]
    if c["scheduler"] == "cosine_txl":
        return lr_cosine_txl(s, c)
    if c["scheduler"] == "one_cycle":
        return one_cycle(s, c)[0]
    if w > 0 and s < w:
        return lr * (s + 1) / w
    if c["scheduler"] == "constant":
        return lr
    if c["scheduler"] == "cosine":
        return c["min_lr"] + 0.5 * (lr - c["min_lr"]) * (1.0 + math.cos(math.pi * (s - w) / (c["max_step"] - w)))
    if c["scheduler"] == "inv_sqrt":
        return lr * math.sqrt(w / (s + 1))
    raise ValueError(f"unknown scheduler {c['scheduler']!r}")


def train(model, cfg, ids, targets, steps, log=None):
    """`steps` updates on one batch. Returns (losses, grad_norms, clipped).
    The gradient norm and the clipping cover the trained parameters only
    (not fixed_param_names). After each update the adaptive-span mixers
    clamp their z into [0, 1]."""
    c = full_config(cfg)
    opt = make_optimizer(model, c)
    params = [p for _, p in trained_parameters(model)]
    losses, norms, clipped = [], [], []
    for s in range(steps):
        opt.zero_grad(set_to_none=True)
        loss, _ = model(ids, targets)
        loss.backward()
        norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params)).item()
        if c["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(params, c["clip"])
        lr = lr_at(s, c)
        for g in opt.param_groups:
            g["lr"] = lr
            g["betas"] = (beta1_at(s, c), c["beta2"])
        opt.step()
        for m in getattr(model, "spans", []):  # adaptive span: z clamped into [0, 1] after every update
            m.after_update()
        losses.append(loss.item())
        norms.append(norm)
        clipped.append(c["clip"] > 0 and norm > c["clip"])
        if log:
            log(f"  step {s}: lr {lr:.6g} loss {loss.item():.6f} grad_norm {norm:.6f}"
                + (" clipped" if clipped[-1] else ""))
    return losses, norms, clipped
