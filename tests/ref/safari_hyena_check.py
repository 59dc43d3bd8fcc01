"""Loads a seqlab Hyena LM checkpoint into the ORIGINAL safari code and compares the loss.

    git clone https://github.com/HazyResearch/safari /path/to/safari     # once
    ./seqlab train CONFIG.yaml --out /tmp/hy_run                          # a Hyena LM (below)
    /usr/bin/python3 tests/ref/safari_hyena_check.py --safari /path/to/safari --run /tmp/hy_run
    # options: --text FILE --offset N --batch B --tgt_len T --seqlab ./seqlab | --seqlab_loss X

A CONFIG.yaml for a small model (about a second of training on one thread):

    task: lm
    dataset: shakespeare
    tokenizer: char
    d_model: 32
    n_layer: 2
    d_inner: 128
    norm: pre
    pos: none
    tie_weight: true
    activation: gelu_tanh
    dropout: 0
    embed_dropout: 0
    tgt_len: 128
    max_len: 128
    batch_size: 4
    max_step: 300
    lr: 0.003
    warmup_step: 20
    eval_interval: 300
    log_interval: 100
    init: gpt2
    threads: 1
    mixer: {name: hyena, order: 2, filter_order: 16, short_filter_order: 3, filter_bias: true}

Measured with safari at commit 02220c6 (2023): relative loss difference 3.4e-9 to seqlab
(safari in float64), 4.0e-9 (float32); see tests/ref/README.md.

The model is built by safari itself: `src.models.sequence.simple_lm.SimpleLMHeadModel`
(registry name `lm_simple`, the shell of safari's associative-recall Hyena runs) whose
mixer is `src.models.sequence.hyena.HyenaOperator` with `HyenaFilter`, instantiated
through safari's own registry (`src.utils.config.instantiate`). Nothing of the Hyena
math is re-implemented here: this script only maps parameter names, loads the
checkpoint's tensors into safari's modules, builds a batch and takes the mean token
cross-entropy of safari's logits (`F.cross_entropy` over the flattened logits, which is
all of safari's `src.tasks.metrics.cross_entropy`; that module is not imported because
it pulls in scikit-learn and torchmetrics).

CUDA-only kernels: none is replaced, because none is on the path. `HyenaFilter` calls
the CUDA extension (`fftconv_func` from csrc/fftconv) only with `fused_fft_conv=True`;
the default (and configs/model/layer/hyena-filter.yaml, and the associative-recall
runs) is False, which runs safari's own torch `fftconv_ref` (rfft of length 2L). The
import of the extension is in a try/except in hyena.py, so it may be absent.

Packages safari imports that this machine may lack are stubbed ONLY IF their import
fails (a real install always wins; the script prints what it stubbed):
  einops           rearrange is a layout utility used in HyenaOperator.forward (reshape /
                   permute); the stub is an exact reshape-permute-reshape for the patterns
                   without '...'; repeat / reduce (imported by unrelated modules) raise.
  opt_einsum       imported by src/models/nn/components.py for unrelated layers; raises.
  hydra            src/utils/config.py's instantiate resolves registry paths with
                   hydra.utils.get_method: the stub imports the module and takes the attr.
  omegaconf, rich  imported at module level by src/utils/{config,train}.py; unused here.
  pytorch_lightning  src/utils/train.py imports rank_zero_only (a decorator): identity.
  torchvision      simple_lm.Block uses torchvision.ops.StochasticDepth(p=0): the stub is
                   the identity, which is what torchvision does for p == 0 or in eval.

The batch: B rows of T+1 consecutive characters of --text (default the tiny-shakespeare
file under ../shared/data; default offset: the last B*(T+1) characters, which lie in
seqlab's test split), inputs the first T, targets the last T of each row. seqlab scores
exactly these windows when the same characters are its test file with eval_batch_size B
and eval_tgt_len T (Transformer-XL batching: B rows of T+1 tokens, one window each):
the script copies the run (config, vocabulary, newest checkpoint) to a temporary
directory and runs
    seqlab eval --run TMP --split test --dataset text --train_file TEXT
                --valid_file BATCH --test_file BATCH --eval_batch_size B --eval_tgt_len T
and reads the loss from TMP/metrics.jsonl (full precision). --seqlab_loss X skips that.

safari is run in float64 (model built with torch's default dtype float64, so its constant
positional features, time grid and decay rates are computed in float64 too) and in float32.

Supported seqlab models: task lm, char (or byte) tokenizer, arch "sf" * n_layer, pre-LN,
pos none, tied embedding, no head bias, no adaptive softmax, ffn mlp with gelu_tanh
(safari's SimpleLMHeadModel hard-wires the tanh GELU), mixer hyena with the implicit
filter, heads 1; T <= l_max (safari cuts longer inputs to l_max).
"""

