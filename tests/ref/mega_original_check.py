"""Scores a seqlab MEGA / SeqBoat LM checkpoint with the ORIGINAL public code and compares the loss.

    ./seqlab train CONFIG.yaml --out /tmp/mega_run                # mixer mega or seqboat, task lm
    /usr/bin/python3 tests/ref/mega_original_check.py --mega /path/to/facebookresearch/mega \\
        --run /tmp/mega_run --text ../shared/data/tinyshakespeare/input.txt [--step N]
    /usr/bin/python3 tests/ref/mega_original_check.py --seqboat /path/to/renll/SeqBoat \\
        --run /tmp/seqboat_run --text ../shared/data/tinyshakespeare/input.txt
    # text mode options: --rows B (4) --tgt_len T (the run's eval_tgt_len / tgt_len) --offset N
    #   (-1: the last B*(T+1) characters) --seqlab ./seqlab | --seqlab_loss X, --save_batch FILE
    /usr/bin/python3 tests/ref/mega_original_check.py --mega M --run R --batch FILE   # a saved batch
    /usr/bin/python3 tests/ref/mega_original_check.py --selftest --mega M --seqboat S [--keep DIR]

Two CONFIG.yaml checked this way (tests/ref/README.md has the results; about 0.5 s of training
each on one thread, the shakespeare data found under ../shared/data):

    task: lm                                   # the MEGA run; the SeqBoat run is the same with
    dataset: shakespeare                       #   arch: ss, no ffn / activation / d_inner, and
    tokenizer: char                            #   mixer: {name: seqboat, z_dim: 8, h_dim: 24,
    arch: sfsf                                 #     n_dim: 4, chunk_size: 8, rel_pos: rotary}
    mixer: {name: mega, z_dim: 8, h_dim: 24, n_dim: 4, chunk_size: 16, rel_pos: rotary}
    ffn: mlp
    activation: silu
    d_model: 32
    d_inner: 64
    norm: pre
    pos: none
    emb_scale: sqrt_d
    embed_init: inv_sqrt_d
    final_norm_affine: false
    tie_weight: true
    dropout: 0
    tgt_len: 40
    max_len: 64
    batch_size: 4
    max_step: 60
    lr: 0.003
    warmup_step: 10
    eval_interval: 0
    ckpt_interval: 4                           # ckpt-4, -8, ..., -60: check any with --step
    keep_checkpoints: 15
    log_interval: 20
    threads: 1

--mega is a checkout of facebookresearch/mega (read at aeaa4b4, 2023-01-27), --seqboat one of
renll/SeqBoat (read at 5a34aed, 2023-12-02). A run whose mixer is `mega` needs --mega, one whose
mixer is `seqboat` needs --seqboat (SeqBoat's tree carries a modified copy of MEGA's layer, which
is not used). Both trees are packages named `fairseq`, so one process imports one of them.

What runs is the original code, imported from the checkout, not copied here:
  MEGA     fairseq/models/mega_lm.py     MegaDecoderNoCrossAttn (the LM shell) and its Embedding,
           fairseq/modules/mega_layer.py MegaDecoderLayer -> moving_average_gated_attention.py
           (MovingAverageGatedAttention), exponential_moving_average.py (MultiHeadEMA),
           relative_positional_bias.py, sequence_norm.py (+ scale_norm, root_mean_square_norm,
           layer_norm), normalized_feedforward_network.py, fairseq/utils.py.
  SeqBoat  fairseq/models/seqboat_lm.py  SeqBoatDecoderNoCrossAttn and its Embedding,
           fairseq/modules/seqboat_layer.py SeqBoatDecoderLayer -> seqboat_unit.py (SeqBoatUnit),
           seqboat_utils.py, its own exponential_moving_average.py, the same norms / NFFN.
The shell is the original decoder built as seqlab's config says (sec. 4.6 / 6.8 of
shared/spec/mega-seqboat.md): sqrt(D)-scaled embedding (emb_scale sqrt_d; none ->
no_scale_embedding), the layers, the final norm when prenorm (affine or not as the checkpoint
has norm_f.*), the output projection tied to the embedding (share_decoder_input_output_embed).

Imports: the checkout is put first on sys.path and `import fairseq` runs its own __init__ (which
imports the whole toolkit). On this machine (Debian python3-torch 1.13, numpy 1.24, no pip
registry) that needs, and only then gets, the following; each is printed when applied:
  numpy.float      fairseq/data/indexed_dataset.py:89 uses the alias at import time (a dtype-code
                   table); numpy 1.24 removed it. Set back to the builtin `float` it always was.
  sklearn (+ .model_selection)   fairseq/data/audio/speech_commands_dataset.py:23; a dataset,
                   unused. Empty stub whose attributes raise when called.
  fairseq.data.token_block_utils_fast   the Cython extension (not built in a source checkout)
                   imported by fairseq/data/token_block_dataset.py:11; data loading, unused. Stub.
  scipy, opt_einsum   (SeqBoat) imported by fairseq/modules/ssm/*.py and ops/*.py (S4 kernels,
                   SeqBoatUnit's s4d path is hard-wired off, seqboat_unit.py:75). Stubs that raise.
  einops           (SeqBoat) USED: seqboat_utils.py:14 imports rearrange, repeat, pack, unpack,
                   and SeqBoatUnit.local_attention lays tensors out with rearrange / pack / unpack.
                   No Debian package exists; the stand-in below is an exact reshape / permute
                   (rearrange with names, groups, `...`, `(...)` and a literal 1; pack / unpack
                   with one `*`), checked against explicit torch ops by --selftest. `repeat` and
                   `reduce` (not on the path) raise. A real einops, when importable, is used.
Nothing else is replaced. No CUDA-only kernel is on the path: the EMA convolves with torch.fft
(exponential_moving_average.py:208-211), fairseq's LayerNorm is torch.nn.LayerNorm without CUDA
/ apex (layer_norm.py:29-34), and SeqBoat's CUDA extensions (modules/csrc: cauchy, fftconv) only
serve the S4 modules. So no kernel had to be swapped for a torch equivalent.

Name map (seqlab -> original), per layer i; b = i for arch "s"*n, b = 2i (mixer) / 2i+1 (FFN)
for "sf"*n; original prefix O = layers.i.mega_layer. (MEGA) or layers.i.slag_layer. (SeqBoat):
  embed.weight (V, D)                 -> embed_tokens.weight (V+1, D), row V = the pad row, zero;
                                         output_projection.weight is the same tensor (tied)
  norm_f.weight / .bias               -> final_norm.norm.weight / .bias (only with affine)
  blocks.b.mixer.norm.weight / .bias  -> O norm.norm.weight / .bias (layernorm, rmsnorm: weight)
  blocks.b.mixer.norm.weight (1)      -> O norm.norm.scalar (scalenorm)
  blocks.b.mixer.norm.running_mean/var-> O norm.norm.running_mean / running_var (batchnorm)
  blocks.b.mixer.move.delta (K_D, N)  -> O move.delta (K_D, N, 1)   (alpha, beta likewise)
  blocks.b.mixer.move.gamma (K_D, N)  -> O move.gamma;  move.omega (D) -> O move.omega
  blocks.b.mixer.gamma, .beta (2, Z)  -> O gamma, beta
  blocks.b.mixer.{v,mx,h}_proj.*      -> O {v,mx,h}_proj.*     (MEGA; Linear (out, in) as is)
  blocks.b.mixer.{hx,mx,h}_proj.*     -> O {hx,mx,h}_proj.*    (SeqBoat)
  blocks.b.mixer.q_router.temp (1)    -> O q_router.temp       (SeqBoat)
  blocks.b.mixer.rel_pos_bias.rel_pos_bias (2P-1) -> O rel_pos_bias.rel_pos_bias (simple)
  blocks.b.mixer.rel_pos_bias.alpha/.beta (1, Z)  -> O rel_pos_bias.alpha / .beta (MEGA rotary)
  blocks.b+1.norm.*                   -> layers.i.nffn.norm.norm.*
  blocks.b+1.ffn.fc1.* / fc2.*        -> layers.i.nffn.fc1.* / fc2.*
Kept from the original (constants, no seqlab counterpart): the decoder's `version` buffer, the
rotary bias' `_float_tensor` dtype buffer, batchnorm's num_batches_tracked.
The pad row: the original decoder treats every id equal to its padding index as padding
(mega_lm.py:393, seqboat_lm.py:404) and pads with it to a chunk multiple, so the shell gets a
vocabulary of V+1 with padding index V, which no seqlab id equals; the loss is the token
cross-entropy over the first V logits (the pad row's logit, 0, is dropped), targets < 0 ignored.

Precision: the float64 run is float64 except where the original itself casts to float32: the
EMA's FFT (exponential_moving_average.py:208-209, `k.float()`, `x.float()`; SeqBoat's copy
:229-230), every attention softmax (utils.py:466, dtype=torch.float32), SeqBoat's router softmax
(seqboat_utils.py:203), RoPE (seqboat_utils.py:392-395 complex64, :410 `xq.float()`), the gathers
in extract (seqboat_utils.py:52) and of the compressed bias (seqboat_unit.py:342), and MEGA's
rotary-bias sinusoids (relative_positional_bias.py:70-71 computed in float32). Expect a float64
vs float32 spread of ~1e-7, not ~1e-15.

How the original decides the things the spec calls quirks (facebookresearch/mega = [mega],
renll/SeqBoat = [sb]):
  * pad-to-chunk (MEGA LM): [mega] mega_lm.py:376-380: if 0 < chunk < L and L % chunk != 0 the
    ids are right-padded with the padding index to the next multiple; :393-403 the padding mask
    is `ids == pad` (None when there is none) and the embedding is zeroed there; every layer gets
    that mask (EMA input zeroed, keys masked: -inf for softmax, weights times 0 after relu2/laplace);
    :451 asserts divisibility for the C x C causal mask; :424-429 zero the pads and cut the
    outputs back to L. With a causal model the pads sit after every real token, so real outputs
    do not depend on them. chunk = -1 means one chunk; seqlab chunk_size 0 is passed as -1
    ([mega] moving_average_gated_attention.py:82 would otherwise build a 2*0-1 bias table).
    The SeqBoat decoder never pads: its chunk size is hard-wired to -1 ([sb] seqboat_lm.py:260-262,
    `local = True`), whatever --decoder-chunk-size is; the layers get the window separately.
  * SeqBoat local-attention masking ([sb] seqboat_unit.py:180-305): masked logits are filled
    (masked_fill, BEFORE the activation) with TOKEN_SELF_ATTN_VALUE = -5e4 (seqboat_utils.py:19)
    for softmax and with 0 for relu2 / laplace (:245-248): causal window j < i or i > j + W
    (:250-257), look-around slots outside the sequence (:230, :268), key padding (:271-281).
    relu2(0) = 0, but laplace(0) = 0.5(1 + erf(-0.707107/(0.282095*sqrt 2))) = 0.0062, so with
    laplace every masked slot of the 2W (causal) / 3W look-around keys keeps weight 0.0062, and
    the values it multiplies are: the compressed padding slots' Vv = silu(b_v) (mx = 0 there; b_v the V part of
    mx_proj.bias),
    autopad slots 0, and, for the look-around blocks outside the sequence, -1: look_around pads
    keys AND values with pad_value = -1 (:183, :219-220, seqboat_utils.py:335-340). seqlab
    deliberately masks exactly (docs/mega-seqboat.md), so a laplace run with chunk_size > 0 is expected
    to differ from the original; softmax (exp(-5e4 - max) = 0) and relu2 agree.
  * SeqBoat routing: probs = softmax(u / exp(temp)) in float32 (seqboat_utils.py:187, :203);
    active = argmax == 1 (seqboat_unit.py:581-582; torch.max returns the first maximum, so a tie
    is inactive); n_max is the max over the whole batch (:591); compress iff n_max / L < threshold
    (:592, :597), threshold = 1 when chunk_size > 0 (:70-71), else 0.9 (the constructor default,
    SeqBoatDecoderLayer does not pass one). NOT compressing keeps the sequence uncompressed with
    the inactive tokens as key padding (:621); the local window then counts ORIGINAL positions,
    not active tokens, and relu2/laplace without a window divide by t + 1 of the original index
    (:372-374). The script prints, per layer, the active fraction and whether it compressed.
  * `prev_mx` (incremental decoding only, not used here): [sb] seqboat_unit.py:468-506 keeps the
    silu'd EMA outputs of previous steps, with a window: the last `truncation` of them
    (:488-491; `-max_len` with truncation None raises), re-routes and re-compresses them every
    step; it stores the padding mask as "prev_key_padding_mask" but reads "prev_padding_mask"
    (:478 vs :491, same in [mega] moving_average_gated_attention.py:262 vs :274), so a carried
    padding mask is never read back. One-token steps get attn_mask None from the decoder
    (seqboat_lm.py:422-425), so the layer runs NON-causal: relu2/laplace then divide by 2W
    instead of W (seqboat_unit.py:367-371) and the output is not dropped-out the causal way (:653,
    :669-672).

Differences between shared/spec/mega-seqboat.md and the original code:
  1. Spec 6.11 oracle 2 (batch invariance) does not hold in the original. The compress decision
     is batch-wide ([sb] seqboat_unit.py:591-597): with a window, one fully active row in the
     batch switches compression off for every row, and the others then get a window of W
     ORIGINAL positions with inactive keys masked (:619-621, :180-281) instead of W active tokens;
     without a window, relu2/laplace divide by t + 1 of the original index (:372-374) instead of
     the compressed rank; with laplace and a window, the n_max - n_b padding slots of a row add
     laplace(0) silu(b_v) each, so they too depend on the batch. Measured (self-test run, float64):
     a row scored alone vs in a batch where another row was fully active: max |logit change| 0.034.
     Spec 6.3 / 6.4 read literally describe what the original does; only the oracle is wrong.
  2. Spec 6.4 says masked logits become 0 before relu2/laplace and keys outside the sequence are
     masked, but not what the surviving laplace(0) weights multiply: -1 for look-around slots
     before the sequence (look_around pads keys and values with pad_value -1, seqboat_unit.py:183,
     :219-220, seqboat_utils.py:335-340), silu(b_v) for compressed padding slots (mx = 0 there),
     0 for autopad slots. Verified by the self-test: the spec with exactly this reproduces the
     original's loss to < 1e-8; with 0 instead of -1 it is 8e-5 off (3e-4 on another draw).
  3. Spec 6.8 "with local attention the decoder does not pad ... (its chunk size is forced to
     -1)": it is forced to -1 always ([sb] seqboat_lm.py:260-262, `local = True` hard-wired),
     local attention or not (no numerical consequence: without a window there is no chunking).
  4. Spec 1.1 names softmax as the only float32 computation; the original also casts the EMA FFT
     ([mega] exponential_moving_average.py:208-209, [sb] :229-230), the router softmax
     (seqboat_utils.py:203), RoPE (seqboat_utils.py:392-395, :410), the extract gather
     (seqboat_utils.py:52), the compressed-bias gather (seqboat_unit.py:342), and builds MEGA's
     rotary sinusoids in float32 (relative_positional_bias.py:70-71). Immaterial for float32
     seqlab; it bounds any float64 reference at ~1e-8 relative.
  5. Spec 6.2 "the temperature does not change which tokens are active (argmax of u)": the
     decision is taken on pi after the float32 softmax (seqboat_utils.py:203) by torch.max, first
     index on ties (seqboat_unit.py:581-582): when |u1 - u0| / tau is below float32 resolution
     pi_0 == pi_1 and the token is inactive although u1 > u0.
  6. Spec 4.3 "rows whose every key is padding are left unmasked": the original tests the chunk's
     keys, not a row's causally visible keys ([mega] moving_average_gated_attention.py:177-180);
     a row whose visible keys are all padding (left padding in a causal chunk) is all -inf (NaN).
     Cannot happen in the LM, where padding is only appended.
  7. Spec 6.7 (incremental SeqBoat) omits: truncation None makes `mx[:, -max_len:]` raise
     (seqboat_unit.py:489-490); the padding mask is stored as "prev_key_padding_mask" but read as
     "prev_padding_mask" (:491 vs :478; [mega] moving_average_gated_attention.py:274 vs :262);
     one-token steps get attn_mask None (seqboat_lm.py:422-425), so the layer runs non-causal:
     relu2/laplace scale by 2W instead of W (seqboat_unit.py:367-371) and the dropout placement
     of the non-causal branch applies (:653, :669-672). The spec's choice of the parallel forward
     as the parity reference stands.
Everything else in sections 1-4 and 6.1-6.8 that this LM path exercises agrees with the code
(the self-test below computes the spec directly and matches the original to <= 1.2e-8).

Measured against real seqlab runs (d_model 32, 2 layers, Z 8, H 24, N 4, tiny shakespeare, one
thread; --text with the defaults: the last 4 x 41 characters, seqlab's loss from `seqlab eval`
on exactly those windows), relative difference of the mean loss to the float64 original:
  the two CONFIG.yaml above (60 steps, checkpoints every 4; tests/ref/README.md has the losses):
  MEGA "sfsf" chunk 16 (40 ids padded to 48), softmax, rotary bias, pre LN, untruncated:
      step 4 4.7e-9, 8 3.9e-9, 12 2.3e-9, 20 7.2e-9, 40 4.0e-9, 60 2.5e-9
  SeqBoat "ss" W 8, softmax, RoPE (init_temp_scale 0.3): step 4 (both layers compressed, 56-58 %
      active) 1.7e-9; steps 20, 40, 60 (every token active) 1.7e-9, 1.8e-8, 9.7e-9; but step 8
      8.4e-8 and step 12 1.4e-7: there the density rule switched a layer to the UNCOMPRESSED path
      with inactive tokens left (layer 1 at step 8, 5 % inactive; layer 0 at step 12, 2.5 %), the
      original's window then counts original positions, and seqlab by design always compresses
      (src/mixers/seqboat.c header: batch invariance, spec 6.11.2; not listed in
      docs/mega-seqboat.md's deviations), i.e. its window counts active tokens. Not float32: the
      spec in float64 (spec_loss below) with the window over active ranks instead reproduces
      seqlab to 2e-9 / 7e-9 at those steps (the spec as written matches the float64 original to
      7e-10 / 2e-9); flipping the closest routing decision would move the loss by >= 1.5e-6. With
      a checkpoint every step (--ckpt_interval 1) the mixed steps 8, 9, 11-14 give 2.8e-8 ..
      4.8e-7 (the rank-window spec: <= 1.1e-8; at step 10 both windows coincide: 1.0e-10); a
      2-row batch of a row with 2 inactive tokens and a fully active row: 9.6e-7. Small here
      because the GAU's share of the residual is small after a few steps; it is not bounded by
      precision and may grow with training whenever a batch has such a mix.
  earlier runs (batches made the same way by a scratch script before --text existed; re-running
  the first through --text rebuilds the identical batch, ids, targets and seqlab loss, 3.96e-9):
  MEGA "sfsf" chunk 16 (40 ids padded to 48), truncation 24, softmax, simple, pre LN   4.0e-9
  MEGA "sfsf" no chunk, relu2, rotary bias                                             1.1e-8
  MEGA "sfsf" chunk 12 (padded), laplace, simple, scalenorm post                       3.7e-9
  SeqBoat "ss" after 2 steps (compressed, 51-66 % active): W 8 softmax RoPE 2.6e-9,
  W 8 relu2 simple 2.0e-10, no window relu2 truncation 16 7.8e-9; W 6 laplace 2.0e-6 (the
  deliberate laplace(0) deviation); after 60 steps (every token active, not compressed):
  W 8 softmax RoPE 2.5e-9, W 8 relu2 7.9e-9, no window laplace 8.3e-9.
  byte tokenizer: the MEGA config on the enwik8 slice (--dataset enwik8 --tokenizer byte --data
  ../shared/data/enwik8/enwik8.first4154399, 20 steps), --text that file (its last 4 x 41
  bytes): 1.3e-9.
The original in float32 is 1e-8 .. 1e-7 from its float64 run. About 1.5 s a check (seqlab eval
included).

The batch, --text mode (the way safari_hyena_check.py does it): B = --rows rows of T+1
consecutive characters of the text file (bytes for a byte-tokenizer run), from --offset (default
-1: the last B*(T+1), which for tiny shakespeare lie in seqlab's test split; --offset 0: the first
windows of the file); inputs the first T of each row, targets the last T, every target scored.
The run's vocab.json tokenizes them (char: code points, its <unk> id for unseen characters when
it has one; byte: the byte values). seqlab scores exactly these windows when the same characters
are its test file with eval_batch_size B and eval_tgt_len T (stream batching: B rows of T+1
tokens, one window each): the script copies the run (config.yaml, vocab.json, the checkpoint it
checks) to a temporary directory, writes the characters there as batch.txt and runs
    seqlab eval --run TMP --split test --dataset text --tokenizer <the vocabulary's type>
                --train_file TEXT --valid_file TMP/batch.txt --test_file TMP/batch.txt
                --eval_batch_size B --eval_tgt_len T --eval_stride 0 --eval_max_batches 0
                --lm_batching streams --threads 1
and reads the mean loss from TMP/metrics.jsonl (17 significant digits) after checking that it
scored B*T tokens. --seqlab_loss X takes X instead of running seqlab. --save_batch FILE writes
the batch made (layout below, source in the metadata), which --batch FILE reads back.

--batch FILE: int32 `ids` and `targets` (B, T), targets < 0 unscored, metadata `loss_sum`
(seqlab's summed loss) and `scored`. `seqlab eval --save_batch` writes this layout, but so far
for masked-LM batches only (src/cli/cmd_eval.c:45-46), hence --text for the LM; the self-test
writes such files.

--selftest writes fake seqlab runs (config.yaml in seqlab's format, ckpt-<step>.safetensors with
random parameters under seqlab's names plus optimizer entries that must be ignored, and a batch
file) for several MEGA and SeqBoat configurations, runs this script on each in a subprocess
(checking that every parameter is mapped: nothing missing, nothing unexpected), and, as the
stand-in for seqlab's loss, stores in the batch the loss of a direct float64 implementation of
the spec written below (`spec_*`), so the self-test also measures how well the spec describes the
original.
"""

