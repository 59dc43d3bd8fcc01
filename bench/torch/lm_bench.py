"""PyTorch side of seqlab's training-speed benchmark.

Times full float32 training steps of the reference model (tests/ref/torch_lm.py,
the same architecture seqlab trains, with any of its mixers: softmax, linear,
band, fmm as tests/ref/torch_mixers.py writes them with plain torch ops):
forward, mean cross-entropy, backward, clip_grad_norm_(1.0), AdamW step on
random token ids. Forward and backward are timed apart. Prints one JSON object.

Linear attention runs in the reference's quadratic masked form, or with
--linear_impl cumsum in the straightforward cumulative-sum form of "Transformers
are RNNs": S_t = cumsum(b_t v_t^T), which stores a d x d matrix per token.

Nyström attention is tests/ref/torch_nystrom.py (batched torch ops throughout,
the same computation as the original code's).

S5 and Hyena (tests/ref/torch_ssm.py, keys with --mixer_keys k=v,k=v as
seqlab's mixer section) run as a PyTorch user would write them fast: Hyena's
long convolution through torch.fft.rfft of length 2T (as the safari code),
S5's diagonal recurrence as a causal convolution of each state with its
kernel Λ̄^m through a complex FFT of length 2T (an "FFT-SSM"; there is no
scan primitive in PyTorch, and the MIMO kernel of S5 is H x H per lag, too
large to form), instead of the reference's sequential loops.

    /usr/bin/python3 bench/torch/lm_bench.py --threads 2
    /usr/bin/python3 bench/torch/lm_bench.py --mixer linear --linear_impl cumsum --tgt_len 1024 --batch_size 16
"""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "ref"))
import torch_lm  # noqa: E402
import torch_mixers  # noqa: E402
import torch_ssm  # noqa: E402


def linear_attention_cumsum(q, k, v, kernel="elu", eps=torch_mixers.LINEAR_EPS):
    """Causal linear attention of attention.md §2.2 as running sums taken with
    torch.cumsum over (B, H, T, d, d) outer products."""
    d = q.shape[-1]
    a = torch_mixers.sum_normalised(torch_mixers.feature_map(q, kernel))
    b = torch_mixers.sum_normalised(torch_mixers.feature_map(k, kernel))
    S = torch.cumsum(b.unsqueeze(-1) * v.unsqueeze(-2), dim=2)
    z = torch.cumsum(b, dim=2)
    num = torch.einsum("bhtc,bhtce->bhte", a, S)
    den = (a * z).sum(-1, keepdim=True)
    return num / math.sqrt(d) / (den + eps)


def ssm_scan_fft(abar, bu, reverse=False):
    """x_k = sum_{j<=k} abar^(k-j) bu_j per state (reverse: j >= k), bu (B, T, P)
    complex, through one complex FFT of length 2T: the states of S5 as a long
    convolution with the kernel abar^m."""
    T = bu.shape[1]
    if reverse:
        bu = torch.flip(bu, dims=[1])
    m = torch.arange(T, dtype=bu.real.dtype)
    kernel = torch.exp(m[:, None] * torch.log(abar)[None, :])  # (T, P)
    n = 2 * T
    x = torch.fft.ifft(torch.fft.fft(bu, n=n, dim=1) * torch.fft.fft(kernel, n=n, dim=0)[None], dim=1)[:, :T]
    return torch.flip(x, dims=[1]) if reverse else x