import argparse
import glob
import json
import math
import os
import re
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(1, HERE)
import safetensors_io  # noqa: E402
import seqlab_run  # noqa: E402

STUBBED = []


# --------------------------------------------------------------------------------------
# Minimal stand-ins for packages safari imports, installed only when the import fails.
# --------------------------------------------------------------------------------------

def _einops_parse(side):
    """'b (ho v) (z l) 1' -> [['b'], ['ho', 'v'], ['z', 'l'], []] ('1' = a unit axis)."""
    if "..." in side:
        raise NotImplementedError("einops stub: '...' is not supported")
    groups, cur = [], None
    for tok in re.findall(r"\(|\)|[A-Za-z_][A-Za-z0-9_]*|\d+", side):
        if tok == "(":
            cur = []
        elif tok == ")":
            groups.append(cur)
            cur = None
        elif tok.isdigit():
            if tok != "1":
                raise NotImplementedError("einops stub: only the literal 1 is supported")
            if cur is None:
                groups.append([])
        elif cur is not None:
            cur.append(tok)
        else:
            groups.append([tok])
    return groups


def _einops_rearrange(tensor, pattern, **axes_lengths):
    left, right = (s.strip() for s in pattern.split("->"))
    lg, rg = _einops_parse(left), _einops_parse(right)
    if len(lg) != tensor.dim():
        raise ValueError(f"einops stub: pattern {pattern!r} for a {tensor.dim()}-d tensor")
    sizes = dict(axes_lengths)
    for g, n in zip(lg, tensor.shape):
        unknown = [a for a in g if a not in sizes]
        known = math.prod(sizes[a] for a in g if a in sizes)
        if len(unknown) > 1:
            raise ValueError(f"einops stub: cannot infer {unknown} in {pattern!r}")
        if unknown:
            if n % known:
                raise ValueError(f"einops stub: {n} not divisible by {known} in {pattern!r}")
            sizes[unknown[0]] = n // known
        elif known != n:
            raise ValueError(f"einops stub: shape {tuple(tensor.shape)} does not match {pattern!r}")
    lnames = [a for g in lg for a in g]
    rnames = [a for g in rg for a in g]
    if sorted(lnames) != sorted(rnames) or len(set(lnames)) != len(lnames):
        raise ValueError(f"einops stub: axes differ in {pattern!r}")
    x = tensor.reshape([sizes[a] for a in lnames])
    x = x.permute([lnames.index(a) for a in rnames])
    return x.reshape([math.prod(sizes[a] for a in g) for g in rg])


def _unavailable(name):
    def f(*args, **kwargs):
        raise NotImplementedError(f"{name} is a stub in safari_hyena_check.py (package missing)")
    return f


def _stub_module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    m.__stub__ = True
    sys.modules[name] = m
    return m