import argparse
import glob
import importlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
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

SHIMS = []     # what was set or stubbed to make the checkout import (printed)


# --------------------------------------------------------------------------------------
# einops stand-in (exact layout operations), used only when einops cannot be imported
# --------------------------------------------------------------------------------------

def _einops_side(side):
    """'b (w n) d' -> [['b'], ['w', 'n'], ['d']]; a bare '...' stays the string '...',
    '(...)' is a group ['...']; a literal 1 is an empty group (a unit axis)."""
    groups, cur = [], None
    for tok in re.findall(r"\.\.\.|\(|\)|[A-Za-z_][A-Za-z0-9_]*|\d+", side):
        if tok == "(":
            cur = []
        elif tok == ")":
            groups.append(cur)
            cur = None
        elif tok.isdigit():
            if tok != "1":
                raise NotImplementedError("einops stand-in: only the literal 1")
            if cur is None:
                groups.append([])
        elif cur is not None:
            cur.append(tok)
        elif tok == "...":
            groups.append("...")
        else:
            groups.append([tok])
    return groups


def _einops_expand(groups, names):
    out = []
    for g in groups:
        if g == "...":
            out.extend([n] for n in names)
        else:
            out.append([a for x in g for a in (names if x == "..." else [x])])
    return out


def _einops_rearrange(tensor, pattern, **axes_lengths):
    left, right = (s.strip() for s in pattern.split("->"))
    lg, rg = _einops_side(left), _einops_side(right)
    n_ell = tensor.dim() - (len(lg) - 1) if "..." in lg else 0
    ell = [f"\0{i}" for i in range(n_ell)]
    lg, rg = _einops_expand(lg, ell), _einops_expand(rg, ell)
    if len(lg) != tensor.dim():
        raise ValueError(f"einops stand-in: {pattern!r} for a {tensor.dim()}-d tensor")
    sizes = dict(axes_lengths)
    for g, n in zip(lg, tensor.shape):
        unknown = [a for a in g if a not in sizes]
        known = math.prod(sizes[a] for a in g if a in sizes)
        if len(unknown) > 1:
            raise ValueError(f"einops stand-in: cannot infer {unknown} in {pattern!r}")
        if unknown:
            if known == 0 or n % known:
                raise ValueError(f"einops stand-in: {n} not divisible by {known} in {pattern!r}")
            sizes[unknown[0]] = n // known
        elif known != n:
            raise ValueError(f"einops stand-in: shape {tuple(tensor.shape)} does not match {pattern!r}")
    lnames = [a for g in lg for a in g]
    rnames = [a for g in rg for a in g]
    if sorted(lnames) != sorted(rnames) or len(set(lnames)) != len(lnames):
        raise ValueError(f"einops stand-in: axes differ in {pattern!r}")
    x = tensor.reshape([sizes[a] for a in lnames])
    x = x.permute([lnames.index(a) for a in rnames])
    return x.reshape([math.prod(sizes[a] for a in g) for g in rg])


