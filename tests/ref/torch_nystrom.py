"""Nyström attention in plain PyTorch, written from shared/spec/attention.md §0.2 and §5.

The layer of seqlab's `nystrom` mixer: W_q, W_k, W_v (C -> H*d, with bias),
the Nyström core, the optional depthwise convolution skip on V, ff (H*d -> C,
with bias). Parameter names are seqlab's (relative to the mixer): W_q.weight,
W_q.bias, W_k.*, W_v.*, conv.weight (H, 1, K, 1), ff.weight, ff.bias.

Lengths that are not a multiple of the landmarks M are padded here literally:
q, k, v get zero rows and the mask zeros up to the next multiple T', the
spec's formulas run on T' rows, and the extra outputs are dropped. (seqlab
computes the same without materialising the rows.) T' == M is the exact path.

Config keys (torch_lm's flat config): n_head, d_head, d_model and the dotted
module keys mixer.num_landmarks, mixer.conv_kernel_size, mixer.pinv_iterations,
mixer.pinv_init (global | per_matrix).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULTS = {"mixer.num_landmarks": 64, "mixer.conv_kernel_size": 0, "mixer.pinv_iterations": 6,
            "mixer.pinv_init": "global"}


def iterative_pinv(A, iterations, per_matrix):
    """Z0 = A^T / c; Y = A Z; Z <- 0.25 Z (13I - Y(15I - Y(7I - Y))).
    c: the largest column sum over every matrix of A (B, H, M, M) at once
    (global, the original), or of each matrix (per_matrix). Returns Z_n and
    the list of every iterate Z_0 ... Z_n."""
    M = A.shape[-1]
    eye = torch.eye(M, dtype=A.dtype)
    colsum = A.sum(dim=-2)  # (B, H, M)
    c = colsum.amax(dim=-1)[..., None, None] if per_matrix else colsum.max()
    Z = A.transpose(-1, -2) / c
    iterates = [Z]
    for _ in range(iterations):
        Y = A @ Z
        Z = 0.25 * Z @ (13 * eye - Y @ (15 * eye - Y @ (7 * eye - Y)))
        iterates.append(Z)
    return Z, iterates


def nystrom_core(q, k, v, mask, M, iterations=6, per_matrix=False):
    """q, k, v (B, H, T, d), mask (B, T) of 1 real / 0 padding -> (B, H, T, d)."""
    B, H, T, d = q.shape
    Tp = -(-T // M) * M
    if Tp != T:
        rows = (0, 0, 0, Tp - T)
        q, k, v = F.pad(q, rows), F.pad(k, rows), F.pad(v, rows)
        mask = F.pad(mask, (0, Tp - T))
    m = mask[:, None, :, None]
    q = q * m / math.sqrt(math.sqrt(d))
    k = k * m / math.sqrt(math.sqrt(d))
    key_bias = -1e9 * (1.0 - mask[:, None, None, :])
    if Tp == M:
        X = torch.softmax(q @ k.transpose(-1, -2) + key_bias, dim=-1) @ v
    else:
        l = Tp // M
        q_land = q.reshape(B, H, M, l, d).mean(dim=-2)
        k_land = k.reshape(B, H, M, l, d).mean(dim=-2)
        F1 = torch.softmax(q @ k_land.transpose(-1, -2), dim=-1)
        A = torch.softmax(q_land @ k_land.transpose(-1, -2), dim=-1)
        B3 = torch.softmax(q_land @ k.transpose(-1, -2) + key_bias, dim=-1)
        Z, _ = iterative_pinv(A, iterations, per_matrix)
        X = (F1 @ Z) @ (B3 @ v)
    return X[:, :, :T]


def conv_skip(v, mask, conv):
    """sum_u w_h[u] (V ⊙ mask)[t + u - K//2] per head: v (B, H, T, d), conv a
    Conv2d(H, H, (K, 1), padding (K//2, 0), groups H, no bias)."""
    return conv(v * mask[:, None, :, None])


class NystromAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        c = dict(DEFAULTS, **c)
        self.H, self.d = c["n_head"], c["d_head"]
        self.M = int(c["mixer.num_landmarks"])
        self.iterations = int(c["mixer.pinv_iterations"])
        self.per_matrix = c["mixer.pinv_init"] == "per_matrix"
        C, HD, K = c["d_model"], self.H * self.d, int(c["mixer.conv_kernel_size"])
        self.W_q = nn.Linear(C, HD)
        self.W_k = nn.Linear(C, HD)
        self.W_v = nn.Linear(C, HD)
        self.conv = nn.Conv2d(self.H, self.H, (K, 1), padding=(K // 2, 0), groups=self.H, bias=False) if K else None
        self.ff = nn.Linear(HD, C)

    def heads(self, x):
        B, T, _ = x.shape
        return x.reshape(B, T, self.H, self.d).transpose(1, 2)

    def forward(self, x, mask=None):
        B, T, _ = x.shape
        if mask is None:
            mask = torch.ones(B, T, dtype=x.dtype)
        q, k, v = self.heads(self.W_q(x)), self.heads(self.W_k(x)), self.heads(self.W_v(x))
        X = nystrom_core(q, k, v, mask, self.M, self.iterations, self.per_matrix)
        if self.conv is not None:
            X = X + conv_skip(v, mask, self.conv)
        return self.ff(X.transpose(1, 2).reshape(B, T, self.H * self.d))