def install_stubs_if_missing():
    try:
        import einops  # noqa: F401
    except ImportError:
        # layout utility only: reshape / permute, exact
        _stub_module("einops", rearrange=_einops_rearrange, repeat=_unavailable("einops.repeat"),
                     reduce=_unavailable("einops.reduce"))
        STUBBED.append("einops")
    try:
        import opt_einsum  # noqa: F401
    except ImportError:
        # imported by src/models/nn/components.py for layers not used here
        _stub_module("opt_einsum", contract=_unavailable("opt_einsum.contract"))
        STUBBED.append("opt_einsum")
    try:
        import hydra  # noqa: F401
        import hydra.utils  # noqa: F401
    except ImportError:
        import importlib

        def locate(path):
            # what hydra.utils.get_method / get_class do: import the module, take the attribute
            mod, _, attr = path.rpartition(".")
            return getattr(importlib.import_module(mod), attr)

        utils = _stub_module("hydra.utils", get_method=lambda path: locate(path),
                             get_class=lambda path: locate(path))
        _stub_module("hydra", utils=utils)
        STUBBED.append("hydra")
    try:
        import omegaconf  # noqa: F401
    except ImportError:
        # src/utils/config.py imports ListConfig, DictConfig; only used for Hydra configs
        class _Cfg(dict):
            pass
        _stub_module("omegaconf", DictConfig=_Cfg, ListConfig=list, OmegaConf=_Cfg)
        STUBBED.append("omegaconf")
    try:
        import rich.syntax  # noqa: F401
        import rich.tree  # noqa: F401
    except ImportError:
        # src/utils/train.py prints configs with rich; unused here
        syn, tree = _stub_module("rich.syntax"), _stub_module("rich.tree")
        _stub_module("rich", syntax=syn, tree=tree)
        STUBBED.append("rich")
    try:
        import pytorch_lightning  # noqa: F401
        from pytorch_lightning.utilities import rank_zero_only  # noqa: F401
    except ImportError:
        # src/utils/train.py decorates logging helpers with rank_zero_only; identity here
        ut = _stub_module("pytorch_lightning.utilities", rank_zero_only=lambda fn: fn)
        _stub_module("pytorch_lightning", utilities=ut)
        STUBBED.append("pytorch_lightning")
    try:
        from torchvision.ops import StochasticDepth  # noqa: F401
    except ImportError:
        class StochasticDepth(torch.nn.Module):
            """torchvision.ops.StochasticDepth for p == 0 (or eval): the identity."""

            def __init__(self, p, mode):
                super().__init__()
                self.p, self.mode = p, mode

            def forward(self, x):
                if self.training and self.p != 0.0:
                    raise NotImplementedError("StochasticDepth stub: p > 0 in training")
                return x
        ops = _stub_module("torchvision.ops", StochasticDepth=StochasticDepth)
        _stub_module("torchvision", ops=ops)
        STUBBED.append("torchvision")


def import_safari(safari_dir):
    safari_dir = os.path.abspath(safari_dir)
    if not os.path.isfile(os.path.join(safari_dir, "src", "models", "sequence", "hyena.py")):
        sys.exit(f"--safari {safari_dir}: no src/models/sequence/hyena.py there")
    if "src" in sys.modules:
        sys.exit("a module named 'src' is already imported")
    sys.path.insert(0, safari_dir)
    install_stubs_if_missing()
    import src.models.sequence.hyena as hyena
    import src.models.sequence.simple_lm as simple_lm
    import src.utils.registry as registry
    for mod in (hyena, simple_lm, registry):
        if not os.path.abspath(mod.__file__).startswith(safari_dir + os.sep):
            sys.exit(f"{mod.__name__} was imported from {mod.__file__}, not from {safari_dir}")
    return hyena, simple_lm


# --------------------------------------------------------------------------------------
# seqlab run: config, vocabulary, checkpoint
# --------------------------------------------------------------------------------------

def read_config(path):
    """seqlab's resolved config.yaml: flat `key: value` lines (values may be quoted)."""
    cfg = {}
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        k, v = line.split(":", 1)
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] == '"':
            v = v[1:-1]
        cfg[k.strip()] = v
    return cfg


def newest_checkpoint(run):
    ck = glob.glob(os.path.join(run, "ckpt-*.safetensors"))
    if not ck:
        sys.exit(f"no ckpt-*.safetensors in {run}")
    return max(ck, key=lambda p: int(re.search(r"ckpt-(\d+)\.safetensors$", p).group(1)))


MIXER_DEFAULTS = {  # seqlab train --help, mixer 'hyena'
    "order": "2", "short_filter_order": "3", "drop_rate": "0", "filter.name": "implicit",
    "filter_order": "64", "emb_dim": "5", "num_inner_mlps": "2", "w": "10", "filter_bias": "true",
    "modulate": "true", "fast_decay_pct": "0.3", "slow_decay_pct": "1.5", "target": "0.01",
    "shift": "0", "l_max": "0",
}


def model_settings(cfg):
    def need(key, want):
        if cfg.get(key) != want:
            sys.exit(f"unsupported for this check: {key} = {cfg.get(key)!r} (need {want!r})")
    need("task", "lm")
    n_layer = int(cfg["n_layer"])
    need("arch", "sf" * n_layer)
    for key, want in (("norm", "pre"), ("pos", "none"), ("tie_weight", "true"), ("mixer", "hyena"),
                      ("ffn", "mlp"), ("activation", "gelu_tanh"), ("emb_scale", "none"),
                      ("encoder", "tokens"), ("causal", "true"), ("adaptive_softmax", "false"),
                      ("head_bias", "false"), ("mem_len", "0")):
        need(key, want)
    if cfg.get("arch_grammar", "plain") != "plain":
        sys.exit("unsupported: arch_grammar")
    if any(k.startswith("blocks.") or k.startswith("residual.") or k.startswith("ffn.")
           for k in cfg):
        sys.exit("unsupported: per-block / residual / ffn sections in the config")
    mx = {k: cfg.get("mixer." + k, v) for k, v in MIXER_DEFAULTS.items()}
    if mx["filter.name"] != "implicit":
        sys.exit("unsupported: mixer.filter.name must be implicit")
    d_model = int(cfg["d_model"])
    d_inner = int(cfg["d_inner"]) or 4 * d_model
    max_len = int(cfg["max_len"]) or int(cfg["tgt_len"])
    l_max = int(mx["l_max"]) or max_len
    return dict(n_layer=n_layer, d_model=d_model, d_inner=d_inner, l_max=l_max, mixer=mx)


