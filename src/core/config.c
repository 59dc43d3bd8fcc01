/* config.c — the key table of seqlab and the parsers behind it.
 *
 * Every key is one row of config_keys[]: the Config field it fills (offset and
 * size), its type, its default written as text, its section and one line of
 * help. Defaults, YAML files and --key flags all go through config_set, so a
 * value is parsed and checked by the same code wherever it comes from.
 *
 * YAML is read with libyaml's event parser rather than its document loader, so
 * each key keeps its line number for messages. Rules that involve more than one
 * key, and the values derived from other keys, live in config_finalize.
 * config_save writes atomically (core/file.h), so a crash never leaves half
 * a config behind.
 *
 * Sections of this file: the key table; parsing one value; the YAML reader;
 * finalize; writing and help; key-name lookup.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "../data/datasets.h"
#include "file.h"

/* ------------------------------------------------------------------------ */
/* The key table                                                              */

#define KEY(field, type, fallback, choices, section, help) \
    {#field, type, offsetof(Config, field), sizeof(((Config *)0)->field), fallback, choices, section, help}

const ConfigKey config_keys[] = {
    /* data */
    KEY(dataset, KEY_CHOICE, "text", "text|shakespeare|enwik8|text8|wikitext-103|wikitext-2", "data",
        "text: the `data` file or the three *_file keys; the others: named datasets (docs/data.md), found under "
        "$SEQLAB_DATA, ./data, ../shared/data or at `data`; scripts/getdata.sh fetches them"),
    KEY(data, KEY_STRING, "", NULL, "data",
        "dataset text: one text file, split by the fractions; named datasets: their folder (raw files, or prepared "
        "by seqlab data prepare) or raw file"),
    KEY(train_file, KEY_STRING, "", NULL, "data", "path of the training text (instead of `data`)"),
    KEY(valid_file, KEY_STRING, "", NULL, "data", "path of the validation text (instead of `data`)"),
    KEY(test_file, KEY_STRING, "", NULL, "data", "path of the test text (instead of `data`)"),
    KEY(tokenizer, KEY_CHOICE, "auto", "auto|byte|char|word|bpe", "data",
        "auto: the dataset's own (byte enwik8, word wikitext, else char; format listops word, the other formats "
        "byte); byte: the 256 byte values; char: the "
        "characters of the training text; word: whitespace-separated words, <eos> per line; bpe: GPT-2 BPE "
        "(wikitext: of the raw files, <|endoftext|> after each non-blank line)"),
    KEY(task, KEY_CHOICE, "lm", "lm|mlm|classification|regression|assoc_recall|wikihop", "data",
        "lm: next-token prediction on a text stream; mlm: masked tokens of a text stream (BERT); classification, "
        "regression: labelled examples from TSV files (train_file, valid_file, test_file), one label per text or "
        "text pair (keys of section objective: pooling, classes, pair); assoc_recall: generated key-value "
        "sequences, the value of the final query key recalled (vocab_size, input_seq_len, num_examples, ...); wikihop: "
        "multi-hop questions from the released JSON files (train_file, valid_file), the answer chosen among the "
        "candidates at their slots in tgt_len windows of the supports. A GLUE task's name (CoLA, SST-2, MRPC, "
        "STS-B, QQP, MNLI, QNLI, RTE, WNLI: the Nystromformer seed's --task) sets classification or regression, its "
        "files under <data root>/glue/<name>/ and its columns"),
    KEY(lm_batching, KEY_CHOICE, "streams", "streams|windows", "data",
        "lm: streams: eval_batch_size / batch_size contiguous rows read in order (Transformer-XL's, the FMMformer "
        "trainer's); windows: non-overlapping tgt_len windows of the one stream, shuffled every epoch, the last "
        "partial batch dropped, and evaluation over the first (n - 1) / eval_tgt_len windows in order "
        "(safari's and the S5 seed's loader)"),
    KEY(vocab_size, KEY_INT, "10", NULL, "data",
        "assoc_recall: ids: the no-op '.', vocab_size - 2 symbols (half keys, half values), the query marker '=>'"),
    KEY(input_seq_len, KEY_INT, "20", NULL, "data",
        "assoc_recall: context tokens S (even); the model reads S + 2 (tgt_len follows: S + 2)"),
    KEY(num_examples, KEY_INT, "4000", NULL, "data", "assoc_recall: distinct training sequences"),
    KEY(num_test_examples, KEY_INT, "500", NULL, "data", "assoc_recall: distinct test sequences (the valid split too)"),
    KEY(data_seed, KEY_LONG, "0", NULL, "data", "assoc_recall: seed of the generated sequences (not of the model)"),
    KEY(text_column, KEY_STRING, "sentence", NULL, "data",
        "classification/regression: the TSV column of the text (a name from the header, or a 0-based index)"),
    KEY(text2_column, KEY_STRING, "", NULL, "data", "the column of the second text of a pair; empty: none"),
    KEY(label_column, KEY_STRING, "label", NULL, "data", "the column of the label (class id or number)"),
    KEY(header, KEY_BOOL, "true", NULL, "data", "the TSV files start with a row of column names"),
    KEY(format, KEY_CHOICE, "tsv", "tsv|listops|imdb|aan|cifar10|pathfinder|speech_commands", "data",
        "classification: how the examples are stored (docs/data.md): tsv, the *_file keys' TSV files; listops, the "
        "LRA ListOps TSVs, tokenised as the LRA does (parentheses dropped, ']' as X); imdb, the aclImdb folder "
        "(train/, test/ of pos/ and neg/; valid = test, as the LRA); aan, the LRA Retrieval TSVs (label, id1, id2, "
        "text1, text2, no header); cifar10, the binary CIFAR-10 batches in grayscale (45,000 / 5,000 / 10,000); "
        "pathfinder, a Pathfinder folder (metadata/, imgs/) split 80/10/10 by data_seed; speech_commands, the "
        "Speech Commands folder (classes: label_names, empty SC10, sc35 every word). Folders come from key `data`"),
    KEY(image_size, KEY_INT, "32", NULL, "data", "format pathfinder: the images' side in pixels (32, 128 Path-X)"),
    KEY(input_mean, KEY_FLOAT, "0", NULL, "data",
        "encoder linear over images or audio: the input is (value - input_mean) / input_std, value a pixel in "
        "[0, 1] or a sample in [-1, 1)"),
    KEY(input_std, KEY_FLOAT, "1", NULL, "data", "see input_mean"),
    KEY(mlm_blocks, KEY_BOOL, "false", NULL, "data",
        "mlm: every row is <cls>, tgt_len - 2 consecutive tokens of the stream, <sep> (the Nystromformer / RoBERTa "
        "packing '<s> block </s>'); the two specials are never masked"),
    KEY(label_names, KEY_LIST, "", NULL, "data",
        "classification: the class names in class order (a label equal to the i-th is class i; GLUE's RTE and "
        "QNLI: entailment,not_entailment; MNLI: contradiction,entailment,neutral); empty: labels are class ids"),
    KEY(attend_padding, KEY_BOOL, "false", NULL, "data",
        "classification/regression: pad every row to tgt_len and give the model no padding mask, so attention "
        "sees the <pad> tokens (the Nystromformer GLUE code's behaviour: its glue_attend_padding parity)"),
    KEY(wikihop_drop_overflow, KEY_BOOL, "false", NULL, "data",
        "wikihop: a support that does not fit the current window is dropped instead of starting the next one (the "
        "Nystromformer code's behaviour, for parity; it loses text)"),
    KEY(mlm_probability, KEY_FLOAT, "0.15", NULL, "data",
        "mlm: share of the tokens chosen; of those 80% become <mask>, 10% a random token, 10% stay"),
    KEY(bpe_vocab, KEY_STRING, "", NULL, "data",
        "tokenizer bpe: GPT-2's encoder.json (or vocab.json); empty: gpt2/encoder.json or gpt2/vocab.json under "
        "$SEQLAB_DATA, ./data, ../shared/data"),
    KEY(bpe_merges, KEY_STRING, "", NULL, "data",
        "tokenizer bpe: GPT-2's vocab.bpe (or merges.txt); empty: gpt2/vocab.bpe or gpt2/merges.txt there"),
    KEY(valid_fraction, KEY_FLOAT, "0.05", NULL, "data", "share of `data` held out for validation"),
    KEY(test_fraction, KEY_FLOAT, "0.05", NULL, "data", "share of `data` held out for test"),
    /* model */
    KEY(arch, KEY_STRING, "", NULL, "model",
        "sublayers in order, 's' mixer, 'f' feed-forward, 'g' mixture of experts (section moe); wins over n_layer when set; empty = \"sf\" x n_layer"),
    KEY(n_layer, KEY_INT, "4", NULL, "model", "number of \"sf\" layers when arch is empty (ignored otherwise)"),
    KEY(arch_grammar, KEY_CHOICE, "plain", "plain|sandwich|brainformer", "model",
        "how arch reads: plain, every letter its own sublayer; sandwich, pairs of (s or .) and (f or .), n_layer of "
        "them; brainformer, '.'-separated layers in which a repeated letter reuses the sublayer (shared weights)"),
    KEY(mixer, KEY_STRING, "softmax", NULL, "model", "token mixer of every 's' sublayer"),
    KEY(ffn, KEY_STRING, "mlp", NULL, "model", "feed-forward of every 'f' sublayer"),
    KEY(d_model, KEY_INT, "256", NULL, "model", "width of the residual stream"),
    KEY(n_head, KEY_INT, "4", NULL, "model", "number of attention heads"),
    KEY(d_head, KEY_INT, "0", NULL, "model", "width of one head; 0 = d_model / n_head (of the mixer's section)"),
    KEY(d_inner, KEY_INT, "0", NULL, "model", "hidden width of the feed-forward; 0 = 4*d_model"),
    KEY(norm, KEY_CHOICE, "pre", "pre|post", "model", "layer norm before (pre) or after (post) each residual add"),
    KEY(activation, KEY_CHOICE, "gelu", "relu|gelu|gelu_tanh|silu|relu2|laplace", "model", "activation of the feed-forward"),
    KEY(pos, KEY_CHOICE, "learned", "learned|sinusoidal|sinusoidal_reversed|none", "model",
        "position encoding added to the embedding; sinusoidal_reversed counts positions from the end of the "
        "sequence, as the Transformer-XL/FMM trainer does"),
    KEY(emb_scale, KEY_CHOICE, "none", "none|sqrt_d", "model",
        "sqrt_d: multiply the token embedding by sqrt(d_model) (the FMM trainer)"),
    KEY(embed_init, KEY_CHOICE, "scheme", "scheme|inv_sqrt_d", "model",
        "initial std of the embedding tables: the init scheme's, or 1/sqrt(d_model) (MEGA and SeqBoat)"),
    KEY(pos_offset, KEY_INT, "0", NULL, "model",
        "learned positions: token t reads row t + pos_offset of a table of max_len + pos_offset rows (RoBERTa "
        "and the Nystromformer code: 2)"),
    KEY(type_embed, KEY_BOOL, "false", NULL, "model",
        "add a learned vector to every token: the one-row token-type table of BERT-style encoders (the "
        "Nystromformer code)"),
    KEY(embed_norm, KEY_BOOL, "false", NULL, "model",
        "LayerNorm over the summed embeddings before their dropout (BERT-style encoders)"),
    KEY(encoder, KEY_CHOICE, "tokens", "tokens|linear", "model",
        "tokens: an embedding of token ids; linear: a linear map of d_input real values per position (pixels, "
        "audio samples)"),
    KEY(d_input, KEY_INT, "1", NULL, "model",
        "encoder linear: real values per position; over images or audio (key format) that many consecutive "
        "pixels or samples, a frame, per position (1: the seeds' one sample per step)"),
    KEY(ln_init, KEY_CHOICE, "one", "one|normal", "model",
        "LayerNorm weights start at 1 (one) or ~ N(1, 0.02) (normal, the FMM trainer)"),
    KEY(final_norm_affine, KEY_BOOL, "true", NULL, "model",
        "the final norm (norm: pre) has a learned weight and bias; false: plain (MEGA's --no-affine-final-norm)"),
    KEY(mem_len, KEY_INT, "0", NULL, "model", "Transformer-XL memory length; only 0 is supported yet"),
    KEY(diag_size, KEY_INT, "5", NULL, "model",
        "band/fmm near field: keys per query including itself (causal); |i-j| < diag_size when bidirectional"),
    KEY(sparse_ratio, KEY_FLOAT, "2.5", NULL, "model",
        "fmm blend mode, floor(sparse_ratio): 0 w*N+L, 1 N+w*L, 2 w*N+L (seeds), 3 w*N+w2*L, 4 band only, "
        ">=5 far field only"),
    KEY(kernels, KEY_LIST, "elu", NULL, "model",
        "fmm far-field feature maps: elu, or elu,elu_flip (two kernels); --kernels elu elu_flip also works"),
    KEY(linear_chunk, KEY_INT, "64", NULL, "model", "chunk length of causal linear attention (speed only)"),
    KEY(tie_weight, KEY_BOOL, "true", NULL, "model", "share the token embedding with the output projection"),
    KEY(causal, KEY_BOOL, "true", NULL, "model", "each position sees only itself and earlier positions"),
    KEY(adaptive_softmax, KEY_BOOL, "false", NULL, "model",
        "adaptive softmax head (Grave et al. 2017, as Transformer-XL): shortlist + tail clusters at `cutoffs`"),
    KEY(head_bias, KEY_BOOL, "false", NULL, "model",
        "a bias for the full softmax head, as the Transformer-XL/FMM trainer has (the adaptive softmax always has one)"),
    KEY(cutoffs, KEY_LIST, "20000,40000,200000", NULL, "model",
        "adaptive softmax cluster boundaries (class ids); the default is WikiText-103's"),
    KEY(div_val, KEY_INT, "1", NULL, "model",
        "adaptive softmax: cluster i has width d_model / div_val^i (> 1: an adaptive input embedding with projections)"),
    KEY(recompute_ffn, KEY_BOOL, "false", NULL, "model",
        "recompute the feed-forward's hidden units in backward instead of keeping them: d_inner fewer floats per "
        "token and layer, one more fc1 product (memory for long sequences)"),
    KEY(dropout, KEY_FLOAT, "0.1", NULL, "model", "dropout on sublayer outputs, in [0, 1)"),
    KEY(dropatt, KEY_FLOAT, "0.0", NULL, "model", "dropout on attention weights, in [0, 1)"),
    KEY(out_dropout, KEY_FLOAT, "0.0", NULL, "model",
        "dropout on the final hidden states before the head (the FMM/Transformer-XL trainer: = dropout)"),
    KEY(init_std, KEY_FLOAT, "0.02", NULL, "model", "standard deviation of the initial weights"),
    KEY(init, KEY_CHOICE, "seqlab", "seqlab|flax|gpt2|pytorch", "model",
        "initialisation scheme: seqlab, N(0, init_std) weights; gpt2 (safari), N(0, 0.02) and output projections "
        "(fc2, out_proj) N(0, 0.02/sqrt(2 n_layer)); flax (the JAX S5/Hyena port), lecun-normal dense layers, the "
        "embedding N(0, 1/sqrt(d_model)), output projections as gpt2; pytorch (the Nystromformer code), PyTorch's "
        "default U(+-1/sqrt(fan_in)) for dense weights and biases, embeddings N(0, 0.02)"),
    KEY(embed_dropout, KEY_FLOAT, "-1", NULL, "model", "dropout on the input embedding; -1 = the value of dropout"),
    KEY(max_len, KEY_INT, "0", NULL, "model", "longest sequence the model accepts; 0 = tgt_len"),
    /* train */
    KEY(batch_size, KEY_INT, "64", NULL, "train", "sequences per optimizer step"),
    KEY(tgt_len, KEY_INT, "256", NULL, "train", "tokens per training sequence"),
    KEY(batch_split, KEY_INT, "1", NULL, "train", "micro-batches per step (gradient accumulation); divides batch_size"),
    KEY(max_step, KEY_LONG, "1000", NULL, "train", "number of optimizer steps"),
    KEY(iterations, KEY_LONG, "0", NULL, "train",
        "when > 0, max_step becomes iterations x eval_interval (the adaptive-span trainer's --niter iterations of "
        "--nbatches steps, each followed by a validation)"),
    KEY(max_micro_step, KEY_LONG, "0", NULL, "train",
        "when > 0, max_step becomes max_micro_step / batch_split (the Brainformer trainer's --maxstep, which counts "
        "micro-batches)"),
    KEY(optim, KEY_CHOICE, "adamw", "adamw|adam|radam|adagrad", "train",
        "adamw: decoupled weight decay; adam: no weight decay; radam: rectified Adam (Liu et al. 2020, the RAdam "
        "authors' code SeqBoat trains with) with decoupled weight decay; adagrad: the adaptive-span trainer's "
        "(L2 weight decay in the gradient, eps 1e-10)"),
    KEY(lr, KEY_FLOAT, "1e-3", NULL, "train", "peak learning rate"),
    KEY(min_lr, KEY_FLOAT, "0", NULL, "train", "learning rate at the end of the cosine schedule"),
    KEY(warmup_step, KEY_INT, "100", NULL, "train", "steps of linear warm-up from 0 to lr"),
    KEY(epochs, KEY_INT, "0", NULL, "train",
        "when > 0, max_step becomes this many passes over the training data (set when the data is read; the "
        "Nystromformer GLUE code's --epoch)"),
    KEY(scheduler, KEY_CHOICE, "cosine", "constant|cosine|linear|inv_sqrt|cosine_txl|cosine_optax|one_cycle|constant_from_zero", "train",
        "learning-rate schedule after warm-up; cosine_txl: the Transformer-XL/FMM trainer's (cosine over all "
        "max_step, warm-up linear from 0); cosine_optax: the S5/Hyena JAX trainer's optax warm-up cosine, which "
        "reaches 0 at max_step - warmup_step and stays there (spec ssm-hyena.md §1.12); one_cycle: PyTorch's "
        "OneCycleLR with linear annealing over max_step (pct_start, div_factor, final_div_factor, and beta1 "
        "cycled between max_momentum and base_momentum; warmup_step unused), the Nystromformer trainer's; "
        "linear: fairseq's linear warm-up from warmup_init_lr then linear decay to min_lr at max_step (MEGA, SeqBoat); "
        "constant_from_zero: lr min(1, s / warmup_step) at update s from 0 (the first update at lr 0), the "
        "adaptive-span trainer's"),
    KEY(warmup_init_lr, KEY_FLOAT, "0", NULL, "train",
        "linear: the learning rate of the first update, where the warm-up starts (fairseq's --warmup-init-lr)"),
    KEY(warmup_first_step_full_lr, KEY_BOOL, "false", NULL, "train",
        "cosine_txl: the first update runs at the full lr, as the Transformer-XL trainer does"),
    KEY(beta1, KEY_FLOAT, "0.9", NULL, "train", "Adam decay of the first moment"),
    KEY(beta2, KEY_FLOAT, "0.999", NULL, "train", "Adam decay of the second moment"),
    KEY(eps, KEY_FLOAT, "1e-8", NULL, "train", "Adam epsilon added to the denominator"),
    KEY(weight_decay, KEY_FLOAT, "0.1", NULL, "train", "decoupled weight decay (adamw) of the decay_groups"),
    KEY(pct_start, KEY_FLOAT, "0.3", NULL, "train", "one_cycle: share of max_step spent rising to lr"),
    KEY(div_factor, KEY_FLOAT, "25", NULL, "train", "one_cycle: the first lr is lr / div_factor"),
    KEY(final_div_factor, KEY_FLOAT, "1e4", NULL, "train",
        "one_cycle: the last lr is lr / div_factor / final_div_factor"),
    KEY(cycle_momentum, KEY_BOOL, "true", NULL, "train",
        "one_cycle: cycle Adam's beta1 from max_momentum down to base_momentum at the peak lr and back (beta1 "
        "unused)"),
    KEY(base_momentum, KEY_FLOAT, "0.85", NULL, "train", "one_cycle: beta1 at the peak learning rate"),
    KEY(max_momentum, KEY_FLOAT, "0.95", NULL, "train", "one_cycle: beta1 at the start and the end"),
    KEY(decay_groups, KEY_LIST, "linear,embedding", NULL, "train",
        "comma list from linear,embedding,norm,bias,other; empty = none"),
    KEY(clip, KEY_FLOAT, "1.0", NULL, "train", "clip the global gradient norm to this; 0 = off"),
    KEY(clip_mode, KEY_CHOICE, "global", "global|per_tensor", "train",
        "global: clip scales the gradients when their global norm exceeds it; per_tensor (optim adagrad): each "
        "tensor's step is scaled by clip / its own norm when that exceeds clip (the adaptive-span trainer's)"),
    KEY(nonfinite, KEY_CHOICE, "stop", "stop|skip", "train",
        "a step whose loss or gradient norm is nan or inf takes no update; stop: the run ends there (exit 1) naming "
        "the step and the newest checkpoint; skip: it goes on, counting skipped steps in metrics.jsonl"),
    KEY(max_skipped, KEY_INT, "10", NULL, "train", "nonfinite skip: stop after this many skipped steps in a row"),
    /* eval */
    KEY(eval_interval, KEY_INT, "200", NULL, "eval",
        "steps between evaluations; 0 = only at the end; -1 (with epochs) = at the end of every epoch"),
    KEY(eval_tgt_len, KEY_INT, "0", NULL, "eval", "tokens per evaluation sequence; 0 = tgt_len"),
    KEY(eval_batch_size, KEY_INT, "0", NULL, "eval", "sequences per evaluation batch; 0 = batch_size"),
    KEY(eval_max_batches, KEY_INT, "0", NULL, "eval", "most batches per evaluation; 0 = the whole split"),
    KEY(eval_stride, KEY_INT, "0", NULL, "eval",
        "0: non-overlapping eval_tgt_len windows over eval_batch_size rows; S < eval_tgt_len: sliding windows every "
        "S tokens, each scoring its last S (1 = the FMM paper's evaluator)"),
    /* run */
    KEY(log_interval, KEY_INT, "10", NULL, "run", "steps between training log lines"),
    KEY(ckpt_interval, KEY_INT, "0", NULL, "run", "steps between checkpoints; 0 = at every evaluation and at the end"),
    KEY(keep_checkpoints, KEY_INT, "2", NULL, "run", "how many of the newest checkpoints to keep"),
    KEY(seed, KEY_LONG, "1234", NULL, "run", "random seed of initialization, dropout and batches"),
    KEY(threads, KEY_INT, "0", NULL, "run", "worker threads; 0 = one per core"),
    KEY(precision, KEY_CHOICE, "fp32", "fp32|bf16", "run",
        "inputs of the large matrix products: fp32, or bf16 with fp32 accumulation (needs AVX512-BF16; weights, "
        "optimizer, reductions and checkpoints stay fp32)"),
    KEY(out, KEY_STRING, "", NULL, "run", "run directory (config, vocabulary, checkpoints)"),
    KEY(init_from, KEY_STRING, "", NULL, "run",
        "a run directory (its newest checkpoint) or a checkpoint file whose weights start this run: parameters "
        "of the same name and shape load, a longer learned position table is tiled from the shorter one (the "
        "Nystromformer rule), the rest keep their initial values; optimizer and schedule start fresh (the "
        "Nystromformer seed's from_cp)"),
    KEY(init_from_step, KEY_LONG, "0", NULL, "run",
        "init_from a run directory: the checkpoint of this step (ckpt-<step>.safetensors); 0 = the newest"),
};

#undef KEY

const ConfigAlias config_aliases[] = {
    {"attn_type", ALIAS_KEY, true, "mixer", "2=softmax|34=linear|201=fmm",
     "FMMformer trainer: 2 softmax, 34 linear, 201 fmm (with sparse_ratio 4.5: band only)"},
    {"work_dir", ALIAS_KEY, true, "out", NULL, "FMMformer trainer: the run directory"},
    {"epoch", ALIAS_KEY, true, "epochs", NULL, "Nystromformer run_glue.py: passes over the training data"},
    {"checkpoint", ALIAS_KEY, true, "init_from_step", NULL,
     "Nystromformer run_glue.py: which pretraining checkpoint (its cp-N epoch file; seqlab: a step of init_from)"},
    {"adaptive", ALIAS_KEY, false, "adaptive_softmax", "true", "FMMformer trainer: the adaptive softmax head"},
    /* the adaptive-span trainer (facebookresearch/adaptive-span) and its Brainformer fork */
    {"block-sz", ALIAS_KEY, true, "tgt_len", NULL, "adaptive-span trainer: tokens per block"},
    {"attn-span", ALIAS_KEY, true, "mixer.attn_span", NULL, "adaptive-span trainer: the longest span S"},
    {"hid-sz", ALIAS_KEY, true, "d_model", NULL, "adaptive-span trainer: the model width"},
    {"inner-hid-sz", ALIAS_KEY, true, "d_inner", NULL, "adaptive-span trainer: the feed-forward (and expert) width"},
    {"nheads", ALIAS_KEY, true, "n_head", NULL, "adaptive-span trainer: attention heads"},
    {"nlayers", ALIAS_KEY, true, "n_layer", NULL, "adaptive-span trainer: layers (a Brainformer arch's '.' groups win)"},
    {"architecture", ALIAS_KEY, true, "arch", NULL, "Brainformer/sandwich trainer: the sublayer string"},
    {"adapt-span", ALIAS_KEY, false, "mixer.adapt_span", "true", "adaptive-span trainer: learn the spans"},
    {"adapt-span-loss", ALIAS_KEY, true, "mixer.adapt_span_loss", NULL, "adaptive-span trainer: the span loss's lambda"},
    {"adapt-span-ramp", ALIAS_KEY, true, "mixer.adapt_span_ramp", NULL, "adaptive-span trainer: the mask's ramp"},
    {"adapt-span-init", ALIAS_KEY, true, "mixer.adapt_span_init", NULL, "adaptive-span trainer: the spans' start"},
    {"adapt-span-cache", ALIAS_KEY, false, "mixer.adapt_span_cache", "true",
     "adaptive-span trainer: keep only what the spans reach"},
    {"lr-warmup", ALIAS_KEY, true, "warmup_step", NULL, "adaptive-span trainer: warm-up updates"},
    {"grad-clip", ALIAS_KEY, true, "clip", NULL, "adaptive-span trainer: each tensor's clip (clip_mode per_tensor)"},
    {"batch-sz", ALIAS_KEY, true, "batch_size", NULL, "adaptive-span trainer: streams per batch"},
    {"batch-split", ALIAS_KEY, true, "batch_split", NULL, "adaptive-span trainer: micro-batches per step"},
    {"nbatches", ALIAS_KEY, true, "eval_interval", NULL,
     "adaptive-span trainer: steps per iteration, each iteration followed by a validation"},
    {"niter", ALIAS_KEY, true, "iterations", NULL, "adaptive-span trainer: iterations (max_step = niter x nbatches)"},
    {"maxstep", ALIAS_KEY, true, "max_micro_step", NULL,
     "Brainformer trainer: micro-batches to train (max_step = maxstep / batch-split)"},
    {"policy", ALIAS_KEY, true, "moe.policy", NULL, "Brainformer trainer: smoe or smoedropout"},
    {"momentum", ALIAS_IGNORED, true, NULL, NULL, "SGD's momentum; every script trains with Adagrad and passes 0"},
    {"distributed", ALIAS_RANKS, false, NULL, NULL, "Brainformer trainer: several GPUs"},
    {"cuda", ALIAS_IGNORED, false, NULL, NULL, "GPU only"},
    {"multi_gpu", ALIAS_RANKS, false, NULL, NULL, "FMMformer trainer: several GPUs"},
    {"use_wandb", ALIAS_IGNORED, false, NULL, NULL, "Weights & Biases logging; seqlab logs to metrics.jsonl"},
    {"project_name", ALIAS_IGNORED, true, NULL, NULL, "Weights & Biases project"},
    {"job_name", ALIAS_IGNORED, true, NULL, NULL, "Weights & Biases job"},
};
const int config_alias_count = sizeof config_aliases / sizeof config_aliases[0];

enum { N_KEYS = sizeof config_keys / sizeof config_keys[0] };
const int config_key_count = N_KEYS;

/* The parameter groups that decay_groups may name (optim.c uses the same). */
static const char *const decay_group_names = "linear|embedding|norm|bias|other";

static void *field_of(Config *c, const ConfigKey *k) { return (char *)c + k->offset; }
static const void *cfield_of(const Config *c, const ConfigKey *k) { return (const char *)c + k->offset; }

/* Fills every field with its default. The struct is zeroed first so that
 * padding and the bytes after each string's terminator are zero, which makes
 * two equal configs equal under memcmp. A default that does not parse is a bug
 * in the table; the unit tests check that every default parses. */
void config_defaults(Config *c) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < N_KEYS; i++) config_set(c, config_keys[i].name, config_keys[i].fallback, "default", NULL);
}

