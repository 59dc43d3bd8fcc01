"""What the original-code checks (tests/ref/*_check.py) read of a seqlab run directory, and
`seqlab eval` on exactly one batch: the run's config, its checkpoint, seqlab's loss."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile


def run_config(run):
    """The run's resolved config (run/config.yaml: `key: value` lines, module keys dotted: mixer.z_dim)."""
    cfg = {}
    with open(os.path.join(run, "config.yaml")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if ":" in line:
                key, value = line.split(":", 1)
                cfg[key.strip()] = value.strip().strip('"')
    return cfg


def checkpoint_path(run, step):
    """ckpt-<step>.safetensors of the run, or its latest checkpoint when step is None."""
    if step is not None:
        p = os.path.join(run, f"ckpt-{step}.safetensors")
        if not os.path.isfile(p):
            sys.exit(f"no {p}")
        return p
    ck = glob.glob(os.path.join(run, "ckpt-*.safetensors"))
    if not ck:
        sys.exit(f"no ckpt-*.safetensors in {run}")
    return max(ck, key=lambda p: int(re.search(r"ckpt-(\d+)\.safetensors$", p).group(1)))


def eval_text_loss(seqlab, run, ckpt, text_file, data, B, T, tokens, extra=()):
    """`seqlab eval` of checkpoint ckpt (a copy of the run holding only it) on the text `data` (bytes or
    str) as the test split, B rows of T, with the flags `extra`; its mean loss (metrics.jsonl, 17
    digits), after checking that it scored `tokens` tokens."""
    with tempfile.TemporaryDirectory(prefix="seqlab_run.") as tmp:
        rd = os.path.join(tmp, "run")
        os.mkdir(rd)
        for f in ("config.yaml", "vocab.json"):
            shutil.copy(os.path.join(run, f), rd)
        shutil.copy(ckpt, rd)                    # the only checkpoint there: the one checked
        bf = os.path.join(tmp, "batch.txt")
        with open(bf, "wb") as fh:
            fh.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        cmd = [seqlab, "eval", "--run", rd, "--split", "test", "--dataset", "text", *extra,
               "--train_file", os.path.abspath(text_file), "--valid_file", bf, "--test_file", bf,
               "--eval_batch_size", str(B), "--eval_tgt_len", str(T), "--eval_stride", "0",
               "--eval_max_batches", "0", "--threads", "1"]
        print("$ " + " ".join(cmd))
        r = subprocess.run(cmd, capture_output=True, text=True)
        sys.stdout.write(r.stdout + r.stderr)
        if r.returncode != 0:
            sys.exit(f"seqlab eval failed ({r.returncode})")
        last = None
        with open(os.path.join(rd, "metrics.jsonl")) as fh:
            for line in fh:
                rec = json.loads(line)
                if rec.get("kind") == "eval" and rec.get("split") == "test":
                    last = rec
        if last is None or last.get("tokens") != tokens:
            sys.exit(f"seqlab eval did not score {tokens} tokens: {last}")
        return float(last["loss"])