# --------------------------------------------------------------------------------------
# safari model and the parameter map
# --------------------------------------------------------------------------------------

def build_safari(simple_lm, s, vocab_size, dtype):
    mx = s["mixer"]
    layer = {
        "_name_": "hyena",                      # registry.layer -> HyenaOperator
        "l_max": s["l_max"],
        "order": int(mx["order"]),
        "filter_order": int(mx["filter_order"]),
        "num_heads": 1, "inner_factor": 1, "num_blocks": 1,
        "outer_mixing": False, "post_order_ffn": False, "jit_filter": False,
        "activation": "id",
        "dropout": float(mx["drop_rate"]),      # HyenaOperator.dropout on v * x_i
        "filter_dropout": 0.0,
        "short_filter_order": max(int(mx["short_filter_order"]), 1),
        "filter_cls": "hyena-filter",
        # filter_args -> HyenaFilter (and its **kwargs -> ExponentialModulation)
        "emb_dim": int(mx["emb_dim"]),
        "w": float(mx["w"]),
        "num_inner_mlps": int(mx["num_inner_mlps"]),
        "bias": mx["filter_bias"] == "true",
        "fused_fft_conv": False,
        "normalized": False,
        "modulate": mx["modulate"] == "true",
        "fast_decay_pct": float(mx["fast_decay_pct"]),
        "slow_decay_pct": float(mx["slow_decay_pct"]),
        "target": float(mx["target"]),
        "shift": float(mx["shift"]),
    }
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)   # safari's buffers (z, t, deltas) are built in the default dtype
    try:
        torch.manual_seed(0)
        model = simple_lm.SimpleLMHeadModel(
            d_model=s["d_model"], n_layer=s["n_layer"], d_inner=s["d_inner"], vocab_size=vocab_size,
            layer=layer, max_position_embeddings=0, resid_dropout=0.0, embed_dropout=0.0,
            layer_norm_epsilon=1e-5, pad_vocab_size_multiple=1)
    finally:
        torch.set_default_dtype(old)
    return model.to(dtype).eval()


