"""Scores a seqlab Nyströmformer MLM checkpoint with the ORIGINAL Nyströmformer code.

    ./seqlab train configs/nystromformer/mlm_check.yaml --out /tmp/nys_run
    ./seqlab eval --run /tmp/nys_run --split test --save_batch /tmp/nys_batch.safetensors
    /usr/bin/python3 tests/ref/nystrom_original_check.py --nystromformer /path/to/Nystromformer \\
        --run /tmp/nys_run --batch /tmp/nys_batch.safetensors

The model is mlpen/Nystromformer's own `code/model.py` (`Model`, `Embeddings`,
`Transformer`, `Attention`), `code/attention_nystrom.py` (`NystromAttention`)
and `code/model_wrapper.py` (`ModelForMaskedLM`, `MLMHead`), imported from the
checkout given by --nystromformer, not copied here. Nothing in them is
changed: `code/attention.py` reads its attention type from /model/config.json
when imported (the docker image's path), so while it is imported that one
path is answered with {"model": {"attn_type": "nystrom"}}; nothing else is
replaced (the original has no CUDA-only kernel on this path).

Only names are mapped: seqlab embed.weight -> model.embeddings.word_embeddings,
pos_embed -> position_embeddings (the same max_len + 2 rows), type_embed ->
token_type_embeddings, embed_norm -> embeddings.norm; blocks.2i (mixer
sublayer, post-LN) -> transformer_i.mha.{W_q, W_k, W_v, ff, attn.conv} and
norm -> transformer_i.norm1; blocks.2i+1 (MLP) -> ff1, ff2, norm2;
mlm_head.dense / .norm -> mlm.dense / .norm; head.bias -> mlm.mlm_class.bias
(its weight is the tied word embedding, as in seqlab).

The batch is the one `seqlab eval --save_batch` wrote: the ids after BERT's
masking and the targets (-1 unscored, -100 for PyTorch), with seqlab's summed
loss. The original's loss is sum / (count + 1e-6) (ModelForMaskedLM); the
script prints both that and the plain mean, seqlab's mean, and their relative
difference. float32 only: the original's Attention casts Q, K, V to float32
(`.float()`) whatever the model's dtype.
"""

import argparse
import builtins
import glob
import io
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from seqlab_run import run_config  # noqa: E402


def import_original(root):
    code = os.path.join(root, "code")
    sys.path.insert(0, code)
    real_open = builtins.open

    def answering_open(path, *a, **k):  # attention.py's import-time read of the docker path
        if path == "/model/config.json":
            return io.StringIO(json.dumps({"model": {"attn_type": "nystrom"}}))
        return real_open(path, *a, **k)

    builtins.open = answering_open
    try:
        import attention  # noqa: F401  (reads /model/config.json)
        import model_wrapper
    finally:
        builtins.open = real_open
    return model_wrapper


def original_config(cfg, params, T):
    C = int(cfg["d_model"])
    H = int(cfg.get("mixer.n_head", cfg.get("n_head", 4)))
    V, HD = params["embed.weight"].shape[0], params["blocks.0.mixer.W_q.weight"].shape[0]
    return {
        "vocab_size": V, "num_sen_type": 1, "max_seq_len": T, "embedding_dim": C, "transformer_dim": C,
        "transformer_hidden_dim": int(cfg.get("ffn.d_inner", cfg.get("d_inner"))),
        "num_layers": cfg["arch"].count("s"), "num_head": H, "head_dim": HD // H, "dropout_prob": 0.0,
        "attn_type": "nystrom", "num_landmarks": int(cfg["mixer.num_landmarks"]), "seq_len": T,
        "conv_kernel_size": int(cfg["mixer.conv_kernel_size"]), "mixed_precision": False,
        "attention_grad_checkpointing": False, "gelu_grad_checkpointing": False,
    }


