"""The S5 layer, the Hyena operator of order N and Hyena-S5, in plain PyTorch.

Written from shared/spec/ssm-hyena.md §1 (S5), §2 (Hyena, implicit filter)
and §3 (Hyena with S5 filters), for the golden files of tests/ref/golden_ssm.py.
Deliberately direct: the S5 recurrence is a sequential loop over time in
complex arithmetic (complex128 in float64), the Hyena long convolution a
direct O(L^2) causal sum (`causal_conv`; `causal_conv_fft` is only a check),
the short convolution the explicit tap formula. Backward by autograd.

Parameter names are seqlab's (relative to the mixer):

    S5      Lambda_re [P], Lambda_im [P], B [P][H][2], C [H][P or 2P][2], D [H],
            log_step [P][1]; GLUs: out2.weight [H][H], out2.bias [H];
            full_glu also out1.weight, out1.bias (PyTorch Linear layout, out x in)
    Hyena   in_proj.weight [(N+1)D][D], in_proj.bias, short_filter.conv.weight
            [(N+1)D][1][K], short_filter.conv.bias, implicit_filter.<i>.weight /
            .bias (i < num_inner_mlps + 1; the last layer has no bias),
            implicit_filter.freq [1][F], filter_bias [(N-1)D], out_proj.weight,
            out_proj.bias; with S5 filters filter.<o>.<S5 name> instead of the
            implicit filter and filter_bias.

Config (for torch_lm.LM): mixer "s5" or "hyena"; the module keys as seqlab's
dotted section keys, e.g. "mixer.ssm_size", "mixer.filter.name",
"mixer.filter.activation" (see S5_DEFAULTS, HYENA_DEFAULTS).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

S5_ACTIVATIONS = ("none", "gelu", "full_glu", "half_glu1", "half_glu2")
CLIP_RE = -1e-4  # §1.5

# The spec's defaults for keys a config leaves out (golden cases set every key they depend on).
S5_DEFAULTS = dict(ssm_size=64, blocks=1, conj_sym=True, discretization="zoh", activation="gelu", gelu="exact",
                   clip_eigs=False, step_rescale=1.0, bidirectional=False)
HYENA_DEFAULTS = {"order": 2, "filter_order": 64, "emb_dim": 5, "num_inner_mlps": 2, "w": 10.0,
                  "short_filter_order": 3, "l_max": 0, "filter.name": "implicit", "drop_rate": 0.0,
                  "filter_bias": True, "modulate": True, "fast_decay_pct": 0.3, "slow_decay_pct": 1.5,
                  "target": 1e-2, "shift": 0.0}


def gelu(x, form):
    if form == "exact":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if form == "tanh":
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    raise ValueError(f"unknown gelu {form!r}")


def complex_dtype(dtype):
    return torch.complex128 if dtype == torch.float64 else torch.complex64


class S5(nn.Module):
    """One S5 layer (§1): x_k = Λ̄ x_{k-1} + B̄ u_k, s_k = c Re(C̃ x_k) + D u_k,
    y_k = act(s_k). P is the number of stored states (ssm_size / 2 with
    conj_sym). Bidirectional: a second scan in reverse time over the same Λ̄,
    B̄, read by the last P columns of C."""

    def __init__(self, H, P, conj_sym=True, bidirectional=False, discretization="zoh", activation="gelu",
                 gelu="exact", clip_eigs=False, step_rescale=1.0):
        super().__init__()
        if discretization not in ("zoh", "bilinear"):
            raise ValueError(f"unknown discretization {discretization!r}")
        if activation not in S5_ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}")
        self.H, self.P = H, P
        self.conj_sym, self.bidirectional, self.clip_eigs = conj_sym, bidirectional, clip_eigs
        self.discretization, self.activation, self.gelu_form = discretization, activation, gelu
        self.step_rescale = float(step_rescale)
        self.Lambda_re = nn.Parameter(torch.zeros(P))
        self.Lambda_im = nn.Parameter(torch.zeros(P))
        self.B = nn.Parameter(torch.zeros(P, H, 2))
        self.C = nn.Parameter(torch.zeros(H, (2 if bidirectional else 1) * P, 2))
        self.D = nn.Parameter(torch.zeros(H))
        self.log_step = nn.Parameter(torch.zeros(P, 1))
        if activation == "full_glu":
            self.out1 = nn.Linear(H, H)
        if activation in ("full_glu", "half_glu1", "half_glu2"):
            self.out2 = nn.Linear(H, H)

    def lambda_(self):
        """Λ after the clip of §1.5 (complex [P])."""
        re = torch.clamp(self.Lambda_re, max=CLIP_RE) if self.clip_eigs else self.Lambda_re
        return torch.complex(re, self.Lambda_im)

    def discretize(self):
        """(Λ̄ [P], B̄ [P][H]) of §1.6, complex."""
        lam = self.lambda_()
        delta = (self.step_rescale * torch.exp(self.log_step[:, 0])).to(lam.dtype)
        bt = torch.complex(self.B[..., 0], self.B[..., 1])
        if self.discretization == "zoh":
            abar = torch.exp(lam * delta)
            scale = (abar - 1.0) / lam
        else:
            q = 1.0 / (1.0 - 0.5 * delta * lam)
            abar = (1.0 + 0.5 * delta * lam) * q
            scale = delta * q
        return abar, scale[:, None] * bt

    @staticmethod
    def scan(abar, bu, reverse=False):
        """The plain sequential recurrence over time: bu (B, T, P) complex ->
        states (B, T, P); reverse runs from the last position back, x'_{T+1} = 0."""
        Bsz, T, P = bu.shape
        x = torch.zeros(Bsz, P, dtype=bu.dtype)
        out = [None] * T
        for k in (range(T - 1, -1, -1) if reverse else range(T)):
            x = abar * x + bu[:, k]
            out[k] = x
        return torch.stack(out, dim=1)

    def pre_activation(self, u):
        """s = c Re(C̃ x) + D ⊙ u, (B, T, H) from u (B, T, H) real."""
        abar, bbar = self.discretize()
        bu = torch.einsum("ph,bth->btp", bbar, u.to(bbar.dtype))
        c = 2.0 if self.conj_sym else 1.0
        ct = torch.complex(self.C[..., 0], self.C[..., 1])  # (H, P or 2P)
        P = self.P
        s = c * torch.einsum("hp,btp->bth", ct[:, :P], self.scan(abar, bu)).real
        if self.bidirectional:
            s = s + c * torch.einsum("hp,btp->bth", ct[:, P:], self.scan(abar, bu, reverse=True)).real
        return s + self.D * u

    def forward(self, u):
        s = self.pre_activation(u)
        a = self.activation
        if a == "none":
            return s
        g = gelu(s, self.gelu_form)
        if a == "gelu":
            return g
        gate = torch.sigmoid(self.out2(g))
        if a == "full_glu":
            return self.out1(g) * gate
        if a == "half_glu1":
            return g * gate
        return s * gate  # half_glu2: the value path is the raw SSM output


