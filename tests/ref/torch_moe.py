"""The mixture-of-experts feed-forward (the Brainformer 'g' sublayer) of
shared/spec/moe-brainformer.md §4, written from the spec with plain torch ops.

    moe = MoE(d_model=16, num_experts=4, top_k=2, eval_top_k=2, d_inner=24, act=torch.relu)
    y = moe(x)          # x (..., C) -> y (..., C)

Parameters, in this order (seqlab's names and shapes):

    gate.weight          (E, C)      logits = x gate.weight^T + gate.bias
    gate.bias            (E)
    experts.fc1.weight   (E, F, C)   expert e: y_e = fc2_e(Dropout(act(fc1_e x)))
    experts.fc1.bias     (E, F)
    experts.fc2.weight   (E, C, F)
    experts.fc2.bias     (E, C)

Forward for the N tokens of x (every leading dimension flattened):
k = top_k in training (module.training), eval_top_k otherwise; each token
takes the k largest logits (ties: the lower expert index first, from a stable
descending sort), w = softmax over those k logits; moe(x) = sum_j w_j
y_{idx_j}(x), then output dropout. The choice is made without gradient; the
gate gets its gradient only through the softmax over the chosen logits. Each
expert runs on the tokens that chose it (gathered rows), and its output is
added back with index_add_, so an expert no token picks gets exactly zero
gradient.

Load-balance loss (training only, balance_loss = a > 0): with N tokens and
counts c_e of the N k (token, expert) choices, f_e = c_e / (N k) (no
gradient), P_e = sum_t softmax(all E logits of t)_e / (N k), aux = a E
sum_e f_e P_e (fastmoe's CustomNaiveGate_Balance, which divides both by the
number of choices, so a perfectly balanced uniform gate gives a / k). Every
forward that computes it appends it to `module.aux_terms` (a shared MoE used
three times appends three terms); torch_lm.LM sums them per forward.

policy smoedropout: `frozen_gate` is True; the gate's gradient is still
computed, torch_lm.fixed_param_names lists gate.weight / gate.bias so that
the optimizer and the gradient norm leave them out.

ROUTING_LOG: set it to a list and every forward appends a dict (path, training,
k, idx (N, k) the chosen experts largest first, logits (N, E), gap: per token l_(k) - l_(k+1)
of the sorted logits (inf when k = E), margin: min over tokens of
gap / max(1, max_e |l_e|), counts (E)).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

ROUTING_LOG = None

POLICIES = ("smoe", "smoedropout")


class _Gate(nn.Module):
    def __init__(self, C, E):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(E, C))
        self.bias = nn.Parameter(torch.zeros(E))


class _Layer(nn.Module):
    """E stacked Linear layers: weight (E, out, in), bias (E, out)."""

    def __init__(self, E, d_in, d_out):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(E, d_out, d_in))
        self.bias = nn.Parameter(torch.zeros(E, d_out))


class _Experts(nn.Module):
    def __init__(self, E, C, F_):
        super().__init__()
        self.fc1 = _Layer(E, C, F_)
        self.fc2 = _Layer(E, F_, C)


def route(logits, k):
    """(idx (N, k) without gradient, largest logit first, ties to the lower
    index; w (N, k) = softmax over the chosen logits, differentiable)."""
    with torch.no_grad():
        order = torch.sort(logits.detach(), dim=-1, descending=True, stable=True).indices
        idx = order[:, :k].contiguous()
    return idx, torch.softmax(logits.gather(1, idx), dim=-1)


def routing_gaps(logits, k):
    """Per token: l_(k) - l_(k+1) of the sorted logits (inf when k = E), and
    that gap relative to max(1, max_e |l_e|)."""
    with torch.no_grad():
        E = logits.shape[-1]
        if k >= E:
            inf = torch.full(logits.shape[:1], math.inf, dtype=logits.dtype)
            return inf, inf
        s = torch.sort(logits.detach(), dim=-1, descending=True).values
        gap = s[:, k - 1] - s[:, k]
        scale = torch.clamp(logits.detach().abs().max(dim=-1).values, min=1.0)
        return gap, gap / scale


def balance_aux(logits, idx, E, coef):
    """coef E sum_e f_e P_e over the N tokens of one forward (f without gradient)."""
    NK = idx.numel()
    counts = torch.bincount(idx.reshape(-1), minlength=E).to(logits.dtype)
    f = counts / NK
    P = torch.softmax(logits, dim=-1).sum(dim=0) / NK
    return coef * E * (f * P).sum()


class MoE(nn.Module):
    def __init__(self, d_model, num_experts, top_k, eval_top_k, d_inner, act, dropout=0.0, output_dropout=-1.0,
                 balance_loss=0.0, policy="smoe"):
        super().__init__()
        E = int(num_experts)
        if not 1 <= top_k <= E or not 1 <= eval_top_k <= E:
            raise ValueError(f"top_k {top_k} / eval_top_k {eval_top_k} must be in [1, num_experts {E}]")
        if policy not in POLICIES:
            raise ValueError(f"unknown moe policy {policy!r}")
        self.E, self.C, self.F = E, int(d_model), int(d_inner)
        self.top_k, self.eval_top_k = int(top_k), int(eval_top_k)
        self.act = act
        self.balance_loss = float(balance_loss)
        self.frozen_gate = policy == "smoedropout"
        self.gate = _Gate(self.C, E)
        self.experts = _Experts(E, self.C, self.F)
        self.drop = nn.Dropout(dropout)
        self.out_drop = nn.Dropout(dropout if output_dropout < 0 else output_dropout)
        self.aux_terms = []
        self.path = "moe"

    def expert(self, e, x):
        """Expert e on rows x (n, C)."""
        h = torch.matmul(x, self.experts.fc1.weight[e].t()) + self.experts.fc1.bias[e]
        h = self.drop(self.act(h))
        return torch.matmul(h, self.experts.fc2.weight[e].t()) + self.experts.fc2.bias[e]

    def forward(self, x):
        shape = x.shape
        xs = x.reshape(-1, self.C)
        N = xs.shape[0]
        k = self.top_k if self.training else self.eval_top_k
        logits = torch.matmul(xs, self.gate.weight.t()) + self.gate.bias
        idx, w = route(logits, k)
        y = torch.zeros_like(xs)
        for e in range(self.E):
            tok, j = (idx == e).nonzero(as_tuple=True)  # tokens (ascending) that chose e, and at which rank
            if tok.numel() == 0:
                continue
            ye = self.expert(e, xs.index_select(0, tok))
            y = y.index_add(0, tok, w[tok, j].unsqueeze(-1) * ye)
        if self.training and self.balance_loss > 0:
            self.aux_terms.append(balance_aux(logits, idx, self.E, self.balance_loss))
        if ROUTING_LOG is not None:
            gap, rel = routing_gaps(logits, k)
            ROUTING_LOG.append(dict(path=self.path, training=self.training, k=k, idx=idx.clone(), gap=gap,
                                    logits=logits.detach().clone(),
                                    margin=rel.min().item(), N=N,
                                    counts=torch.bincount(idx.reshape(-1), minlength=self.E)))
        return self.out_drop(y).reshape(shape)


def moe_from_config(c, activation_fn):
    """MoE from a full torch_lm config: the section keys moe.<key> (defaults as
    seqlab's: num_experts 16, top_k 2, eval_top_k 2, d_inner 0 = the model's
    d_inner, activation relu, dropout = the model's, output_dropout -1 =
    dropout, balance_loss 0, policy smoe)."""
    g = lambda key, default: c.get("moe." + key, default)  # noqa: E731
    F_ = int(g("d_inner", 0)) or int(c["d_inner"])
    dropout = float(g("dropout", c["dropout"]))
    return MoE(c["d_model"], int(g("num_experts", 16)), int(g("top_k", 2)), int(g("eval_top_k", 2)), F_,
               activation_fn(g("activation", "relu")), dropout, float(g("output_dropout", -1.0)),
               float(g("balance_loss", 0.0)), g("policy", "smoe"))
