"""Independent PyTorch reference of the FMMformer attention family.

Written from shared/spec/attention.md §2.2, §3 and §4 with plain torch ops, in
the plainest (quadratic, masked, dense) form; float32 or float64:

    linear_attention   causal linear attention of the FMM trainer (attn_type 34):
                       sum-normalised features, extra 1/sqrt(d), eps 1e-5
    band_attention     banded softmax, causal (i - w < j <= i) or
                       bidirectional (|i - j| < w), as a dense masked softmax
    FmmAttention       the layer: one interleaved qkv_net, near field (band),
                       far field (one or two linear kernels), blend mode 0-5,
                       o_net; it is seqlab's `linear`, `band` and `fmm` mixer

Parameter names match seqlab's (relative to blocks.<i>.mixer.): qkv_net.weight
(3HD, C), o_net.weight (C, HD), w_near (HD), w_far (HD), kernel_mix (2).

    core = fmm_core(q, k, v, mode=2, kernels=["elu", "elu_flip"], diag_size=3,
                    causal=True, w_near=w)        # q, k, v: (B, H, T, d)
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LINEAR_EPS = 1e-5  # spec §2.2: added to the denominator, outside the 1/sqrt(d)
KERNELS = ("elu", "elu_flip")

# blend modes (spec §4.2) and the parameters each one has
MODE_HAS_NEAR = {0: True, 1: True, 2: True, 3: True, 4: True, 5: False}
MODE_HAS_FAR = {0: True, 1: True, 2: True, 3: True, 4: False, 5: True}
MODES_W_NEAR = (0, 2, 3)
MODES_W_FAR = (1, 3)
MODES_KERNEL_MIX = (0, 1, 3)  # learned a1, a2 with two kernels; fixed 0.5 in the others


def feature_map(x, kernel):
    """phi_1(x) = elu(x) + 1 ('elu'), phi_2(x) = elu(-x) + 1 ('elu_flip'), spec §4.1."""
    if kernel == "elu":
        return F.elu(x) + 1.0
    if kernel == "elu_flip":
        return F.elu(-x) + 1.0
    raise ValueError(f"unknown kernel {kernel!r} (elu, elu_flip)")


def sum_normalised(x):
    """x / sum_c x[c] over the last dimension (the features of one position)."""
    return x / x.sum(dim=-1, keepdim=True)


def linear_attention(q, k, v, kernel="elu", eps=LINEAR_EPS):
    """Causal linear attention of spec §2.2 in its quadratic masked form.

    q, k, v: (B, H, T, d). With a_hat = phi(q) and b_hat = phi(k) normalised to
    sum 1 per position, A = (a_hat b_hat^T) masked to j <= i,
        out = (1/sqrt(d)) * (A v) / (A 1 + eps).
    Always causal (the original ignores the attention mask)."""
    T, d = q.shape[-2], q.shape[-1]
    a = sum_normalised(feature_map(q, kernel))
    b = sum_normalised(feature_map(k, kernel))
    keep = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    A = torch.matmul(a, b.transpose(-1, -2)).masked_fill(~keep, 0.0)  # (B, H, T, T)
    num = torch.matmul(A, v)
    den = A.sum(dim=-1, keepdim=True)
    return num / math.sqrt(d) / (den + eps)


def linear_attention_recurrent(q, k, v, kernel="elu", eps=LINEAR_EPS):
    """The same as linear_attention, as the spec's running sums S_t, z_t
    (a second, independent form used only to check the first)."""
    B, H, T, d = q.shape
    a = sum_normalised(feature_map(q, kernel))
    b = sum_normalised(feature_map(k, kernel))
    S = q.new_zeros(B, H, d, v.shape[-1])
    z = q.new_zeros(B, H, d)
    out = []
    for t in range(T):
        S = S + b[:, :, t, :, None] * v[:, :, t, None, :]
        z = z + b[:, :, t]
        num = torch.einsum("bhc,bhce->bhe", a[:, :, t], S)
        den = (a[:, :, t] * z).sum(-1, keepdim=True)
        out.append(num / math.sqrt(d) / (den + eps))
    return torch.stack(out, dim=2)


def band_mask(T, diag_size, causal, device=None):
    """(T, T) bool, True where query i may attend to key j (spec §3)."""
    if diag_size < 1:
        raise ValueError(f"diag_size must be >= 1, got {diag_size}")
    i = torch.arange(T, device=device)[:, None]
    j = torch.arange(T, device=device)[None, :]
    if causal:
        return (j <= i) & (i - j < diag_size)
    return (i - j).abs() < diag_size


def band_attention(q, k, v, diag_size, causal):
    """Banded softmax attention (spec §3) as a dense masked softmax, scale 1/sqrt(d).
    q, k, v: (B, H, T, d)."""
    T, d = q.shape[-2], q.shape[-1]
    s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d)
    s = s.masked_fill(~band_mask(T, diag_size, causal, q.device), float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v)


def heads_to_channels(o):
    """(B, H, T, d) -> (B, T, H*d), channel h*d + c."""
    B, H, T, d = o.shape
    return o.transpose(1, 2).reshape(B, T, H * d)


def kernel_weights(mode, n_kernels, kernel_mix):
    """Weights of the far-field kernels in L: 1 for one kernel; a1, a2 (the
    learned kernel_mix) in modes 0, 1, 3 with two; 0.5, 0.5 otherwise."""
    if n_kernels == 1:
        return [1.0]
    if mode in MODES_KERNEL_MIX:
        return [kernel_mix[0], kernel_mix[1]]
    return [0.5, 0.5]


def fmm_core(q, k, v, mode, kernels, diag_size, causal, w_near=None, w_far=None, kernel_mix=None):
    """The FMM blend (spec §4.2/4.3) of heads q, k, v (B, H, T, d); returns
    (B, T, H*d), the input of o_net:
        0: w_near*N + L   1: N + w_far*L   2: w_near*N + L   3: w_near*N + w_far*L
        4: N              5: L
    N = band attention, L = the kernels' linear attentions (kernel_weights);
    w_near, w_far: (H*d) per channel."""
    N = heads_to_channels(band_attention(q, k, v, diag_size, causal)) if MODE_HAS_NEAR[mode] else None
    L = None
    if MODE_HAS_FAR[mode]:
        if not causal:
            raise ValueError("the linear-attention far field is causal only")
        for wk, kern in zip(kernel_weights(mode, len(kernels), kernel_mix), kernels):
            term = wk * heads_to_channels(linear_attention(q, k, v, kern))
            L = term if L is None else L + term
    if mode == 0 or mode == 2:
        return w_near * N + L
    if mode == 1:
        return N + w_far * L
    if mode == 3:
        return w_near * N + w_far * L
    if mode == 4:
        return N
    return L


def split_qkv(qkv, n_head, d_head):
    """(B, T, 3*H*d) interleaved per head -> q, k, v each (B, H, T, d):
    head h owns channels [3hd, 3hd+d) q, [3hd+d, 3hd+2d) k, [3hd+2d, 3hd+3d) v."""
    B, T, _ = qkv.shape
    x = qkv.reshape(B, T, n_head, 3 * d_head).transpose(1, 2)  # (B, H, T, 3d)
    return x[..., :d_head], x[..., d_head:2 * d_head], x[..., 2 * d_head:]


def mixer_mode(c):
    """(mode, kernels) of seqlab's mixer name: linear = mode 5 with elu,
    band = mode 4, fmm = floor(sparse_ratio) (5 for anything >= 5) with the
    comma list `kernels`."""
    name = c["mixer"]
    if name == "linear":
        return 5, ["elu"]
    if name == "band":
        return 4, []
    if name != "fmm":
        raise ValueError(f"unknown mixer {name!r}")
    r = float(c["sparse_ratio"])
    if not r >= 0.0:
        raise ValueError(f"sparse_ratio must be >= 0, got {r}")
    mode = 5 if r >= 5.0 else int(math.floor(r))
    kernels = [s.strip() for s in c["kernels"].split(",") if s.strip()]
    for k in kernels:
        feature_map(torch.zeros(1), k)  # rejects unknown names
    if MODE_HAS_FAR[mode] and not 1 <= len(kernels) <= 2:
        raise ValueError(f"kernels {c['kernels']!r}: give one or two of elu, elu_flip")
    return mode, kernels


class FmmAttention(nn.Module):
    """seqlab's linear / band / fmm mixer: qkv_net (no bias, interleaved per
    head), the FMM core, o_net (no bias). Blend parameters start at the
    original's values (w = 0, kernel_mix = 0.5); torch_lm.init_params draws them."""

    def __init__(self, c):
        super().__init__()
        self.mode, self.kernels = mixer_mode(c)
        self.n_head, self.d_head = c["n_head"], c["d_head"]
        self.diag_size, self.causal = c["diag_size"], c["causal"]
        if MODE_HAS_FAR[self.mode] and not self.causal:
            raise ValueError(f"mixer {c['mixer']!r}: the linear-attention far field is causal only")
        hd = self.n_head * self.d_head
        self.qkv_net = nn.Linear(c["d_model"], 3 * hd, bias=False)
        self.o_net = nn.Linear(hd, c["d_model"], bias=False)
        self.w_near = nn.Parameter(torch.zeros(hd)) if self.mode in MODES_W_NEAR else None
        self.w_far = nn.Parameter(torch.zeros(hd)) if self.mode in MODES_W_FAR else None
        two = len(self.kernels) == 2
        self.kernel_mix = nn.Parameter(torch.full((2,), 0.5)) if two and self.mode in MODES_KERNEL_MIX else None

    def core(self, x):
        q, k, v = split_qkv(self.qkv_net(x), self.n_head, self.d_head)
        return fmm_core(q, k, v, self.mode, self.kernels, self.diag_size, self.causal,
                        self.w_near, self.w_far, self.kernel_mix)

    def forward(self, x):
        return self.o_net(self.core(x))
