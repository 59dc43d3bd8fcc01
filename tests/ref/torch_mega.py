"""MEGA and SeqBoat in plain PyTorch, for the golden files of tests/ref/golden_mega.py.

Written from shared/spec/mega-seqboat.md (section numbers below are its) and the
names / keys of docs/mega-seqboat.md, not from the original repositories.
Deliberately direct: the EMA convolution is an explicit Toeplitz sum (the FFT
form `EMA.conv_fft` and the recurrence `EMA.recurrent` are only checks),
chunked attention is a reshape into independent chunks, SeqBoat's sliding
window is a dense band mask over the compressed sequence (the blocked
look-around of the original computes exactly that set of keys, §6.4).
Backward by autograd. float32 and float64 (module.to(torch.float64)).

Modules (parameter names relative to blocks.<i>.mixer.):

    Norm      layernorm: norm.weight (C), norm.bias (C); rmsnorm: norm.weight (C);
              scalenorm: norm.weight (1); affine=False: no parameters (§1.2, eps 1e-5)
    EMA       move.delta, move.alpha, move.beta, move.gamma (K_D, N), move.omega (C);
              K_D = C causal, 2C bidirectional (§2). forward() returns the
              pre-activation conv + omega ⊙ x; the layers apply silu.
    SimpleBias  rel_pos_bias.rel_pos_bias (2P - 1) (§3.1)
    RotaryBias  rel_pos_bias.alpha (1, Z), rel_pos_bias.beta (1, Z) (§3.2, MEGA)
    Mega      norm, move, v_proj (H, C) + bias, mx_proj (C+Z+H+C, C) + bias,
              h_proj (C, H) + bias, gamma (2, Z), beta (2, Z), rel_pos_bias (§4)
    SeqBoat   norm, move, hx_proj (2+C, C) + bias, mx_proj (Z+2H, C) + bias,
              h_proj (C, H) + bias, gamma (2, Z), beta (2, Z), q_router.temp (1),
              rel_pos_bias (simple only; rotary = RoPE on q, k, no parameters) (§6)

Both layers own their residual and norm: forward(x) is the layer output Y.

The two deliberate deviations of docs/mega-seqboat.md: SeqBoat's masked keys
get weight exactly 0 after relu2 / laplace (the original leaves laplace(0) on
them), and a softmax row with no allowed key gives output 0 (only at positions
whose outputs are discarded).

ROUTING_LOG: set it to a list and every SeqBoat forward appends one dict
(layer, min |u1 - u0| / tau, active tokens, tokens, n_max, compress), which the
golden script uses to check that no routing decision is close to a tie.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

NORM_EPS = 1e-5
LAPLACE_MU = math.sqrt(0.5)  # the spec's 0.707107 (= sqrt(1/2))
LAPLACE_SIGMA = math.sqrt(1.0 / (4.0 * math.pi))  # the spec's 0.282095 (= sqrt(1/(4 pi)))

ROUTING_LOG = None


# ------------------------------------------------------------------ activations (§1.1)

def silu(x):
    return x * torch.sigmoid(x)


def relu2(x):
    return torch.relu(x) ** 2


def laplace(x):
    return 0.5 * (1.0 + torch.erf((x - LAPLACE_MU) / (LAPLACE_SIGMA * math.sqrt(2.0))))


ELEMENT_FUNCTIONS = {"relu2": relu2, "laplace": laplace}
ATTENTIONS = ("softmax", "relu2", "laplace")


def dropout(x, p, training, feature=False):
    """Element dropout with 1/(1-p) scaling; feature=True zeroes whole channels of a
    sequence (§1.3): one draw per (batch, channel), shared over time."""
    if not training or p <= 0.0:
        return x
    if not feature:
        return F.dropout(x, p, True)
    keep = (torch.rand(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device) >= p).to(x.dtype)
    return x * keep / (1.0 - p)


# ------------------------------------------------------------------ norms (§1.2)

NORM_TYPES = ("layernorm", "scalenorm", "rmsnorm")


class Norm(nn.Module):
    """MEGA's SequenceNorm: layernorm, scalenorm (one scalar g) or rmsnorm, eps 1e-5."""

    def __init__(self, kind, dim, affine=True):
        super().__init__()
        if kind not in NORM_TYPES:
            raise ValueError(f"unknown norm_type {kind!r} (batchnorm is not in the reference)")
        self.kind, self.dim, self.affine = kind, dim, affine
        if affine:
            self.weight = nn.Parameter(torch.ones(1 if kind == "scalenorm" else dim))
            if kind == "layernorm":
                self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        if self.kind == "layernorm":
            w = self.weight if self.affine else None
            b = self.bias if self.affine else None
            return F.layer_norm(x, (self.dim,), w, b, NORM_EPS)
        y = x * torch.rsqrt((x * x).mean(-1, keepdim=True) + NORM_EPS)
        return y * self.weight if self.affine else y