def s5_from_config(c, prefix, H):
    """An S5 from config keys prefix + key (e.g. "mixer." or "mixer.filter.")."""
    k = {n: c.get(prefix + n, v) for n, v in S5_DEFAULTS.items()}
    P_full, J = int(k["ssm_size"]), int(k["blocks"])
    if P_full % J or (k["conj_sym"] and (P_full // J) % 2):
        raise ValueError(f"ssm_size {P_full}, blocks {J}, conj_sym {k['conj_sym']}: bad block size")
    P = P_full // 2 if k["conj_sym"] else P_full
    return S5(H, P, conj_sym=k["conj_sym"], bidirectional=k["bidirectional"], discretization=k["discretization"],
              activation=k["activation"], gelu=k["gelu"], clip_eigs=k["clip_eigs"], step_rescale=k["step_rescale"])


# ------------------------------------------------------------------ Hyena

def positional_features(l_max, emb_dim, dtype=torch.float64):
    """(z (l_max, emb_dim), t (l_max)) of §2.3: z_k = [t_k, cos(f_j w_k)..., -sin(f_j w_k)...],
    t_k = k / (l_max - 1), w_k = 2 pi k / l_max, f_j = linspace(1e-4, bands - 1, bands)."""
    if emb_dim % 2 == 0 or emb_dim < 3:
        raise ValueError("emb_dim must be odd and >= 3")
    bands = (emb_dim - 1) // 2
    k = torch.arange(l_max, dtype=torch.float64)
    t = k / (l_max - 1) if l_max > 1 else torch.zeros(l_max, dtype=torch.float64)
    w = 2.0 * math.pi * k / l_max
    f = torch.linspace(1e-4, bands - 1, bands, dtype=torch.float64)
    fw = w[:, None] * f[None, :]
    z = torch.cat([t[:, None], torch.cos(fw), -torch.sin(fw)], dim=1)
    return z.to(dtype), t.to(dtype)


def decay_rates(n, fast_decay_pct=0.3, slow_decay_pct=1.5, target=1e-2):
    """δ_c = linspace(ln(target)/slow, ln(target)/fast, n) (§2.3)."""
    max_decay = math.log(target) / fast_decay_pct
    min_decay = math.log(target) / slow_decay_pct
    return torch.linspace(min_decay, max_decay, n, dtype=torch.float64)


def causal_conv(v, h):
    """y[b, t, d] = sum_{s <= t} h[s, d] v[b, t - s, d], directly (O(L^2)); v (B, L, D), h (L, D)."""
    L = v.shape[1]
    t = torch.arange(L)
    lag = t[:, None] - t[None, :]  # (t, s'): lag t - s'
    toeplitz = h[lag.clamp(min=0)] * (lag >= 0).to(h.dtype)[:, :, None]  # (L, L, D): h[t - s'] or 0
    return torch.einsum("tsd,bsd->btd", toeplitz, v)


def causal_conv_fft(v, h):
    """The same through rfft of length 2L (§2.5); a check only."""
    L = v.shape[1]
    n = 2 * L
    V = torch.fft.rfft(v, n=n, dim=1)
    Hf = torch.fft.rfft(h, n=n, dim=0)
    return torch.fft.irfft(V * Hf[None], n=n, dim=1)[:, :L]


def short_conv(z, weight, bias):
    """Causal depthwise convolution (§2.2 step 2) with K taps as torch.nn.Conv1d
    (cross-correlation) padded K - 1 on the left: zc[t, c] = b[c] +
    sum_j w[c, 0, j] z[t - (K - 1) + j, c], z = 0 before t = 0; for K = 3
    w[0] z[t-2] + w[1] z[t-1] + w[2] z[t]."""
    K = weight.shape[-1]
    L = z.shape[1]
    out = bias.expand_as(z)
    for j in range(K):
        shift = K - 1 - j  # tap j reads z[t - shift]
        if shift >= L:
            continue
        zs = F.pad(z[:, :L - shift], (0, 0, shift, 0)) if shift else z
        out = out + weight[:, 0, j] * zs
    return out


class ImplicitFilter(nn.Module):
    """The filter MLP of §2.3: Linear(emb_dim, F) + sin, num_inner_mlps x (Linear(F, F) + sin),
    Linear(F, channels) without bias; one `freq` [1][F] inside every sine."""

    def __init__(self, emb_dim, F_, num_inner_mlps, channels, w):
        super().__init__()
        self.n = num_inner_mlps + 2
        for i in range(self.n):
            last = i + 1 == self.n
            self.add_module(str(i), nn.Linear(emb_dim if i == 0 else F_, channels if last else F_, bias=not last))
        self.freq = nn.Parameter(torch.full((1, F_), float(w)))

    def forward(self, z):
        a = z
        for i in range(self.n - 1):
            a = torch.sin(self.freq * getattr(self, str(i))(a))
        return getattr(self, str(self.n - 1))(a)


class ShortFilter(nn.Module):
    def __init__(self, channels, K):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, K, groups=channels, bias=True)  # weight (C, 1, K)


class Hyena(nn.Module):
    """The Hyena operator of order N (§2) with the implicit filter, the
    identity filter (test only) or S5 filters (Hyena-S5, §3)."""

    def __init__(self, D, order=2, filter_order=64, emb_dim=5, num_inner_mlps=2, w=10.0, short_filter_order=3,
                 l_max=None, filter="implicit", s5=None, drop_rate=0.0, filter_bias=True, modulate=True,
                 fast_decay_pct=0.3, slow_decay_pct=1.5, target=1e-2, shift=0.0):
        super().__init__()
        if drop_rate != 0.0:
            raise ValueError("the reference has no dropout: drop_rate must be 0")
        N = order
        self.D, self.N, self.kind = D, N, filter
        G = (N + 1) * D
        self.in_proj = nn.Linear(D, G)
        if short_filter_order > 0:
            self.short_filter = ShortFilter(G, short_filter_order)
        else:
            self.short_filter = None
        if filter == "implicit":
            if not l_max:
                raise ValueError("the implicit filter needs l_max")
            self.implicit_filter = ImplicitFilter(emb_dim, filter_order, num_inner_mlps, (N - 1) * D, w)
            self.filter_bias = nn.Parameter(torch.zeros((N - 1) * D)) if filter_bias else None
            z, t = positional_features(l_max, emb_dim)
            self.l_max, self.modulate, self.shift = l_max, modulate, float(shift)
            self.register_buffer("zpos", z, persistent=False)
            self.register_buffer("tpos", t, persistent=False)
            self.register_buffer("deltas", decay_rates((N - 1) * D, fast_decay_pct, slow_decay_pct, target),
                                 persistent=False)
        elif filter == "s5":
            self.filter = nn.ModuleList([S5(D, **(s5 or {})) for _ in range(N - 1)])
        elif filter != "identity":
            raise ValueError(f"unknown filter {filter!r}")
        self.out_proj = nn.Linear(D, D)

    def filters(self, L):
        """(L, (N-1) D) implicit filter for positions 0..L-1 (features of l_max, sliced), windowed."""
        if L > self.l_max:
            raise ValueError(f"L {L} > l_max {self.l_max}")
        dtype = self.implicit_filter.freq.dtype
        h = self.implicit_filter(self.zpos[:L].to(dtype))
        if self.modulate:
            window = torch.exp(-self.tpos[:L, None] * self.deltas.abs()[None, :]) + self.shift
            h = h * window.to(dtype)
        return h

    def forward(self, u):
        D, N = self.D, self.N
        z = self.in_proj(u)
        if self.short_filter is not None:
            z = short_conv(z, self.short_filter.conv.weight, self.short_filter.conv.bias)
        x = [z[..., i * D:(i + 1) * D] for i in range(N)]
        v = z[..., N * D:]
        h = self.filters(u.shape[1]) if self.kind == "implicit" else None
        for o in range(N - 1):
            v = v * x[N - 1 - o]
            if self.kind == "implicit":
                h_o = h[:, o::N - 1]  # channel d: column d (N-1) + o
                y = causal_conv(v, h_o)
                if self.filter_bias is not None:
                    y = y + self.filter_bias[o::N - 1] * v
                v = y
            elif self.kind == "s5":
                v = self.filter[o](v)
        return self.out_proj(v * x[0])


def hyena_from_config(c, D):
    """A Hyena mixer from the config keys "mixer.<key>" (filter s5: "mixer.filter.<S5 key>")."""
    k = {n: c.get("mixer." + n, v) for n, v in HYENA_DEFAULTS.items()}
    filt = k["filter.name"]
    s5 = None
    if filt == "s5":
        s5m = s5_from_config(c, "mixer.filter.", D)
        if s5m.bidirectional:
            raise ValueError("Hyena-S5 filters are causal")
        s5 = dict(P=s5m.P, conj_sym=s5m.conj_sym, discretization=s5m.discretization, activation=s5m.activation,
                  gelu=s5m.gelu_form, clip_eigs=s5m.clip_eigs, step_rescale=s5m.step_rescale)
    return Hyena(D, order=int(k["order"]), filter_order=int(k["filter_order"]), emb_dim=int(k["emb_dim"]),
                 num_inner_mlps=int(k["num_inner_mlps"]), w=float(k["w"]),
                 short_filter_order=int(k["short_filter_order"]), l_max=int(k["l_max"]) or int(c["max_len"]),
                 filter=filt, s5=s5, drop_rate=float(k["drop_rate"]), filter_bias=bool(k["filter_bias"]),
                 modulate=bool(k["modulate"]), fast_decay_pct=float(k["fast_decay_pct"]),
                 slow_decay_pct=float(k["slow_decay_pct"]), target=float(k["target"]), shift=float(k["shift"]))


def mixer_from_config(c):
    """torch_lm's hook: the 's' sublayer of mixer "s5" or "hyena"."""
    if c["mixer"] == "s5":
        m = s5_from_config(c, "mixer.", c["d_model"])
        if m.bidirectional and c["causal"]:
            raise ValueError("a bidirectional S5 reads the future: set causal false")
        return m
    if c["mixer"] == "hyena":
        return hyena_from_config(c, c["d_model"])
    raise ValueError(f"unknown mixer {c['mixer']!r}")


def param_group(name):
    """seqlab's group of a parameter of these mixers (None: not one of theirs):
    Linear and convolution weights 'linear', their biases 'bias'; Λ, B, C, D,
    log_step, freq, filter_bias 'other'."""
    if ".mixer." not in name:
        return None
    tail = name.split(".mixer.", 1)[1]
    parts = tail.split(".")
    linear_owner = len(parts) >= 2 and (
        parts[-2] in ("in_proj", "out_proj", "out1", "out2", "conv")
        or (len(parts) >= 3 and parts[-3] == "implicit_filter" and parts[-2].isdigit()))
    if linear_owner and parts[-1] == "weight":
        return "linear"
    if linear_owner and parts[-1] == "bias":
        return "bias"
    if parts[-1] in ("Lambda_re", "Lambda_im", "B", "C", "D", "log_step", "freq", "filter_bias"):
        return "other"
    return None
