"""Scores a seqlab Brainformer (adaptive-span + MoE) LM checkpoint with the ORIGINAL code and compares the loss.

    ./seqlab train --dataset text --data ../shared/data/tinyshakespeare/input.txt --tokenizer byte \\
        --architecture sgfgfg.sgfgfg --hid-sz 32 --inner-hid-sz 32 --nheads 4 --attn-span 64 \\
        --block-sz 32 --batch-sz 4 --lr 0.07 --dropout 0 --lr-warmup 5 --grad-clip 0.03 \\
        --nbatches 20 --maxstep 60 --adapt-span --adapt-span-loss 0.0000005 --policy smoe \\
        --threads 1 --out /tmp/bf_check
    /usr/bin/python3 tests/ref/brainformer_original_check.py --brainformer /path/to/Brainformer-SMOE \\
        --run /tmp/bf_check --text ../shared/data/tinyshakespeare/input.txt [--blocks 2] [--step N]
    # options: --rows B (4) --tgt_len T (the run's eval_tgt_len) --offset N (-1: the last
    #   B*(blocks*T+1) bytes) --seqlab ./seqlab | --seqlab_loss X, --tol (1e-6)

--brainformer is a directory holding the Python files of giangdip2410/Brainformer-SMOE (read at
d18b65b0ceeea11169ef5adfac450eebbfd4fec6, its only history: "Initial commit", "V1", "Initial
commit"); a checkout works, and so does the tree's *.py files exported to a temporary directory
(the repository's experiments/2/log.txt is large and not needed). Its modules are imported
unchanged from there: models.py (TransformerSeq, TransformerSeqLayer, MultiHeadSeqAttention,
SeqAttention with _skew / _unskew, FeedForwardLayer, CustomizedMoEPositionwiseFF),
adaptive_span.py (AdaptiveSpan, AdaptiveMask: mask, renormalisation, trim_memory,
get_cache_size), custom_transformer.py (FMoETransformerMLP, _Expert), custom_layers.py (FMoE
and _fmoe_general_global_forward), functions.py (count_by_gate, prepare_forward, MOEScatter,
MOEGather), linear.py (FMoELinear, MOELinear), gates/ (NaiveGate: torch.topk of the gate's
logits, softmax over the k), plus what they import at module level (custom_transformer2.py,
custom_gate.py, custom_utils.py, fastermoe/config.py). sys.dont_write_bytecode is set, so the
directory is left as it was. Nothing of the model is re-implemented here.

The fork's vendored fastmoe (functions.py, linear.py) imports the CUDA extension `fmoe_cuda` at
module level, and models.py / custom_gate.py / gates/utils.py import the installed fastmoe
package `fmoe`; custom_layers.py imports dm-tree (`tree`). What this script puts in their place
(printed at every run):

  fmoe_cuda        a module with torch stand-ins for the three kernels a one-process forward
                   calls; everything else in it (expert_exchange, global_scatter / _gather,
                   ensure_nccl: world_size > 1 only; linear_backward: training only) raises.
     expert_count(gate_idx, expert_count)   cuda/local_exchange.cuh expert_count_kernel: adds to
                   expert_count[e] the number of entries of gate_idx equal to e (entries -1
                   skipped). Stand-in: expert_count += bincount(gate_idx[gate_idx > -1], E).
                   Integer counting: identical.
     assign_pos(cum_count, gate, pos)       assign_pos_kernel: for each flat index i of the
                   (N, k) gate, p = atomicSub(&cum_count[gate[i]], 1); pos[p - 1] = i. So pos
                   lists the flat indices expert by expert (expert 0's first) and cum_count
                   ends as each expert's start; the order WITHIN an expert is whatever order
                   the GPU's atomics ran in (not deterministic). Stand-in: the flat indices
                   sorted stably by expert (ascending index within an expert: one of the
                   orders the kernel can produce), cum_count -= counts. Integer: identical
                   up to that within-expert order, which no result depends on: MOEScatter
                   copies row pos // k into each slot, the expert GEMM treats rows
                   independently, MOEGather writes slot j back to flat index pos[j]
                   (index_copy_, no overlap). The script checks this (below).
     linear_forward(inp, count, W, b)       cuda/parallel_linear.cu / .cuh: output = the bias
                   rows repeated by count (repeat_interleave), then per expert e with
                   count[e] > 0 one cuBLAS GEMM with beta = 1 on its contiguous rows:
                   out[rows_e] = inp[rows_e] W[e]^T + b[e]. Stand-in: the same loop with
                   torch.addmm(b[e], inp[rows_e], W[e]^T) (b = 0 without a bias). The same
                   products and sums; only the BLAS's summation order differs (rounding).
                   MOEScatter, MOEGather, count_by_gate, prepare_forward and MOELinear run
                   unchanged: at world_size 1 they only call torch (index_select,
                   index_add_ / index_copy_, cumsum) and these three functions.
  fmoe             a package object whose `fmoe.functions`, `fmoe.gates`, `fmoe.gates.base_gate`
                   are the fork's own vendored copies (functions.py, gates/). The names taken
                   from it are BaseGate (custom_gate.py's gates, none of which the model
                   builds), NaiveGate (imported by models.py, never used: FMoE's default gate
                   is gates.NaiveGate from custom_layers.py) and count_by_gate (gates/utils.py,
                   capacity limits of GShard / Switch gates, unused).
  tree             only if dm-tree is not installed (it is not a Debian package):
                   map_structure(f, *s) and flatten(s) for nested lists / tuples / dicts with
                   anything else a leaf; FMoE only passes single tensors and ints, for which
                   dm-tree returns f(x) and [x].

Shown exact at every run (float64, on the model's first MoE with the checkpoint's weights and
the batch's own inputs to it): (1) the original FMoE's output equals a dense evaluation that
does not dispatch at all, sum_j softmax(top-k logits)_j * fc2_e(relu(fc1_e(x))) for each token
with torch.topk's experts (max abs difference printed, ~1e-16); (2) with the within-expert
order of pos reversed (the other extreme the atomics can produce) the output is the same.

The model: TransformerSeq(vocab_size=V, hidden_size, nb_heads, nb_layers, attn_span,
architecture, inner_hidden_size, dropout, block_size, policy, adapt_span_params={...}), the
arguments main.py passes (config.py's flags, from seqlab's resolved config.yaml). Each layer
('.'-separated group of the string) has ONE attention (norm1), ONE FeedForwardLayer (norm2) and
ONE CustomizedMoEPositionwiseFF (its own layer_norm), whatever its letters; every 's' of the
layer uses the same attention and cache, every 'f' the same FF and norm2, every 'g' the same
MoE. The MoE is fixed in TransformerSeqLayer at CustomizedMoEPositionwiseFF's defaults,
moe_num_expert=16, moe_top_k=2, experts of width inner_hidden_size, ReLU; when the seqlab run
differs (moe.num_experts, moe.eval_top_k, the experts' width) this script replaces that layer's
`g` by the same class built with its own constructor arguments moe_num_expert=E, moe_top_k=k,
d_inner=F and says so (the original's command line cannot express it). post-LN everywhere
(pre_lnorm False), LayerNorm eps 1e-5, no position embedding but key_pe, untied output
Linear with bias, log_softmax; the loss is trainer.py's nll_loss mean.

Name map (seqlab -> original). Layer l of the string starts at sublayer index b_l (letters
counted without the dots over the whole string); a letter's sublayer index is b_l + the
position of its FIRST use in the layer (seqlab names a shared sublayer after its first use):
  embed.weight (V, C)                          in_emb.weight
  head.weight, head.bias                       out_emb.weight, out_emb.bias
  key_pe (d, S)                                key_pe (1, d, S)
  's' i: blocks.i.mixer.proj_{query,key,val,out}.weight   layers.l.attn.proj_*.weight
         blocks.i.mixer.adaptive_span.current_val (H,)    layers.l.attn.attn.adaptive_span._mask.current_val (H, 1, 1)
         blocks.i.norm.{weight,bias}                       layers.l.norm1.*
  'f' i: blocks.i.ffn.fc{1,2}.{weight,bias}               layers.l.ff.fc{1,2}.*
         blocks.i.norm.*                                   layers.l.norm2.*
  'g' i: blocks.i.moe.gate.{weight,bias} (E, C), (E)       layers.l.g.gate.gate.*
         blocks.i.moe.experts.fc1.weight (E, F, C), .bias (E, F)   layers.l.g.experts.htoh4.*
         blocks.i.moe.experts.fc2.weight (E, C, F), .bias (E, C)   layers.l.g.experts.h4toh.*
         blocks.i.norm.*                                   layers.l.g.layer_norm.*
Every parameter tensor of the checkpoint is mapped (optim.*, train.* and memory.* entries, the
training state, are not parameters; with adapt_span false seqlab still stores each head's z,
blocks.i.mixer.adaptive_span.current_val, which it does not read and the original does not
have); the original's tensors of a letter a layer does not use (e.g. the FF of a layer without
'f') keep their random init, which the forward never reads (listed at run time); the mask's
`mask_template` buffer is the original's own constant.

The batch (--text, the way mega_original_check.py makes it): B = --rows rows of
blocks*T + 1 consecutive bytes of the file (byte vocabulary of 256, the original's in_emb takes
the ids directly), from --offset (default -1: the last B*(blocks*T+1) bytes, in seqlab's test
split for tiny shakespeare). The original runs block by block as trainer.py does: the first
block from zero caches of get_cache_size() positions per layer (main.py's initial hid_cache),
each next block with the h_cache the previous forward returned; the loss is the mean over all
B*blocks*T targets (the blocks have the same size, so the mean of the per-block means). seqlab
scores exactly these windows: the bytes are the test file of a temporary copy of the run (the
checked checkpoint its only one), with eval_batch_size B and eval_tgt_len T and stream
batching, i.e. B streams of blocks*T + 1 tokens, `blocks` windows each, the memory carried from
an empty past:
    seqlab eval --run TMP --split test --dataset text --tokenizer byte --train_file TEXT
                --valid_file TMP/batch.txt --test_file TMP/batch.txt --eval_batch_size B
                --eval_tgt_len T --eval_stride 0 --eval_max_batches 0 --lm_batching streams
                --threads 1
and the mean loss is read from TMP/metrics.jsonl after checking it scored B*blocks*T tokens.
The original is run in float64 (the model .double()'d after loading: parameters and the mask
template; the float32 checkpoint values are exact in float64) and in float32. Forward hooks on
each NaiveGate report the routing margin (the smallest gap between a token's k-th and
(k+1)-th gate logit, float64) and whether float32 routes every token as float64 does.

Supported seqlab runs: task lm, byte tokenizer, arch_grammar brainformer with letters s, f, g,
mixer adaptive_span, ffn mlp, ReLU (f and the experts), post-LN with layernorm, pos none,
emb_scale none, untied head with bias, no adaptive softmax, precision fp32.

Measured (tests/ref/README.md has the commands and numbers): seqlab is 5e-10 .. 8e-9 from the
float64 original on the sgfgfg.sgfgfg runs (16 experts as the original builds them; and 4
experts with span 200, --adapt-span-cache and trimming), for one block and for three blocks
through the caches; the original in float32 is 7e-9 .. 7e-8 from its float64 run.

Known difference, found by this check: the memory of a layer whose first letter is not 's'
('gsf', 'fgs'). The original caches the LAYER's input (TransformerSeq.forward takes
h_cache_next from h before calling the layer); seqlab writes an adaptive_span sublayer's next
memory on its first use from that use's input (src/model/model.c model_forward_batch,
memory_next when u->first; src/mixers/adaptive_span.c, the next memory = the last S rows of
[memory; the block it was given]), i.e. after the letters before the first 's'. The first
block agrees (zero caches); later blocks differ (5e-5 .. 7e-5 relative on such runs).
--cache_from first_s_input reruns the original's layers with caches taken from the input of
each layer's first attention call instead (a diagnostic, not the original's forward): seqlab
is then 7e-9 .. 1.3e-8 from it, so this is the only difference. Every layer of the seed's
strings (sgfgfg, sgsf, sf, s, f) starts with 's' or has none, where both agree.
"""

