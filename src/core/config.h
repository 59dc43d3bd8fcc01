/* config.h — every configuration key of seqlab, in one table.
 *
 * A Config is filled in three layers: the defaults of the table below, then a
 * YAML file (a flat mapping of key: value), then `--key value` overrides from
 * the command line. Every layer goes through the same parser, so a value is
 * checked the same way wherever it comes from. An unknown key is an error that
 * names the file and line (or the flag) and suggests the closest valid key.
 *
 *     Config c; config_defaults(&c);
 *     if (config_load_yaml(&c, "configs/shakespeare.yaml", &err)) ...
 *     if (config_set(&c, "lr", "3e-4", "--lr", &err)) ...
 *     if (config_finalize(&c, &err)) ...      // derived values, cross-key checks
 *
 * To add a key: add the field to Config and one row to config_keys[] in config.c.
 */
#ifndef SEQLAB_CONFIG_H
#define SEQLAB_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "error.h"

#define CFG_PATH 1024
#define CFG_NAME 64

/* A key of a section (`mixer: {name: fmm, diag_size: 20}`, `--mixer.diag_size
 * 20`), kept as text with its origin until the module it belongs to reads it
 * (nn/keys.h): "mixer.diag_size", "mixer.filter.d_state",
 * "blocks.3.mixer.window", "lr_groups.*.ssm.*.lr". */
typedef struct {
    char key[96];
    char value[256];
    char where[160];  /* "file.yaml:7" or "--mixer.diag_size" */
} ConfigEntry;

enum { CONFIG_MAX_ENTRIES = 64 };

