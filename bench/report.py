"""Writes docs/benchmarks.md from the JSON lines of bench/compare.sh
(bench/results/*.jsonl): the foundation table (softmax LM, seqlab vs PyTorch),
the scaling of every mixer with sequence length, and every mixer next to
PyTorch. Each seqlab or PyTorch run reports the median of its timed steps;
a table cell is the median over runs of those medians."""
import datetime
import json
import os
import platform
import statistics
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
LABELS = {"softmax": "softmax", "linear": "linear", "linear-cumsum": "linear (PyTorch cumsum form)",
          "band5": "band, diag_size 5", "band20": "band, diag_size 20", "fmm2k20": "fmm, 2 kernels + band 20"}


def load(name):
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path) if line.strip()]


def machine():
    cpu = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}"


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def med(rows, key):
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else None


def fmt(x, digits=0, unit=""):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}{unit}"


def ok(rows):
    return [r for r in rows if not r.get("failed")]


PEAKS = [0.0, 0.0]  # the lowest and highest sgemm peak any seqlab process measured


def set_peak(runs):
    peaks = [r["sgemm_gflops"] for r in runs if r.get("impl") == "seqlab" and r.get("sgemm_gflops")]
    PEAKS[:] = [min(peaks), max(peaks)] if peaks else [0.0, 0.0]


def share(rows):
    """Median GFLOP/s of rows as a percentage of the highest peak measured."""
    g = med(rows, "gflops")
    return 100.0 * g / PEAKS[1] if g and PEAKS[1] else 0.0


def header(runs):
    seq = next((r for r in runs if r.get("impl") == "seqlab"), {})
    torch = next((r for r in runs if r.get("impl") == "pytorch" and not r.get("failed")), {})
    return ["# Benchmarks\n",
            f"Measured {datetime.date.today().isoformat()} on {machine()}; {seq.get('threads', '?')} threads for both "
            f"implementations. seqlab built with {version(['gcc', '--version'])}, OpenBLAS (OpenMP build, "
            f"{seq.get('blas_core', '?')} kernels); PyTorch {torch.get('torch_version', '–')} from Debian "
            "(python3-torch, on the same OpenBLAS). float32 everywhere; random tokens, vocabulary 256, dropout 0.\n",
            "A training step is forward (with the loss), backward, gradient clipping and AdamW. GFLOP/s count "
            "6 x parameters x tokens (without the position table, a lookup) plus three times each mixer's forward token-mixing FLOPs (QK^T and PV for "
            "softmax and band, the chunk and state products of linear attention); the sgemm peak is the median of "
            "7 square 2048 sgemm calls, measured in every seqlab process before and after its steps (the higher "
            "of the two). On this virtual machine those measurements spread from "
            f"{PEAKS[0]:.1f} to {PEAKS[1]:.1f} GFLOP/s over the runs below (other tenants, clock changes); the "
            f"tables divide by the highest, {PEAKS[1]:.1f}, the strict reading. Reproduce everything with `bench/compare.sh` (`make bench`); raw runs are in `bench/results/`.\n"]


def lm_section(runs):
    seq, torch = ok([r for r in runs if r["impl"] == "seqlab"]), ok([r for r in runs if r["impl"] == "pytorch"])
    if not seq:
        return []
    c = seq[0]
    out = ["## Foundation: softmax-attention LM\n",
           f"arch {c['arch']} (4 attention + 4 MLP sublayers, pre-LN, GELU), d_model {c['d_model']}, 4 heads, d_inner "
           f"{c['d_inner']}, T = {c['tgt_len']}, batch {c['batch_size']} ({c['tokens_per_step']:,} tokens per step), "
           f"{c['n_params']:,} parameters; {len(seq)} runs per implementation, alternating.\n",
           "| implementation | step time (s), median [min-max of runs] | tokens/s | peak RSS (MiB) |", "|---|---|---|---|"]
    for name, rows in (("seqlab", seq), ("PyTorch", torch)):
        if rows:
            m = [r["median_s"] for r in rows]
            out.append(f"| {name} | {statistics.median(m):.3f} [{min(m):.3f}-{max(m):.3f}] | "
                       f"{fmt(c['tokens_per_step'] / statistics.median(m))} | {fmt(med(rows, 'peak_rss_mb'))} |")
    if torch:
        out.append(f"\n**seqlab / PyTorch tokens/s: {statistics.median(r['median_s'] for r in torch) / statistics.median(r['median_s'] for r in seq):.1f}x.** ")
    out.append(f"seqlab reaches **{med(seq, 'gflops'):.1f} GFLOP/s: {100 * med(seq, 'peak_fraction'):.0f}% of the sgemm "
               f"peak its own process measured** ({med(seq, 'sgemm_gflops'):.1f} GFLOP/s, medians over runs), "
               f"{share(seq):.0f}% of the highest peak any run measured ({PEAKS[1]:.1f}).\n")
    return out