def _einops_star(pattern):
    names = pattern.split()
    if names.count("*") != 1:
        raise NotImplementedError("einops stand-in: pack/unpack need exactly one '*'")
    return names.index("*"), len(names) - names.index("*") - 1


def _einops_pack(tensors, pattern):
    star, after = _einops_star(pattern)
    parts, shapes = [], []
    for t in tensors:
        mid = tuple(t.shape[star:t.dim() - after])
        shapes.append(mid)
        parts.append(t.reshape(*t.shape[:star], math.prod(mid), *t.shape[t.dim() - after:]))
    return torch.cat(parts, dim=star), shapes


def _einops_unpack(tensor, packed_shapes, pattern):
    star, _ = _einops_star(pattern)
    chunks = torch.split(tensor, [math.prod(s) for s in packed_shapes], dim=star)
    return [c.reshape(*c.shape[:star], *s, *c.shape[star + 1:]) for c, s in zip(chunks, packed_shapes)]


def _raising(name):
    def f(*args, **kwargs):
        raise NotImplementedError(f"{name} is a stub in mega_original_check.py (package missing)")
    return f


def _stub_module(name, raising_attrs=True, **attrs):
    m = types.ModuleType(name)
    m.__path__ = []
    m.__dict__.update(attrs)
    m.__stub__ = True
    if raising_attrs:
        def _getattr(attr, _n=name):
            if attr.startswith("__"):
                raise AttributeError(attr)
            return _raising(f"{_n}.{attr}")
        m.__getattr__ = _getattr
    sys.modules[name] = m
    parent, _, child = name.rpartition(".")
    if parent and parent in sys.modules:
        setattr(sys.modules[parent], child, m)
    return m