typedef struct {
    /* data */
    char dataset[CFG_NAME];        /* shakespeare | text */
    char data[CFG_PATH];           /* one text file, split by fraction */
    char train_file[CFG_PATH], valid_file[CFG_PATH], test_file[CFG_PATH];
    char tokenizer[CFG_NAME];      /* auto | byte | char | word | bpe */
    char task[CFG_NAME];           /* lm | mlm | classification | regression | assoc_recall (tasks/task.h) */
    char lm_batching[CFG_NAME];    /* streams | windows: how lm cuts its stream into batches (tasks/task.h) */
    int vocab_size, input_seq_len; /* assoc_recall (tasks/assoc_recall.h) */
    int num_examples, num_test_examples;
    long data_seed;
    char text_column[CFG_NAME], text2_column[CFG_NAME], label_column[CFG_NAME]; /* labelled examples (TSV) */
    bool header;                   /* the TSV files start with a row of column names */
    char format[CFG_NAME];         /* how labelled examples are stored: tsv | listops | imdb | aan | cifar10 | ... */
    int image_size;                /* pathfinder: the images' side */
    double input_mean, input_std;  /* encoder linear over signals: (value - mean) / std */
    bool mlm_blocks;               /* mlm: rows are <cls> + tgt_len - 2 stream tokens + <sep> */
    char label_names[CFG_PATH];    /* class names in class order, comma list; empty: labels are ids */
    bool attend_padding;           /* labelled examples: rows padded to tgt_len, no padding mask */
    bool wikihop_drop_overflow;    /* wikihop: the original's windows, which drop a support that overflows */
    double mlm_probability;        /* mlm: share of the tokens masked */
    char bpe_vocab[CFG_PATH], bpe_merges[CFG_PATH]; /* GPT-2 BPE files */
    double valid_fraction, test_fraction;
    /* model */
    char arch[1024];               /* sublayer string, e.g. "sfsfsf"; empty: "sf" x n_layer */
    int n_layer;
    char arch_grammar[CFG_NAME];   /* plain | sandwich | brainformer (model/trunk.h) */
    char mixer[CFG_NAME];          /* the token mixer of every 's' sublayer */
    char ffn[CFG_NAME];            /* the feed-forward of every 'f' sublayer */
    int d_model, n_head, d_head, d_inner;
    char norm[CFG_NAME];           /* pre | post */
    char activation[CFG_NAME];     /* relu | gelu | gelu_tanh */
    char pos[CFG_NAME];            /* learned | sinusoidal | sinusoidal_reversed | none */
    char emb_scale[CFG_NAME];      /* none | sqrt_d: multiply the token embedding by sqrt(d_model) */
    char embed_init[CFG_NAME];     /* scheme | inv_sqrt_d: embedding tables ~ N(0, 1/d_model) (MEGA, SeqBoat) */
    int pos_offset;                /* learned positions: token t reads row t + pos_offset */
    bool type_embed;               /* a learned vector added to every token (a one-row token-type table) */
    bool embed_norm;               /* LayerNorm over the summed embeddings, before their dropout */
    char encoder[CFG_NAME];        /* tokens | linear: embedding of ids, or a linear map of real values */
    int d_input;                   /* encoder linear: values per position */
    char ln_init[CFG_NAME];        /* one | normal: LayerNorm weights 1, or N(1, 0.02) as the FMM trainer */
    bool final_norm_affine;        /* false: the final LayerNorm has no weight and bias (MEGA's LM) */
    int mem_len;                   /* Transformer-XL memory; only 0 is supported */
    /* attention-family mixers (shared/spec/attention.md) */
    int diag_size;                 /* band / fmm near field: keys per query (causal) */
    double sparse_ratio;           /* fmm: mode selector, floor() of it picks the blend (spec 4.2) */
    char kernels[CFG_NAME];        /* fmm far-field feature maps: comma list of elu, elu_flip */
    int linear_chunk;              /* chunk length of causal linear attention */
    bool tie_weight, causal;
    bool adaptive_softmax;         /* adaptive softmax head (heads.h) */
    bool head_bias;                /* a bias for the full softmax head (the adaptive one always has it) */
    char cutoffs[CFG_NAME];        /* its cluster boundaries, comma list */
    int div_val;                   /* adaptive softmax: cluster widths d_model / div_val^i */
    bool recompute_ffn;            /* activation checkpointing of the feed-forward */
    double dropout, dropatt, out_dropout, init_std;
    char init[CFG_NAME];           /* seqlab | flax | gpt2: the initialisation scheme */
    double embed_dropout;          /* -1 in a config: = dropout */
    int max_len;                   /* longest sequence the model accepts */
    /* training */
    int batch_size, tgt_len, batch_split;
    long max_step;
    long iterations, max_micro_step;
    char optim[CFG_NAME];          /* adamw | adam | radam */
    double lr, min_lr;
    int warmup_step;
    int epochs;                    /* > 0: max_step is this many passes over the training data */
    char scheduler[CFG_NAME];      /* constant | cosine | linear | inv_sqrt | cosine_txl | cosine_optax | one_cycle */
    double warmup_init_lr;         /* linear: the first update's lr (fairseq's --warmup-init-lr) */
    bool warmup_first_step_full_lr;/* cosine_txl: update 1 at the full lr, as the Transformer-XL trainer */
    double beta1, beta2, eps, weight_decay;
    double pct_start, div_factor, final_div_factor; /* one_cycle */
    bool cycle_momentum;
    double base_momentum, max_momentum;
    char decay_groups[CFG_NAME];   /* comma list of linear,embedding,norm,bias,other */
    double clip;
    char clip_mode[CFG_NAME];
    char nonfinite[CFG_NAME];      /* stop | skip */
    int max_skipped;
    /* evaluation, logging, checkpoints */
    int eval_interval, eval_tgt_len, eval_batch_size, eval_max_batches, eval_stride;
    int log_interval, ckpt_interval, keep_checkpoints;
    long seed;
    int threads;
    char precision[CFG_NAME];      /* fp32 | bf16: of the large matrix products (core/gemm.h) */
    char out[CFG_PATH];
    char init_from[CFG_PATH];      /* a run or checkpoint whose weights start this run */
    long init_from_step;           /* init_from a run: the checkpoint of this step; 0 = the newest */
    /* section keys, in the order they were first set */
    ConfigEntry entries[CONFIG_MAX_ENTRIES];
    int n_entries;
} Config;

/* Names a config key may start with followed by a dot: "mixer", "ffn", ... */
extern const char *const config_sections;

/* KEY_LIST is a string holding a comma list (YAML: a sequence or "a,b"). */
typedef enum { KEY_INT, KEY_LONG, KEY_FLOAT, KEY_BOOL, KEY_STRING, KEY_LIST, KEY_CHOICE } KeyType;

typedef struct {
    const char *name;
    KeyType type;
    size_t offset, size;   /* field position in Config; size for strings */
    const char *fallback;  /* default, parsed like any other value */
    const char *choices;   /* KEY_CHOICE: "a|b|c" */
    const char *section;   /* data | model | train | eval | run */
    const char *help;
} ConfigKey;

extern const ConfigKey config_keys[];
extern const int config_key_count;