# ------------------------------------------------------------------ the damped EMA (§2)

class EMA(nn.Module):
    """MultiHeadEMA. Code names: p = sigmoid(delta) is the paper's alpha, a = sigmoid(alpha)
    the paper's delta, q = 1 - p a (§2.1). Kernel k[d, j] = sqrt(1/N) sum_n gamma p beta q^j,
    j < T_eff = min(truncation, L) (truncation 0 = none)."""

    def __init__(self, D, N, bidirectional=False, truncation=0):
        super().__init__()
        self.D, self.N, self.bidirectional = D, N, bidirectional
        self.truncation = int(truncation or 0)
        K = 2 * D if bidirectional else D
        self.delta = nn.Parameter(torch.zeros(K, N))
        self.alpha = nn.Parameter(torch.zeros(K, N))
        self.beta = nn.Parameter(torch.zeros(K, N))
        self.gamma = nn.Parameter(torch.zeros(K, N))
        self.omega = nn.Parameter(torch.zeros(D))
        self.scale = math.sqrt(1.0 / N)

    def kernel_length(self, L):
        return L if self.truncation <= 0 else min(self.truncation, L)

    def coeffs(self):
        p = torch.sigmoid(self.delta)
        a = torch.sigmoid(self.alpha)
        return p, a, 1.0 - p * a

    def kernel(self, L):
        """(K_D, T_eff); q^j as exp(j ln q)."""
        T = self.kernel_length(L)
        p, _, q = self.coeffs()
        j = torch.arange(T, dtype=p.dtype, device=p.device)
        vander = torch.exp(j[None, None, :] * torch.log(q)[..., None])  # (K, N, T)
        return self.scale * ((self.gamma * p * self.beta)[..., None] * vander).sum(1)

    @staticmethod
    def _masked(x, pad):
        return x if pad is None else x * (1.0 - pad.to(x.dtype))[..., None]

    def conv_direct(self, xm, k):
        """The explicit sums of §2.3 / §2.4 as (L x L) Toeplitz matrices per channel."""
        L, D = xm.shape[1], self.D
        T = k.shape[1]
        t = torch.arange(L, device=xm.device)
        lag = t[:, None] - t[None, :]  # (t, s): t - s

        def toeplitz(kk, lags):
            ok = (lags >= 0) & (lags < T)
            return kk[:, lags.clamp(0, T - 1)] * ok.to(kk.dtype)  # (D, L, L)

        y = torch.einsum("dts,bsd->btd", toeplitz(k[:D], lag), xm)
        if self.bidirectional:
            y = y + torch.einsum("dts,bsd->btd", toeplitz(k[D:], -lag), xm)
        return y

    def conv_fft(self, xm, k):
        """The same by real FFTs of length >= L + T_eff - 1 (a check of conv_direct)."""
        L, D = xm.shape[1], self.D
        n = 2 * L  # >= L + T_eff - 1: a linear convolution
        X = torch.fft.rfft(xm, n=n, dim=1)
        y = torch.fft.irfft(X * torch.fft.rfft(k[:D].t(), n=n, dim=0)[None], n=n, dim=1)[:, :L]
        if self.bidirectional:
            # backward in time: the forward convolution of the time-reversed sequence, reversed back
            Xr = torch.fft.rfft(xm.flip(1), n=n, dim=1)
            yr = torch.fft.irfft(Xr * torch.fft.rfft(k[D:].t(), n=n, dim=0)[None], n=n, dim=1)[:, :L]
            y = y + yr.flip(1)
        return y

    def forward(self, x, pad=None, method="direct"):
        """x (B, L, D), pad (B, L) 1 = padding. Returns conv(x') + omega ⊙ x (before silu)."""
        k = self.kernel(x.shape[1])
        xm = self._masked(x, pad)
        y = self.conv_fft(xm, k) if method == "fft" else self.conv_direct(xm, k)
        return y + self.omega * x

    def recurrent(self, x, pad=None):
        """§2.5, token by token (unidirectional, untruncated): h_t = p beta x'_t + q h_{t-1}."""
        assert not self.bidirectional
        p, _, q = self.coeffs()
        xm = self._masked(x, pad)
        B, L, D = x.shape
        h = torch.zeros(B, D, self.N, dtype=x.dtype, device=x.device)
        out = []
        for t in range(L):
            h = p * self.beta * xm[:, t, :, None] + q * h
            out.append(self.scale * (self.gamma * h).sum(-1))
        return torch.stack(out, 1) + self.omega * x