import argparse
import importlib
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
from seqlab_run import checkpoint_path, run_config  # noqa: E402

SHIMS = []        # what was put in place of a module the fork imports (printed)
ORIGINAL_MODULES = ("models", "adaptive_span", "custom_transformer", "custom_transformer2", "custom_layers",
                    "custom_gate", "custom_utils", "functions", "linear", "gates", "fastermoe")


# --------------------------------------------------------------------------------------
# fmoe_cuda: torch stand-ins for the CUDA kernels of a one-process forward
# --------------------------------------------------------------------------------------

POS_ORDER = {"within_expert": "ascending"}   # "descending": the selftest's other atomic order


def _fmoe_expert_count(gate_idx, expert_count):
    idx = gate_idx.reshape(-1)
    idx = idx[idx > -1]
    n = expert_count.numel()
    if idx.numel() and int(idx.max()) >= n:
        raise ValueError("fmoe_cuda.expert_count stand-in: expert index beyond the count tensor")
    expert_count += torch.bincount(idx, minlength=n).to(expert_count.dtype)


def _fmoe_assign_pos(cum_count, gate, pos):
    flat = gate.reshape(-1)
    keep = torch.nonzero(flat > -1).view(-1)
    if POS_ORDER["within_expert"] == "descending":
        keep = keep.flip(0)
    order = keep[torch.sort(flat[keep], stable=True).indices]
    if order.numel() != pos.numel():
        raise ValueError("fmoe_cuda.assign_pos stand-in: pos has the wrong size")
    pos.copy_(order)
    cum_count -= torch.bincount(flat[keep], minlength=cum_count.numel()).to(cum_count.dtype)


