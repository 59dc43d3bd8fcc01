"""The adaptive-span attention of shared/spec/moe-brainformer.md §2.2 and §3.1-§3.3
(seqlab's mixer `adaptive_span`), written from the spec with plain torch ops,
for one block from an empty past (no memory between blocks).

    m = AdaptiveSpanAttention(d_model=16, n_head=2, attn_span=12, adapt_span=True,
                              loss_coef=0.01, ramp=4, init_val=0.0, dropout=0.0)
    m.key_pe_source = lambda: key_pe      # the model's one key_pe (d, S), shared by every layer
    y = m(x)                              # x (B, M, C) -> y (B, M, C)

Parameters of one mixer (seqlab's names; y = x W^T, no biases):

    proj_query.weight, proj_key.weight, proj_val.weight, proj_out.weight   (C, C)
    adaptive_span.current_val                                              (H,)  the per-head z

and one model-level `key_pe` (d, S), d = C / H, which torch_lm.LM owns and hands
to every adaptive_span mixer (its gradient is the sum over the layers).

Forward (`span_attention`, the formula of §2.2 indexed by distance): the keys
and values come from [S zero rows; the block] (the empty past: zero cache
entries are attended to, unmasked, with content logit 0, position logit
q·key_pe[:, S − δ] and value 0). Query i attends to the keys at distances
δ = 1..S (never itself): δ ≤ i is block row i − δ, the rest are zero rows.
Per head, logit = (q_i·k_{i−δ} + q_i·key_pe[:, S − δ]) / sqrt(d); softmax
over the S distances; with adapt_span the mask m_h(δ) = clamp((z_h S − (δ −
1)) / R + 1, 0, 1) and A' = A m / (Σ A m + 1e-8) (§3.1; torch.clamp passes the
gradient at the bounds, as the spec asks); then dropout on the weights; out =
Σ_δ A' v; heads concatenated (head h owns channels [h d, (h+1) d)); y = out
W_out^T.

The reference computes all S distances. seqlab computes only the last
Se = S − trim (§3.3), which changes the result only through the 1e-8 term
(the trimmed distances have mask 0); `span_attention(..., n_dist=Se)` is that
trimmed computation (softmax over the Se computed distances), used as a check,
and `trim_of(z, S, R)` gives §3.3's trim.

Span loss (§3.2, training only): `span_loss()` = λ S mean_h(z_h) per mixer
(adapt_span false: 0 · Σ z, so that z has a gradient, exactly 0); torch_lm.LM
adds it to the objective as a gradient only (the value stays the
cross-entropy). `after_update()` clamps z into [0, 1] (torch_lm.train calls it
after every optimizer step).

SPAN_LOG: set it to a list and every forward appends a dict (path, z (H,)
detached copy, S, R, adapt).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SPAN_LOG = None
RENORM_EPS = 1e-8
TRIM_STEP = 64


def span_mask(z, S, R, n=None):
    """(H, n) soft mask of §3.1 over the distances δ = 1..n (n = S by default):
    clamp((z_h S − (δ − 1)) / R + 1, 0, 1)."""
    n = S if n is None else n
    delta = torch.arange(1, n + 1, dtype=z.dtype, device=z.device)
    u = (z[:, None] * S - (delta[None, :] - 1.0)) / R + 1.0
    return torch.clamp(u, 0.0, 1.0)


def span_u(z, S, R):
    """(H, S) the unclamped mask argument u over δ = 1..S (for margins to the kinks at 0 and 1)."""
    delta = torch.arange(1, S + 1, dtype=z.dtype, device=z.device)
    return (z[:, None] * S - (delta[None, :] - 1.0)) / R + 1.0


def kink_margin(z, S, R):
    """min over heads and distances of min(|u|, |u − 1|): how far the mask is from its kinks."""
    u = span_u(z.detach().double(), S, R)
    return torch.minimum(u.abs(), (u - 1.0).abs()).min().item()


def trim_of(z, S, R):
    """§3.3: (trim, Se, max_size) for the per-head spans z."""
    max_size = math.ceil(z.detach().double().max().item() * S) + R
    max_size = min(max(max_size, 0), S)
    trim = TRIM_STEP * int(math.floor(min(S - 1, S - max_size) / TRIM_STEP))
    return trim, S - trim, max_size


def gather_rows(k, n):
    """k (B, H, M, d) -> (B, H, M, n, d): for query i the row at distance δ = 1..n,
    from [n zero rows; the block] (a zero row where i − δ < 0)."""
    B, H, M, d = k.shape
    kp = torch.cat([k.new_zeros(B, H, n, d), k], dim=2)  # row r holds block position r − n
    i = torch.arange(M)[:, None]
    delta = torch.arange(1, n + 1)[None, :]
    return kp[:, :, n + i - delta]


def span_weights(q, k, key_pe, z, S, R, adapt, n_dist=None):
    """(B, H, M, n) the attention weights over the distances δ = 1..n (n = S, or
    n_dist: the trimmed form, whose softmax runs over the n computed distances),
    after the mask and the renormalisation when adapt."""
    B, H, M, d = q.shape
    n = S if n_dist is None else n_dist
    content = (q.unsqueeze(3) * gather_rows(k, n)).sum(-1)  # (B, H, M, n)
    delta = torch.arange(1, n + 1)
    position = torch.matmul(q, key_pe[:, S - delta])  # (B, H, M, n): key_pe column S − δ for distance δ
    A = torch.softmax((content + position) / math.sqrt(d), dim=-1)
    if adapt:
        m = span_mask(z, S, R, n)  # (H, n)
        A = A * m[None, :, None, :]
        A = A / (A.sum(-1, keepdim=True) + RENORM_EPS)
    return A


def span_attention(q, k, v, key_pe, z, S, R, adapt, dropout=0.0, training=False, n_dist=None):
    """q, k, v (B, H, M, d) of one block, the past empty; key_pe (d, S); z (H,).
    Returns (B, H, M, d). n_dist: compute only distances 1..n_dist (the trimmed
    form)."""
    n = S if n_dist is None else n_dist
    A = F.dropout(span_weights(q, k, key_pe, z, S, R, adapt, n_dist), dropout, training)
    return (A.unsqueeze(-1) * gather_rows(v, n)).sum(3)


def span_attention_loop(q, k, v, key_pe, z, S, R, adapt):
    """The same formula as a naive loop over (batch, head, query) (float64 checks)."""
    B, H, M, d = q.shape
    out = torch.zeros_like(q)
    for b in range(B):
        for h in range(H):
            for i in range(M):
                logits, vals = [], []
                for delta in range(1, S + 1):
                    j = i - delta
                    kj = k[b, h, j] if j >= 0 else torch.zeros_like(k[b, h, 0])
                    vj = v[b, h, j] if j >= 0 else torch.zeros_like(v[b, h, 0])
                    logits.append((q[b, h, i] @ kj + q[b, h, i] @ key_pe[:, S - delta]) / math.sqrt(d))
                    vals.append(vj)
                a = torch.softmax(torch.stack(logits), dim=0)
                if adapt:
                    m = torch.stack([torch.clamp((z[h] * S - (delta - 1)) / R + 1, 0, 1) for delta in range(1, S + 1)])
                    a = a * m / ((a * m).sum() + RENORM_EPS)
                out[b, h, i] = sum(a[c] * vals[c] for c in range(S))
    return out


def split_heads(x, H):
    B, M, C = x.shape
    return x.reshape(B, M, H, C // H).transpose(1, 2)


def merge_heads(o):
    B, H, M, d = o.shape
    return o.transpose(1, 2).reshape(B, M, H * d)


def span_layer(x, Wq, Wk, Wv, Wo, z, key_pe, S, R, adapt, dropout=0.0, training=False, n_dist=None):
    """The whole mixer as a function of its input and parameters: x (B, M, C) -> (B, M, C)."""
    H = z.shape[0]
    q, k, v = (split_heads(F.linear(x, W), H) for W in (Wq, Wk, Wv))
    o = span_attention(q, k, v, key_pe, z, S, R, adapt, dropout, training, n_dist)
    return F.linear(merge_heads(o), Wo)


class _Span(nn.Module):
    def __init__(self, H, init_val):
        super().__init__()
        self.current_val = nn.Parameter(torch.full((H,), float(init_val)))


class AdaptiveSpanAttention(nn.Module):
    def __init__(self, d_model, n_head, attn_span, adapt_span, loss_coef, ramp, init_val, dropout):
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"adaptive_span: n_head {n_head} does not divide d_model {d_model}")
        C = d_model
        self.n_head, self.d_head = n_head, C // n_head
        self.attn_span, self.adapt, self.loss_coef, self.ramp = int(attn_span), bool(adapt_span), float(loss_coef), float(ramp)
        self.dropout = float(dropout)
        self.proj_query = nn.Linear(C, C, bias=False)
        self.proj_key = nn.Linear(C, C, bias=False)
        self.proj_val = nn.Linear(C, C, bias=False)
        self.proj_out = nn.Linear(C, C, bias=False)
        self.adaptive_span = _Span(n_head, init_val)
        self.key_pe_source = None  # set by torch_lm.LM: returns the model's key_pe
        self.path = "mixer"

    @property
    def z(self):
        return self.adaptive_span.current_val

    def forward(self, x):
        key_pe = self.key_pe_source()
        assert key_pe.shape == (self.d_head, self.attn_span), key_pe.shape
        if SPAN_LOG is not None:
            SPAN_LOG.append(dict(path=self.path, z=self.z.detach().clone(), S=self.attn_span, R=self.ramp,
                                 adapt=self.adapt))
        return span_layer(x, self.proj_query.weight, self.proj_key.weight, self.proj_val.weight,
                          self.proj_out.weight, self.z, key_pe, self.attn_span, self.ramp, self.adapt,
                          self.dropout, self.training)

    def span_loss(self):
        """λ S mean_h(z_h) (§3.2); without adapt_span a zero term that gives z a zero gradient."""
        if not self.adapt:
            return (self.z * 0.0).sum()
        return self.loss_coef * self.attn_span * self.z.mean()

    def after_update(self):
        with torch.no_grad():
            self.z.clamp_(0.0, 1.0)


def mixer_from_config(c):
    """torch_lm's hook: the 's' sublayer of mixer "adaptive_span" from the dotted keys mixer.<key>
    (defaults as seqlab's where the spec gives them: n_head = the model's, adapt_span false,
    adapt_span_loss 0, adapt_span_ramp 32, adapt_span_init 0, dropout = the model's)."""
    g = lambda key, default: c.get("mixer." + key, default)  # noqa: E731
    if "mixer.attn_span" not in c:
        raise ValueError("adaptive_span: mixer.attn_span is required")
    return AdaptiveSpanAttention(c["d_model"], int(g("n_head", c["n_head"])), int(c["mixer.attn_span"]),
                                 bool(g("adapt_span", False)), float(g("adapt_span_loss", 0.0)),
                                 float(g("adapt_span_ramp", 32)), float(g("adapt_span_init", 0.0)),
                                 float(g("dropout", c["dropout"])))


def param_group(name):
    """seqlab's group of an adaptive_span parameter (None: not one of theirs): the
    projections 'linear', current_val and key_pe 'other'."""
    if name == "key_pe":
        return "other"
    if ".mixer." not in name:
        return None
    tail = name.split(".mixer.", 1)[1]
    if tail in ("proj_query.weight", "proj_key.weight", "proj_val.weight", "proj_out.weight"):
        return "linear"
    if tail == "adaptive_span.current_val":
        return "other"
    return None