# ------------------------------------------------------------------ relative position biases (§3)

def simple_bias(b, P, qpos, kpos):
    """bias[..., i, j] = b[P - 1 + kpos_j - qpos_i], offsets beyond the table take its end
    values (SeqBoat's rule; MEGA refuses n > P before calling this)."""
    idx = (P - 1 + kpos[..., None, :] - qpos[..., :, None]).clamp(0, 2 * P - 2)
    return b[idx]


class SimpleBias(nn.Module):
    def __init__(self, P):
        super().__init__()
        self.P = P
        self.rel_pos_bias = nn.Parameter(torch.zeros(2 * P - 1))

    def forward(self, n, strict=True):
        """(n, n) Toeplitz bias; strict: MEGA's error for n > P."""
        if strict and n > self.P:
            raise ValueError(f"simple relative bias: length {n} > max_positions {self.P}")
        t = torch.arange(n, device=self.rel_pos_bias.device)
        return simple_bias(self.rel_pos_bias, self.P, t, t)

    def at(self, qpos, kpos):
        return simple_bias(self.rel_pos_bias, self.P, qpos, kpos)


def rotary_angles(n, Z, dtype):
    """theta[t, m] = t f_m, f_m = exp(-m ln(10000) / (Z/2)), m < Z/2 (§3.2)."""
    half = Z // 2
    f = torch.exp(-torch.arange(half, dtype=torch.float64) * (math.log(10000.0) / half))
    return (torch.arange(n, dtype=torch.float64)[:, None] * f[None, :]).to(dtype)


def rotate_halves(v, theta):
    """rot_t(v) = [v1 cos - v2 sin, v2 cos + v1 sin] with (v1, v2) the two halves of v."""
    half = v.shape[-1] // 2
    v1, v2 = v[..., :half], v[..., half:]
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.cat([v1 * c - v2 * s, v2 * c + v1 * s], dim=-1)


class RotaryBias(nn.Module):
    """MEGA's learned rotary bias: bias[i, j] = <rot_i(alpha), rot_j(beta)>; q, k are not rotated."""

    def __init__(self, Z):
        super().__init__()
        if Z % 2:
            raise ValueError("rotary bias needs an even z_dim")
        self.Z = Z
        self.alpha = nn.Parameter(torch.zeros(1, Z))
        self.beta = nn.Parameter(torch.zeros(1, Z))

    def forward(self, n):
        theta = rotary_angles(n, self.Z, self.alpha.dtype).to(self.alpha.device)
        a = rotate_halves(self.alpha.expand(n, -1), theta)
        b = rotate_halves(self.beta.expand(n, -1), theta)
        return a @ b.t()


