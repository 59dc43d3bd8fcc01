"""Writes docs/benchmarks.md from the JSON lines of bench/compare.sh
(bench/results/*.jsonl): the GEMM libraries on seqlab's products, the
foundation table (softmax LM, seqlab fp32 and bf16 vs PyTorch, under both
settings of OPENBLAS_CORETYPE), one-token generation next to PyTorch's
KV-cache loop, the scaling of every mixer with sequence length, and every
mixer next to PyTorch. Each seqlab or PyTorch run reports the median of its
timed steps; a table cell is the median over runs of those medians."""
import datetime
import json
import os
import platform
import statistics
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
LABELS = {"softmax": "softmax", "linear": "linear", "linear-cumsum": "linear (PyTorch cumsum form)",
          "band5": "band, diag_size 5", "band20": "band, diag_size 20", "fmm2k20": "fmm, 2 kernels + band 20",
          "s5": "s5, P 128 (ssm_size 256, conj_sym), half_glu1", "hyena": "hyena, order 2, implicit filter",
          "hyenas5": "hyena-s5, order 2, S5 filter P 128", "softmax_bidir": "softmax, bidirectional",
          "nystrom": "nystrom, 64 landmarks, conv 33 (bidirectional)"}


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
            f"implementations. seqlab built with {version(['gcc', '--version'])}, GEMM backend "
            f"{seq.get('gemm_backend', '?')}; PyTorch {torch.get('torch_version', '–')} from Debian "
            "(python3-torch, on Debian's OpenBLAS). float32 unless a row says bf16; random tokens, vocabulary 256, "
            "dropout 0.\n",
            "A training step is forward (with the loss), backward, gradient clipping and AdamW. GFLOP/s count "
            "6 x parameters x tokens (without the position table, a lookup) plus three times each mixer's forward "
            "token-mixing FLOPs (QK^T and PV for softmax and band, the chunk and state products of linear attention); "
            "the sgemm peak is the median of 7 square 2048 fp32 products through seqlab's backend, measured in every "
            "seqlab process before and after its steps (the higher of the two). On this virtual machine those "
            f"measurements spread from {PEAKS[0]:.1f} to {PEAKS[1]:.1f} GFLOP/s over the runs below (other tenants, "
            f"clock changes); the tables divide by the highest, {PEAKS[1]:.1f}, the strict reading, next to each "
            "process's own. Reproduce everything with `bench/compare.sh` (`make bench`); raw runs are in "
            "`bench/results/`.\n"]


GEMM_WORKLOADS = {"lm_step": "one training step of the LM below (16,384 tokens)",
                  "demo_step": "one training step of the demo (4,096 tokens, d_model 128)",
                  "attention_tiles": "the attention tiles of one LM step (64 x 64 x 64, inside OpenMP loops)",
                  "gen_token": "one generated token of the LM (batch 1: 1-row products)",
                  "square_2048": "one square 2048 product (the peak)"}


def gemm_section(runs):
    if not runs:
        return []
    settings = list(dict.fromkeys(r["openblas_coretype"] or "unset" for r in runs))
    backends = list(dict.fromkeys(r["backend"] for r in runs))
    out = ["## GEMM backend: chosen by measurement\n",
           "`bench/gemm_backends` (bench/gemm_backends.c) runs, in one process, every matrix product seqlab issues "
           "(recorded from the models' training steps) through each library loaded with dlopen: Debian's OpenBLAS "
           "(OpenMP build), BLIS (OpenMP build) and oneDNN (`dnnl_sgemm`), all on the same 2 OpenMP threads. GFLOP/s "
           "of the whole workload, median of 7 passes; the kernel family each library picked in brackets. It runs "
           "once with OPENBLAS_CORETYPE as the machine sets it and once with the other setting.\n",
           "| workload | OPENBLAS_CORETYPE | " + " | ".join(backends) + " |", "|---|---|" + "---|" * len(backends)]
    for w, label in GEMM_WORKLOADS.items():
        for setting in settings:
            cells = []
            for b in backends:
                r = next((r for r in runs if r["workload"] == w and r["backend"] == b
                          and (r["openblas_coretype"] or "unset") == setting), None)
                cells.append(f"{r['gflops']:.1f} ({r['kernels']})" if r else "–")
            out.append(f"| {label} | {setting} | " + " | ".join(cells) + " |")
    best = {}
    for r in runs:
        if r["workload"] == "lm_step":
            best.setdefault(r["backend"], []).append(r["gflops"])
    winner = max(best, key=lambda b: min(best[b])) if best else "?"
    out.append(f"\nFastest on the training step under both settings: **{winner}**, seqlab's default backend "
               "(`make`; `make GEMM=openblas` builds with OpenBLAS).\n")
    return out