def load_seqlab_into_safari(model, ckpt, s):
    """Copies the checkpoint's parameters into safari's state dict; returns notes."""
    K = int(s["mixer"]["short_filter_order"])
    n_inner = int(s["mixer"]["num_inner_mlps"])
    sd = model.state_dict()
    used, new, notes = set(), {}, []

    def put(dst, src, value=None):
        v = ckpt[src] if value is None else value
        if dst not in sd:
            raise KeyError(f"safari has no {dst}")
        if tuple(sd[dst].shape) != tuple(v.shape):
            raise ValueError(f"{src} {tuple(v.shape)} -> {dst} {tuple(sd[dst].shape)}")
        new[dst] = torch.from_numpy(np.asarray(v, dtype=np.float64)).to(sd[dst].dtype)
        if src is not None:
            used.add(src)

    put("backbone.embeddings.word_embeddings.weight", "embed.weight")
    for i in range(s["n_layer"]):
        sm, sf = f"blocks.{2 * i}.", f"blocks.{2 * i + 1}."
        L = f"backbone.layers.{i}."
        for p in ("weight", "bias"):
            put(L + "norm1." + p, sm + "norm." + p)
            put(L + "norm2." + p, sf + "norm." + p)
            put(L + "mlp.fc1." + p, sf + "ffn.fc1." + p)
            put(L + "mlp.fc2." + p, sf + "ffn.fc2." + p)
            put(L + "mixer.in_proj." + p, sm + "mixer.in_proj." + p)
            put(L + "mixer.out_proj." + p, sm + "mixer.out_proj." + p)
        if K > 0:
            put(L + "mixer.short_filter.weight", sm + "mixer.short_filter.conv.weight")
            put(L + "mixer.short_filter.bias", sm + "mixer.short_filter.conv.bias")
        else:
            # seqlab without short convolution: safari always has one; a unit tap is the identity
            w = np.zeros(tuple(sd[L + "mixer.short_filter.weight"].shape))
            w[:, :, -1] = 1.0
            put(L + "mixer.short_filter.weight", None, w)
            put(L + "mixer.short_filter.bias", None, np.zeros(w.shape[0]))
            if i == 0:
                notes.append("short_filter_order 0: safari's Conv1d set to the identity tap")
        # implicit filter: seqlab's Linear layers 0..n_inner+1 are safari's Sequential
        # entries 0, 2, 4, ... (the odd entries are the Sin activation module)
        F_ = L + "mixer.filter_fn."
        for j in range(n_inner + 2):
            put(F_ + f"implicit_filter.{2 * j}.weight", sm + f"mixer.implicit_filter.{j}.weight")
            if j < n_inner + 1:
                put(F_ + f"implicit_filter.{2 * j}.bias", sm + f"mixer.implicit_filter.{j}.bias")
        sins = [m for m in model.backbone.layers[i].mixer.filter_fn.implicit_filter
                if type(m).__name__ == "Sin"]
        shared = all(m is sins[0] for m in sins)
        if i == 0:
            notes.append(f"safari's implicit_filter has {len(sins)} Sin entries; "
                         + ("they are ONE module (one shared freq)" if shared
                            else "they are separate modules (one freq each)"))
        for j in range(1, 2 * (n_inner + 1), 2):
            # each Sin entry's key; when shared these alias one tensor and get the same value
            put(F_ + f"implicit_filter.{j}.freq", sm + "mixer.implicit_filter.freq")
        if s["mixer"]["filter_bias"] == "true":
            put(F_ + "bias", sm + "mixer.filter_bias")
        else:
            # safari keeps the parameter and multiplies it by 0 (use_bias False)
            put(F_ + "bias", None, np.zeros(tuple(sd[F_ + "bias"].shape)))
    put("backbone.ln_f.weight", "norm_f.weight")
    put("backbone.ln_f.bias", "norm_f.bias")
    new["lm_head.weight"] = new["backbone.embeddings.word_embeddings.weight"]

    params = [k for k in ckpt if not k.startswith(("optim.", "train."))]
    unused = sorted(set(params) - used)
    if unused:
        raise ValueError(f"checkpoint parameters not mapped: {unused}")
    # what stays safari's own: the constant positional features z, time t, decay rates
    kept = sorted(set(sd) - set(new))
    for k in kept:
        if not re.search(r"filter_fn\.(pos_emb\.z|pos_emb\.t|modulation\.deltas)$", k):
            raise ValueError(f"safari tensor {k} has no seqlab counterpart")
    sd.update(new)
    model.load_state_dict(sd, strict=True)
    if model.lm_head.weight is not model.backbone.embeddings.word_embeddings.weight:
        raise ValueError("lm_head is not tied")
    return notes, kept


# --------------------------------------------------------------------------------------
# batch, loss, seqlab
# --------------------------------------------------------------------------------------

def tokenize(text, vocab):
    if vocab["type"] == "char":
        index = {c: i for i, c in enumerate(vocab["symbols"])}
        try:
            return np.array([index[ord(ch)] for ch in text], dtype=np.int64)
        except KeyError as e:
            sys.exit(f"character {chr(e.args[0])!r} is not in the run's vocabulary")
    if vocab["type"] == "byte":
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)
    sys.exit(f"unsupported tokenizer {vocab['type']!r} (char or byte)")


def safari_loss(model, ids, targets):
    with torch.no_grad():
        out, _ = model(torch.from_numpy(ids))
        logits = out.logits
        # src.tasks.metrics.cross_entropy: F.cross_entropy(logits.view(-1, V), y.view(-1))
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                               torch.from_numpy(targets).reshape(-1)).item()


def seqlab_loss(seqlab, run, ckpt, text_file, batch_text, B, T):
    """`seqlab eval` on exactly the batch's rows; its mean loss."""
    return seqlab_run.eval_text_loss(seqlab, run, ckpt, text_file, batch_text, B, T, B * T)