def rope(x, pos):
    """SeqBoat's RoPE (§3.3): pairs (x[2m], x[2m+1]) as complex numbers times exp(i pos theta_m),
    theta_m = 10000^(-2m/Z); x (..., n, Z), pos (..., n) original 0-based positions."""
    Z = x.shape[-1]
    m = torch.arange(Z // 2, dtype=torch.float64, device=x.device)
    theta = torch.pow(10000.0, -2.0 * m / Z)
    ang = (pos.to(torch.float64)[..., None] * theta).to(x.dtype)  # (..., n, Z/2)
    c, s = torch.cos(ang), torch.sin(ang)
    xr, xi = x[..., 0::2], x[..., 1::2]
    out = torch.stack([xr * c - xi * s, xr * s + xi * c], dim=-1)
    return out.reshape(x.shape)


# ------------------------------------------------------------------ attention (§4.3, §6.4)

def attend(q, k, v, kind, allowed, bias=None, lens=None, dropatt=0.0, training=False):
    """One attention over the last two axes.
    q (..., n, Z), k (..., m, Z), v (..., m, H), allowed bool broadcastable to (..., n, m).
    softmax: S = (q Z^-1/2) k^T + bias, disallowed keys excluded (the same as SeqBoat's finite
    -5e4 fill, whose exp underflows to 0 whenever a row has an allowed key); a row with no allowed
    key gives 0 (deviation 2). relu2 / laplace: S = (q k^T) / lens + bias, A = f(S) ⊙ allowed."""
    if kind == "softmax":
        s = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-1, -2))
        if bias is not None:
            s = s + bias
        allowed = allowed.expand(s.shape)
        any_key = allowed.any(-1, keepdim=True)
        s = s.masked_fill(~allowed, float("-inf"))
        s = torch.where(any_key, s, torch.zeros_like(s))
        a = torch.softmax(s, dim=-1) * any_key.to(s.dtype)
    else:
        s = torch.matmul(q, k.transpose(-1, -2)) / lens
        if bias is not None:
            s = s + bias
        a = ELEMENT_FUNCTIONS[kind](s) * allowed.to(s.dtype)
    a = dropout(a, dropatt, training)
    return torch.matmul(a, v), a


# ------------------------------------------------------------------ MEGA (§4)