def lm_section(runs):
    if not runs:
        return []
    settings = list(dict.fromkeys(r.get("openblas_coretype") or "unset" for r in runs))
    c = next(r for r in runs if r["impl"] == "seqlab")
    out = ["## Foundation: softmax-attention LM\n",
           f"arch {c['arch']} (4 attention + 4 MLP sublayers, pre-LN, GELU), d_model {c['d_model']}, 4 heads, d_inner "
           f"{c['d_inner']}, T = {c['tgt_len']}, batch {c['batch_size']} ({c['tokens_per_step']:,} tokens per step), "
           f"{c['n_params']:,} parameters; runs alternating seqlab fp32, seqlab bf16, PyTorch, under each setting "
           "of OPENBLAS_CORETYPE.\n",
           "| OPENBLAS_CORETYPE | implementation | runs | step time (s), median [min-max of runs] | tokens/s | "
           "GFLOP/s (% of own sgemm peak) | peak RSS (MiB) |",
           "|---|---|---|---|---|---|---|"]
    rates = {}
    for setting in settings:
        here = [r for r in runs if (r.get("openblas_coretype") or "unset") == setting]
        groups = (("seqlab fp32", ok([r for r in here if r["impl"] == "seqlab" and r.get("precision", "fp32") == "fp32"])),
                  ("seqlab bf16", ok([r for r in here if r["impl"] == "seqlab" and r.get("precision") == "bf16"])),
                  ("PyTorch", ok([r for r in here if r["impl"] == "pytorch"])))
        for name, rows in groups:
            if not rows:
                continue
            m = [r["median_s"] for r in rows]
            rates[(setting, name)] = c["tokens_per_step"] / statistics.median(m)
            flops = (f"{med(rows, 'gflops'):.1f} ({100 * med(rows, 'peak_fraction'):.0f}%)"
                     if name.startswith("seqlab") else "–")
            out.append(f"| {setting} | {name} | {len(rows)} | {statistics.median(m):.3f} [{min(m):.3f}-{max(m):.3f}] | "
                       f"{fmt(rates[(setting, name)])} | {flops} | {fmt(med(rows, 'peak_rss_mb'))} |")
    out.append("")
    for setting in settings:
        s32, s16, t = (rates.get((setting, n)) for n in ("seqlab fp32", "seqlab bf16", "PyTorch"))
        parts = []
        if s32 and t:
            parts.append(f"seqlab fp32 / PyTorch **{s32 / t:.1f}x**")
        if s16 and t:
            parts.append(f"seqlab bf16 / PyTorch **{s16 / t:.1f}x**")
        if s16 and s32:
            parts.append(f"bf16 / fp32 **{s16 / s32:.2f}x**")
        if parts:
            out.append(f"- OPENBLAS_CORETYPE {setting}: " + "; ".join(parts) + ".")
    if len(settings) == 2 and all((st, "seqlab fp32") in rates for st in settings):
        a, b = (rates[(st, "seqlab fp32")] for st in settings)
        out.append(f"- seqlab fp32 tokens/s, {settings[0]} / {settings[1]}: {a / b:.3f} (the variable reaches "
                   "OpenBLAS only, which seqlab no longer uses).")
    out.append("")
    return out


GEN_MIXERS = ["softmax", "linear", "mega", "seqboat"]