def parse_value(text):
    """A section key's value: bool, int, float or the text."""
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def stable_ssm_init(model, seed):
    """S5 parameters as its initialisation draws them (Re Λ = -1/2, steps in
    [1e-3, 1e-1)): torch_lm's N(0, 0.02) would leave some states growing,
    whose powers overflow over thousands of positions."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("Lambda_re"):
                p.fill_(-0.5)
            elif name.endswith("Lambda_im"):
                p.copy_(torch.randn(p.shape, generator=g))
            elif name.endswith("log_step"):
                p.uniform_(math.log(1e-3), math.log(1e-1), generator=g)
            elif name.endswith(".B") or name.endswith(".C"):
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))


def str2bool(s):
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {s!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--arch", default="", help="sublayer string; empty: 'sf' x n_layer")
    ap.add_argument("--n_layer", type=int, default=4)
    ap.add_argument("--d_model", type=int, default=256)
    ap.add_argument("--n_head", type=int, default=4)
    ap.add_argument("--d_head", type=int, default=0, help="0: d_model / n_head")
    ap.add_argument("--d_inner", type=int, default=1024)
    ap.add_argument("--tgt_len", type=int, default=256)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--norm", default="pre", choices=["pre", "post"])
    ap.add_argument("--activation", default="gelu", choices=["relu", "gelu", "gelu_tanh"])
    ap.add_argument("--pos", default="learned", choices=["learned", "sinusoidal", "none"])
    ap.add_argument("--tie_weight", type=str2bool, default=True)
    ap.add_argument("--causal", type=str2bool, default=True)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--dropatt", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight_decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--mixer", default="softmax", choices=["softmax", "linear", "band", "fmm", "s5", "hyena", "nystrom"])
    ap.add_argument("--mixer_keys", default="",
                    help="s5, hyena, nystrom: section keys, e.g. filter.name=s5,filter.ssm_size=64")
    ap.add_argument("--diag_size", type=int, default=5)
    ap.add_argument("--sparse_ratio", type=float, default=2.5)
    ap.add_argument("--kernels", default="elu")
    ap.add_argument("--linear_impl", default="quadratic", choices=["quadratic", "cumsum"])
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    arch = a.arch or "sf" * a.n_layer
    cfg = dict(
        vocab_size=a.vocab, arch=arch, n_layer=arch.count("s"), d_model=a.d_model, n_head=a.n_head,
        d_head=a.d_head or a.d_model // a.n_head, d_inner=a.d_inner, norm=a.norm, activation=a.activation,
        pos=a.pos, tie_weight=a.tie_weight, causal=a.causal, dropout=a.dropout, dropatt=a.dropatt,
        max_len=a.tgt_len, optim="adamw", lr=a.lr, weight_decay=a.weight_decay, decay_groups="linear",
        clip=a.clip, beta1=0.9, beta2=0.999, eps=1e-8, mixer=a.mixer, diag_size=a.diag_size,
        sparse_ratio=a.sparse_ratio, kernels=a.kernels,
    )
    for kv in filter(None, a.mixer_keys.split(",")):
        key, value = kv.split("=", 1)
        cfg["mixer." + key] = parse_value(value)
    if a.linear_impl == "cumsum":
        torch_mixers.linear_attention = linear_attention_cumsum
    torch_ssm.S5.scan = staticmethod(ssm_scan_fft)  # the fast forms (module docstring)
    torch_ssm.causal_conv = torch_ssm.causal_conv_fft
    model = torch_lm.LM(cfg)
    torch_lm.init_params(model, a.seed)
    stable_ssm_init(model, a.seed)
    model.train()
    opt = torch_lm.make_optimizer(model, cfg)
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)

    g = torch.Generator().manual_seed(a.seed + 1)
    seq = torch.randint(0, a.vocab, (a.batch_size, a.tgt_len + 1), generator=g)
    ids, targets = seq[:, :-1].contiguous(), seq[:, 1:].contiguous()

    def step():
        """Seconds of forward, backward and the whole step; the loss."""
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, _ = model(ids, targets)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(params, a.clip)
        opt.step()
        return t1 - t0, t2 - t1, time.perf_counter() - t0, loss.item()

    for _ in range(a.warmup):
        step()
    times, forward, backward, losses = [], [], [], []
    for _ in range(a.steps):
        f, b, t, loss = step()
        forward.append(f)
        backward.append(b)
        times.append(t)
        losses.append(loss)

    tokens = a.batch_size * a.tgt_len
    med = statistics.median(times)
    out = {
        "impl": "pytorch",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "vocab": a.vocab, "arch": arch, "n_layer": cfg["n_layer"], "d_model": a.d_model, "n_head": a.n_head,
        "d_head": cfg["d_head"], "d_inner": a.d_inner, "tgt_len": a.tgt_len, "batch_size": a.batch_size,
        "norm": a.norm, "activation": a.activation, "pos": a.pos, "tie_weight": a.tie_weight,
        "causal": a.causal, "dropout": a.dropout, "dropatt": a.dropatt, "optim": "adamw", "lr": a.lr,
        "weight_decay": a.weight_decay, "clip": a.clip, "steps": a.steps, "warmup": a.warmup,
        "dtype": "float32", "n_params": n_params,
        "tokens_per_step": tokens,
        "mixer": a.mixer, "diag_size": a.diag_size, "kernels": a.kernels, "linear_impl": a.linear_impl,
        "mixer_keys": a.mixer_keys,
        "step_seconds": times,
        "forward_s": statistics.median(forward),
        "backward_s": statistics.median(backward),
        "median_s": med,
        "min_s": min(times),
        "max_s": max(times),
        "tok_per_s": tokens / med,
        "losses": losses,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,  # Linux: KiB
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