class Mega(nn.Module):
    """One MEGA layer (moving-average equipped gated attention, single head)."""

    def __init__(self, D, Z, H, N, causal=True, chunk_size=0, truncation=0, attention="softmax",
                 rel_pos="simple", max_positions=0, norm_type="layernorm", prenorm=True,
                 dropout=0.0, hidden_dropout=0.0, attention_dropout=0.0, feature_dropout=False):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {attention!r}")
        self.D, self.Z, self.H, self.N = D, Z, H, N
        self.causal, self.chunk_size, self.attention, self.prenorm = causal, int(chunk_size), attention, prenorm
        self.p, self.p_hidden, self.p_attn, self.feature = dropout, hidden_dropout, attention_dropout, feature_dropout
        self.norm = Norm(norm_type, D)
        self.move = EMA(D, N, bidirectional=not causal, truncation=truncation)
        self.v_proj = nn.Linear(D, H)
        self.mx_proj = nn.Linear(D, D + Z + H + D)
        self.h_proj = nn.Linear(H, D)
        self.gamma = nn.Parameter(torch.zeros(2, Z))
        self.beta = nn.Parameter(torch.zeros(2, Z))
        self.rel_pos = rel_pos
        if rel_pos == "simple":
            if max_positions <= 0:
                raise ValueError("simple bias: max_positions must be resolved (> 0)")
            self.rel_pos_bias = SimpleBias(int(max_positions))
        elif rel_pos == "rotary":
            self.rel_pos_bias = RotaryBias(Z)
        elif rel_pos != "none":
            raise ValueError(f"unknown rel_pos {rel_pos!r}")
        self.last = {}  # tensors of the last forward, for the checks

    def bias(self, c):
        if self.rel_pos == "none":
            return None
        return self.rel_pos_bias(c)

    def attention_chunks(self, Q, K, V, pad):
        """§4.3 / §4.4: independent chunks of length c; returns O (B, L, H)."""
        B, L, _ = Q.shape
        C = self.chunk_size
        if C <= 0 or L <= C:
            c, Lp = L, L
        else:
            c, Lp = C, -(-L // C) * C  # right-pad to a multiple of C (padded keys masked)
        keypad = torch.zeros(B, L, dtype=torch.bool, device=Q.device) if pad is None else pad.bool()
        if Lp != L:
            extra = Lp - L
            Q, K, V = (F.pad(t, (0, 0, 0, extra)) for t in (Q, K, V))
            keypad = F.pad(keypad, (0, extra), value=True)
        nc = Lp // c
        q = Q.reshape(B, nc, c, -1)
        k = K.reshape(B, nc, c, -1)
        v = V.reshape(B, nc, c, -1)
        kp = keypad.reshape(B, nc, 1, c)
        allowed = ~kp
        i = torch.arange(c, device=Q.device)
        if self.causal:
            allowed = allowed & (i[None, :] <= i[:, None])
        lens = None
        if self.attention != "softmax":
            if self.causal:
                lens = (i + 1).to(Q.dtype)[:, None]  # row sums of the causal ones matrix
            else:
                lens = (~kp).sum(-1, keepdim=True).clamp(min=1).to(Q.dtype)  # (B, nc, 1, 1): unpadded keys
        o, a = attend(q, k, v, self.attention, allowed, self.bias(c), lens, self.p_attn, self.training)
        self.last["attn"] = a
        return o.reshape(B, Lp, -1)[:, :L]

    def forward(self, x, pad=None, force_u=None):
        D, Z, H = self.D, self.Z, self.H
        R = x
        xn = self.norm(x) if self.prenorm else x
        V = silu(self.v_proj(xn))
        M = silu(self.move(xn, pad))
        M = dropout(M, self.p, self.training, self.feature)
        base = self.mx_proj(M)
        U = torch.sigmoid(base[..., :D])
        if force_u is not None:  # checks: U forced to 0 or 1
            U = torch.full_like(U, float(force_u))
        zr = silu(base[..., D:D + Z + H])
        Hx = base[..., D + Z + H:]
        Zs, Rg = zr[..., :Z], zr[..., Z:]
        Q = Zs * self.gamma[0] + self.beta[0]
        K = Zs * self.gamma[1] + self.beta[1]
        Vd = dropout(V, self.p_hidden, self.training, self.feature)
        O = self.attention_chunks(Q, K, Vd, pad)
        Hh = silu(Hx + self.h_proj(O * Rg))
        Hh = dropout(Hh, self.p, self.training, self.feature)
        self.last.update(Hh=Hh, U=U)
        Y = R + U * (Hh - R)
        return Y if self.prenorm else self.norm(Y)


# ------------------------------------------------------------------ SeqBoat (§6)

def route(u, temp, pad=None):
    """§6.2: tau = exp(temp), pi = softmax(u / tau); a = [pi_1 > pi_0] (ties inactive, padding
    never active) with no gradient; g = a pi_1. Returns (a bool, g, pi, delta = (u1 - u0) / tau)."""
    tau = torch.exp(temp)
    pi = torch.softmax(u / tau, dim=-1)
    with torch.no_grad():
        a = pi[..., 1] > pi[..., 0]
        if pad is not None:
            a = a & ~pad.bool()
    g = a.to(pi.dtype) * pi[..., 1]
    return a, g, pi, (u[..., 1] - u[..., 0]) / tau


def compress(M, a, threshold):
    """§6.3. Returns (Mc, keypad, pos, rank, compressed). compressed: Mc (B, max(n_max, 1), D)
    holds the active tokens in order, zeros after n_b (key padding); pos their original 0-based
    positions. Not compressed: Mc = M, the inactive tokens are key padding."""
    B, L, _ = M.shape
    ai = a.to(torch.long)
    rank = torch.cumsum(ai, 1) * ai  # 1-based rank among the active tokens, 0 if inactive
    n = ai.sum(1)
    n_max = int(n.max().item()) if B else 0
    if not (n_max / L < threshold):
        pos = torch.arange(L, device=M.device).expand(B, L)
        return M, ~a, pos, rank, False
    width = max(n_max, 1)
    # the original position of the token of rank r + 1: scatter t into slot rank (slot 0 collects the
    # inactive tokens and is dropped)
    slot_pos = torch.zeros(B, width + 1, dtype=torch.long, device=M.device)
    slot_pos.scatter_(1, rank, torch.arange(L, device=M.device).expand(B, L).contiguous())
    pos = slot_pos[:, 1:]
    valid = torch.arange(width, device=M.device)[None, :] < n[:, None]
    pos = pos * valid
    Mc = M.gather(1, pos[..., None].expand(B, width, M.shape[2])) * valid[..., None].to(M.dtype)
    return Mc, ~valid, pos, rank, True


def extract(Hc, rank, a, compressed):
    """H[b, t] = Hc[b, rank - 1] for active t, else 0 (§6.3)."""
    if not compressed:
        return Hc * a[..., None].to(Hc.dtype)
    Hz = F.pad(Hc, (0, 0, 1, 0))  # a zero row in front
    return Hz.gather(1, rank[..., None].expand(rank.shape[0], rank.shape[1], Hc.shape[2]))


class Router(nn.Module):
    def __init__(self):
        super().__init__()
        self.temp = nn.Parameter(torch.zeros(1))


class SeqBoat(nn.Module):
    """One SeqBoat layer (SeqBoatUnit): EMA, latent configurator, compress, GAU over the active
    tokens (sliding window W = chunk_size over the compressed sequence, or full attention for
    chunk_size 0), extract, Y = silu(Hx + H + R), post-norm if not prenorm."""

    def __init__(self, D, Z, H, N, causal=True, chunk_size=0, truncation=0, attention="softmax",
                 rel_pos="simple", max_positions=0, local_pos=False, norm_type="layernorm", prenorm=True,
                 init_temp_scale=0.3, dropout=0.0, hidden_dropout=0.0, attention_dropout=0.0,
                 feature_dropout=False):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {attention!r}")
        self.D, self.Z, self.H, self.N = D, Z, H, N
        self.causal, self.W, self.attention, self.prenorm = causal, int(chunk_size), attention, prenorm
        self.local_pos = bool(local_pos)
        self.p, self.p_hidden, self.p_attn, self.feature = dropout, hidden_dropout, attention_dropout, feature_dropout
        self.threshold = 1.0 if self.W > 0 else 0.9
        self.init_temp_scale = init_temp_scale
        self.norm = Norm(norm_type, D)
        self.move = EMA(D, N, bidirectional=not causal, truncation=truncation)
        self.hx_proj = nn.Linear(D, 2 + D)
        self.mx_proj = nn.Linear(D, Z + 2 * H)
        self.h_proj = nn.Linear(H, D)
        self.gamma = nn.Parameter(torch.zeros(2, Z))
        self.beta = nn.Parameter(torch.zeros(2, Z))
        self.q_router = Router()
        self.rel_pos = rel_pos
        if rel_pos == "simple":
            if max_positions <= 0:
                raise ValueError("simple bias: max_positions must be resolved (> 0)")
            self.rel_pos_bias = SimpleBias(int(max_positions))
        elif rel_pos == "rotary":
            if Z % 2:
                raise ValueError("RoPE needs an even z_dim")
        elif rel_pos != "none":
            raise ValueError(f"unknown rel_pos {rel_pos!r}")
        if self.local_pos and (self.W <= 0 or rel_pos != "simple"):
            raise ValueError("local_pos needs chunk_size > 0 and rel_pos simple")
        self.layer_id = -1
        self.force_compress = None  # checks: override the density rule
        self.last = {}

    def reset_temp(self):
        with torch.no_grad():
            self.q_router.temp.fill_(math.log(self.init_temp_scale * math.sqrt(self.D)))

    def window(self, n, device):
        """allowed (n, n) of the compressed sequence, before key padding."""
        i = torch.arange(n, device=device)
        d = i[None, :] - i[:, None]  # j - i
        if self.W > 0:
            return ((d <= 0) & (d >= -self.W)) if self.causal else (d.abs() <= self.W)
        return d <= 0 if self.causal else torch.ones(n, n, dtype=torch.bool, device=device)

    def gau_qkv(self, Mc, pos):
        """[Zs, Rg, Vv] = split(silu(Mc W_m + b_m)); Q, K (RoPE applied on original positions)."""
        Z, H = self.Z, self.H
        zrv = silu(self.mx_proj(Mc))
        Zs, Rg, Vv = zrv[..., :Z], zrv[..., Z:Z + H], zrv[..., Z + H:]
        Q = Zs * self.gamma[0] + self.beta[0]
        K = Zs * self.gamma[1] + self.beta[1]
        if self.rel_pos == "rotary":
            Q, K = rope(Q, pos), rope(K, pos)
        return Q, K, Rg, Vv

    def gau(self, Mc, keypad, pos):
        """§6.4 over the (compressed) sequence Mc (B, n, D); keypad (B, n) True = masked key;
        pos (B, n) original positions. Returns Hc (B, n, D)."""
        B, n, _ = Mc.shape
        Q, K, Rg, Vv = self.gau_qkv(Mc, pos)
        Vv = dropout(Vv, self.p_hidden, self.training, self.feature)
        allowed = self.window(n, Mc.device)[None] & ~keypad[:, None, :]
        lens = None
        if self.attention != "softmax":
            if self.W > 0:
                lens = float(self.W if self.causal else 2 * self.W)
            elif self.causal:
                lens = torch.arange(1, n + 1, dtype=Q.dtype, device=Q.device)[:, None]
            else:
                lens = (~keypad).sum(-1).clamp(min=1).to(Q.dtype)[:, None, None]
        bias = None
        if self.rel_pos == "simple":
            if self.local_pos:  # window-local offsets: compressed distance, b[P - 1 + W + (j - i)]
                i = torch.arange(n, device=Mc.device)
                P = self.rel_pos_bias.P
                idx = (P - 1 + self.W + i[None, :] - i[:, None]).clamp(0, 2 * P - 2)
                bias = self.rel_pos_bias.rel_pos_bias[idx][None]
            else:
                bias = self.rel_pos_bias.at(pos, pos)  # original distances (B, n, n)
        O, A = attend(Q, K, Vv, self.attention, allowed, bias, lens, self.p_attn, self.training)
        self.last["attn"] = A
        Hc = self.h_proj(O * Rg)
        if not self.causal:
            Hc = dropout(Hc, self.p, self.training, self.feature)
        return Hc

    def forward(self, x, pad=None):
        R = x
        xn = self.norm(x) if self.prenorm else x
        M = silu(self.move(xn, pad))
        M = dropout(M, self.p, self.training, self.feature)
        hx = self.hx_proj(M)
        u, Hx = hx[..., :2], hx[..., 2:]
        a, g, pi, delta = route(u, self.q_router.temp, pad)
        threshold = self.threshold if self.force_compress is None else (2.0 if self.force_compress else 0.0)
        Mc, keypad, pos, rank, compressed = compress(M, a, threshold)
        Hc = self.gau(Mc, keypad, pos)
        Hg = extract(Hc, rank, a, compressed) * g[..., None]
        if self.causal:
            Y = dropout(Hx + Hg, self.p, self.training, self.feature) + R
        else:
            Y = Hx + Hg + R
        Y = silu(Y)
        real = torch.ones_like(a) if pad is None else ~pad.bool()
        margin = delta.detach().abs()[real].min().item() if real.any() else float("inf")
        self.last.update(a=a, g=g, pi=pi, u=u, delta=delta, Hx=Hx, H=Hg, Hc=Hc, R=R, compressed=compressed,
                         n_max=int(a.sum(1).max().item()), margin=margin)
        if ROUTING_LOG is not None:
            ROUTING_LOG.append(dict(layer=self.layer_id, margin=margin, active=int(a.sum().item()),
                                    tokens=int(real.sum().item()), n_max=self.last["n_max"], L=x.shape[1],
                                    compressed=compressed, a=a.clone()))
        return Y if self.prenorm else self.norm(Y)


# ------------------------------------------------------------------ spec initialisation (§1.4, §2.1, §4.1, §6.1)

def trunc_normal(shape, std, g, dtype=torch.float64):
    """N(0, std) conditioned on [-2 std, 2 std], by redrawing (never clipping)."""
    z = torch.randn(shape, generator=g, dtype=torch.float64)
    while True:
        bad = z.abs() > 2.0
        if not bad.any():
            break
        z[bad] = torch.randn(int(bad.sum()), generator=g, dtype=torch.float64)
    return (std * z).to(dtype)


def spec_init(m, seed):
    """The originals' initialisation: MEGA normal draws, SeqBoat truncated normal (§1.4):
    EMA delta, alpha std 0.2, beta std 0.02 + (1, -1, 1, ...), gamma, omega std 1; projections
    0.02, biases 0; gamma 0.02, beta 0; simple bias 0.02; MEGA rotary alpha/beta 0.02; the
    router temperature ln(init_temp_scale sqrt(D)); norms weight 1, bias 0."""
    g = torch.Generator().manual_seed(seed)
    trunc = isinstance(m, SeqBoat)

    def draw(shape, std):
        if trunc:
            return trunc_normal(shape, std, g)
        return std * torch.randn(shape, generator=g, dtype=torch.float64)

    with torch.no_grad():
        for name, p in m.named_parameters():
            dt = p.dtype
            if name.startswith("norm."):
                v = torch.ones(p.shape) if name.endswith("weight") else torch.zeros(p.shape)
            elif name in ("move.delta", "move.alpha"):
                v = draw(p.shape, 0.2)
            elif name == "move.beta":
                sign = torch.tensor([1.0 if n % 2 == 0 else -1.0 for n in range(p.shape[1])], dtype=torch.float64)
                v = draw(p.shape, 0.02) + sign
            elif name in ("move.gamma", "move.omega"):
                v = draw(p.shape, 1.0)
            elif name.endswith(".bias") and not name.startswith("rel_pos_bias") or name == "beta":
                v = torch.zeros(p.shape)
            elif name == "q_router.temp":
                v = torch.full(p.shape, math.log(m.init_temp_scale * math.sqrt(m.D)))
            else:
                v = draw(p.shape, 0.02)
            p.copy_(v.to(dt))
    return m


# ------------------------------------------------------------------ torch_lm hooks

MIXER_DEFAULTS = {"z_dim": 64, "h_dim": 0, "n_dim": 16, "chunk_size": 0, "truncation": 0, "attention": "softmax",
                  "rel_pos": "simple", "max_positions": 0, "local_pos": False, "norm_type": "layernorm",
                  "hidden_dropout": 0.0, "feature_dropout": False, "init_temp_scale": 0.3}


def mixer_keys(c):
    """The mixer keys of an LM config c (dotted "mixer.<key>"), with the defaults of
    docs/mega-seqboat.md; dropout / attention_dropout fall back to the flat dropout / dropatt,
    place to the model's norm."""
    k = {n: c.get("mixer." + n, v) for n, v in MIXER_DEFAULTS.items()}
    k["dropout"] = c.get("mixer.dropout", c.get("dropout", 0.0))
    k["attention_dropout"] = c.get("mixer.attention_dropout", c.get("dropatt", 0.0))
    k["place"] = c.get("mixer.place", c.get("norm", "pre"))
    if not k["h_dim"]:
        k["h_dim"] = 2 * c["d_model"]
    if not k["max_positions"]:
        if c["mixer"] == "seqboat" and k["local_pos"]:
            k["max_positions"] = 3 * k["chunk_size"]
        elif c["mixer"] == "mega" and k["chunk_size"] > 0:
            k["max_positions"] = k["chunk_size"]
        else:
            k["max_positions"] = c.get("max_len", 512)
    return k


def mixer_from_config(c, layer_id=-1):
    """torch_lm's hook: the 's' sublayer of mixer "mega" or "seqboat" (owns its residual)."""
    k = mixer_keys(c)
    common = dict(causal=bool(c["causal"]), chunk_size=int(k["chunk_size"]), truncation=int(k["truncation"]),
                  attention=k["attention"], rel_pos=k["rel_pos"], max_positions=int(k["max_positions"]),
                  norm_type=k["norm_type"], prenorm=k["place"] == "pre", dropout=float(k["dropout"]),
                  hidden_dropout=float(k["hidden_dropout"]), attention_dropout=float(k["attention_dropout"]),
                  feature_dropout=bool(k["feature_dropout"]))
    D, Z, H, N = c["d_model"], int(k["z_dim"]), int(k["h_dim"]), int(k["n_dim"])
    if c["mixer"] == "mega":
        return Mega(D, Z, H, N, **common)
    if c["mixer"] == "seqboat":
        m = SeqBoat(D, Z, H, N, local_pos=bool(k["local_pos"]), init_temp_scale=float(k["init_temp_scale"]),
                    **common)
        m.layer_id = layer_id
        return m
    raise ValueError(f"unknown mixer {c['mixer']!r}")


def param_group(name):
    """seqlab's group of a MEGA / SeqBoat parameter (None: not one of theirs): Linear weights
    'linear', their biases 'bias', norms 'norm', the rest (EMA, gamma, beta, biases tables,
    temperature) 'other'."""
    if ".mixer." not in name:
        return None
    tail = name.split(".mixer.", 1)[1]
    parts = tail.split(".")
    if len(parts) == 2 and parts[0] in ("v_proj", "mx_proj", "h_proj", "hx_proj"):
        return "linear" if parts[1] == "weight" else "bias"
    if parts[0] == "norm":
        return "norm"
    if parts[0] in ("move", "gamma", "beta", "rel_pos_bias", "q_router"):
        return "other"
    return None