def scaling_section(runs):
    runs = [r for r in runs if "label" in r]
    if not runs:
        return []
    out = ["## Every mixer against sequence length (seqlab)\n",
           "The 4-layer model above with each mixer, 65,536 tokens per step at every length (batch = 65,536 / T), "
           "`recompute_ffn: true` (the feed-forward's hidden units recomputed in backward; needed for 64K tokens in "
           "4 GiB). Median of 3 timed steps after 1 warm-up. Generation: tokens/s of one-token steps at batch 1 "
           "after a full context of T tokens. softmax stops at 16K: its T^2 cost makes a 64K step take minutes.\n",
           "| mixer | T | tokens/s | forward / backward s | GFLOP/s (% of sgemm) | memory: arena / peak RSS (MiB) | generation tok/s |",
           "|---|---|---|---|---|---|---|"]
    flat = []
    for label in LABELS:
        rows = [r for r in runs if r["label"] == label]
        by_t = {}
        for r in rows:
            by_t.setdefault(r.get("tgt_len"), []).append(r)
        for T in sorted(t for t in by_t if t):
            rs = ok(by_t[T])
            if not rs:
                out.append(f"| {LABELS[label]} | {T:,} | failed | | | | |")
                continue
            out.append(f"| {LABELS[label]} | {T:,} | {fmt(med(rs, 'tok_per_s'))} | {med(rs, 'forward_s'):.2f} / "
                       f"{med(rs, 'backward_s'):.2f} | {med(rs, 'gflops'):.1f} ({share(rs):.0f}%) | "
                       f"{fmt(med(rs, 'arena_mb'))} / {fmt(med(rs, 'peak_rss_mb'))} | {fmt(med(rs, 'gen_tok_per_s'))} |")
        t1k, t64k = ok(by_t.get(1024, [])), ok(by_t.get(65536, []))
        if t1k and t64k:
            flat.append(f"{LABELS[label]}: {med(t1k, 'tok_per_s') / med(t64k, 'tok_per_s'):.2f}x")
    if flat:
        out.append("\ntokens/s at T = 1K divided by tokens/s at T = 64K (1.0 = flat per-token cost): " + "; ".join(flat) + ".\n")
    out.append("![training tokens/s against sequence length](img/scaling_tok_per_s.svg)\n")
    out.append("![peak RSS against sequence length](img/scaling_peak_rss_mb.svg)\n")
    out.append("![generation tokens/s against context length](img/scaling_gen_tok_per_s.svg)\n")
    return out


def torch_section(runs):
    if not runs:
        return []
    out = ["## Every mixer next to PyTorch\n",
           "The same 4-layer model in seqlab and in PyTorch (tests/ref/torch_lm.py with the mixers of "
           "tests/ref/torch_mixers.py: plain torch ops, attention as dense masked T x T products), 16,384 tokens per "
           "step, runs alternating. PyTorch runs with its address space capped at 16 GiB; a cell 'out of memory' is "
           "a run that did not fit. The linear row also shows PyTorch's straightforward cumulative-sum form, which "
           "stores a d x d matrix per token. Each cell is the median over the runs the last column counts "
           "(`RUNS` of bench/compare.sh; fewer where a run was cut short).\n",
           "| mixer | T | seqlab tokens/s | PyTorch tokens/s | seqlab / PyTorch | peak RSS seqlab / PyTorch (MiB) "
           "| runs seqlab / PyTorch |",
           "|---|---|---|---|---|---|---|"]
    lengths = sorted({r["tgt_len"] for r in runs if r.get("tgt_len")})
    for label in LABELS:
        for T in lengths:
            seq = ok([r for r in runs if r.get("label") == (label if label != "linear-cumsum" else "linear")
                      and r.get("impl") == "seqlab" and r.get("tgt_len") == T])
            torch_all = [r for r in runs if r.get("label") == label and r.get("impl") == "pytorch" and r.get("tgt_len") == T]
            torch = ok(torch_all)
            if not seq and not torch_all:
                continue
            s, t = med(seq, "tok_per_s"), med(torch, "tok_per_s")
            tcell = fmt(t) if torch else ("out of memory" if torch_all else "–")
            ratio = f"**{s / t:.1f}x**" if s and t else "–"
            out.append(f"| {LABELS[label]} | {T:,} | {fmt(s)} | {tcell} | {ratio} | {fmt(med(seq, 'peak_rss_mb'))} / "
                       f"{fmt(med(torch, 'peak_rss_mb')) if torch else '–'} | {len(seq)} / {len(torch_all)} |")
    return out


def main():
    lm, scaling, torch = load("lm_softmax.jsonl"), load("mixers_scaling.jsonl"), load("mixers_torch.jsonl")
    set_peak(lm + scaling + torch)
    lines = header(lm + scaling + torch) + lm_section(lm) + scaling_section(scaling) + torch_section(torch)
    lines.append("\n## Reproduce\n")
    lines.append("```sh\nbench/compare.sh lm        # foundation table\nbench/compare.sh scaling   # mixers x lengths, seqlab"
                 "\nbench/compare.sh mixers    # mixers next to PyTorch\n```\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