def default_text():
    for d in (os.environ.get("SEQLAB_DATA", ""), os.path.join(REPO, "data"),
              os.path.join(os.path.dirname(REPO), "shared", "data")):
        p = os.path.join(d, "tinyshakespeare", "input.txt")
        if d and os.path.isfile(p):
            return p
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--safari", required=True, help="a checkout of HazyResearch/safari")
    ap.add_argument("--run", required=True, help="seqlab run directory (config.yaml, vocab.json, ckpt-*)")
    ap.add_argument("--text", default=None, help="text the batch is cut from (default tiny shakespeare)")
    ap.add_argument("--offset", type=int, default=-1, help="first character; -1: the last B*(T+1)")
    ap.add_argument("--batch", type=int, default=4, help="B rows")
    ap.add_argument("--tgt_len", type=int, default=0, help="T inputs per row; 0: l_max")
    ap.add_argument("--seqlab", default=os.path.join(REPO, "seqlab"), help="the seqlab binary")
    ap.add_argument("--seqlab_loss", type=float, default=None, help="seqlab's loss, instead of running it")
    ap.add_argument("--tol", type=float, default=1e-6, help="max relative difference (float64 safari)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    hyena, simple_lm = import_safari(a.safari)
    print(f"safari: {os.path.abspath(a.safari)}  (hyena.py {hyena.__file__})")
    print("stubbed (missing packages): " + (", ".join(STUBBED) if STUBBED else "none"))
    print(f"safari fftconv CUDA extension: {'present' if hyena.fftconv_func else 'absent'} "
          f"(not used: fused_fft_conv False -> hyena.fftconv_ref)")

    cfg = read_config(os.path.join(a.run, "config.yaml"))
    vocab = json.load(open(os.path.join(a.run, "vocab.json")))
    ckpt_path = newest_checkpoint(a.run)
    ckpt, meta = safetensors_io.load(ckpt_path)
    V = int(meta["vocab_size"])
    s = model_settings(cfg)
    B, T = a.batch, a.tgt_len or s["l_max"]
    if T > s["l_max"]:
        sys.exit(f"T {T} > l_max {s['l_max']}: safari would cut the sequence")
    print(f"run {a.run}: {os.path.basename(ckpt_path)}, V {V}, d_model {s['d_model']}, "
          f"n_layer {s['n_layer']}, d_inner {s['d_inner']}, l_max {s['l_max']}, mixer {s['mixer']}")

    text_file = a.text or default_text()
    if not text_file:
        sys.exit("no --text and no tiny shakespeare found")
    text = open(text_file, encoding="utf-8", newline="").read()
    n = B * (T + 1)
    off = len(text) - n if a.offset < 0 else a.offset
    batch_text = text[off:off + n]
    if len(batch_text) != n:
        sys.exit("text too short")
    ids_all = tokenize(batch_text, vocab)
    if len(ids_all) != n:
        sys.exit("byte tokenizer: the batch is not ASCII")
    rows = ids_all.reshape(B, T + 1)
    ids, targets = rows[:, :T].copy(), rows[:, 1:].copy()
    print(f"batch: {text_file} characters [{off}, {off + n}) as {B} rows of {T + 1}: "
          f"{B * T} scored targets")

    results = {}
    for dtype in (torch.float64, torch.float32):
        model = build_safari(simple_lm, s, V, dtype)
        notes, kept = load_seqlab_into_safari(model, ckpt, s)
        if dtype == torch.float64:
            for nt in notes:
                print("note: " + nt)
            print("kept from safari (constants): " + ", ".join(sorted({k.split('filter_fn.')[1] for k in kept})))
            mix = model.backbone.layers[0].mixer
            assert mix.filter_fn.fused_fft_conv is False
        results[dtype] = safari_loss(model, ids, targets)
        print(f"safari loss ({str(dtype).replace('torch.', '')}): {results[dtype]!r}")

    sl = a.seqlab_loss if a.seqlab_loss is not None else seqlab_loss(
        a.seqlab, a.run, ckpt_path, text_file, batch_text, B, T)
    print(f"seqlab loss (float32):  {sl!r}")
    r64 = abs(sl - results[torch.float64]) / abs(results[torch.float64])
    r32 = abs(sl - results[torch.float32]) / abs(results[torch.float64])
    r3264 = abs(results[torch.float32] - results[torch.float64]) / abs(results[torch.float64])
    print(f"relative difference seqlab vs safari float64: {r64:.3e}")
    print(f"relative difference seqlab vs safari float32: {r32:.3e}")
    print(f"relative difference safari float32 vs float64: {r3264:.3e}")
    ok = r64 <= a.tol
    print("OK" if ok else f"FAIL (tolerance {a.tol:g})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
