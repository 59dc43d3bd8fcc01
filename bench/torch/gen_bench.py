"""PyTorch side of seqlab's generation benchmark: one token at a time at batch 1.

The reference model (tests/ref/torch_lm.py, softmax attention, pre-LN,
learned positions, tied head) runs a prefill of --context tokens, then
--new_tokens tokens one by one with a key/value cache, in plain torch ops
under torch.no_grad(): what a researcher's sampling loop does. Each new token
costs its projections, attention over the cache and the MLP; the cache grows
by one row per layer. Tokens per second of the one-token loop (greedy, the
prefill not counted). Prints one JSON object.

    /usr/bin/python3 bench/torch/gen_bench.py --threads 2 --context 1024 --new_tokens 256
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "ref"))
import torch_lm  # noqa: E402


def attend(blk, h, cache):
    """One or more new rows h (1, n, C) through a softmax block, appending to
    the layer's cache (K, V of shape (1, H, t, d))."""
    m = blk.mixer
    H, d = m.n_head, m.d_head
    n = h.shape[1]
    q = m.q_net(h).reshape(1, n, H, d).transpose(1, 2)
    kv = m.kv_net(h)
    k = kv[..., : H * d].reshape(1, n, H, d).transpose(1, 2)
    v = kv[..., H * d:].reshape(1, n, H, d).transpose(1, 2)
    cache[0] = k if cache[0] is None else torch.cat([cache[0], k], dim=2)
    cache[1] = v if cache[1] is None else torch.cat([cache[1], v], dim=2)
    K, V = cache
    s = torch.matmul(q, K.transpose(-1, -2)) / math.sqrt(d)
    if n > 1:  # the prefill: causal within the new rows
        t = K.shape[2]
        mask = torch.ones(n, t, dtype=torch.bool).triu(t - n + 1)
        s = s.masked_fill(mask, float("-inf"))
    o = torch.matmul(torch.softmax(s, dim=-1), V).transpose(1, 2).reshape(1, n, H * d)
    return m.o_net(o)


def forward_cached(model, ids, start, caches):
    """Logits of the last of ids (1, n) at positions start .. start+n-1."""
    x = model.embed.weight[ids] + model.pos_embed.weight[start:start + ids.shape[1]][None]
    for blk, cache in zip(model.blocks, caches):
        h = blk.norm(x)
        x = x + (attend(blk, h, cache) if blk.kind == "s" else blk.ffn(h))
    x = model.norm_f(x[:, -1:])
    return torch.matmul(x, model.embed.weight.t())[0, -1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--n_layer", type=int, default=4)
    ap.add_argument("--d_model", type=int, default=256)
    ap.add_argument("--n_head", type=int, default=4)
    ap.add_argument("--d_inner", type=int, default=1024)
    ap.add_argument("--context", type=int, default=1024, help="tokens in the cache before timing")
    ap.add_argument("--new_tokens", type=int, default=256, help="timed one-token steps")
    ap.add_argument("--repeats", type=int, default=3, help="timed loops (median reported)")
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cfg = dict(vocab_size=a.vocab, arch="sf" * a.n_layer, n_layer=a.n_layer, d_model=a.d_model, n_head=a.n_head,
               d_head=a.d_model // a.n_head, d_inner=a.d_inner, max_len=a.context + a.new_tokens)
    model = torch_lm.LM(cfg)
    torch_lm.init_params(model, a.seed)
    model.eval()
    g = torch.Generator().manual_seed(a.seed + 1)
    prompt = torch.randint(0, a.vocab, (1, a.context), generator=g)
    rates = []
    with torch.no_grad():
        for _ in range(a.repeats):
            caches = [[None, None] for _ in model.blocks]
            logits = forward_cached(model, prompt, 0, caches)
            t0 = time.perf_counter()
            for i in range(a.new_tokens):
                token = torch.argmax(logits).reshape(1, 1)
                logits = forward_cached(model, token, a.context + i, caches)
            rates.append(a.new_tokens / (time.perf_counter() - t0))
    print(json.dumps({"impl": "pytorch", "torch_version": torch.__version__, "threads": torch.get_num_threads(),
                      "mixer": "softmax", "d_model": a.d_model, "n_layer": a.n_layer, "d_inner": a.d_inner,
                      "context": a.context, "new_tokens": a.new_tokens, "gen_tok_per_s_runs": rates,
                      "gen_tok_per_s": statistics.median(rates)}))


if __name__ == "__main__":
    main()