/* ------------------------------------------------------------------------ */
/* Parsing one value                                                          */

/* "key 'lr' (--lr)", or "key 'lr'" when the origin is not known. */
static void key_label(char *buf, size_t n, const char *key, const char *where) {
    if (where && where[0]) snprintf(buf, n, "key '%.100s' (%.900s)", key, where);
    else snprintf(buf, n, "key '%.100s'", key);
}

/* Whether `value` is one of the '|'-separated names in `choices`. */
static bool choice_has(const char *choices, const char *value) {
    size_t n = strlen(value);
    for (const char *p = choices; p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, value, n) == 0) return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

/* A decimal integer in [lo, hi]: 0 ok, -1 not an integer, -2 out of range. */
static int parse_integer(const char *s, long lo, long hi, long *out) {
    const char *digits = s + (*s == '+' || *s == '-');
    if (!isdigit((unsigned char)*digits)) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end) return -1;
    if (errno == ERANGE || v < lo || v > hi) return -2;
    *out = v;
    return 0;
}

/* A finite number, the whole string consumed, no leading blanks. */
static int parse_double(const char *s, double *out) {
    if (!*s || isspace((unsigned char)*s)) return -1;
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int config_parse_bool(const char *s, bool *out) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

static int parse_integer_into(KeyType type, void *field, const char *value, const char *label, Error *err) {
    bool is_long = type == KEY_LONG;
    long lo = is_long ? LONG_MIN : INT_MIN, hi = is_long ? LONG_MAX : INT_MAX, v = 0;
    int rc = parse_integer(value, lo, hi, &v);
    if (rc == -1) return err_set(err, "%s expects an integer, got '%.200s'", label, value);
    if (rc == -2) return err_set(err, "%s expects an integer in [%ld, %ld], got '%.200s'", label, lo, hi, value);
    if (is_long) *(long *)field = v;
    else *(int *)field = (int)v;
    return 0;
}

static int parse_text_into(KeyType type, const char *choices, size_t size, void *field, const char *value,
                           const char *label, Error *err) {
    size_t n = strlen(value);
    if (type == KEY_CHOICE && !choice_has(choices, value))
        return err_set(err, "%s must be one of %s, got '%.200s'", label, choices, value);
    if (n >= size) return err_set(err, "%s is too long (%zu characters, at most %zu)", label, n, size - 1);
    /* zero the whole field so that equal configs compare equal byte by byte */
    memset(field, 0, size);
    memcpy(field, value, n);
    return 0;
}

int config_parse_value(KeyType type, const char *choices, size_t size, void *field, const char *value,
                       const char *label, Error *err) {
    if (!value) return err_set(err, "%s has no value", label);
    switch (type) {
    case KEY_INT:
    case KEY_LONG: return parse_integer_into(type, field, value, label, err);
    case KEY_FLOAT: {
        double v;
        if (parse_double(value, &v)) return err_set(err, "%s expects a finite number, got '%.200s'", label, value);
        *(double *)field = v;
        return 0;
    }
    case KEY_BOOL: {
        bool v;
        if (config_parse_bool(value, &v))
            return err_set(err, "%s expects true/false (or yes/no, on/off, 1/0), got '%.200s'", label, value);
        *(bool *)field = v;
        return 0;
    }
    case KEY_STRING:
    case KEY_LIST:
    case KEY_CHOICE: return parse_text_into(type, choices, size, field, value, label, err);
    }
    return err_set(err, "%s has an unknown type in the key table", label);
}

/* Other names the seeds use for choices (--dataset wt103). */
static const struct {
    const char *key, *from, *to;
} choice_synonyms[] = {{"dataset", "wt103", "wikitext-103"}, {"dataset", "wt2", "wikitext-2"}};

static const char *synonym(const ConfigKey *k, const char *value) {
    for (size_t i = 0; k->type == KEY_CHOICE && i < sizeof choice_synonyms / sizeof *choice_synonyms; i++)
        if (strcmp(k->name, choice_synonyms[i].key) == 0 && strcmp(value, choice_synonyms[i].from) == 0)
            return choice_synonyms[i].to;
    return value;
}

/* The value an alias's map gives `value` ("201" -> "fmm"), into out. */
static int map_alias_value(const ConfigAlias *a, const char *value, const char *where, char *out, size_t n,
                           Error *err) {
    if (!a->values) return snprintf(out, n, "%s", value), 0;
    size_t len = strlen(value);
    for (const char *p = a->values; *p;) {
        size_t item = strcspn(p, "|"), eq = strcspn(p, "=");
        if (eq == len && strncmp(p, value, len) == 0) return snprintf(out, n, "%.*s", (int)(item - eq - 1), p + eq + 1), 0;
        p += item + (p[item] == '|');
    }
    char label[1100];
    key_label(label, sizeof label, a->name, where);
    return err_set(err, "%s: value '%.200s' is not supported; seqlab knows %s", label, value, a->values);
}

static int set_alias(Config *c, const ConfigAlias *a, const char *value, const char *where, Error *err) {
    if (a->kind != ALIAS_KEY) return 0;
    char mapped[CFG_PATH];
    if (!a->takes_value) value = a->values; /* a switch: --adaptive means adaptive_softmax true */
    if (!value) return err_set(err, "'%s' has no value", a->name);
    if (a->takes_value && map_alias_value(a, value, where, mapped, sizeof mapped, err)) return -1;
    if (!a->takes_value) snprintf(mapped, sizeof mapped, "%s", value);
    char origin[1100];
    snprintf(origin, sizeof origin, "%s, alias of '%s'", where ? where : a->name, a->key);
    return config_set(c, a->key, mapped, origin, err);
}

/* GLUE's tasks as the Nystromformer seed's --task names them (docs/data.md):
 * the task kind and the columns of the files in glue/<name>/. CoLA's
 * test.tsv has a header and other columns than its train and dev files, so
 * it is not set (docs/guide.md shows how to predict it). */
static const struct {
    const char *name, *files[3], *settings;
} glue_tasks[] = {
    {"CoLA", {"train.tsv", "dev.tsv", NULL},
     "task=classification;header=false;text_column=3;text2_column=;label_column=1;label_names=;objective.classes=2"},
    {"SST-2", {"train.tsv", "dev.tsv", "test.tsv"},
     "task=classification;header=true;text_column=sentence;text2_column=;label_column=label;label_names=;"
     "objective.classes=2"},
    {"MRPC", {"train.tsv", "dev.tsv", "test.tsv"},
     "task=classification;header=true;text_column=#1 String;text2_column=#2 String;label_column=Quality;"
     "label_names=;objective.classes=2"},
    {"STS-B", {"train.tsv", "dev.tsv", "test.tsv"},
     "task=regression;header=true;text_column=sentence1;text2_column=sentence2;label_column=score;label_names="},
    {"QQP", {"train.tsv", "dev.tsv", "test.tsv"},
     "task=classification;header=true;text_column=question1;text2_column=question2;label_column=is_duplicate;"
     "label_names=;objective.classes=2"},
    {"MNLI", {"train.tsv", "dev_matched.tsv", "test_matched.tsv"},
     "task=classification;header=true;text_column=sentence1;text2_column=sentence2;label_column=gold_label;"
     "label_names=contradiction,entailment,neutral;objective.classes=3"},
    {"QNLI", {"train.tsv", "dev.tsv", "test.tsv"},
     "task=classification;header=true;text_column=question;text2_column=sentence;label_column=label;"
     "label_names=entailment,not_entailment;objective.classes=2"},
    {"RTE", {"train.tsv", "dev.tsv", "test.tsv"},
     "task=classification;header=true;text_column=sentence1;text2_column=sentence2;label_column=label;"
     "label_names=entailment,not_entailment;objective.classes=2"},
    {"WNLI", {"train.tsv", "dev.tsv", "test.tsv"},
     "task=classification;header=true;text_column=sentence1;text2_column=sentence2;label_column=label;"
     "label_names=;objective.classes=2"},
};

static int set_pairs(Config *c, const char *settings, const char *origin, Error *err);

/* `task: MRPC`: the GLUE task's settings and its files, found in the first
 * data root that holds glue/<name> (else data/glue/<name>, which the
 * reader's error will name). */
static int set_glue_task(Config *c, size_t g, const char *where, Error *err) {
    char origin[1100], dir[CFG_PATH];
    snprintf(origin, sizeof origin, "%s, GLUE task %s", where ? where : "task", glue_tasks[g].name);
    const char *roots[3];
    const int n = dataset_roots(roots);
    int i = 0;
    while (i < n && (snprintf(dir, sizeof dir, "%s/glue/%s", roots[i], glue_tasks[g].name), !file_is_dir(dir))) i++;
    if (i == n) snprintf(dir, sizeof dir, "data/glue/%s", glue_tasks[g].name);
    static const char *const keys[3] = {"train_file", "valid_file", "test_file"};
    for (int s = 0; s < 3; s++) {
        char path[CFG_PATH + 64] = "";
        if (glue_tasks[g].files[s]) snprintf(path, sizeof path, "%s/%s", dir, glue_tasks[g].files[s]);
        if (config_set(c, keys[s], path, origin, err)) return -1;
    }
    return set_pairs(c, glue_tasks[g].settings, origin, err);
}

/* The GLUE task named `name` (any case), or -1. */
static int glue_task_of(const char *name) {
    for (size_t g = 0; name && g < sizeof glue_tasks / sizeof *glue_tasks; g++)
        if (!strcasecmp(glue_tasks[g].name, name)) return (int)g;
    return -1;
}

/* The Transformer-XL trainer of the FMMformer repository (shared/spec/
 * tasks-fmm-nystrom.md A.3-A.7; configs/fmmformer/base.yaml holds the same). */
static const ConfigProfile config_profiles[] = {
    {"the FMMformer trainer", "attn_type|work_dir|adaptive|cuda|multi_gpu|use_wandb|project_name|job_name",
     "norm=post;activation=relu;pos=sinusoidal_reversed;emb_scale=sqrt_d;ln_init=normal;init_std=0.02;"
     "tie_weight=true;causal=true;head_bias=true;optim=adam;lr=0.00025;scheduler=cosine_txl;"
     "warmup_first_step_full_lr=true;clip=0.25;eval_batch_size=10;eval_interval=4000;log_interval=200;seed=1111"},
    {"the adaptive-span trainer", "block-sz|attn-span|hid-sz|inner-hid-sz|nheads|nlayers|architecture|adapt-span|"
     "adapt-span-loss|adapt-span-ramp|adapt-span-init|adapt-span-cache|lr-warmup|grad-clip|batch-sz|batch-split|"
     "nbatches|niter|maxstep|policy|momentum|distributed",
     "mixer=adaptive_span;mixer.adapt_span=false;arch_grammar=brainformer;norm=post;activation=relu;pos=none;"
     "init=pytorch;tie_weight=false;head_bias=true;dropout=0.2;embed_dropout=0;residual.dropout=0;optim=adagrad;"
     "clip_mode=per_tensor;clip=0;scheduler=constant_from_zero;lr=0.03;warmup_step=0;weight_decay=0;"
     "batch_size=64;tgt_len=64;n_layer=8;d_model=256;d_inner=1024;n_head=4;eval_interval=1000;log_interval=100"},
};

const ConfigProfile *config_profile_of_flag(const char *flag) {
    for (size_t i = 0; i < sizeof config_profiles / sizeof *config_profiles; i++)
        if (choice_has(config_profiles[i].flags, flag)) return &config_profiles[i];
    return NULL;
}

/* Sets the "key=value;key=value" pairs of a built-in table, in order. */
static int set_pairs(Config *c, const char *settings, const char *origin, Error *err) {
    char list[1024];
    snprintf(list, sizeof list, "%s", settings);
    for (char *save = NULL, *kv = strtok_r(list, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        *eq = 0;
        if (config_set(c, kv, eq + 1, origin, err)) return -1;
    }
    return 0;
}

int config_apply_profile(Config *c, const ConfigProfile *p, Error *err) { return set_pairs(c, p->settings, p->name, err); }

/* ------------------------------------------------------------------------ */
/* Sections                                                                   */

const char *const config_sections = "mixer|ffn|moe|residual|blocks|lr_groups|objective";

/* Whether `key` is "<section>.<something>". */
bool config_is_section_key(const char *key) {
    const char *dot = strchr(key, '.');
    if (!dot || dot == key || !dot[1]) return false;
    char first[64];
    snprintf(first, sizeof first, "%.*s", (int)(dot - key), key);
    return choice_has(config_sections, first);
}

const ConfigEntry *config_entry(const Config *c, const char *key) {
    for (int i = 0; i < c->n_entries; i++)
        if (strcmp(c->entries[i].key, key) == 0) return &c->entries[i];
    return NULL;
}

/* Stores (or replaces) the entry `key`. Its module checks the value. */
static int set_entry(Config *c, const char *key, const char *value, const char *where, Error *err) {
    char label[1100];
    key_label(label, sizeof label, key, where);
    if (!value) return err_set(err, "%s has no value", label);
    ConfigEntry *e = (ConfigEntry *)config_entry(c, key);
    if (!e) {
        if (c->n_entries == CONFIG_MAX_ENTRIES)
            return err_set(err, "%s: more than %d section keys", label, CONFIG_MAX_ENTRIES);
        if (strlen(key) >= sizeof e->key) return err_set(err, "%s: the name is too long", label);
        e = &c->entries[c->n_entries++];
        memset(e, 0, sizeof *e);
        memcpy(e->key, key, strlen(key));
    }
    if (strlen(value) >= sizeof e->value) return err_set(err, "%s: the value is too long", label);
    memset(e->value, 0, sizeof e->value);
    memcpy(e->value, value, strlen(value));
    memset(e->where, 0, sizeof e->where);
    snprintf(e->where, sizeof e->where, "%s", where ? where : "");
    return 0;
}

/* Sets one key from text. `where` ("file.yaml:12", "--lr", or NULL) is named
 * in every message. Returns 0, or -1 with a message; on failure the config is
 * left unchanged. An unknown key gets the closest valid key as a suggestion. */
int config_set(Config *c, const char *key, const char *value, const char *where, Error *err) {
    if (key && !strcmp(key, "task") && glue_task_of(value) >= 0)
        return set_glue_task(c, (size_t)glue_task_of(value), where, err);
    if (key && (!strcmp(key, "mixer.name") || !strcmp(key, "ffn.name"))) /* the module a section names */
        return config_set(c, !strcmp(key, "mixer.name") ? "mixer" : "ffn", value, where, err);
    if (key && config_is_section_key(key)) return set_entry(c, key, value, where, err);
    const ConfigKey *k = config_find_key(key);
    char label[1100];
    const ConfigAlias *alias = k ? NULL : config_find_alias(key);
    if (alias) return set_alias(c, alias, value, where, err);
    if (!k) {
        const char *close = config_closest_key(key ? key : "");
        key_label(label, sizeof label, key ? key : "", where);
        if (close) return err_set(err, "unknown %s; did you mean '%s'?", label, close);
        return err_set(err, "unknown %s", label);
    }
    key_label(label, sizeof label, key, where);
    if (!value) return err_set(err, "%s has no value", label);
    return config_parse_value(k->type, k->choices, k->size, field_of(c, k), synonym(k, value), label, err);
}

/* ------------------------------------------------------------------------ */
/* The YAML reader                                                            */

enum { MAX_CONFIG_BYTES = 16 << 20, MAX_LIST_CHARS = 4 * CFG_PATH, MAX_BASE_DEPTH = 4 };

typedef struct {
    yaml_parser_t parser;
    const char *path;
    Config *c;            /* borrowed: the copy being filled */
    size_t line[N_KEYS];  /* 1-based line where each key was set, 0 = not yet */
    size_t pairs;         /* pairs read so far */
    int depth;            /* how many `base:` files led here */
    Error *err;
} YamlReader;

static int load_yaml(Config *c, const char *path, int depth, Error *err);
static int next_event(YamlReader *r, yaml_event_t *e);

/* Reads base file `name` (relative to this file's folder). */
static int load_base_file(YamlReader *r, const char *name, const char *where) {
    const char *slash = strrchr(r->path, '/');
    char path[CFG_PATH];
    if (name[0] == '/' || !slash) snprintf(path, sizeof path, "%s", name);
    else snprintf(path, sizeof path, "%.*s/%s", (int)(slash - r->path), r->path, name);
    return load_yaml(r->c, path, r->depth + 1, r->err) ? err_prefix(r->err, "base of %s", where) : 0;
}

/* `base: FILE` (or a list `base: [FILE, FILE]`, read in order) as the first
 * key reads those files first, so a family of configs shares files of common
 * keys (the LRA configs: the task's data, then the seed's model). */
static int load_base(YamlReader *r, const yaml_event_t *v, const char *where) {
    if (r->pairs) return err_set(r->err, "key 'base' (%s) must be the first key of the file", where);
    if (r->depth >= MAX_BASE_DEPTH)
        return err_set(r->err, "key 'base' (%s): more than %d nested base files (a cycle?)", where, MAX_BASE_DEPTH);
    if (v->type == YAML_SCALAR_EVENT) return load_base_file(r, (const char *)v->data.scalar.value, where);
    if (v->type != YAML_SEQUENCE_START_EVENT) return err_set(r->err, "key 'base' (%s) must name a file or a list of files", where);
    for (;;) {
        yaml_event_t item;
        if (next_event(r, &item)) return -1;
        const yaml_event_type_t type = item.type;
        int rc = type == YAML_SEQUENCE_END_EVENT ? 0
                 : type == YAML_SCALAR_EVENT     ? load_base_file(r, (const char *)item.data.scalar.value, where)
                                                 : err_set(r->err, "key 'base' (%s): a list of file names", where);
        yaml_event_delete(&item);
        if (rc || type == YAML_SEQUENCE_END_EVENT) return rc;
    }
}

/* Reads the whole file into a NUL-terminated buffer (owned by the caller). */
static int read_whole(const char *path, char **out, size_t *len, Error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_errno(err, "cannot open config '%s'", path);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : err_set(err, "out of memory reading config '%s'", path);
    while (!rc) {
        if (n + 1 == cap) {
            char *bigger = cap < MAX_CONFIG_BYTES ? realloc(buf, cap * 2) : NULL;
            if (!bigger) {
                rc = err_set(err, "config '%s' is too large (the limit is %d MiB)", path, MAX_CONFIG_BYTES >> 20);
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) rc = err_errno(err, "cannot read config '%s'", path);
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(buf);
        return -1;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

/* libyaml's own description of a syntax or encoding error, with the line. */
static int syntax_error(const YamlReader *r) {
    const yaml_parser_t *p = &r->parser;
    if (p->error == YAML_MEMORY_ERROR) return err_set(r->err, "%s: out of memory while parsing", r->path);
    if (p->error == YAML_READER_ERROR)
        return err_set(r->err, "%s: not valid UTF-8 text at byte %zu: %s", r->path, p->problem_offset,
                       p->problem ? p->problem : "unreadable");
    const char *problem = p->problem ? p->problem : "syntax error";
    if (p->context)
        return err_set(r->err, "%s:%zu: invalid YAML: %s (%s at line %zu)", r->path, p->problem_mark.line + 1, problem,
                       p->context, p->context_mark.line + 1);
    return err_set(r->err, "%s:%zu: invalid YAML: %s", r->path, p->problem_mark.line + 1, problem);
}

/* The next event; on failure there is nothing to delete. */
static int next_event(YamlReader *r, yaml_event_t *e) {
    if (!yaml_parser_parse(&r->parser, e)) return syntax_error(r);
    return 0;
}

static size_t event_line(const yaml_event_t *e) { return e->start_mark.line + 1; }

/* A plain (unquoted) scalar that YAML reads as null: `key:`, `~`, `null`. */
static bool is_null_scalar(const yaml_event_t *e) {
    if (e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
    const char *s = (const char *)e->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static int set_scalar(YamlReader *r, const ConfigKey *k, const yaml_event_t *e, const char *where) {
    const char *s = (const char *)e->data.scalar.value;
    if (strlen(s) != e->data.scalar.length)
        return err_set(r->err, "key '%s' (%s) contains a NUL character", k->name, where);
    if (is_null_scalar(e)) {
        if (k->type != KEY_STRING && k->type != KEY_LIST)
            return err_set(r->err, "key '%s' (%s) has no value; write one or remove the line", k->name, where);
        s = "";
    }
    return config_set(r->c, k->name, s, where, r->err);
}

/* Joins a sequence of scalars with ',' (list-valued keys like decay_groups)
 * into joined (MAX_LIST_CHARS). */
static int read_list(YamlReader *r, const char *name, const char *where, char *joined) {
    size_t len = 0;
    joined[0] = 0;
    for (;;) {
        yaml_event_t e;
        if (next_event(r, &e)) return -1;
        yaml_event_type_t type = e.type;
        const char *item = type == YAML_SCALAR_EVENT ? (const char *)e.data.scalar.value : "";
        size_t n = type == YAML_SCALAR_EVENT ? e.data.scalar.length : 0;
        bool fits = strlen(item) == n && len + n + 2 <= MAX_LIST_CHARS;
        if (type == YAML_SCALAR_EVENT && fits) {
            if (len) joined[len++] = ',';
            memcpy(joined + len, item, n);
            len += n;
            joined[len] = 0;
        }
        yaml_event_delete(&e);
        if (type == YAML_SEQUENCE_END_EVENT) return 0;
        if (type != YAML_SCALAR_EVENT)
            return err_set(r->err, "key '%s' (%s): a list may hold only plain values", name, where);
        if (!fits)
            return err_set(r->err, "key '%s' (%s): the list is too long or holds a NUL character", name, where);
    }
}

static int set_list(YamlReader *r, const char *name, const char *where) {
    char joined[MAX_LIST_CHARS];
    return read_list(r, name, where, joined) || config_set(r->c, name, joined, where, r->err) ? -1 : 0;
}

/* The pairs of a section's mapping (`mixer: {name: fmm, diag_size: 20}`),
 * stored as entries "<prefix>.<key>"; nested mappings go one level down
 * ("mixer.filter.d_state"). The mapping's start event has been read. */
static int load_section(YamlReader *r, const char *prefix) {
    for (;;) {
        yaml_event_t key;
        if (next_event(r, &key)) return -1;
        if (key.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&key);
            return 0;
        }
        size_t line = event_line(&key);
        bool scalar = key.type == YAML_SCALAR_EVENT;
        char name[160], where[1100];
        if (scalar) snprintf(name, sizeof name, "%s.%s", prefix, (const char *)key.data.scalar.value);
        yaml_event_delete(&key);
        if (!scalar) return err_set(r->err, "%s:%zu: a key of section '%s' must be a plain name", r->path, line, prefix);
        snprintf(where, sizeof where, "%s:%zu", r->path, line);
        yaml_event_t v;
        if (next_event(r, &v)) return -1;
        int rc = 0;
        if (v.type == YAML_MAPPING_START_EVENT) rc = load_section(r, name);
        else if (v.type == YAML_SEQUENCE_START_EVENT) rc = set_list(r, name, where);
        else if (v.type == YAML_SCALAR_EVENT) rc = config_set(r->c, name, (const char *)v.data.scalar.value, where, r->err);
        else rc = err_set(r->err, "key '%s' at %s: aliases (*name) are not supported", name, where);
        yaml_event_delete(&v);
        if (rc) return -1;
    }
}

/* One `key: value` pair whose key scalar was on `line`. */
static int load_pair(YamlReader *r, const char *name, size_t line) {
    char where[1100];
    snprintf(where, sizeof where, "%s:%zu", r->path, line);
    yaml_event_t v;
    if (next_event(r, &v)) return -1;
    yaml_event_type_t type = v.type;
    int rc = 0;
    const ConfigKey *k = config_find_key(name);
    if (strcmp(name, "base") == 0) {
        rc = load_base(r, &v, where);
        yaml_event_delete(&v);
        r->pairs++;
        return rc;
    }
    if (type == YAML_MAPPING_START_EVENT && choice_has(config_sections, name)) {
        yaml_event_delete(&v);
        r->pairs++;
        return load_section(r, name);
    }
    if (!k && strchr(name, '.')) { /* a dotted section key at the top level */
        if (type == YAML_SCALAR_EVENT) rc = config_set(r->c, name, (const char *)v.data.scalar.value, where, r->err);
        else if (type != YAML_SEQUENCE_START_EVENT) rc = err_set(r->err, "key '%s' at %s needs a plain value", name, where);
        yaml_event_delete(&v);
        r->pairs++;
        return rc ? -1 : type == YAML_SEQUENCE_START_EVENT ? set_list(r, name, where) : 0;
    }
    if (type == YAML_MAPPING_START_EVENT)
        rc = err_set(r->err, "key '%s' at %s: nested mappings are not supported; write keys flat", name, where);
    else if (!k && type != YAML_SCALAR_EVENT)
        rc = config_set(r->c, name, "", where, r->err) ? -1 /* the unknown-key message */
                                                          : err_set(r->err, "key '%s' at %s takes one plain value", name, where);
    else if (!k) rc = config_set(r->c, name, (const char *)v.data.scalar.value, where, r->err); /* a seed flag's alias */
    else if (r->line[k - config_keys])
        rc = err_set(r->err, "key '%s' at %s is given twice (first at line %zu)", name, where,
                     r->line[k - config_keys]);
    else if (type == YAML_ALIAS_EVENT)
        rc = err_set(r->err, "key '%s' at %s: aliases (*name) are not supported", name, where);
    else if (type == YAML_SCALAR_EVENT) rc = set_scalar(r, k, &v, where);
    yaml_event_delete(&v);
    if (rc) return -1;
    r->pairs++;
    if (!k) return 0;
    r->line[k - config_keys] = line;
    return type == YAML_SEQUENCE_START_EVENT ? set_list(r, k->name, where) : 0;
}

/* The pairs of the top-level mapping, up to its end. */
static int load_mapping(YamlReader *r) {
    for (;;) {
        yaml_event_t key;
        if (next_event(r, &key)) return -1;
        if (key.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&key);
            return 0;
        }
        size_t line = event_line(&key);
        char name[128];
        bool scalar = key.type == YAML_SCALAR_EVENT;
        if (scalar) snprintf(name, sizeof name, "%s", (const char *)key.data.scalar.value);
        yaml_event_delete(&key);
        if (!scalar) return err_set(r->err, "%s:%zu: a key must be a plain name", r->path, line);
        if (load_pair(r, name, line)) return -1;
    }
}

/* One document: a mapping, or nothing at all (a bare `---`). */
static int load_document(YamlReader *r) {
    yaml_event_t e;
    if (next_event(r, &e)) return -1;
    size_t line = event_line(&e);
    yaml_event_type_t type = e.type;
    bool empty = type == YAML_SCALAR_EVENT && is_null_scalar(&e);
    yaml_event_delete(&e);
    if (type == YAML_MAPPING_START_EVENT) {
        if (load_mapping(r)) return -1;
    } else if (!empty) {
        const char *got = type == YAML_SEQUENCE_START_EVENT ? "a list" : "a single value";
        return err_set(r->err, "%s:%zu: the top level must be a mapping of `key: value` lines, not %s", r->path, line,
                       got);
    }
    if (next_event(r, &e)) return -1; /* the document end */
    yaml_event_delete(&e);
    return 0;
}

/* The stream: nothing (an empty file) or exactly one document. */
static int load_stream(YamlReader *r) {
    yaml_event_t e;
    if (next_event(r, &e)) return -1; /* the stream start */
    yaml_event_delete(&e);
    for (int docs = 0;; docs++) {
        if (next_event(r, &e)) return -1;
        yaml_event_type_t type = e.type;
        size_t line = event_line(&e);
        yaml_event_delete(&e);
        if (type == YAML_STREAM_END_EVENT) return 0;
        if (docs > 0)
            return err_set(r->err, "%s:%zu: a second YAML document; a config holds only one", r->path, line);
        if (load_document(r)) return -1;
    }
}

/* Reads a flat YAML mapping of key: value and sets each key. A list value is
 * joined with ','. Errors name the file and the 1-based line. Returns 0, or -1
 * with a message; on failure `c` is left unchanged. */
int config_load_yaml(Config *c, const char *path, Error *err) { return load_yaml(c, path, 0, err); }

static int load_yaml(Config *c, const char *path, int depth, Error *err) {
    char *text = NULL;
    size_t len = 0;
    if (read_whole(path, &text, &len, err)) return -1;
    YamlReader *r = calloc(1, sizeof *r);
    Config *copy = malloc(sizeof *copy);
    if (!r || !copy || !yaml_parser_initialize(&r->parser)) {
        free(r);
        free(copy);
        free(text);
        return err_set(err, "out of memory reading config '%s'", path);
    }
    memcpy(copy, c, sizeof *copy); /* memcpy, not assignment, to keep the padding bytes */
    r->path = path;
    r->c = copy;
    r->depth = depth;
    r->err = err;
    yaml_parser_set_input_string(&r->parser, (const unsigned char *)text, len);
    int rc = load_stream(r);
    if (!rc) memcpy(c, copy, sizeof *c);
    yaml_parser_delete(&r->parser);
    free(r);
    free(copy);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Finalize: derived values and cross-key rules                               */

static long int_value(const Config *c, const char *name) {
    const ConfigKey *k = config_find_key(name);
    return k->type == KEY_LONG ? *(const long *)cfield_of(c, k) : *(const int *)cfield_of(c, k);
}

/* Every key of `names` must be > 0 (positive) or >= 0. */
static int check_signs(const Config *c, const char *const *names, int n, bool positive, Error *err) {
    for (int i = 0; i < n; i++) {
        long v = int_value(c, names[i]);
        if (positive ? v <= 0 : v < 0)
            return err_set(err, "key '%s' must be %s 0, got %ld", names[i], positive ? ">" : ">=", v);
    }
    return 0;
}

static int check_integers(const Config *c, Error *err) {
    /* keys where 0 means "derive it" come first: they may not be negative */
    static const char *const nonnegative[] = {"epochs", "pos_offset", "d_head", "d_inner", "max_len", "eval_tgt_len", "eval_batch_size",
                                              "ckpt_interval", "eval_max_batches", "warmup_step", "eval_stride",
                                              "threads", "init_from_step"};
    static const char *const positive[] = {"d_model", "n_head", "batch_size", "tgt_len", "batch_split", "num_examples",
                                           "num_test_examples",
                                           "max_step", "log_interval", "keep_checkpoints", "diag_size",
                                           "linear_chunk", "max_skipped"};
    if (check_signs(c, nonnegative, sizeof nonnegative / sizeof *nonnegative, false, err)) return -1;
    if (check_signs(c, positive, sizeof positive / sizeof *positive, true, err)) return -1;
    if (c->mem_len != 0)
        return err_set(err, "key 'mem_len' = %d: the Transformer-XL memory is not supported yet; use mem_len 0",
                       c->mem_len);
    if (c->batch_size % c->batch_split)
        return err_set(err, "key 'batch_size' (%d) must be divisible by key 'batch_split' (%d)", c->batch_size,
                       c->batch_split);
    if (c->eval_interval < -1 || (c->eval_interval == -1 && c->epochs == 0))
        return err_set(err, "key 'eval_interval' must be >= 0, or -1 (every epoch) with key 'epochs', got %d",
                       c->eval_interval);
    if (c->init_from_step && !c->init_from[0])
        return err_set(err, "key 'init_from_step' (--checkpoint) names a checkpoint of the run that key 'init_from' "
                            "gives; init_from is empty");
    return 0;
}

/* An empty arch is "sf" x n_layer, its layers '.'-separated under the
 * brainformer grammar (where "sfsf" would be one layer sharing its s and f). */
static int derive_arch(Config *c, Error *err) {
    if (c->arch[0]) return 0; /* given explicitly: it wins over n_layer */
    if (c->n_layer <= 0) return err_set(err, "key 'n_layer' must be > 0 when 'arch' is empty, got %d", c->n_layer);
    const size_t layer = strcmp(c->arch_grammar, "brainformer") ? 2 : 3;
    if ((size_t)c->n_layer * layer >= sizeof c->arch)
        return err_set(err, "key 'n_layer' %d is too large: arch \"sf\" x %d would exceed %zu characters", c->n_layer,
                       c->n_layer, sizeof c->arch - 1);
    for (int i = 0; i < c->n_layer; i++) memcpy(c->arch + layer * (size_t)i, i + 1 < c->n_layer ? "sf." : "sf", layer);
    return 0;
}

/* Fills the keys whose 0 means "derive it from another key". */
static int derive(Config *c, Error *err) {
    /* d_head 0 stays 0: each attention module divides its width by its own
     * n_head (a mixer section may set n_head apart from the model's) */
    if (c->d_inner == 0) {
        if (c->d_model > INT_MAX / 4) return err_set(err, "key 'd_model' %d is too large", c->d_model);
        c->d_inner = 4 * c->d_model;
    }
    if (!strcmp(c->task, "assoc_recall")) { /* the sequence length is the task's */
        if (c->input_seq_len < 2 || c->input_seq_len % 2 || c->input_seq_len > INT_MAX - 3)
            return err_set(err, "key 'input_seq_len' must be an even number >= 2, got %d", c->input_seq_len);
        if (c->vocab_size < 4 || c->vocab_size > 65536)
            return err_set(err, "key 'vocab_size' must be in [4, 65536] for assoc_recall, got %d", c->vocab_size);
        c->tgt_len = c->eval_tgt_len = c->input_seq_len + 2;
    }
    if (c->embed_dropout < 0) c->embed_dropout = c->dropout;
    if (c->iterations > 0) c->max_step = c->iterations * (c->eval_interval > 0 ? c->eval_interval : 1);
    if (c->max_micro_step > 0) c->max_step = c->max_micro_step / (c->batch_split > 0 ? c->batch_split : 1);
    if (c->max_len == 0) c->max_len = c->tgt_len;
    if (c->eval_tgt_len == 0) c->eval_tgt_len = c->tgt_len;
    if (c->eval_batch_size == 0) c->eval_batch_size = c->batch_size;
    return derive_arch(c, err);
}

static int check_arch(const Config *c, Error *err) {
    const bool dots = strcmp(c->arch_grammar, "plain") != 0;
    for (size_t i = 0; c->arch[i]; i++) {
        unsigned char ch = (unsigned char)c->arch[i];
        if (ch == 's' || ch == 'f' || ch == 'g' || (dots && ch == '.')) continue;
        if (isprint(ch))
            return err_set(err, "key 'arch' has '%c' at position %zu of \"%s\"; use only 's' (mixer), 'f' "
                                "(feed-forward) and 'g' (mixture of experts)", ch, i + 1, c->arch);
        return err_set(err, "key 'arch' has byte 0x%02x at position %zu; use only 's' (mixer), 'f' (feed-forward) "
                            "and 'g' (mixture of experts)", ch, i + 1);
    }
    if (c->tgt_len > c->max_len)
        return err_set(err, "tgt_len %d is longer than max_len %d, the longest sequence the model allows", c->tgt_len,
                       c->max_len);
    if (c->eval_tgt_len > c->max_len)
        return err_set(err, "eval_tgt_len %d is longer than max_len %d, the longest sequence the model allows",
                       c->eval_tgt_len, c->max_len);
    return 0;
}

/* Windows are the lm task's alternative to streams, with their own evaluation. */
static int check_batching(const Config *c, Error *err) {
    if (strcmp(c->lm_batching, "windows")) return 0;
    if (strcmp(c->task, "lm"))
        return err_set(err, "key 'lm_batching' windows is for task lm, not %s; remove it or use streams", c->task);
    if (c->eval_stride)
        return err_set(err, "key 'eval_stride' %d: lm_batching windows evaluates non-overlapping windows; set "
                            "eval_stride 0 or use lm_batching streams", c->eval_stride);
    return 0;
}

typedef struct {
    const char *key;
    double lo, hi;          /* hi = HUGE_VAL: no upper bound */
    bool lo_open, hi_open;  /* open: the bound itself is excluded */
} Range;

static int check_floats(const Config *c, Error *err) {
    static const Range ranges[] = {
        {"valid_fraction", 0, 1, false, true}, {"test_fraction", 0, 1, false, true},
        {"dropout", 0, 1, false, true},        {"dropatt", 0, 1, false, true},
        {"out_dropout", 0, 1, false, true},    {"embed_dropout", 0, 1, false, true},
        {"init_std", 0, HUGE_VAL, true, false}, {"lr", 0, HUGE_VAL, true, false},
        {"min_lr", 0, HUGE_VAL, false, false}, {"beta1", 0, 1, false, true},
        {"beta2", 0, 1, false, true},          {"eps", 0, HUGE_VAL, true, false},
        {"weight_decay", 0, HUGE_VAL, false, false}, {"clip", 0, HUGE_VAL, false, false},
        {"pct_start", 0, 1, true, false},      {"div_factor", 0, HUGE_VAL, true, false},
        {"final_div_factor", 0, HUGE_VAL, true, false}, {"base_momentum", 0, 1, false, true},
        {"max_momentum", 0, 1, false, true},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++) {
        const Range *g = &ranges[i];
        double v = *(const double *)cfield_of(c, config_find_key(g->key));
        bool ok = (g->lo_open ? v > g->lo : v >= g->lo) && (g->hi_open ? v < g->hi : v <= g->hi);
        if (ok) continue;
        if (g->hi == HUGE_VAL)
            return err_set(err, "key '%s' must be %s %g, got %g", g->key, g->lo_open ? ">" : ">=", g->lo, v);
        return err_set(err, "key '%s' must be in %c%g, %g%c, got %g", g->key, g->lo_open ? '(' : '[', g->lo, g->hi,
                       g->hi_open ? ')' : ']', v);
    }
    if (c->valid_fraction + c->test_fraction >= 1)
        return err_set(err, "valid_fraction %g + test_fraction %g must be below 1, or nothing is left to train on",
                       c->valid_fraction, c->test_fraction);
    return 0;
}

/* Checks each name of decay_groups and rewrites the list without blanks or
 * empty items ("linear, norm" -> "linear,norm"). */
static int check_decay_groups(Config *c, Error *err) {
    char clean[sizeof c->decay_groups] = {0};
    size_t len = 0;
    for (const char *p = c->decay_groups; *p;) {
        size_t n = strcspn(p, ",");
        const char *next = p[n] ? p + n + 1 : p + n;
        while (n && isspace((unsigned char)*p)) p++, n--;
        while (n && isspace((unsigned char)p[n - 1])) n--;
        char name[sizeof c->decay_groups];
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        if (n && !choice_has(decay_group_names, name))
            return err_set(err, "key 'decay_groups': unknown group '%s'; choose from %s", name, decay_group_names);
        if (n) len += (size_t)snprintf(clean + len, sizeof clean - len, "%s%s", len ? "," : "", name);
        p = next;
    }
    memcpy(c->decay_groups, clean, sizeof clean);
    return 0;
}

/* Fills the derived keys (d_inner, max_len, eval_tgt_len,
 * eval_batch_size, arch) and checks every rule that spans keys or ranges.
 * Running it twice gives the same config. Returns 0, or -1 with a message
 * naming the keys; on failure `c` is left unchanged. */
int config_finalize(Config *c, Error *err) {
    Config copy;
    memcpy(&copy, c, sizeof copy);
    if (check_integers(&copy, err) || derive(&copy, err) || check_arch(&copy, err) || check_batching(&copy, err) ||
        check_floats(&copy, err) || check_decay_groups(&copy, err))
        return -1;
    memcpy(c, &copy, sizeof copy);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Writing and help                                                           */

/* The shortest "%.*g" text that reads back as exactly `v` (at most 17 digits). */
static void format_double(double v, char *buf, size_t n) {
    char text[40];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v) break;
    }
    snprintf(buf, n, "%s", text);
}

/* Formats one key's current value as text that config_set reads back to the
 * same value (strings unquoted). Truncates to fit n bytes. */
void config_format_value(const Config *c, const ConfigKey *k, char *buf, size_t n) {
    if (!n) return;
    const void *p = cfield_of(c, k);
    switch (k->type) {
    case KEY_INT: snprintf(buf, n, "%d", *(const int *)p); break;
    case KEY_LONG: snprintf(buf, n, "%ld", *(const long *)p); break;
    case KEY_FLOAT: format_double(*(const double *)p, buf, n); break;
    case KEY_BOOL: snprintf(buf, n, "%s", *(const bool *)p ? "true" : "false"); break;
    case KEY_STRING:
    case KEY_LIST:
    case KEY_CHOICE: snprintf(buf, n, "%s", (const char *)p); break;
    }
}

/* A YAML double-quoted scalar: '"' and '\' escaped, control bytes as \xNN. */
static void write_quoted(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f) fprintf(f, "\\x%02x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

/* Writes every key in table order as `key: value`, under a `# section` line
 * per section; strings are double-quoted so config_load_yaml reads back an
 * identical Config. Returns 0, or -1 if the stream reports a write error. */
int config_write_yaml(const Config *c, FILE *f) {
    const char *section = NULL;
    char value[64];
    for (int i = 0; i < N_KEYS; i++) {
        const ConfigKey *k = &config_keys[i];
        if (!section || strcmp(section, k->section) != 0)
            fprintf(f, "%s# %s\n", section ? "\n" : "", k->section);
        section = k->section;
        fprintf(f, "%s: ", k->name);
        if (k->type == KEY_STRING || k->type == KEY_LIST || k->type == KEY_CHOICE) {
            write_quoted(f, (const char *)cfield_of(c, k));
        } else {
            config_format_value(c, k, value, sizeof value);
            fputs(value, f);
        }
        fputc('\n', f);
    }
    if (c->n_entries) fprintf(f, "\n# sections\n");
    for (int i = 0; i < c->n_entries; i++) {
        fprintf(f, "%s: ", c->entries[i].key);
        write_quoted(f, c->entries[i].value);
        fputc('\n', f);
    }
    return ferror(f) ? -1 : 0;
}

/* Writes the config to `path` atomically (core/file.h): a reader sees the
 * old file or the new one, never a part. Returns 0, or -1 with a message
 * naming the path. */
int config_save(const Config *c, const char *path, Error *err) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return err_errno(err, "cannot write config '%s'", path);
    int rc = config_write_yaml(c, f);
    if (fclose(f) != 0 || rc) rc = err_set(err, "cannot write config '%s': out of memory", path);
    const void *parts[] = {text};
    if (!rc) rc = file_write_atomic(path, parts, &len, 1, err);
    free(text);
    return rc;
}

const char *config_type_name(KeyType type, const char *choices) {
    switch (type) {
    case KEY_INT:
    case KEY_LONG: return "int";
    case KEY_FLOAT: return "float";
    case KEY_BOOL: return "bool";
    case KEY_STRING: return "string";
    case KEY_LIST: return "list";
    case KEY_CHOICE: return choices;
    }
    return "?";
}

static const char *type_text(const ConfigKey *k) { return config_type_name(k->type, k->choices); }

static const char *default_text(const ConfigKey *k) { return k->fallback[0] ? k->fallback : "\"\""; }

/* Prints every key grouped by section, in four aligned columns:
 * name, type (or the choices), default, help. */
void config_print_help(FILE *f) {
    int wname = 0, wtype = 0, wdef = 0;
    for (int i = 0; i < N_KEYS; i++) {
        const ConfigKey *k = &config_keys[i];
        if ((int)strlen(k->name) > wname) wname = (int)strlen(k->name);
        if ((int)strlen(type_text(k)) > wtype) wtype = (int)strlen(type_text(k));
        if ((int)strlen(default_text(k)) > wdef) wdef = (int)strlen(default_text(k));
    }
    const char *section = NULL;
    for (int i = 0; i < N_KEYS; i++) {
        const ConfigKey *k = &config_keys[i];
        if (!section || strcmp(section, k->section) != 0) {
            fprintf(f, "%s%s keys:\n", section ? "\n" : "", k->section);
            fprintf(f, "  %-*s  %-*s  %-*s  %s\n", wname, "key", wtype, "type", wdef, "default", "meaning");
        }
        section = k->section;
        fprintf(f, "  %-*s  %-*s  %-*s  %s\n", wname, k->name, wtype, type_text(k), wdef, default_text(k), k->help);
    }
    fprintf(f, "\nflags of the seed trainers, accepted as aliases:\n");
    for (int i = 0; i < config_alias_count; i++) {
        const ConfigAlias *a = &config_aliases[i];
        if (a->kind == ALIAS_KEY)
            fprintf(f, "  --%-*s  sets '%s'%s%s: %s\n", wname, a->name, a->key,
                    !a->values ? "" : a->takes_value ? " by " : " to ", a->values ? a->values : "", a->help);
        else if (a->kind == ALIAS_RANKS)
            fprintf(f, "  --%-*s  trains on every MPI rank: mpirun -np N seqlab train ... (%s)\n", wname, a->name,
                    a->help);
        else
            fprintf(f, "  --%-*s  ignored (%s)\n", wname, a->name, a->help);
    }
}

/* ------------------------------------------------------------------------ */
/* Key-name lookup                                                            */

/* Returns the row of key `name`, or NULL if there is none (exact match). */
const ConfigKey *config_find_key(const char *name) {
    for (int i = 0; name && i < N_KEYS; i++)
        if (strcmp(config_keys[i].name, name) == 0) return &config_keys[i];
    return NULL;
}

const ConfigAlias *config_find_alias(const char *name) {
    for (int i = 0; name && i < config_alias_count; i++)
        if (strcmp(config_aliases[i].name, name) == 0) return &config_aliases[i];
    return NULL;
}

/* Levenshtein distance, ignoring case, between any string `a` and a key name
 * `b` (short: at most CFG_NAME characters). One row of the table suffices. */
static size_t edit_distance(const char *a, const char *b) {
    size_t nb = strlen(b), row[CFG_NAME + 1];
    if (nb > CFG_NAME) return (size_t)-1;
    for (size_t j = 0; j <= nb; j++) row[j] = j;
    for (size_t i = 0; a[i]; i++) {
        size_t diag = row[0];
        row[0] = i + 1;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* The candidate closest to `name`, or NULL when even the closest needs more
 * than max(2, strlen(name)/3) edits, or as many edits as `name` has
 * characters (then the "suggestion" would share nothing with what was typed). */
const char *config_closest(const char *name, const char *const *candidates, size_t n) {
    if (!name) return NULL;
    size_t len = strlen(name), limit = len / 3 > 2 ? len / 3 : 2, best = (size_t)-1;
    const char *found = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(name, candidates[i]);
        if (d < best) {
            best = d;
            found = candidates[i];
        }
    }
    return best <= limit && best < len ? found : NULL;
}

const char *config_closest_key(const char *name) {
    const char *names[N_KEYS];
    for (int i = 0; i < N_KEYS; i++) names[i] = config_keys[i].name;
    return config_closest(name, names, N_KEYS);
}