def _fmoe_linear_forward(input_buf, expert_count, weight, bias=None):
    counts = [int(c) for c in expert_count.tolist()]
    if sum(counts) != input_buf.shape[0] or len(counts) != weight.shape[0]:
        raise ValueError("fmoe_cuda.linear_forward stand-in: counts do not match the buffer")
    out = input_buf.new_empty((input_buf.shape[0], weight.shape[1]))
    ptr = 0
    for e, n in enumerate(counts):
        if n == 0:
            continue
        b = bias[e] if bias is not None else input_buf.new_zeros(weight.shape[1])
        out[ptr:ptr + n] = torch.addmm(b, input_buf[ptr:ptr + n], weight[e].t())
        ptr += n
    return out


def _raising(name):
    def f(*args, **kwargs):
        raise NotImplementedError(f"{name}: not available in this CPU check (multi-process or training only)")
    return f


def _fmoe_cuda_module():
    m = types.ModuleType("fmoe_cuda")
    m.expert_count = _fmoe_expert_count
    m.assign_pos = _fmoe_assign_pos
    m.linear_forward = _fmoe_linear_forward
    for name in ("linear_backward", "expert_exchange", "global_scatter", "global_gather", "ensure_nccl",
                 "limit_by_capacity", "prune_gate_by_capacity", "swipe_once", "smart_sch_forward",
                 "smart_sch_backward", "reduce_grad"):
        setattr(m, name, _raising(f"fmoe_cuda.{name}"))
    return m