/* Flags of the seed trainers (the FMMformer repository's Transformer-XL
 * train.py, ...), accepted so that a seed command line runs with only the
 * program replaced by `seqlab train`. An alias either sets a config key
 * (through a value map such as attn_type 201 -> mixer fmm) or is a GPU or
 * logging option that seqlab accepts and ignores. */
/* ALIAS_RANKS: a seed's "use every GPU" flag; seqlab trains on every MPI rank it is started with */
typedef enum { ALIAS_KEY, ALIAS_IGNORED, ALIAS_RANKS } AliasKind;

typedef struct {
    const char *name;   /* the flag without "--" */
    AliasKind kind;
    bool takes_value;   /* false: a switch */
    const char *key;    /* ALIAS_KEY: the key it sets */
    const char *values; /* ALIAS_KEY: "2=softmax|34=linear|201=fmm", or NULL for the value as given;
                           a switch: the value it sets */
    const char *help;
} ConfigAlias;

extern const ConfigAlias config_aliases[];
extern const int config_alias_count;
const ConfigAlias *config_find_alias(const char *name);

/* The model and training defaults of a seed's trainer, which a command line
 * of that trainer's flags stands on when no config file is given (the
 * flags name the trainer, the trainer its defaults): `--attn_type 201 ...`
 * builds the FMMformer trainer's post-LN model, not seqlab's defaults with
 * only the mixer changed. */
typedef struct {
    const char *name;     /* "the FMMformer trainer" */
    const char *flags;    /* its flags, '|'-separated: any of them selects the profile */
    const char *settings; /* "key=value;..." applied before the command line's own */
} ConfigProfile;

/* The profile whose flags include `flag` (without "--"), or NULL. */
/* Whether key is "<section>.<name>" of a known section (mixer, ffn, moe, ...). */
bool config_is_section_key(const char *key);
const ConfigProfile *config_profile_of_flag(const char *flag);
/* Applies a profile's settings to c (origin: the profile's name). */
int config_apply_profile(Config *c, const ConfigProfile *p, Error *err);

void config_defaults(Config *c);
/* Parses `text` as a value of `type` into `field` (`size` bytes; `choices`
 * for KEY_CHOICE); `label` names the key in messages ("key 'lr' (--lr)").
 * The field is unchanged on failure. */
int config_parse_value(KeyType type, const char *choices, size_t size, void *field, const char *text,
                       const char *label, Error *err);
/* The entry `key` ("mixer.diag_size"), or NULL. */
const ConfigEntry *config_entry(const Config *c, const char *key);
/* true/yes/on/1 or false/no/off/0 (any case) into *out; -1 for anything else. */
int config_parse_bool(const char *s, bool *out);
/* Sets one key (or alias) from text. `where` names the origin for messages
 * ("file.yaml:12" or "--lr"). An ignored alias changes nothing. A dotted key
 * whose first part is a section ("mixer.diag_size") is stored as an entry
 * for its module to check; "mixer.name" and "ffn.name" set `mixer`, `ffn`. */
int config_set(Config *c, const char *key, const char *value, const char *where, Error *err);
/* Reads a YAML mapping (libyaml): flat keys, and sections as nested
 * mappings (`mixer: {name: fmm, diag_size: 20}`) or dotted keys
 * (`mixer.diag_size: 20`); errors name the file and line. A first key
 * `base: FILE` reads FILE (relative to this one) first. */
int config_load_yaml(Config *c, const char *path, Error *err);
/* Derives defaults that depend on other keys and checks cross-key rules. */
int config_finalize(Config *c, Error *err);
/* Writes the resolved config as YAML, every key, in table order. */
int config_write_yaml(const Config *c, FILE *f);
int config_save(const Config *c, const char *path, Error *err);
/* Prints every key with its default and help, grouped by section. */
void config_print_help(FILE *f);
/* The closest key name to `name` (edit distance), or NULL if nothing is close. */
const char *config_closest_key(const char *name);
/* The same among any n names. */
const char *config_closest(const char *name, const char *const *candidates, size_t n);
/* "int", "float", ..., or the choices of a KEY_CHOICE key (for help texts). */
const char *config_type_name(KeyType type, const char *choices);
const ConfigKey *config_find_key(const char *name);
/* Formats one key's current value as text. */
void config_format_value(const Config *c, const ConfigKey *k, char *buf, size_t n);

#endif