def gen_section(runs):
    if not runs:
        return []
    ours = [r for r in runs if r["impl"] == "seqlab" and not r.get("failed")]
    precisions = [p for p in ("fp32", "bf16") if any(r.get("precision") == p for r in ours)]
    columns = [(m, p) for m in GEN_MIXERS for p in precisions if any(r["mixer"] == m for r in ours)]
    out = ["## Generation at batch 1\n",
           "The LM above after a context of T tokens: seqlab's one-token steps (softmax with its K/V cache, linear "
           "attention with its O(1) state, MEGA and SeqBoat with the EMA state and the keys of the running chunk or "
           "window of 256; `seqlab bench --gen_tokens 512`), with the weights read as fp32 or, under `precision: bf16`, "
           "from a bf16 copy, and PyTorch's KV-cache loop in plain torch ops under no_grad "
           "(bench/torch/gen_bench.py), 512 new tokens, median of the runs.\n",
           "| context T | " + " | ".join(f"seqlab {m} {p}" for m, p in columns)
           + " | PyTorch KV-cache loop | seqlab softmax fp32 / PyTorch |",
           "|---|" + "---|" * len(columns) + "---|---|"]
    for T in sorted({r.get("tgt_len") or r.get("context") for r in runs}):
        cells = [med([r for r in ours if r["mixer"] == m and r.get("precision", "fp32") == p and r["tgt_len"] == T],
                     "gen_tok_per_s") for m, p in columns]
        t = med([r for r in runs if r["impl"] == "pytorch" and r["context"] == T], "gen_tok_per_s")
        s = cells[columns.index(("softmax", "fp32"))] if ("softmax", "fp32") in columns else None
        out.append(f"| {T:,} | " + " | ".join(fmt(c) for c in cells)
                   + f" | {fmt(t)} | {f'**{s / t:.1f}x**' if s and t else '–'} |")
    out.append("")
    return out


def moe_section(runs):
    if not runs:
        return []
    g = [r for r in runs if r.get("part") == "gemm"]
    moe = [r for r in runs if r.get("label") == "moe16top2"]
    dense = [r for r in runs if r.get("label") == "dense512"]
    out = ["## Mixture of experts\n",
           "The enwik8_smoe shapes of the Brainformer seed: d_model 256, experts of 256, 16 experts, top 2, 16,384 "
           "tokens per forward (`bench/moe_gemm`: the module's forward + backward, then the same expert GEMMs alone at "
           "the row counts its gate chose, against the in-process sgemm peak), and a 4-layer model (softmax attention, "
           "T = 512, 16,384 tokens per step) with a MoE in every layer next to the dense model with the same active "
           "parameters (an MLP of 512). Median of the runs.\n"]
    if g:
        out += ["| expert GEMMs GFLOP/s | sgemm peak | fraction of peak | GEMMs' share of the MoE's time | MoE forward + backward s |",
                "|---|---|---|---|---|",
                f"| {med(g, 'expert_gemm_gflops'):.1f} | {med(g, 'sgemm_peak_gflops'):.1f} | "
                f"**{100 * med(g, 'gemm_fraction_of_peak'):.0f}%** | {100 * med(g, 'gemm_share_of_moe'):.0f}% | "
                f"{med(g, 'moe_fwd_bwd_s'):.3f} |", ""]
    if moe and dense:
        m, d = med(moe, "tok_per_s"), med(dense, "tok_per_s")
        out += ["| model | parameters | tokens/s | memory: arena / peak RSS (MiB) | KiB of arena per token |",
                "|---|---|---|---|---|"]
        for label, rows in (("16 experts, top 2 (sgsgsgsg)", moe), ("dense MLP 512 (sfsfsfsf)", dense)):
            out.append(f"| {label} | {rows[0]['n_params']:,} | {fmt(med(rows, 'tok_per_s'))} | "
                       f"{fmt(med(rows, 'arena_mb'))} / {fmt(med(rows, 'peak_rss_mb'))} | "
                       f"{med(rows, 'arena_mb') * 1024 / rows[0]['tokens_per_step']:.1f} |")
        out.append(f"\nMoE / dense tokens/s: **{m / d:.2f}x**.\n")
    return out


def span_section(runs):
    if not runs:
        return []
    out = ["## Adaptive-span attention: the trimming pays\n",
           "S = 2048, blocks of 512, 16 rows, 2 layers of d_model 256 (8 heads) with an MLP of 1024, at the initial "
           "spans z of every head; the distances computed after the trimming in steps of 64 (spec moe-brainformer.md "
           "§3.3), and without the adaptive span (all 2048, no mask). Median of the runs.\n",
           "| spans z | distances computed | tokens/s | step s |", "|---|---|---|---|"]
    computed = {"0": 64, "0.25": 576, "0.5": 1088, "1": 2048, "off": 2048}
    for z in ("0", "0.25", "0.5", "1", "off"):
        rows = [r for r in runs if str(r.get("span_init")) == z]
        if rows:
            label = "no adaptive span" if z == "off" else z
            out.append(f"| {label} | {computed[z]:,} | {fmt(med(rows, 'tok_per_s'))} | {med(rows, 'median_s'):.2f} |")
    out.append("")
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
                       f"{fmt(med(rs, 'arena_mb'))} / {fmt(med(rs, 'peak_rss_mb'))} | {fmt(med(rs, 'gen_tok_per_s') or None)} |")
        t1k, t64k = ok(by_t.get(1024, [])), ok(by_t.get(65536, []))
        if t1k and t64k:
            flat.append(f"{LABELS[label]}: {med(t1k, 'tok_per_s') / med(t64k, 'tok_per_s'):.2f}x")
    if flat:
        out.append("\ntokens/s at T = 1K divided by tokens/s at T = 64K (1.0 = flat per-token cost): " + "; ".join(flat) + ".\n")
    out.append("![training tokens/s against sequence length](img/scaling_tok_per_s.svg)\n")
    out.append("![peak RSS against sequence length](img/scaling_peak_rss_mb.svg)\n")
    out.append("![generation tokens/s against context length](img/scaling_gen_tok_per_s.svg)\n")
    return out