# --------------------------------------------------------------------------------------
# dm-tree stand-in (only when `import tree` fails)
# --------------------------------------------------------------------------------------

def _tree_map_structure(fn, *structures):
    s0 = structures[0]
    if isinstance(s0, (list, tuple)):
        out = [_tree_map_structure(fn, *[s[i] for s in structures]) for i in range(len(s0))]
        return type(s0)(out) if not hasattr(s0, "_fields") else type(s0)(*out)
    if isinstance(s0, dict):
        return {k: _tree_map_structure(fn, *[s[k] for s in structures]) for k in sorted(s0)}
    return fn(*structures)


def _tree_flatten(structure):
    if isinstance(structure, (list, tuple)):
        return [x for s in structure for x in _tree_flatten(s)]
    if isinstance(structure, dict):
        return [x for k in sorted(structure) for x in _tree_flatten(structure[k])]
    return [structure]


def _importable(name):
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False


def import_original(root):
    """Imports the fork's models.py (and what it imports) from root, with the shims above."""
    root = os.path.abspath(root)
    if not os.path.isfile(os.path.join(root, "models.py")) or not os.path.isdir(os.path.join(root, "gates")):
        sys.exit(f"--brainformer {root}: no models.py / gates/ there (a tree of giangdip2410/Brainformer-SMOE)")
    clash = [k for k in sys.modules if k.split(".")[0] in ORIGINAL_MODULES + ("fmoe", "fmoe_cuda")]
    if clash:
        sys.exit(f"modules already imported under the fork's names: {clash}")
    sys.dont_write_bytecode = True
    sys.path.insert(0, root)
    sys.modules["fmoe_cuda"] = _fmoe_cuda_module()
    SHIMS.append("fmoe_cuda: torch expert_count / assign_pos / linear_forward (exact stand-ins; see the "
                 "docstring), the rest raises")
    if not _importable("tree"):
        t = types.ModuleType("tree")
        t.map_structure = _tree_map_structure
        t.flatten = _tree_flatten
        sys.modules["tree"] = t
        SHIMS.append("tree (dm-tree not installed): map_structure / flatten stand-ins, a tensor or int a leaf")
    functions = importlib.import_module("functions")        # the fork's vendored fmoe/functions.py
    fmoe = types.ModuleType("fmoe")
    fmoe.__path__ = []
    fmoe.functions = functions
    sys.modules["fmoe"] = fmoe
    sys.modules["fmoe.functions"] = functions
    gates = importlib.import_module("gates")                # the fork's vendored fmoe/gates/
    fmoe.gates = gates
    sys.modules["fmoe.gates"] = gates
    sys.modules["fmoe.gates.base_gate"] = gates.base_gate
    SHIMS.append("fmoe -> the fork's vendored copies (fmoe.functions = functions.py, fmoe.gates = gates/)")
    models = importlib.import_module("models")
    for name in ORIGINAL_MODULES:
        mod = sys.modules.get(name)
        if mod is not None and not os.path.abspath(mod.__file__).startswith(root + os.sep):
            sys.exit(f"{name} was imported from {mod.__file__}, not from {root}")
    return models


# --------------------------------------------------------------------------------------
# seqlab run: config, checkpoint, settings
# --------------------------------------------------------------------------------------

def _bool(v):
    return str(v).lower() in ("true", "1", "yes")


