"""Turns the JSON lines of bench/compare.sh into docs/benchmarks.md.

Each run is summarised by its median step time; the table gives, per
implementation, the median (and min/max) over runs of those medians.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import datetime


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}"


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def main(path):
    runs = [json.loads(line) for line in open(path) if line.strip()]
    by_impl = {}
    for r in runs:
        by_impl.setdefault(r["impl"], []).append(r)
    seq, torch = by_impl["seqlab"], by_impl.get("pytorch", [])
    tokens = seq[0]["tokens_per_step"]

    def summary(rs):
        med = [r["median_s"] for r in rs]
        m = statistics.median(med)
        return m, min(med), max(med), tokens / m, statistics.median(r["peak_rss_mb"] for r in rs)

    s = summary(seq)
    t = summary(torch) if torch else None
    gflops = statistics.median(r["gflops"] for r in seq)
    peak = statistics.median(r["sgemm_gflops"] for r in seq)
    c = seq[0]
    out = []
    out.append("# Benchmarks\n")
    out.append(f"Measured {datetime.date.today().isoformat()} on {machine()}; "
               f"{c['threads']} threads for both implementations. seqlab built with gcc "
               f"({version(['gcc', '--version'])}), OpenBLAS (OpenMP build, {c.get('blas_core', '?')} kernels"
               f"{', as OPENBLAS_CORETYPE in the environment chose' if os.environ.get('OPENBLAS_CORETYPE') else ''}); PyTorch {torch[0]['torch_version'] if torch else '-'} "
               "from Debian (python3-torch, which links the same OpenBLAS).\n")
    out.append("## Training step: softmax-attention LM\n")
    out.append(f"vocab {c['vocab']}, arch {c['arch']} (4 attention + 4 MLP sublayers, pre-LN), d_model {c['d_model']}, "
               f"{c['n_head']} heads, d_inner {c['d_inner']}, T = {c['tgt_len']}, batch {c['batch_size']} "
               f"({tokens} tokens per step), {c['n_params']:,} parameters. A step is forward, backward, "
               "gradient clipping and AdamW; random tokens, dropout 0.\n")
    out.append(f"{len(seq)} runs per implementation, alternating; each run times {len(c['step_seconds'])} steps "
               "after warm-up and reports its median; the table shows the median over runs (min-max in brackets).\n")
    out.append("| implementation | step time (s) | tokens/s | peak RSS (MiB) |")
    out.append("|---|---|---|---|")
    out.append(f"| seqlab | {s[0]:.3f} [{s[1]:.3f}-{s[2]:.3f}] | {s[3]:,.0f} | {s[4]:,.0f} |")
    if t:
        out.append(f"| PyTorch | {t[0]:.3f} [{t[1]:.3f}-{t[2]:.3f}] | {t[3]:,.0f} | {t[4]:,.0f} |")
        out.append(f"\n**seqlab / PyTorch tokens/s: {s[3] / t[3]:.1f}x.**\n")
    out.append(f"seqlab achieves **{gflops:.1f} GFLOP/s = {100 * gflops / peak:.0f}% of the machine's sgemm peak** "
               f"({peak:.1f} GFLOP/s, median of 7 square 2048 sgemm calls measured in the same run). "
               "FLOPs per step: 6 x parameters x tokens plus attention (4 B T^2 H d per layer in forward for "
               "QK^T and PV, halved for causal, x3 for forward + backward).\n")
    out.append("Reproduce: `make bench` (runs `bench/compare.sh`; `RUNS=5 bench/compare.sh` for more runs). "
               "Raw runs: `bench/results/lm_softmax.jsonl`.\n")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