# Rows written before compare.sh recorded the CPU ran on the machine of 2026-12-02.
EARLIER_CPU = "AMD EPYC (2026-12-02)"


def cpu_of(row):
    return row.get("cpu", EARLIER_CPU)


def torch_section(runs):
    if not runs:
        return []
    cpus = sorted({cpu_of(r) for r in runs})
    mixed = len(cpus) > 1
    out = ["## Every mixer next to PyTorch\n",
           "The same 4-layer model in seqlab and in PyTorch (tests/ref/torch_lm.py with the mixers of "
           "tests/ref/torch_mixers.py: plain torch ops, attention as dense masked T x T products; s5, hyena and hyena-s5 "
           "from tests/ref/torch_ssm.py with their long convolutions and S5's recurrence as torch.fft products of "
           "length 2T, the fast form a PyTorch user would write, bench/torch/lm_bench.py), 16,384 tokens per "
           "step, runs alternating. PyTorch runs with its address space capped at 16 GiB; a cell 'out of memory' is "
           "a run that did not fit. The linear row also shows PyTorch's straightforward cumulative-sum form, which "
           "stores a d x d matrix per token. Each cell is the median over the runs the last column counts "
           "(`RUNS` of bench/compare.sh; fewer where a run was cut short)."
           + (" The rows were measured on different machines (last column): compare a seqlab / PyTorch ratio "
              "within its row, not tokens/s across machines." if mixed else "") + "\n",
           "| mixer | T | seqlab tokens/s | PyTorch tokens/s | seqlab / PyTorch | peak RSS seqlab / PyTorch (MiB) "
           "| runs seqlab / PyTorch |" + (" machine |" if mixed else ""),
           "|---|---|---|---|---|---|---|" + ("---|" if mixed else "")]
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
            where = ", ".join(sorted({cpu_of(r) for r in seq + torch_all}))
            out.append(f"| {LABELS[label]} | {T:,} | {fmt(s)} | {tcell} | {ratio} | {fmt(med(seq, 'peak_rss_mb'))} / "
                       f"{fmt(med(torch, 'peak_rss_mb')) if torch else '–'} | {len(seq)} / {len(torch_all)} |"
                       + (f" {where} |" if mixed else ""))
    return out


def main():
    gemm, lm, gen = load("gemm_backends.jsonl"), load("lm_softmax.jsonl"), load("generation.jsonl")
    scaling, torch = load("mixers_scaling.jsonl"), load("mixers_torch.jsonl")
    moe, span = load("moe.jsonl"), load("adaptive_span.jsonl")
    here = lm + scaling + [r for r in torch if "cpu" in r]  # the older mixers rows ran on another machine
    set_peak(here)
    lines = (header(here) + gemm_section(gemm) + lm_section(lm) + gen_section(gen)
             + scaling_section(scaling) + torch_section(torch) + moe_section(moe) + span_section(span))
    lines.append("\n## Reproduce\n")
    lines.append("```sh\nbench/compare.sh gemm       # GEMM libraries, both OPENBLAS_CORETYPE settings"
                 "\nbench/compare.sh lm         # foundation table, fp32 and bf16, both settings"
                 "\nbench/compare.sh gen        # generation next to PyTorch"
                 "\nbench/compare.sh scaling    # mixers x lengths, seqlab"
                 "\nbench/compare.sh mixers     # mixers next to PyTorch"
                 "\nbench/compare.sh moe        # mixture of experts: GEMMs vs peak, MoE vs dense"
                 "\nbench/compare.sh span       # adaptive-span attention against its spans\n```\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