def _importable(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False


def install_shims(root, kind):
    """Makes `import fairseq` work on this machine; every step is recorded in SHIMS."""
    try:
        np.float  # noqa: B018
    except AttributeError:
        np.float = float
        SHIMS.append("numpy.float = float (alias removed in numpy 1.24; fairseq/data/indexed_dataset.py:89)")
    if not _importable("sklearn.model_selection"):
        _stub_module("sklearn")
        _stub_module("sklearn.model_selection")
        SHIMS.append("sklearn, sklearn.model_selection (fairseq/data/audio/speech_commands_dataset.py:23; unused)")
    data = os.path.join(root, "fairseq", "data")
    if not glob.glob(os.path.join(data, "token_block_utils_fast*.so")) + \
            glob.glob(os.path.join(data, "token_block_utils_fast*.pyd")):
        _stub_module("fairseq.data.token_block_utils_fast")
        SHIMS.append("fairseq.data.token_block_utils_fast (Cython extension, not built; "
                     "fairseq/data/token_block_dataset.py:11; unused)")
    if kind == "seqboat":
        if not _importable("einops"):
            _stub_module("einops", raising_attrs=False, rearrange=_einops_rearrange,
                         pack=_einops_pack, unpack=_einops_unpack,
                         repeat=_raising("einops.repeat"), reduce=_raising("einops.reduce"))
            SHIMS.append("einops (exact rearrange / pack / unpack stand-ins; used by SeqBoatUnit.local_attention)")
        for name, where in (("scipy", "fairseq/modules/ssm/hippo.py:9"),
                            ("opt_einsum", "fairseq/modules/ssm/*.py, fairseq/modules/ops/vandermonde.py:9")):
            if not _importable(name):
                _stub_module(name)
                SHIMS.append(f"{name} ({where}; S4 code, unused)")


def import_original(root, kind):
    root = os.path.abspath(root)
    lm_file = os.path.join(root, "fairseq", "models", "mega_lm.py" if kind == "mega" else "seqboat_lm.py")
    if not os.path.isfile(lm_file):
        sys.exit(f"--{kind} {root}: no {os.path.relpath(lm_file, root)} there")
    if any(k == "fairseq" or k.startswith("fairseq.") for k in sys.modules):
        sys.exit("a module named 'fairseq' is already imported")
    sys.path.insert(0, root)
    install_shims(root, kind)
    importlib.import_module("fairseq")    # the checkout's own __init__: the whole toolkit
    if kind == "mega":
        import fairseq.models.mega_lm as lm
        import fairseq.modules.moving_average_gated_attention as unit
    else:
        import fairseq.models.seqboat_lm as lm
        import fairseq.modules.seqboat_unit as unit
    for mod in (lm, unit):
        if not os.path.abspath(mod.__file__).startswith(root + os.sep):
            sys.exit(f"{mod.__name__} was imported from {mod.__file__}, not from {root}")
    return lm


# --------------------------------------------------------------------------------------
# seqlab run: config, checkpoint, settings
# --------------------------------------------------------------------------------------

MIXER_DEFAULTS = {  # docs/mega-seqboat.md, "Mixer keys"
    "z_dim": "64", "h_dim": "0", "n_dim": "16", "chunk_size": "0", "truncation": "0",
    "attention": "softmax", "rel_pos": "simple", "max_positions": "0", "local_pos": "false",
    "norm_type": "layernorm", "place": "", "dropout": "", "hidden_dropout": "0",
    "attention_dropout": "", "feature_dropout": "false", "init_temp_scale": "0.3",
}


def _flt(v, default=0.0):
    return float(v) if v not in (None, "") else default


def model_settings(cfg, params):
    def need(key, want, default=None):
        got = cfg.get(key, default)
        if got != want:
            sys.exit(f"unsupported for this check: {key} = {got!r} (need {want!r})")
    kind = cfg.get("mixer")
    if kind not in ("mega", "seqboat"):
        sys.exit(f"mixer {kind!r}: this script checks mega and seqboat")
    need("task", "lm")
    arch = cfg.get("arch", "")
    # arch wins over n_layer when set (seqlab train --help); the resolved config keeps both
    n = arch.count("s") if arch else int(cfg["n_layer"])
    arch = arch or "sf" * n
    if arch == "s" * n:
        ffn = False
    elif arch == "sf" * n:
        ffn = True
    else:
        sys.exit(f"arch {arch!r}: the original LM is n identical layers, 's' * n or 'sf' * n")
    for key, want, default in (("pos", "none", None), ("tie_weight", "true", None), ("causal", "true", "true"),
                               ("adaptive_softmax", "false", "false"), ("head_bias", "false", "false"),
                               ("encoder", "tokens", "tokens"), ("mem_len", "0", "0"),
                               ("arch_grammar", "plain", "plain")):
        need(key, want, default)
    if ffn:
        need("ffn", "mlp", "mlp")
        need("activation", "silu")   # the original has one activation_fn for the layer and the NFFN
    if any(k.startswith("blocks.") for k in cfg):
        sys.exit("unsupported: per-block sections in the config (the original's layers are identical)")
    odd = [k for k in cfg if k.startswith(("residual.", "ffn.")) and k not in (
        "residual.norm", "residual.place", "residual.dropout", "residual.ln_init",
        "ffn.d_inner", "ffn.activation", "ffn.dropout", "ffn.init_std", "ffn.init", "ffn.recompute")]
    if odd:
        sys.exit(f"unsupported config keys for this check: {odd}")
    if ffn and cfg.get("ffn.activation", "silu") != "silu":
        sys.exit("ffn.activation must be silu (the original NFFN uses the layer's activation_fn)")
    emb_scale = cfg.get("emb_scale", "none")
    if emb_scale not in ("sqrt_d", "none"):
        sys.exit(f"emb_scale {emb_scale!r}: the original scales by sqrt(D) or not at all")
    D = int(cfg["d_model"])
    mx = {k: cfg.get("mixer." + k, v) for k, v in MIXER_DEFAULTS.items()}
    norm = cfg.get("norm", "pre")
    if mx["place"] and mx["place"] != norm:
        sys.exit(f"mixer.place {mx['place']!r} differs from norm {norm!r}")
    if ffn and cfg.get("residual.norm", "layernorm") != mx["norm_type"]:
        sys.exit(f"residual.norm {cfg.get('residual.norm', 'layernorm')!r} (the FFN's) differs from "
                 f"mixer.norm_type {mx['norm_type']!r}: the original has one normalization_type")
    if ffn and cfg.get("residual.place", norm) != norm:
        sys.exit("residual.place differs from norm: the original has one normalize_before")
    rel = mx["rel_pos"]
    if rel not in ("simple", "rotary"):
        sys.exit(f"mixer.rel_pos {rel!r}: the original has only simple and rotary "
                 "(moving_average_gated_attention.py:83-88, seqboat_unit.py:98-117)")
    m0 = "blocks.0.mixer."
    Z, N = int(mx["z_dim"]), int(mx["n_dim"])
    H = int(mx["h_dim"]) or 2 * D
    C, T = int(mx["chunk_size"]), int(mx["truncation"])
    if params[m0 + "gamma"].shape != (2, Z) or params[m0 + "h_proj.weight"].shape != (D, H):
        sys.exit(f"checkpoint shapes do not match z_dim {Z} / h_dim {H}")
    if params[m0 + "move.delta"].shape != (D, N):
        sys.exit(f"move.delta {params[m0 + 'move.delta'].shape}: need ({D}, {N}) (causal, n_dim)")
    s = dict(kind=kind, n_layer=n, ffn=ffn, D=D, Z=Z, H=H, N=N, C=C, T=T, attention=mx["attention"],
             rel=rel, local_pos=mx["local_pos"] == "true" and kind == "seqboat",
             norm_type=mx["norm_type"], prenorm=norm == "pre", emb_scale=emb_scale,
             final_affine="norm_f.weight" in params, dropout=_flt(cfg.get("dropout")),
             feature_dropout=mx["feature_dropout"] == "true",
             max_len=int(cfg.get("max_len", "0") or 0) or int(cfg.get("tgt_len", "0") or 0),
             init_temp_scale=_flt(mx["init_temp_scale"], 0.3))
    s["attention_dropout"] = _flt(mx["attention_dropout"], _flt(cfg.get("dropatt")))
    s["hidden_dropout"] = _flt(mx["hidden_dropout"])
    if s["prenorm"] and "final_norm_affine" in cfg and (cfg["final_norm_affine"] == "true") != s["final_affine"]:
        sys.exit("final_norm_affine disagrees with the checkpoint's norm_f.*")
    if not s["prenorm"] and "norm_f.weight" in params:
        sys.exit("norm_f.* with norm: post: the original has no final norm there (mega_lm.py:281)")
    s["F"] = params["blocks.1.ffn.fc1.weight"].shape[0] if ffn else -1
    # the original's max_positions (P of the simple bias / rotary table), checked against the table
    P = (params[m0 + "rel_pos_bias.rel_pos_bias"].shape[0] + 1) // 2 if rel == "simple" else None
    if kind == "mega" and rel == "simple" and C > 0 and P != C:
        sys.exit(f"simple bias of {P} positions with chunk_size {C}: the original sizes it by the chunk")
    if kind == "seqboat" and s["local_pos"] and rel == "simple" and C > 0 and P != 3 * C:
        sys.exit(f"local_pos bias of {P} positions: the original has 3 * chunk_size = {3 * C}")
    s["max_positions"] = P if P is not None else max(s["max_len"], 1)
    return s


def original_args(s):
    a = argparse.Namespace(
        decoder_embed_dim=s["D"], decoder_input_dim=s["D"], decoder_hidden_dim=s["H"],
        decoder_z_dim=s["Z"], decoder_n_dim=s["N"], decoder_ffn_embed_dim=s["F"],
        decoder_layers=s["n_layer"], decoder_chunk_size=s["C"] if s["C"] > 0 else -1,
        dropout=s["dropout"], attention_dropout=s["attention_dropout"], hidden_dropout=s["hidden_dropout"],
        activation_dropout=0.0, feature_dropout=s["feature_dropout"],
        truncation_length=s["T"] if s["T"] > 0 else None, rel_pos_bias=s["rel"],
        max_target_positions=s["max_positions"], max_source_positions=s["max_positions"],
        activation_fn="silu", attention_activation_fn=s["attention"],
        normalization_type=s["norm_type"], normalize_before=s["prenorm"], normalize_embedding=False,
        no_scale_embedding=s["emb_scale"] != "sqrt_d", no_affine_final_norm=not s["final_affine"],
        share_decoder_input_output_embed=True, adaptive_softmax_cutoff=None, adaptive_softmax_dropout=0,
        adaptive_softmax_factor=4, adaptive_input=False, tie_adaptive_weights=False, tie_adaptive_proj=False,
        local_pos=s["local_pos"], init_temp_scale=s["init_temp_scale"])
    return a


class _Dictionary:
    """What the decoder asks of a fairseq Dictionary here: its length and pad index (V)."""

    def __init__(self, n_symbols):
        self.n = n_symbols

    def __len__(self):
        return self.n + 1

    def pad(self):
        return self.n


def build_original(lm, s, V, dtype):
    args = original_args(s)
    embed = lm.Embedding(V + 1, s["D"], V)
    cls = lm.MegaDecoderNoCrossAttn if s["kind"] == "mega" else lm.SeqBoatDecoderNoCrossAttn
    dec = cls(args, _Dictionary(V), embed)
    return dec.to(dtype).eval()


def _norm_map(src, dst, norm_type):
    if norm_type == "scalenorm":
        return [(dst + "scalar", src + "weight")]
    if norm_type == "rmsnorm":
        return [(dst + "weight", src + "weight")]
    names = ["weight", "bias"] + (["running_mean", "running_var"] if norm_type in ("batchnorm", "syncbatchnorm") else [])
    return [(dst + w, src + w) for w in names]


def name_map(s):
    """[(original name, seqlab name)] for every tensor the original takes from the checkpoint."""
    out = []
    unit = "mega_layer" if s["kind"] == "mega" else "slag_layer"
    for i in range(s["n_layer"]):
        b = 2 * i if s["ffn"] else i
        src, dst = f"blocks.{b}.mixer.", f"layers.{i}.{unit}."
        out += _norm_map(src + "norm.", dst + "norm.norm.", s["norm_type"])
        for p in ("delta", "alpha", "beta", "gamma", "omega"):
            out.append((dst + "move." + p, src + "move." + p))
        projs = ("v_proj", "mx_proj", "h_proj") if s["kind"] == "mega" else ("hx_proj", "mx_proj", "h_proj")
        for p in projs:
            out += [(dst + p + ".weight", src + p + ".weight"), (dst + p + ".bias", src + p + ".bias")]
        out += [(dst + "gamma", src + "gamma"), (dst + "beta", src + "beta")]
        if s["kind"] == "seqboat":
            out.append((dst + "q_router.temp", src + "q_router.temp"))
        if s["rel"] == "simple":
            out.append((dst + "rel_pos_bias.rel_pos_bias", src + "rel_pos_bias.rel_pos_bias"))
        elif s["kind"] == "mega":
            out += [(dst + "rel_pos_bias.alpha", src + "rel_pos_bias.alpha"),
                    (dst + "rel_pos_bias.beta", src + "rel_pos_bias.beta")]
        if s["ffn"]:
            f, o = f"blocks.{b + 1}.", f"layers.{i}.nffn."
            out += _norm_map(f + "norm.", o + "norm.norm.", s["norm_type"])
            for p in ("fc1", "fc2"):
                out += [(o + p + ".weight", f + "ffn." + p + ".weight"), (o + p + ".bias", f + "ffn." + p + ".bias")]
    if s["final_affine"]:
        out += _norm_map("norm_f.", "final_norm.norm.", s["norm_type"])
    return out


KEPT = re.compile(r"^(version|(layers\.\d+\.(mega_layer|slag_layer|nffn)|final_norm)\..*(_float_tensor|num_batches_tracked))$")


def load_seqlab(dec, params, s, V):
    """Copies the checkpoint into the original decoder; returns (n mapped, kept original tensors)."""
    sd = dec.state_dict()
    new, used = {}, set()
    for dst, src in name_map(s):
        if src not in params:
            raise KeyError(f"checkpoint has no {src} (for {dst})")
        if dst not in sd:
            raise KeyError(f"the original has no {dst} (for {src})")
        v = torch.from_numpy(np.asarray(params[src], dtype=np.float64))
        if v.dim() + 1 == sd[dst].dim() and sd[dst].shape[-1] == 1:
            v = v.unsqueeze(-1)                      # EMA delta / alpha / beta: (K_D, N) -> (K_D, N, 1)
        if tuple(v.shape) != tuple(sd[dst].shape):
            raise ValueError(f"{src} {tuple(v.shape)} -> {dst} {tuple(sd[dst].shape)}")
        new[dst] = v.to(sd[dst].dtype)
        used.add(src)
    E = torch.from_numpy(np.asarray(params["embed.weight"], dtype=np.float64))
    if tuple(E.shape) != (V, s["D"]):
        raise ValueError(f"embed.weight {tuple(E.shape)}, need ({V}, {s['D']})")
    table = torch.zeros(V + 1, s["D"], dtype=torch.float64)
    table[:V] = E                                    # row V: the pad row, zero as the original inits it
    new["embed_tokens.weight"] = new["output_projection.weight"] = table.to(sd["embed_tokens.weight"].dtype)
    used.add("embed.weight")
    unused = sorted(set(params) - used)
    if unused:
        raise ValueError(f"checkpoint parameters not mapped: {unused}")
    kept = sorted(set(sd) - set(new))
    odd = [k for k in kept if not KEPT.match(k)]
    if odd:
        raise ValueError(f"original tensors with no seqlab counterpart: {odd}")
    sd.update(new)
    missing, unexpected = dec.load_state_dict(sd, strict=True)
    assert not missing and not unexpected
    if dec.output_projection.weight is not dec.embed_tokens.weight:
        raise ValueError("output projection is not tied")
    return len(used), kept


def routing_hooks(dec):
    """Records, per SeqBoat layer, what the original decided (forward hooks; nothing changed)."""
    seen = []

    def hook(layer_idx, unit):
        def f(module, inputs, output):
            px = output["probs"]
            q_p, q_ind = px.max(dim=-1, keepdim=True)        # as seqboat_unit.py:581-582
            mask_q = q_ind == 1
            max_sl = int(mask_q.sum(-2).max())
            L = mask_q.shape[-2]
            seen.append(dict(layer=layer_idx, active=float(mask_q.float().mean()), n_max=max_sl, L=L,
                             compress=max_sl / L < unit.density_threshold,
                             threshold=unit.density_threshold, local=unit.local,
                             softmax=unit.attention_activation == "softmax"))
        return f
    handles = []
    for i, layer in enumerate(dec.layers):
        u = layer.slag_layer
        if u.latent_conf:
            handles.append(u.q_router.register_forward_hook(hook(i, u)))
    return seen, handles


def original_loss(dec, ids, targets, V):
    with torch.no_grad():
        logits, _ = dec(torch.from_numpy(ids))
        logits = logits[..., :V]
        return F.cross_entropy(logits.reshape(-1, V), torch.from_numpy(targets).reshape(-1),
                               ignore_index=-100).item()


def tokenize(data, vocab):
    """The run's tokenizer on the batch characters (str for char, bytes for byte)."""
    if vocab["type"] == "char":
        index = {c: i for i, c in enumerate(vocab["symbols"])}
        unk = len(vocab["symbols"]) if vocab.get("unk") else None
        out = []
        for ch in data:
            i = index.get(ord(ch), unk)
            if i is None:
                sys.exit(f"character {ch!r} is not in the run's vocabulary (and it has no <unk>)")
            out.append(i)
        return np.array(out, dtype=np.int64)
    if vocab["type"] == "byte":
        return np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    sys.exit(f"--text: unsupported tokenizer {vocab['type']!r} (char or byte)")


def seqlab_text_loss(seqlab, run, ckpt, vocab_type, text_file, data, B, T):
    """`seqlab eval` on exactly the batch's windows; its mean loss."""
    return seqlab_run.eval_text_loss(seqlab, run, ckpt, text_file, data, B, T, B * T,
                                     ["--tokenizer", vocab_type, "--lm_batching", "streams"])


def text_batch(args, cfg, ckpt, V):
    """--text: B rows of T+1 consecutive tokens of the file and seqlab's loss on exactly them.
    Returns ids, targets (B, T) int64, seqlab's mean loss, a source note."""
    vocab_file = os.path.join(args.run, "vocab.json")
    if not os.path.isfile(vocab_file):
        sys.exit(f"--text needs the run's vocab.json ({vocab_file})")
    with open(vocab_file) as fh:
        vocab = json.load(fh)
    B = args.rows
    T = args.tgt_len or int(cfg.get("eval_tgt_len", "0") or 0) or int(cfg["tgt_len"])
    n = B * (T + 1)
    if vocab["type"] == "byte":
        with open(args.text, "rb") as fh:
            text = fh.read()
    else:
        with open(args.text, encoding="utf-8", newline="") as fh:
            text = fh.read()
    off = len(text) - n if args.offset < 0 else args.offset
    data = text[off:off + n]
    if off < 0 or len(data) != n:
        sys.exit(f"--text {args.text}: {len(text)} {'bytes' if vocab['type'] == 'byte' else 'characters'}, "
                 f"too short for {B} x {T + 1} from offset {args.offset}")
    ids_all = tokenize(data, vocab)
    if len(ids_all) != n or ids_all.max() >= V:
        sys.exit("the batch's tokens do not fit the run's vocabulary")
    rows = ids_all.reshape(B, T + 1)
    ids, targets = rows[:, :T].copy(), rows[:, 1:].copy()
    unit = "bytes" if vocab["type"] == "byte" else "characters"
    where = f"{args.text} {unit} [{off}, {off + n}) as {B} rows of {T + 1}"
    print(f"batch: {where}: {B * T} scored targets")
    if args.seqlab_loss is not None:
        mean, how = args.seqlab_loss, "--seqlab_loss"
    else:
        mean = seqlab_text_loss(args.seqlab, args.run, ckpt, vocab["type"], args.text, data, B, T)
        how = f"seqlab eval --dataset text on {where}, {os.path.basename(ckpt)}"
    if args.save_batch:
        safetensors_io.save(args.save_batch, {"ids": ids.astype(np.int32), "targets": targets.astype(np.int32)},
                            {"format": "seqlab-batch", "loss_sum": repr(mean * B * T), "scored": str(B * T),
                             "source": how})
        print(f"wrote {args.save_batch}")
    return ids, targets, mean, how


def check(args):
    kind_given = {"mega": args.mega, "seqboat": args.seqboat}
    cfg = run_config(args.run)
    ckpt = checkpoint_path(args.run, args.step)
    params, meta = safetensors_io.load(ckpt)
    params = {k[len("param."):] if k.startswith("param.") else k: v for k, v in params.items()
              if not k.startswith(("optim.", "train."))}
    s = model_settings(cfg, params)
    root = kind_given[s["kind"]]
    if not root:
        sys.exit(f"the run's mixer is {s['kind']}: give --{s['kind']} (a checkout of "
                 + ("facebookresearch/mega" if s["kind"] == "mega" else "renll/SeqBoat") + ")")
    V = int(meta.get("vocab_size", params["embed.weight"].shape[0]))
    if args.text:
        ids, targets, seqlab_mean, source = text_batch(args, cfg, ckpt, V)
        scored = ids.size
    else:
        batch, bmeta = safetensors_io.load(args.batch)
        ids = batch["ids"].astype(np.int64)
        targets = batch["targets"].astype(np.int64)
        targets[targets < 0] = -100
        scored = int(bmeta["scored"])
        if scored != int((targets >= 0).sum()):
            sys.exit(f"batch: scored {scored} but {(targets >= 0).sum()} targets >= 0")
        seqlab_mean = float(bmeta["loss_sum"]) / scored
        source = bmeta.get("source")
    B, T = ids.shape
    if ids.min() < 0 or ids.max() >= V:
        sys.exit(f"batch ids outside [0, {V})")

    lm = import_original(root, s["kind"])
    print(f"original: {os.path.abspath(root)} ({lm.__file__})")
    print("import shims: " + ("; ".join(SHIMS) if SHIMS else "none"))
    print(f"checkpoint {ckpt}; batch {B} x {T}, {scored} scored tokens; vocabulary {V}")
    print(f"model: {s['kind']}, {s['n_layer']} layers{' + NFFN ' + str(s['F']) if s['ffn'] else ''}, "
          f"D {s['D']}, Z {s['Z']}, H {s['H']}, N {s['N']}, chunk {s['C']}, truncation {s['T'] or None}, "
          f"{s['attention']}, rel_pos {s['rel']} (P {s['max_positions']}){', local_pos' if s['local_pos'] else ''}, "
          f"{s['norm_type']} {'pre' if s['prenorm'] else 'post'}, final norm affine {s['final_affine']}, "
          f"emb_scale {s['emb_scale']}")
    if s["kind"] == "mega" and 0 < s["C"] < T and T % s["C"]:
        print(f"note: the original pads the {T} ids to {math.ceil(T / s['C']) * s['C']} (mega_lm.py:376-380)")
    if s["kind"] == "seqboat" and s["attention"] == "laplace" and s["C"] > 0:
        print("note: laplace with a window: the original weighs masked slots by laplace(0) = 0.0062, "
              "seqlab masks exactly (deliberate deviation): a difference is expected")
    results = {}
    for dtype in (torch.float64, torch.float32):
        dec = build_original(lm, s, V, dtype)
        n_mapped, kept = load_seqlab(dec, params, s, V)
        seen, handles = routing_hooks(dec) if s["kind"] == "seqboat" else ([], [])
        results[dtype] = original_loss(dec, ids, targets, V)
        for h in handles:
            h.remove()
        if dtype == torch.float64:
            print(f"mapped {n_mapped} checkpoint tensors, none missing or unexpected; kept from the "
                  f"original: {', '.join(sorted({k.rsplit('.', 1)[-1] for k in kept})) or 'nothing'}")
            ln = [type(m).__name__ for m in dec.modules() if "LayerNorm" in type(m).__name__]
            if ln:
                print(f"layer norm class: {sorted(set(ln))}")
            for r in seen:
                differs = not r["compress"] and r["active"] < 1.0 and (r["local"] or not r["softmax"])
                print(f"seqboat layer {r['layer']}: active {r['active']:.3f}, n_max {r['n_max']} of {r['L']}, "
                      f"threshold {r['threshold']}: {'compressed' if r['compress'] else 'NOT compressed'}"
                      + (" (the original's window / relu2-laplace len count original positions here; seqlab "
                         "always compresses, src/mixers/seqboat.c: a difference is expected)" if differs else ""))
    print(f"seqlab:            mean loss {seqlab_mean:.17g}" + (f"   [{source}]" if source else ""))
    print(f"original float64:  mean loss {results[torch.float64]:.17g}")
    print(f"original float32:  mean loss {results[torch.float32]:.17g}")
    ref = results[torch.float64]
    r64 = abs(seqlab_mean - ref) / abs(ref)
    r32 = abs(seqlab_mean - results[torch.float32]) / abs(ref)
    print(f"relative difference seqlab vs original float64: {r64:.2e}")
    print(f"relative difference seqlab vs original float32: {r32:.2e}")
    print(f"relative difference original float32 vs float64: "
          f"{abs(results[torch.float32] - ref) / abs(ref):.2e}")
    ok = r64 <= args.tol
    print("OK" if ok else f"FAIL (tolerance {args.tol:g})")
    return 0 if ok else 1


# --------------------------------------------------------------------------------------
# self-test: fake seqlab runs, and the spec written out directly (float64) as seqlab's stand-in
# --------------------------------------------------------------------------------------

def spec_norm(x, kind, p, prefix, eps=1e-5):
    w = p.get(prefix + "weight")
    if kind == "layernorm":
        return F.layer_norm(x, (x.shape[-1],), w, p.get(prefix + "bias"), eps)
    if kind in ("scalenorm", "rmsnorm"):
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        return y * w if w is not None else y
    raise NotImplementedError(kind)


def spec_ema(x, p, pre, T):
    """sec. 2.2-2.3: y_t = sum_{j<=min(t,T_eff-1)} k_j x_{t-j} + omega x_t (before the activation)."""
    L = x.shape[1]
    Te = L if T <= 0 else min(T, L)
    pp, a = torch.sigmoid(p[pre + "delta"]), torch.sigmoid(p[pre + "alpha"])
    q = 1 - pp * a
    N = pp.shape[1]
    j = torch.arange(Te, dtype=x.dtype)
    k = math.sqrt(1.0 / N) * torch.einsum("dn,dnj->dj", p[pre + "gamma"] * pp * p[pre + "beta"],
                                          torch.exp(j.view(1, 1, -1) * torch.log(q).unsqueeze(-1)))
    lag = torch.arange(L).view(-1, 1) - torch.arange(L).view(1, -1)          # t - s
    Kt = torch.where((lag >= 0) & (lag < Te), k[:, lag.clamp(0, Te - 1)], torch.zeros((), dtype=x.dtype))
    return torch.einsum("dts,bsd->btd", Kt, x) + p[pre + "omega"] * x


def spec_act(kind, s):
    if kind == "relu2":
        return F.relu(s) ** 2
    if kind == "laplace":
        return 0.5 * (1 + torch.erf((s - 0.707107) / (0.282095 * math.sqrt(2.0))))
    raise NotImplementedError(kind)


def spec_simple(b, qpos, kpos, clamp):
    P = (b.shape[0] + 1) // 2
    idx = P - 1 + kpos.view(1, -1) - qpos.view(-1, 1)
    if not clamp and (idx.min() < 0 or idx.max() > 2 * P - 2):
        raise ValueError("sequence beyond the simple bias")
    return b[idx.clamp(0, 2 * P - 2)]


def spec_mega_rotary_bias(alpha, beta, pos):
    half = alpha.shape[-1] // 2
    f = torch.exp(torch.arange(half, dtype=alpha.dtype) * -(math.log(10000) / half))
    th = pos.to(alpha.dtype).view(-1, 1) * f.view(1, -1)

    def rot(v):
        v1, v2 = v[..., :half], v[..., half:]
        return torch.cat([v1 * th.cos() - v2 * th.sin(), v2 * th.cos() + v1 * th.sin()], -1)
    return rot(alpha.expand(len(pos), -1)) @ rot(beta.expand(len(pos), -1)).T


def spec_rope(v, pos):
    Z = v.shape[-1]
    th = pos.to(v.dtype).view(-1, 1) * 10000.0 ** (-torch.arange(0, Z, 2, dtype=v.dtype) / Z).view(1, -1)
    v1, v2 = v[..., 0::2], v[..., 1::2]
    out = torch.stack([v1 * th.cos() - v2 * th.sin(), v1 * th.sin() + v2 * th.cos()], -1)
    return out.flatten(-2)


def spec_mega_layer(X, p, pre, s):
    D, Z, H, C = s["D"], s["Z"], s["H"], s["C"]
    R, L = X, X.shape[1]
    Xh = spec_norm(X, s["norm_type"], p, pre + "norm.") if s["prenorm"] else X
    V = F.silu(F.linear(Xh, p[pre + "v_proj.weight"], p[pre + "v_proj.bias"]))
    M = F.silu(spec_ema(Xh, p, pre + "move.", s["T"]))
    U, ZR, Hx = torch.split(F.linear(M, p[pre + "mx_proj.weight"], p[pre + "mx_proj.bias"]), [D, Z + H, D], -1)
    U = torch.sigmoid(U)
    Zs, Rg = torch.split(F.silu(ZR), [Z, H], -1)
    Q = Zs * p[pre + "gamma"][0] + p[pre + "beta"][0]
    K = Zs * p[pre + "gamma"][1] + p[pre + "beta"][1]
    t = torch.arange(L)
    cid, loc = (t // C, t % C) if 0 < C else (torch.zeros_like(t), t)
    allowed = (cid.view(-1, 1) == cid.view(1, -1)) & (t.view(1, -1) <= t.view(-1, 1))
    if s["rel"] == "simple":
        bias = spec_simple(p[pre + "rel_pos_bias.rel_pos_bias"], loc, loc, clamp=False)
    else:
        bias = spec_mega_rotary_bias(p[pre + "rel_pos_bias.alpha"], p[pre + "rel_pos_bias.beta"], loc)
    if s["attention"] == "softmax":
        S = (Q * Z ** -0.5) @ K.transpose(1, 2) + bias
        A = torch.softmax(S.masked_fill(~allowed, float("-inf")), -1)
    else:
        S = Q @ K.transpose(1, 2) / (loc.view(-1, 1) + 1).to(X.dtype) + bias
        A = spec_act(s["attention"], S) * allowed
    O = A @ V
    Hh = F.silu(Hx + F.linear(O * Rg, p[pre + "h_proj.weight"], p[pre + "h_proj.bias"]))
    Y = R + U * (Hh - R)
    return Y if s["prenorm"] else spec_norm(Y, s["norm_type"], p, pre + "norm.")


def spec_seqboat_layer(X, p, pre, s, exact_mask=True):
    D, Z, H, W = s["D"], s["Z"], s["H"], s["C"]
    R, (B, L, _) = X, X.shape
    Xh = spec_norm(X, s["norm_type"], p, pre + "norm.") if s["prenorm"] else X
    M = F.silu(spec_ema(Xh, p, pre + "move.", s["T"]))
    u, Hx = torch.split(F.linear(M, p[pre + "hx_proj.weight"], p[pre + "hx_proj.bias"]), [2, D], -1)
    pi = torch.softmax(u / torch.exp(p[pre + "q_router.temp"]), -1)
    act = pi[..., 1] > pi[..., 0]
    g = act.to(X.dtype) * pi[..., 1]
    n_max = int(act.sum(1).max())
    compress = n_max / L < (1.0 if W > 0 else 0.9)
    Hout = torch.zeros_like(X)
    for b in range(B):
        idx = act[b].nonzero().flatten() if compress else torch.arange(L)
        n = len(idx)
        if n == 0:
            continue
        kvalid = torch.ones(n, dtype=torch.bool) if compress else act[b]
        Zs, Rg, Vv = torch.split(F.silu(F.linear(M[b, idx], p[pre + "mx_proj.weight"], p[pre + "mx_proj.bias"])),
                                 [Z, H, H], -1)
        Q = Zs * p[pre + "gamma"][0] + p[pre + "beta"][0]
        K = Zs * p[pre + "gamma"][1] + p[pre + "beta"][1]
        r = torch.arange(n)
        allowed = (r.view(1, -1) <= r.view(-1, 1)) & kvalid.view(1, -1)
        if W > 0:
            allowed &= (r.view(-1, 1) - r.view(1, -1)) <= W
        bias = 0.0
        if s["rel"] == "rotary":
            Q, K = spec_rope(Q, idx), spec_rope(K, idx)
        elif s["local_pos"]:
            Pl = (p[pre + "rel_pos_bias.rel_pos_bias"].shape[0] + 1) // 2
            off = (Pl - 1 + W + r.view(1, -1) - r.view(-1, 1)).clamp(0, 2 * Pl - 2)
            bias = p[pre + "rel_pos_bias.rel_pos_bias"][off]
        else:
            bias = spec_simple(p[pre + "rel_pos_bias.rel_pos_bias"], idx, idx, clamp=True)
        if s["attention"] == "softmax":
            S = (Q * Z ** -0.5) @ K.T + bias
            A = torch.softmax(S.masked_fill(~allowed, float("-inf")), -1)
            A = torch.where(allowed.any(-1, keepdim=True), A, torch.zeros((), dtype=A.dtype))  # rows g = 0
        else:
            ln = float(W) if W > 0 else (r.view(-1, 1) + 1).to(X.dtype)
            S = (Q / ln) @ K.T + bias
            A = spec_act(s["attention"], S) * allowed
        O = A @ Vv
        if not exact_mask and W > 0 and s["attention"] == "laplace":
            # the original's parity behaviour (seqboat_unit.py:245-281): each masked slot of the
            # look-around blocks keeps laplace(0) and adds its value: real but masked keys their Vv,
            # the compressed padding slots silu(b_v), autopad slots 0, slots before the sequence -1
            n_slots = n_max if compress else L
            v_pad = F.silu(p[pre + "mx_proj.bias"][Z + H:])
            w0 = spec_act("laplace", torch.zeros((), dtype=X.dtype))
            for i in range(n):
                blk = i // W
                for j in range((blk - 1) * W, (blk + 1) * W):
                    if 0 <= j < n and allowed[i, j]:
                        continue
                    val = -torch.ones(H, dtype=X.dtype) if j < 0 else (
                        Vv[j] if j < n else (v_pad if j < n_slots else torch.zeros(H, dtype=X.dtype)))
                    O[i] = O[i] + w0 * val
        Hc = F.linear(O * Rg, p[pre + "h_proj.weight"], p[pre + "h_proj.bias"])
        Hout[b, idx] = Hc
    Y = F.silu(Hx + Hout * g.unsqueeze(-1) + R)
    return Y if s["prenorm"] else spec_norm(Y, s["norm_type"], p, pre + "norm.")


def spec_loss(params, s, ids, targets, exact_mask=True):
    """The LM of sec. 4.6 / 6.8, float64, written from the spec; the mean token loss. exact_mask=False:
    SeqBoat laplace with a window as the original does it (laplace(0) on masked slots)."""
    p = {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in params.items()}
    E = p["embed.weight"]
    x = E[torch.from_numpy(ids)] * (math.sqrt(s["D"]) if s["emb_scale"] == "sqrt_d" else 1.0)
    for i in range(s["n_layer"]):
        b = 2 * i if s["ffn"] else i
        pre = f"blocks.{b}.mixer."
        x = spec_mega_layer(x, p, pre, s) if s["kind"] == "mega" else spec_seqboat_layer(x, p, pre, s, exact_mask)
        if s["ffn"]:
            f = f"blocks.{b + 1}."
            h = spec_norm(x, s["norm_type"], p, f + "norm.") if s["prenorm"] else x
            h = F.linear(F.silu(F.linear(h, p[f + "ffn.fc1.weight"], p[f + "ffn.fc1.bias"])),
                         p[f + "ffn.fc2.weight"], p[f + "ffn.fc2.bias"])
            x = x + h if s["prenorm"] else spec_norm(x + h, s["norm_type"], p, f + "norm.")
    if s["prenorm"]:
        x = spec_norm(x, s["norm_type"], p, "norm_f.") if s["final_affine"] else \
            spec_norm(x, s["norm_type"], {}, "")
    logits = x @ E.T
    t = torch.from_numpy(targets.astype(np.int64))
    t[t < 0] = -100
    return F.cross_entropy(logits.reshape(-1, E.shape[0]), t.reshape(-1), ignore_index=-100).item()


SELFTEST_CASES = [
    # name, mixer, overrides (model keys and mixer.* keys), expect parity with the spec
    ("mega_chunk_pad_softmax_simple_ffn", "mega",
     dict(arch="sfsf", n_layer=2, T=20, **{"mixer.chunk_size": 8, "mixer.truncation": 6}), True),
    ("mega_full_relu2_rotary_post_scalenorm", "mega",
     dict(arch="ss", n_layer=2, T=17, norm="post", **{"mixer.rel_pos": "rotary", "mixer.attention": "relu2",
                                                      "mixer.norm_type": "scalenorm", "mixer.max_positions": 32}),
     True),
    ("mega_chunk_laplace_affine_final", "mega",
     dict(arch="ss", n_layer=2, T=16, final_affine=True, **{"mixer.chunk_size": 4, "mixer.attention": "laplace"}),
     True),
    ("mega_chunk_longer_than_T_rotary", "mega",
     dict(arch="sfsf", n_layer=2, T=10, **{"mixer.chunk_size": 16, "mixer.rel_pos": "rotary"}), True),
    ("seqboat_local_softmax_simple", "seqboat",
     dict(arch="ss", n_layer=2, T=21, **{"mixer.chunk_size": 4, "mixer.truncation": 8}), True),
    ("seqboat_local_relu2_rotary", "seqboat",
     dict(arch="ss", n_layer=2, T=20, **{"mixer.chunk_size": 3, "mixer.rel_pos": "rotary",
                                          "mixer.attention": "relu2"}), True),
    ("seqboat_local_simple_beyond_P", "seqboat",
     dict(arch="ss", n_layer=2, T=24, **{"mixer.chunk_size": 5, "mixer.max_positions": 10}), True),
    ("seqboat_full_softmax_ffn", "seqboat",
     dict(arch="sfsf", n_layer=2, T=18, **{"mixer.chunk_size": 0}), True),
    ("seqboat_local_pos", "seqboat",
     dict(arch="ss", n_layer=2, T=19, **{"mixer.chunk_size": 4, "mixer.local_pos": "true"}), True),
    ("seqboat_full_relu2_compressed", "seqboat",
     dict(arch="ss", n_layer=2, T=18, **{"mixer.chunk_size": 0, "mixer.attention": "relu2"}), True),
    ("seqboat_full_laplace_dense_uncompressed", "seqboat",
     dict(arch="ss", n_layer=2, T=18, u_bias=1.5, **{"mixer.chunk_size": 0, "mixer.attention": "laplace"}), True),
    ("mega_full_laplace_rmsnorm_post", "mega",
     dict(arch="sfsf", n_layer=2, T=15, norm="post", **{"mixer.attention": "laplace", "mixer.norm_type": "rmsnorm",
                                                        "mixer.max_positions": 16}), True),
    ("seqboat_local_laplace (deviation)", "seqboat",
     dict(arch="ss", n_layer=2, T=20, **{"mixer.chunk_size": 4, "mixer.attention": "laplace"}), False),
]


def fake_run(root, mixer, ov, seed):
    """Writes a seqlab-format run (config.yaml, ckpt-<step>.safetensors) and a batch; returns paths."""
    g = torch.Generator().manual_seed(seed)
    D, V, B, n = 16, 11, 3, ov["n_layer"]
    T = ov["T"]
    mx = dict(MIXER_DEFAULTS)
    mx.update({"z_dim": "8", "h_dim": "12", "n_dim": "3", "init_temp_scale": "0.3", "place": "", "dropout": "",
               "attention_dropout": ""})
    mx.update({k[len("mixer."):]: str(v) for k, v in ov.items() if k.startswith("mixer.")})
    norm = ov.get("norm", "pre")
    final_affine = ov.get("final_affine", False) and norm == "pre"
    cfg_lines = [
        "# data", 'dataset: "text"', 'tokenizer: "char"', 'task: "lm"', "",
        "# model", f'arch: "{ov["arch"]}"', f"n_layer: {n}", 'arch_grammar: "plain"', f'mixer: "{mixer}"',
        'ffn: "mlp"', f"d_model: {D}", "n_head: 1", "d_inner: 24", f'norm: "{norm}"', 'activation: "silu"',
        'pos: "none"', 'emb_scale: "sqrt_d"', 'encoder: "tokens"', "mem_len: 0", "tie_weight: true",
        "causal: true", "adaptive_softmax: false", "head_bias: false", "dropout: 0.1", "dropatt: 0",
        "embed_dropout: -1", 'embed_init: "inv_sqrt_d"', f"final_norm_affine: {str(final_affine).lower()}",
        "max_len: 32", "", "# train", f"tgt_len: {T}", "", "# eval", f"eval_tgt_len: {T}",
        f"eval_batch_size: {B}", "", "# run", 'precision: "fp32"', "", "# sections",
    ] + [f'mixer.{k}: "{v}"' for k, v in mx.items() if v != ""] + \
        ([f'residual.norm: "{mx["norm_type"]}"'] if ov["arch"].startswith("sf") else [])
    cfg_text = "\n".join(cfg_lines) + "\n"
    cfg = {}
    for line in cfg_text.splitlines():
        line = line.split("#", 1)[0].strip()
        if ":" in line:
            k, v = line.split(":", 1)
            cfg[k.strip()] = v.strip().strip('"')
    Z, H, N, C = int(mx["z_dim"]), int(mx["h_dim"]), int(mx["n_dim"]), int(mx["chunk_size"])

    def rn(*shape, std=1.0, mean=0.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * std + mean).float().numpy()
    P = {"embed.weight": rn(V, D, std=D ** -0.5)}
    ffn = ov["arch"].startswith("sf")
    nt = mx["norm_type"]

    def norm_params(prefix):
        if nt == "scalenorm":
            P[prefix + "weight"] = rn(1, std=0.1, mean=1.0)
        else:
            P[prefix + "weight"] = rn(D, std=0.1, mean=1.0)
            if nt == "layernorm":
                P[prefix + "bias"] = rn(D, std=0.05)
    for i in range(n):
        b = 2 * i if ffn else i
        m = f"blocks.{b}.mixer."
        norm_params(m + "norm.")
        sign = np.array([1.0 if j % 2 == 0 else -1.0 for j in range(N)], dtype=np.float32)
        P[m + "move.delta"] = rn(D, N, std=0.5)
        P[m + "move.alpha"] = rn(D, N, std=0.5)
        P[m + "move.beta"] = rn(D, N, std=0.1) + sign
        P[m + "move.gamma"] = rn(D, N)
        P[m + "move.omega"] = rn(D)
        if mixer == "mega":
            P[m + "v_proj.weight"], P[m + "v_proj.bias"] = rn(H, D, std=0.3), rn(H, std=0.1)
            P[m + "mx_proj.weight"], P[m + "mx_proj.bias"] = rn(2 * D + Z + H, D, std=0.3), rn(2 * D + Z + H, std=0.1)
        else:
            P[m + "hx_proj.weight"], P[m + "hx_proj.bias"] = rn(2 + D, D, std=0.3), rn(2 + D, std=0.1)
            P[m + "hx_proj.bias"][1] += ov.get("u_bias", 0.0)     # > 0: most tokens active
            P[m + "mx_proj.weight"], P[m + "mx_proj.bias"] = rn(Z + 2 * H, D, std=0.3), rn(Z + 2 * H, std=0.1)
            P[m + "q_router.temp"] = np.array([math.log(0.3 * D ** 0.5)], dtype=np.float32) + rn(1, std=0.1)
        P[m + "h_proj.weight"], P[m + "h_proj.bias"] = rn(D, H, std=0.3), rn(D, std=0.1)
        P[m + "gamma"], P[m + "beta"] = rn(2, Z), rn(2, Z, std=0.2)
        if mx["rel_pos"] == "simple":
            if mixer == "mega":
                Pn = C if C > 0 else int(mx["max_positions"]) or 32
            else:
                Pn = 3 * C if mx["local_pos"] == "true" else int(mx["max_positions"]) or 32
            P[m + "rel_pos_bias.rel_pos_bias"] = rn(2 * Pn - 1, std=0.5)
        elif mixer == "mega":
            P[m + "rel_pos_bias.alpha"], P[m + "rel_pos_bias.beta"] = rn(1, Z), rn(1, Z)
        if ffn:
            f = f"blocks.{b + 1}."
            norm_params(f + "norm.")
            P[f + "ffn.fc1.weight"], P[f + "ffn.fc1.bias"] = rn(24, D, std=0.3), rn(24, std=0.1)
            P[f + "ffn.fc2.weight"], P[f + "ffn.fc2.bias"] = rn(D, 24, std=0.3), rn(D, std=0.1)
    if final_affine:
        P["norm_f.weight"], P["norm_f.bias"] = rn(D, std=0.1, mean=1.0), rn(D, std=0.05)
    tensors = dict(P)
    for k in list(P)[:3]:                         # optimizer state: must be ignored by the loader
        tensors["optim.exp_avg." + k] = np.zeros_like(P[k])
    run = os.path.join(root, "run")
    os.makedirs(run, exist_ok=True)
    with open(os.path.join(run, "config.yaml"), "w") as fh:
        fh.write(cfg_text)
    safetensors_io.save(os.path.join(run, "ckpt-7.safetensors"), tensors,
                        {"format": "seqlab-checkpoint", "format_version": "2", "config": cfg_text,
                         "vocab_size": str(V), "step": "7"})
    ids = torch.randint(0, V, (B, T), generator=g).numpy().astype(np.int32)
    targets = torch.randint(0, V, (B, T), generator=g).numpy().astype(np.int32)
    targets[1, 2] = -1                               # one unscored position
    s = model_settings(cfg, P)
    ref = spec_loss(P, s, ids.astype(np.int64), targets)
    ref_parity = spec_loss(P, s, ids.astype(np.int64), targets, exact_mask=False)
    scored = int((targets >= 0).sum())
    bpath = os.path.join(root, "batch.safetensors")
    safetensors_io.save(bpath, {"ids": ids, "targets": targets},
                        {"format": "seqlab-batch", "loss_sum": f"{ref * scored:.17g}", "scored": str(scored),
                         "source": "self-test: spec reference in float64, not seqlab"})
    return run, bpath, ref, ref_parity


def selftest_einops():
    """The einops stand-in against explicit torch ops, for every pattern local_attention uses."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 12, 5, generator=g)
    checks = [
        (_einops_rearrange(torch.arange(12), "(w n) -> 1 w n", w=3, n=4), torch.arange(12).view(1, 3, 4)),
        (_einops_rearrange(x[0], "b (w n) d -> b w n d", w=3), x[0].reshape(3, 3, 4, 5)),
        (_einops_rearrange(x, "... i -> ... i 1"), x.unsqueeze(-1)),
        (_einops_rearrange(x, "... j -> ... 1 j"), x.unsqueeze(-2)),
        (_einops_rearrange(x[..., 0], "... (w n) -> (...) w n", w=3, n=4), x[..., 0].reshape(6, 3, 4)),
        (_einops_rearrange(x.reshape(2, 3, 4, 15), "b w n d -> b (w n) d"), x.reshape(2, 12, 15)),
    ]
    packed, ps = _einops_pack([x], "* n d")
    checks.append((packed, x.reshape(6, 12, 5)))
    checks.append((_einops_unpack(packed, ps, "* n d")[0], x))
    ok = all(a.shape == b.shape and torch.equal(a, b) for a, b in checks)
    print(f"einops stand-in: {len(checks)} patterns {'bit-identical to explicit torch ops' if ok else 'WRONG'}")
    return ok


def selftest(args):
    ok = selftest_einops()
    keep = args.keep
    tmp = keep or tempfile.mkdtemp(prefix="mega_original_check.")
    rows = []
    for k, (name, mixer, ov, parity) in enumerate(SELFTEST_CASES):
        root = args.mega if mixer == "mega" else args.seqboat
        if not root:
            print(f"skip {name}: no --{mixer}")
            continue
        d = os.path.join(tmp, re.sub(r"\W+", "_", name))
        run, batch, ref, ref_parity = fake_run(d, mixer, ov, seed=1000 + k)
        cmd = [sys.executable, os.path.abspath(__file__), f"--{mixer}", root, "--run", run, "--batch", batch,
               "--tol", "1e-5"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        out = r.stdout + r.stderr
        with open(os.path.join(d, "check.log"), "w") as fh:
            fh.write(out)
        mapped = re.search(r"^mapped (\d+) checkpoint tensors, none missing or unexpected", out, re.M)
        o64 = re.search(r"^original float64:\s+mean loss (\S+)", out, re.M)
        o32 = re.search(r"^original float32:\s+mean loss (\S+)", out, re.M)
        rel = re.search(r"^relative difference seqlab vs original float64: (\S+)", out, re.M)
        if not (mapped and o64 and o32 and rel):
            print(f"{name}: the check did not run through ({r.returncode}); see {d}/check.log\n{out[-3000:]}")
            ok = False
            continue
        good = (r.returncode == 0) == parity
        ok &= good
        rows.append((name, int(mapped.group(1)), float(o64.group(1)), float(o32.group(1)), ref,
                     float(rel.group(1)), parity, good))
        if not parity:
            # the expected difference must be exactly the documented quirk
            rp = abs(ref_parity - float(o64.group(1))) / float(o64.group(1))
            print(f"  [{name}] spec with the original's laplace(0) masking: {ref_parity:.15f}, "
                  f"relative to the original {rp:.2e}")
            ok &= rp <= 1e-6
        for line in out.splitlines():
            if line.startswith(("seqboat layer", "note:", "import shims")):
                print(f"  [{name}] {line}")
    print(f"\n{'case':42s} {'mapped':>6s} {'original f64':>20s} {'original f32':>20s} {'spec f64':>20s} "
          f"{'rel f64':>9s}  expect")
    for name, nm, a, b, c, rel, parity, good in rows:
        print(f"{name:42s} {nm:6d} {a:20.15f} {b:20.15f} {c:20.15f} {rel:9.2e}  "
              f"{'agree' if parity else 'differ'}{'' if good else '  <-- UNEXPECTED'}")
    print(f"\nfake runs in {tmp}" + ("" if keep else " (removed)"))
    if not keep:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    print("SELFTEST OK" if ok else "SELFTEST FAILED")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="see the module docstring for the name map and the quirks")
    ap.add_argument("--mega", help="a checkout of facebookresearch/mega")
    ap.add_argument("--seqboat", help="a checkout of renll/SeqBoat")
    ap.add_argument("--run", help="the seqlab run directory (config.yaml, ckpt-*.safetensors)")
    ap.add_argument("--batch", help="a batch file (ids, targets; loss_sum, scored), e.g. one --save_batch wrote")
    ap.add_argument("--text", help="make the batch from this text file and score it with `seqlab eval` (instead "
                    "of --batch)")
    ap.add_argument("--rows", type=int, default=4, help="--text: B rows")
    ap.add_argument("--tgt_len", type=int, default=0, help="--text: T inputs per row; 0: the run's eval_tgt_len, "
                    "else tgt_len")
    ap.add_argument("--offset", type=int, default=-1, help="--text: first character (byte); -1: the last B*(T+1)")
    ap.add_argument("--seqlab", default=os.path.join(REPO, "seqlab"), help="--text: the seqlab binary")
    ap.add_argument("--seqlab_loss", type=float, default=None, help="--text: seqlab's mean loss, instead of "
                    "running seqlab eval")
    ap.add_argument("--save_batch", default=None, help="--text: also write the batch made (for --batch)")
    ap.add_argument("--step", type=int, default=None, help="use ckpt-N.safetensors (default: the newest)")
    ap.add_argument("--tol", type=float, default=1e-5, help="max relative difference to the float64 original")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--selftest", action="store_true", help="fake runs through this script, against the spec")
    ap.add_argument("--keep", default=None, help="--selftest: write the fake runs here and keep them")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if not (a.mega or a.seqboat):
        ap.error("give --mega and/or --seqboat")
    if a.selftest:
        sys.exit(selftest(a))
    if not a.run or bool(a.batch) == bool(a.text):
        ap.error("--run and one of --batch / --text are required (or --selftest)")
    sys.exit(check(a))


if __name__ == "__main__":
    main()