def model_settings(cfg, params):
    def need(key, want, default=None):
        got = cfg.get(key, default)
        if got not in (want if isinstance(want, tuple) else (want,)):
            sys.exit(f"unsupported for this check: {key} = {got!r} (need {want!r})")

    need("task", "lm")
    need("tokenizer", "byte")
    need("arch_grammar", "brainformer")
    need("mixer", "adaptive_span")
    need("ffn", "mlp")
    need("activation", "relu")
    need("norm", "post")
    need("residual.norm", "layernorm", "layernorm")
    need("pos", "none")
    need("emb_scale", "none")
    need("tie_weight", "false")
    need("head_bias", "true")
    need("adaptive_softmax", "false")
    need("precision", "fp32")
    need("moe.activation", "relu", "relu")
    arch = cfg.get("arch", "")
    layers = arch.split(".")
    if not arch or any(not a or set(a) - set("sfg") for a in layers):
        sys.exit(f"arch {arch!r}: this check needs '.'-separated layers of the letters s, f, g")
    C = int(cfg["d_model"])
    H = int(cfg.get("mixer.n_head", cfg.get("n_head", "4")))
    S = int(cfg.get("mixer.attn_span", "1024"))
    d_head = int(cfg.get("d_head", "0") or 0)
    if d_head not in (0, C // H) or C % H:
        sys.exit(f"d_head {d_head} with d_model {C} and {H} heads: the original has d = C / H")
    s = {
        "arch": arch, "layers": layers, "C": C, "H": H, "d": C // H, "S": S,
        "F": int(cfg["d_inner"]),
        "adapt_span": _bool(cfg.get("mixer.adapt_span", "true")),
        "adapt_span_loss": float(cfg.get("mixer.adapt_span_loss", "0")),
        "adapt_span_ramp": float(cfg.get("mixer.adapt_span_ramp", "32")),
        "adapt_span_init": float(cfg.get("mixer.adapt_span_init", "0")),
        "adapt_span_cache": _bool(cfg.get("mixer.adapt_span_cache", "false")),
        "block_size": int(cfg["tgt_len"]),
        "dropout": float(cfg.get("dropout", "0")),
        "policy": cfg.get("moe.policy", "smoe"),
        "k": int(cfg.get("moe.eval_top_k", "2")),
    }
    if s["adapt_span_ramp"] != int(s["adapt_span_ramp"]):
        sys.exit("mixer.adapt_span_ramp must be an integer (the original's --adapt-span-ramp is an int)")
    s["adapt_span_ramp"] = int(s["adapt_span_ramp"])
    # the experts' shape from the checkpoint (E, F, C)
    moe = [k for k in params if re.fullmatch(r"blocks\.\d+\.moe\.experts\.fc1\.weight", k)]
    s["E"], s["F_moe"] = (params[moe[0]].shape[0], params[moe[0]].shape[1]) if moe else (16, s["F"])
    return s


def sublayer_index(layers):
    """[(layer l, letter, seqlab sublayer index of its first use in the layer)]."""
    out, base = [], 0
    for l, a in enumerate(layers):
        for c in "sfg":
            if c in a:
                out.append((l, c, base + a.index(c)))
        base += len(a)
    return out


def name_map(s):
    """[(original name, seqlab name, reshape)] for every tensor the original takes from the checkpoint."""
    m = [("in_emb.weight", "embed.weight", None), ("out_emb.weight", "head.weight", None),
         ("out_emb.bias", "head.bias", None)]
    if "s" in s["arch"]:
        m.append(("key_pe", "key_pe", lambda t: t.unsqueeze(0)))
    for l, c, i in sublayer_index(s["layers"]):
        o, b = f"layers.{l}.", f"blocks.{i}."
        if c == "s":
            for p in ("query", "key", "val", "out"):
                m.append((o + f"attn.proj_{p}.weight", b + f"mixer.proj_{p}.weight", None))
            if s["adapt_span"]:
                m.append((o + "attn.attn.adaptive_span._mask.current_val", b + "mixer.adaptive_span.current_val",
                          lambda t: t.view(-1, 1, 1)))
            norm = "norm1"
        elif c == "f":
            for p in ("fc1", "fc2"):
                for w in ("weight", "bias"):
                    m.append((o + f"ff.{p}.{w}", b + f"ffn.{p}.{w}", None))
            norm = "norm2"
        else:
            for w in ("weight", "bias"):
                m.append((o + f"g.gate.gate.{w}", b + f"moe.gate.{w}", None))
                m.append((o + f"g.experts.htoh4.{w}", b + f"moe.experts.fc1.{w}", None))
                m.append((o + f"g.experts.h4toh.{w}", b + f"moe.experts.fc2.{w}", None))
            norm = "g.layer_norm"
        for w in ("weight", "bias"):
            m.append((o + f"{norm}.{w}", b + f"norm.{w}", None))
    return m


def build_original(models, s, V):
    torch.manual_seed(0)      # the original's own random init of what the checkpoint does not set
    model = models.TransformerSeq(
        vocab_size=V, hidden_size=s["C"], nb_heads=s["H"], nb_layers=len(s["layers"]),
        attn_span=s["S"], architecture=s["arch"], inner_hidden_size=s["F"], dropout=s["dropout"],
        block_size=s["block_size"], policy=s["policy"],
        adapt_span_params={"adapt_span_enabled": s["adapt_span"], "adapt_span_loss": s["adapt_span_loss"],
                           "adapt_span_ramp": s["adapt_span_ramp"], "adapt_span_init": s["adapt_span_init"],
                           "adapt_span_cache": s["adapt_span_cache"]})
    rebuilt = []
    if (s["E"], s["k"], s["F_moe"]) != (16, 2, s["F"]):
        for l, layer in enumerate(model.layers):
            layer.g = models.CustomizedMoEPositionwiseFF(d_model=s["C"], d_inner=s["F_moe"], dropout=s["dropout"],
                                                         moe_num_expert=s["E"], moe_top_k=s["k"])
            rebuilt.append(l)
    return model, rebuilt


def load_seqlab(model, params, s):
    sd = model.state_dict()
    new, used = {}, set()
    for oname, sname, reshape in name_map(s):
        if sname not in params:
            sys.exit(f"the checkpoint has no {sname} (for the original's {oname})")
        t = torch.from_numpy(np.ascontiguousarray(params[sname]))
        if reshape is not None:
            t = reshape(t)
        if oname not in sd or tuple(sd[oname].shape) != tuple(t.shape):
            sys.exit(f"{sname} {tuple(t.shape)} -> {oname} "
                     f"{tuple(sd[oname].shape) if oname in sd else 'missing'}: shape mismatch")
        new[oname] = t.to(sd[oname].dtype)
        used.add(sname)
    left = sorted(k for k in params if k not in used and not k.startswith(("optim.", "train.", "memory.")))
    # seqlab keeps each head's z with adapt_span false too (not read); the original has no AdaptiveSpan then
    idle = [k for k in left if not s["adapt_span"] and k.endswith(".mixer.adaptive_span.current_val")]
    left = [k for k in left if k not in idle]
    if left:
        sys.exit(f"checkpoint tensors with no place in the original: {left}")
    sd.update(new)
    model.load_state_dict(sd)
    kept = sorted(k for k in sd if k not in new)
    return len(new), kept, idle


# --------------------------------------------------------------------------------------
# the original's forward, block by block
# --------------------------------------------------------------------------------------

def gate_hooks(model):
    """Records, per MoE forward, the gate logits and the chosen experts (NaiveGate's outputs)."""
    rec = []
    handles = []
    for l, layer in enumerate(model.layers):
        g = layer.g.gate

        def hook(module, inputs, output, _l=l):
            logits = module.gate(inputs[0])
            idx, _ = output
            rec.append({"layer": _l, "logits": logits.detach().to(torch.float64), "idx": idx.detach().clone(),
                        "k": module.top_k})
        handles.append(g.register_forward_hook(hook))
    return rec, handles


def forward_cache_from_first_s(model, x, h_cache):
    """DIAGNOSTIC, not the original: TransformerSeq.forward (models.py) with one change, each layer's
    next cache made from the input of the layer's first attention call (what seqlab's memory keeps)
    instead of the layer's input h. The layers themselves are the original modules."""
    block_size = x.size(1)
    h = model.in_emb(x)
    h_cache_next = []
    for l, layer in enumerate(model.layers):
        seen = {}

        def pre(module, inputs):
            seen.setdefault("h", inputs[0])
        handle = layer.attn.register_forward_pre_hook(pre)
        h_in = h
        h = layer(h, h_cache[l], model.key_pe)
        handle.remove()
        src = seen.get("h", h_in)
        cache_size = layer.attn.attn.get_cache_size()
        if cache_size > block_size:
            h_cache_next.append(torch.cat([h_cache[l][:, -cache_size + block_size:, :], src], dim=1).detach())
        else:
            h_cache_next.append(src[:, -cache_size:, :].detach())
    return F.log_softmax(model.out_emb(h), dim=-1), h_cache_next


def original_loss(model, ids, targets, nblocks, T, cache_from="layer_input"):
    """trainer.py's eval: block by block from main.py's zero caches; the mean nll over every target."""
    B = ids.shape[0]
    dtype = next(model.parameters()).dtype
    h_cache = [torch.zeros(B, layer.attn.attn.get_cache_size(), model.in_emb.weight.shape[1], dtype=dtype)
               for layer in model.layers]
    losses = []
    with torch.no_grad():
        for j in range(nblocks):
            X = torch.from_numpy(ids[:, j * T:(j + 1) * T])
            Y = torch.from_numpy(targets[:, j * T:(j + 1) * T])
            if cache_from == "layer_input":
                out, h_cache = model(X, h_cache)
            else:
                out, h_cache = forward_cache_from_first_s(model, X, h_cache)
            losses.append(F.nll_loss(out.reshape(-1, out.size(-1)), Y.reshape(-1)).item())
    return sum(losses) / nblocks, losses


def routing_report(rec64, rec32):
    margins = {}
    same = True
    for a, b in zip(rec64, rec32):
        z = a["logits"].reshape(-1, a["logits"].shape[-1])
        top = torch.sort(z, dim=-1, descending=True).values
        k = a["k"]
        gap = (top[:, k - 1] - top[:, k]).min().item() if k < z.shape[1] else float("inf")
        margins[a["layer"]] = min(margins.get(a["layer"], float("inf")), gap)
        sa = torch.sort(a["idx"].reshape(-1, k), dim=-1).values
        sb = torch.sort(b["idx"].reshape(-1, k), dim=-1).values
        same = same and torch.equal(sa, sb)
    return margins, same and len(rec64) == len(rec32)


def dispatch_check(model, x_in):
    """The first MoE's FMoE output vs a dense evaluation (no dispatch); and the within-expert order."""
    g = None
    for layer in model.layers:
        if "g" in layer.arch:
            g = layer.g
            break
    if g is None:
        return None
    x = x_in.reshape(-1, x_in.shape[-1])
    with torch.no_grad():
        got = super(type(g), g).forward(x)      # FMoETransformerMLP.forward: the MoE without residual / norm
        idx, score = g.gate(x)
        w1, b1 = g.experts.htoh4.weight, g.experts.htoh4.bias
        w2, b2 = g.experts.h4toh.weight, g.experts.h4toh.bias
        dense = torch.zeros_like(x)
        for j in range(idx.shape[1]):
            e = idx[:, j]
            h = torch.relu(torch.einsum("nfc,nc->nf", w1[e], x) + b1[e])
            dense += score[:, j:j + 1] * (torch.einsum("ncf,nf->nc", w2[e], h) + b2[e])
        POS_ORDER["within_expert"] = "descending"
        try:
            other = super(type(g), g).forward(x)
        finally:
            POS_ORDER["within_expert"] = "ascending"
    return (got - dense).abs().max().item(), (got - other).abs().max().item(), x.shape[0], idx.shape[1]


# --------------------------------------------------------------------------------------
# the batch and seqlab's loss on it
# --------------------------------------------------------------------------------------

def seqlab_text_loss(seqlab, run, ckpt, text_file, data, B, T, nblocks):
    """`seqlab eval` on exactly the batch's windows; its mean loss."""
    return seqlab_run.eval_text_loss(seqlab, run, ckpt, text_file, data, B, T, B * T * nblocks,
                                     ["--tokenizer", "byte", "--lm_batching", "streams"])


def text_batch(args, cfg, ckpt):
    B, nb = args.rows, args.blocks
    T = args.tgt_len or int(cfg.get("eval_tgt_len", "0") or 0) or int(cfg["tgt_len"])
    n = B * (nb * T + 1)
    with open(args.text, "rb") as fh:
        text = fh.read()
    off = len(text) - n if args.offset < 0 else args.offset
    data = text[off:off + n]
    if off < 0 or len(data) != n:
        sys.exit(f"--text {args.text}: {len(text)} bytes, too short for {B} x {nb * T + 1} from offset {args.offset}")
    rows = np.frombuffer(data, dtype=np.uint8).astype(np.int64).reshape(B, nb * T + 1)
    ids, targets = rows[:, :-1].copy(), rows[:, 1:].copy()
    where = f"{args.text} bytes [{off}, {off + n}) as {B} rows of {nb * T + 1} ({nb} block(s) of {T})"
    print(f"batch: {where}: {B * nb * T} scored targets")
    if args.seqlab_loss is not None:
        mean, how = args.seqlab_loss, "--seqlab_loss"
    else:
        mean = seqlab_text_loss(args.seqlab, args.run, ckpt, args.text, data, B, T, nb)
        how = f"seqlab eval --dataset text on {where}, {os.path.basename(ckpt)}"
    return ids, targets, T, mean, how


def check(args):
    torch.set_num_threads(args.threads)
    cfg = run_config(args.run)
    ckpt = checkpoint_path(args.run, args.step)
    params, meta = safetensors_io.load(ckpt)
    params = {k[len("param."):] if k.startswith("param.") else k: v for k, v in params.items()}
    s = model_settings(cfg, params)
    V = int(meta.get("vocab_size", params["embed.weight"].shape[0]))
    if V != 256:
        sys.exit(f"vocabulary {V}: this check reads bytes (256)")
    ids, targets, T, seqlab_mean, source = text_batch(args, cfg, ckpt)
    B, nb = ids.shape[0], args.blocks

    models = import_original(args.brainformer)
    print(f"original: {os.path.abspath(args.brainformer)} ({models.__file__})")
    print("shims: " + "; ".join(SHIMS))
    print(f"checkpoint {ckpt}; batch {B} x {nb} x {T}; vocabulary {V}")
    print(f"model: {s['arch']}, C {s['C']}, heads {s['H']} (d {s['d']}), span {s['S']}, "
          f"adapt_span {s['adapt_span']} (ramp {s['adapt_span_ramp']}, cache {s['adapt_span_cache']}), "
          f"F {s['F']}, MoE E {s['E']} k {s['k']} F {s['F_moe']}")
    print("sublayers (seqlab index -> original layer.letter): "
          + ", ".join(f"blocks.{i} -> layers.{l}.{c}" for l, c, i in sublayer_index(s["layers"])))
    late_s = [f"{l} ({a})" for l, a in enumerate(s["layers"]) if "s" in a and a[0] != "s"]
    if late_s and nb > 1 and args.cache_from == "layer_input":
        print(f"note: layers {', '.join(late_s)} do not start with 's': the original caches the layer's input "
              "(models.py TransformerSeq.forward), seqlab's memory the input of the layer's first 's' "
              "(src/model/model.c model_forward_batch: memory_next on the sublayer's first use; "
              "src/mixers/adaptive_span.c: the next memory from [memory; that use's block]); a difference is "
              "expected from the second block on (--cache_from first_s_input shows it is the only one)")
    if args.cache_from != "layer_input":
        print("DIAGNOSTIC --cache_from first_s_input: NOT the original's forward; TransformerSeq.forward's loop "
              "with each layer's next cache taken from the input of its first attention call")
    results, recs = {}, {}
    for dtype in (torch.float64, torch.float32):
        model, rebuilt = build_original(models, s, V)
        n_mapped, kept, idle = load_seqlab(model, params, s)
        model = model.to(dtype).eval()
        rec, handles = gate_hooks(model)
        if dtype == torch.float64:
            x_first = {}

            def grab(module, inputs, output):
                x_first.setdefault("x", inputs[0].detach().clone())
            first_g = next((layer.g for layer in model.layers if "g" in layer.arch), None)
            hg = first_g.register_forward_hook(grab) if first_g is not None else None
        results[dtype] = original_loss(model, ids, targets, nb, T, args.cache_from)
        recs[dtype] = rec
        for h in handles:
            h.remove()
        if dtype == torch.float64:
            if hg is not None:
                hg.remove()
            if rebuilt:
                print(f"note: layers {rebuilt}: `g` rebuilt as CustomizedMoEPositionwiseFF(moe_num_expert={s['E']}, "
                      f"moe_top_k={s['k']}, d_inner={s['F_moe']}) (TransformerSeqLayer fixes 16, 2, inner_hidden_size)")
            print(f"mapped {n_mapped} checkpoint tensors, none left over"
                  + (f" but {', '.join(idle)} (adapt_span false: read by neither)" if idle else "")
                  + "; kept from the original: " + (", ".join(kept) if kept else "nothing"))
            print("cache sizes (get_cache_size): " + ", ".join(str(layer.attn.attn.get_cache_size())
                                                             for layer in model.layers)
                  + (", trim lengths: " + ", ".join(str(layer.attn.attn.adaptive_span.get_trim_len())
                                                   for layer in model.layers) if s["adapt_span"] else ""))
            if "x" in x_first:
                d = dispatch_check(model, x_first["x"])
                print(f"dispatch check (float64, the first MoE on its first input, {d[2]} tokens, k {d[3]}): "
                      f"|FMoE - dense top-k mixture| max {d[0]:.2e}; "
                      f"within-expert order reversed: max change {d[1]:.2e}")
    margins, same = routing_report(recs[torch.float64], recs[torch.float32])
    if margins:
        print("routing margin (smallest k-th minus (k+1)-th gate logit, float64), per layer: "
              + ", ".join(f"{l}: {g:.3g}" for l, g in sorted(margins.items()))
              + f"; float32 routes identically: {same}")
    print(f"seqlab:            mean loss {seqlab_mean:.17g}   [{source}]")
    for dtype, name in ((torch.float64, "float64"), (torch.float32, "float32")):
        mean, per = results[dtype]
        print(f"original {name}:  mean loss {mean:.17g}"
              + (f"   (blocks: {', '.join(f'{x:.17g}' for x in per)})" if nb > 1 else ""))
    ref = results[torch.float64][0]
    r64 = abs(seqlab_mean - ref) / abs(ref)
    r32 = abs(seqlab_mean - results[torch.float32][0]) / abs(ref)
    print(f"relative difference seqlab vs original float64: {r64:.2e}")
    print(f"relative difference seqlab vs original float32: {r32:.2e}")
    print(f"relative difference original float32 vs float64: {abs(results[torch.float32][0] - ref) / abs(ref):.2e}")
    ok = r64 <= args.tol
    print("OK" if ok else f"FAIL (tolerance {args.tol:g})")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brainformer", required=True, help="the Python files of giangdip2410/Brainformer-SMOE")
    ap.add_argument("--run", required=True, help="the seqlab run directory (config.yaml, ckpt-*.safetensors)")
    ap.add_argument("--text", required=True, help="make the batch from this file's bytes and score it with "
                                                  "`seqlab eval`")
    ap.add_argument("--rows", type=int, default=4, help="B rows")
    ap.add_argument("--tgt_len", type=int, default=0, help="T tokens per block; 0: the run's eval_tgt_len")
    ap.add_argument("--blocks", type=int, default=1, help="blocks per row, the caches (memory) carried")
    ap.add_argument("--offset", type=int, default=-1, help="first byte; -1: the last B*(blocks*T+1)")
    ap.add_argument("--seqlab", default=os.path.join(REPO, "seqlab"), help="the seqlab binary")
    ap.add_argument("--seqlab_loss", type=float, default=None, help="seqlab's mean loss, instead of running it")
    ap.add_argument("--step", type=int, default=None, help="use ckpt-N.safetensors (default: the newest)")
    ap.add_argument("--tol", type=float, default=1e-6, help="max relative difference to the float64 original")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache_from", choices=("layer_input", "first_s_input"), default="layer_input",
                    help="layer_input: the original (TransformerSeq.forward); first_s_input: a DIAGNOSTIC "
                         "variant whose caches hold what seqlab's memory holds (the input of each layer's "
                         "first 's'), to locate a difference in layers that do not start with 's'")
    args = ap.parse_args()
    sys.exit(check(args))


if __name__ == "__main__":
    main()