def mapped_state(params, n_layers):
    s = {
        "model.embeddings.word_embeddings.weight": params["embed.weight"],
        "model.embeddings.position_embeddings.weight": params["pos_embed.weight"],
        "model.embeddings.token_type_embeddings.weight": params["type_embed.weight"],
        "model.embeddings.norm.weight": params["embed_norm.weight"],
        "model.embeddings.norm.bias": params["embed_norm.bias"],
        "mlm.dense.weight": params["mlm_head.dense.weight"], "mlm.dense.bias": params["mlm_head.dense.bias"],
        "mlm.norm.weight": params["mlm_head.norm.weight"], "mlm.norm.bias": params["mlm_head.norm.bias"],
        "mlm.mlm_class.weight": params["embed.weight"], "mlm.mlm_class.bias": params["head.bias"],
    }
    for i in range(n_layers):
        a, f, t = f"blocks.{2 * i}", f"blocks.{2 * i + 1}", f"model.transformer_{i}"
        for p in ("W_q", "W_k", "W_v", "ff"):
            for w in ("weight", "bias"):
                s[f"{t}.mha.{p}.{w}"] = params[f"{a}.mixer.{p}.{w}"]
        s[f"{t}.mha.attn.conv.weight"] = params[f"{a}.mixer.conv.weight"]
        for w in ("weight", "bias"):
            s[f"{t}.norm1.{w}"] = params[f"{a}.norm.{w}"]
            s[f"{t}.ff1.{w}"] = params[f"{f}.ffn.fc1.{w}"]
            s[f"{t}.ff2.{w}"] = params[f"{f}.ffn.fc2.{w}"]
            s[f"{t}.norm2.{w}"] = params[f"{f}.norm.{w}"]
    return {k: torch.from_numpy(np.asarray(v, dtype=np.float32).copy()) for k, v in s.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nystromformer", required=True, help="a checkout of mlpen/Nystromformer")
    ap.add_argument("--run", required=True, help="the seqlab run directory")
    ap.add_argument("--batch", required=True, help="the file `seqlab eval --save_batch` wrote")
    args = ap.parse_args()
    torch.set_num_threads(1)

    cfg = run_config(args.run)
    ckpt = sorted(glob.glob(os.path.join(args.run, "ckpt-*.safetensors")),
                  key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0]))[-1]
    params, _ = safetensors_io.load(ckpt)
    params = {k[len("param."):] if k.startswith("param.") else k: v for k, v in params.items()}
    batch, meta = safetensors_io.load(args.batch)
    ids = torch.from_numpy(batch["ids"].astype(np.int64))
    labels = torch.from_numpy(batch["targets"].astype(np.int64))
    labels[labels < 0] = -100
    B, T = ids.shape
    V = params["embed.weight"].shape[0]
    seqlab_sum, scored = float(meta["loss_sum"]), int(meta["scored"])
    seqlab_mean = seqlab_sum / scored

    model_wrapper = import_original(args.nystromformer)
    conf = original_config(cfg, params, T)
    print(f"checkpoint {ckpt}; batch {B} x {T}, {scored} masked tokens; vocabulary {V}")
    print(f"seqlab:   mean loss {seqlab_mean:.17g}")
    model = model_wrapper.ModelForMaskedLM(conf)
    missing, unexpected = model.load_state_dict(mapped_state(params, conf["num_layers"]), strict=False)
    assert not unexpected and not missing, (missing, unexpected)
    model.eval()
    with torch.no_grad():
        out = model(ids, labels)
    loss = out["loss"].item()
    count = out["valid_count"].item() - 1e-6
    mean = loss * (count + 1e-6) / count
    assert round(count) == scored, (count, scored)
    print(f"original: loss {loss:.17g} (sum / (count + 1e-6)); mean {mean:.17g}")
    print(f"relative difference of the means: {abs(mean - seqlab_mean) / seqlab_mean:.2e}")


if __name__ == "__main__":
    main()
