/* test_config.c — src/core/config.c: the key table, parsing each key type,
 * unknown-key suggestions, the YAML reader and its messages (file and line),
 * config_finalize's derived values and rules, and write -> load round trips.
 *
 * Adding a finalize rule: add one row to the table in finalize_rules_each. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include "../src/core/config.h"
#include "test.h"

/* ---- helpers ---- */

static bool contains(const char *text, const char *part) { return strstr(text, part) != NULL; }

/* Writes `text` to <tmpdir>/<name> and returns the path (static buffer). */
static const char *write_file(const char *name, const char *text) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    if (!f) return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads `text` as YAML over the defaults; err and path are filled. */
static int load_text(const char *text, Config *c, Error *err, const char **path) {
    config_defaults(c);
    memset(err, 0, sizeof *err);
    *path = write_file("cfg.yaml", text);
    return *path ? config_load_yaml(c, *path, err) : -1;
}

static const char *path_line(const char *path, int line) {
    static char buf[1100];
    snprintf(buf, sizeof buf, "%s:%d", path, line);
    return buf;
}

static size_t type_size(KeyType t) {
    switch (t) {
    case KEY_INT: return sizeof(int);
    case KEY_LONG: return sizeof(long);
    case KEY_FLOAT: return sizeof(double);
    case KEY_BOOL: return sizeof(bool);
    default: return 0;
    }
}

static size_t type_align(KeyType t) { return t == KEY_STRING || t == KEY_LIST || t == KEY_CHOICE ? 1 : type_size(t); }

/* ---- the table ---- */

TEST(config_table_rows_match_fields) {
    static const char *const sections[] = {"data", "model", "train", "eval", "run"};
    int section = 0;
    size_t end = 0; /* end of the previous field: the table follows the struct order */
    REQUIRE(config_key_count > 40, "only %d keys", config_key_count);
    for (int i = 0; i < config_key_count; i++) {
        const ConfigKey *k = &config_keys[i];
        CHECK(config_find_key(k->name) == k, "key '%s' is listed twice", k->name);
        CHECK(k->help && k->help[0], "key '%s' has no help", k->name);
        if (type_size(k->type)) CHECK(k->size == type_size(k->type), "key '%s': size %zu", k->name, k->size);
        else CHECK(strlen(k->fallback) < k->size, "key '%s': default too long", k->name);
        CHECK((k->type == KEY_CHOICE) == (k->choices != NULL), "key '%s': choices vs type", k->name);
        while (section < 5 && strcmp(sections[section], k->section) != 0) section++;
        CHECK(section < 5, "key '%s': section '%s' out of order or unknown", k->name, k->section);
        /* a gap wider than the alignment would be a field with no row */
        CHECK(k->offset >= end && k->offset - end < type_align(k->type), "key '%s': gap before it", k->name);
        end = k->offset + k->size;
    }
    /* the section entries (mixer.*, ffn.*, ...) close the struct: they have no flat row */
    CHECK(offsetof(Config, entries) - end < 8, "fields after the last key");
}

TEST(config_defaults_parse) {
    for (int i = 0; i < config_key_count; i++) {
        Config c;
        Error err = {0};
        memset(&c, 0, sizeof c);
        CHECK(config_set(&c, config_keys[i].name, config_keys[i].fallback, "default", &err) == 0,
              "default of '%s': %s", config_keys[i].name, err.msg);
    }
    Config c;
    config_defaults(&c);
    CHECK(strcmp(c.dataset, "text") == 0 && strcmp(c.tokenizer, "auto") == 0, "data defaults");
    CHECK(c.valid_fraction == 0.05 && c.test_fraction == 0.05, "fractions");
    CHECK(c.arch[0] == 0 && c.n_layer == 4 && strcmp(c.mixer, "softmax") == 0 && strcmp(c.ffn, "mlp") == 0, "arch");
    CHECK(c.d_model == 256 && c.n_head == 4 && c.d_head == 0 && c.d_inner == 0 && c.max_len == 0, "sizes");
    CHECK(strcmp(c.norm, "pre") == 0 && strcmp(c.activation, "gelu") == 0 && strcmp(c.pos, "learned") == 0, "kinds");
    CHECK(c.tie_weight && c.causal && c.dropout == 0.1 && c.dropatt == 0.0 && c.init_std == 0.02, "model flags");
    CHECK(c.batch_size == 64 && c.tgt_len == 256 && c.batch_split == 1 && c.max_step == 1000, "batch");
    CHECK(strcmp(c.optim, "adamw") == 0 && c.lr == 1e-3 && c.min_lr == 0 && c.warmup_step == 100, "optim");
    CHECK(strcmp(c.scheduler, "cosine") == 0 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8, "adam");
    CHECK(c.weight_decay == 0.1 && strcmp(c.decay_groups, "linear,embedding") == 0 && c.clip == 1.0, "decay");
    CHECK(c.eval_interval == 200 && !c.eval_tgt_len && !c.eval_batch_size && !c.eval_max_batches, "eval");
    CHECK(c.log_interval == 10 && c.ckpt_interval == 0 && c.keep_checkpoints == 2, "run");
    CHECK(c.seed == 1234 && c.threads == 0 && c.out[0] == 0, "seed, threads, out");
    Error err = {0};
    CHECK(config_finalize(&c, &err) == 0, "defaults finalize: %s", err.msg);
}

/* ---- config_set, one key type at a time ---- */

TEST(config_set_int_and_long) {
    Config c;
    Error err = {0};
    config_defaults(&c);
    CHECK(config_set(&c, "batch_size", "128", "--batch_size", &err) == 0 && c.batch_size == 128, "128");
    CHECK(config_set(&c, "batch_size", "+7", "--batch_size", &err) == 0 && c.batch_size == 7, "+7");
    CHECK(config_set(&c, "threads", "-3", "--threads", &err) == 0 && c.threads == -3, "-3 parses (finalize checks)");
    CHECK(config_set(&c, "batch_size", "6.5", "--batch_size", &err) == -1, "6.5 accepted");
    CHECK(strcmp(err.msg, "key 'batch_size' (--batch_size) expects an integer, got '6.5'") == 0, "msg: %s", err.msg);
    CHECK(c.batch_size == 7, "a rejected value changed the field");
    static const char *const bad[] = {"", " 5", "5 ", "0x10", "abc", "1e3", "-", "12a", "99999999999", "+"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(config_set(&c, "d_model", bad[i], "x.yaml:2", &err) == -1, "'%s' accepted", bad[i]);
        CHECK(contains(err.msg, "key 'd_model' (x.yaml:2) expects an integer"), "msg: %s", err.msg);
    }
    CHECK(config_set(&c, "max_step", "10000000000", "--max_step", &err) == 0 && c.max_step == 10000000000L, "long");
    CHECK(config_set(&c, "seed", "-42", NULL, &err) == 0 && c.seed == -42, "negative seed");
    CHECK(config_set(&c, "seed", "99999999999999999999", NULL, &err) == -1, "long overflow accepted");
    CHECK(strcmp(c.dataset, "text") == 0, "unrelated field touched");
}

TEST(config_set_float) {
    Config c;
    Error err = {0};
    config_defaults(&c);
    CHECK(config_set(&c, "lr", "3e-4", "--lr", &err) == 0 && c.lr == 3e-4, "3e-4");
    CHECK(config_set(&c, "lr", ".5", "--lr", &err) == 0 && c.lr == 0.5, ".5");
    CHECK(config_set(&c, "lr", "-2", "--lr", &err) == 0 && c.lr == -2, "-2 parses (finalize checks)");
    static const char *const bad[] = {"", "abc", "1.0x", "inf", "-inf", "nan", "1e999", " 1", "1 ", "0.1,0.2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(config_set(&c, "lr", bad[i], "--lr", &err) == -1, "'%s' accepted", bad[i]);
        CHECK(contains(err.msg, "key 'lr' (--lr) expects a finite number"), "msg: %s", err.msg);
    }
    CHECK(c.lr == -2, "a rejected value changed the field");
}

TEST(config_set_bool) {
    Config c;
    Error err = {0};
    config_defaults(&c);
    static const char *const yes[] = {"true", "TRUE", "yes", "Yes", "on", "ON", "1"};
    static const char *const no[] = {"false", "False", "no", "NO", "off", "Off", "0"};
    for (int i = 0; i < 7; i++) {
        CHECK(config_set(&c, "causal", no[i], "--causal", &err) == 0 && !c.causal, "'%s'", no[i]);
        CHECK(config_set(&c, "causal", yes[i], "--causal", &err) == 0 && c.causal, "'%s'", yes[i]);
    }
    static const char *const bad[] = {"", "maybe", "2", "t", "truee", " true"};
    for (int i = 0; i < 6; i++) {
        CHECK(config_set(&c, "tie_weight", bad[i], "--tie_weight", &err) == -1, "'%s' accepted", bad[i]);
        CHECK(contains(err.msg, "key 'tie_weight' (--tie_weight) expects true/false"), "msg: %s", err.msg);
    }
    CHECK(c.tie_weight, "a rejected value changed the field");
}

TEST(config_set_string) {
    Config c;
    Error err = {0};
    config_defaults(&c);
    CHECK(config_set(&c, "out", "runs/a: b # c", "--out", &err) == 0 && strcmp(c.out, "runs/a: b # c") == 0, "out");
    CHECK(config_set(&c, "out", "", "--out", &err) == 0 && c.out[0] == 0, "empty");
    /* the bytes after the terminator are zero again, so equal configs memcmp equal */
    config_set(&c, "mixer", "a-long-mixer-name", "--mixer", &err);
    config_set(&c, "mixer", "ab", "--mixer", &err);
    bool zero = true;
    for (size_t i = 2; i < sizeof c.mixer; i++) zero = zero && c.mixer[i] == 0;
    CHECK(zero, "stale bytes after a shorter string");
    char name[CFG_NAME + 1];
    memset(name, 'm', sizeof name);
    name[CFG_NAME - 1] = 0;
    CHECK(config_set(&c, "mixer", name, "--mixer", &err) == 0, "63 characters rejected: %s", err.msg);
    name[CFG_NAME - 1] = 'm';
    name[CFG_NAME] = 0;
    CHECK(config_set(&c, "mixer", name, "--mixer", &err) == -1, "64 characters accepted");
    CHECK(contains(err.msg, "key 'mixer' (--mixer) is too long (64 characters, at most 63)"), "msg: %s", err.msg);
    CHECK(strlen(c.mixer) == CFG_NAME - 1, "a rejected value changed the field");
}

TEST(config_set_choice) {
    Config c;
    Error err = {0};
    config_defaults(&c);
    CHECK(config_set(&c, "norm", "post", "--norm", &err) == 0 && strcmp(c.norm, "post") == 0, "post");
    CHECK(config_set(&c, "activation", "gelu_tanh", "--activation", &err) == 0, "gelu_tanh");
    CHECK(config_set(&c, "norm", "mid", "file.yaml:7", &err) == -1, "mid accepted");
    CHECK(strcmp(err.msg, "key 'norm' (file.yaml:7) must be one of pre|post, got 'mid'") == 0, "msg: %s", err.msg);
    static const char *const bad[] = {"", "Pre", "pr", "prepost", "pre|post", "pre "};
    for (int i = 0; i < 6; i++) CHECK(config_set(&c, "norm", bad[i], "--norm", &err) == -1, "'%s' accepted", bad[i]);
    CHECK(config_set(&c, "activation", "gelu_", "--activation", &err) == -1, "prefix of a choice accepted");
    CHECK(strcmp(c.norm, "post") == 0, "a rejected value changed the field");
}

TEST(config_set_unknown_key) {
    Config c;
    Error err = {0};
    config_defaults(&c);
    CHECK(config_set(&c, "d_modle", "3", "file.yaml:3", &err) == -1, "unknown key accepted");
    CHECK(strcmp(err.msg, "unknown key 'd_modle' (file.yaml:3); did you mean 'd_model'?") == 0, "msg: %s", err.msg);
    CHECK(config_set(&c, "zzzzzzzzzzzz", "3", "--zzzzzzzzzzzz", &err) == -1, "unknown key accepted");
    CHECK(strcmp(err.msg, "unknown key 'zzzzzzzzzzzz' (--zzzzzzzzzzzz)") == 0, "msg: %s", err.msg);
    CHECK(config_set(&c, "lr", "1", NULL, &err) == 0, "no origin");
    CHECK(config_set(&c, "lr", "x", NULL, &err) == -1 && strcmp(err.msg, "key 'lr' expects a finite number, got 'x'") == 0,
          "msg without origin: %s", err.msg);
}

TEST(config_closest_and_find) {
    static const char *const pairs[][2] = {
        {"lrr", "lr"},           {"batchsize", "batch_size"},     {"D_MODEL", "d_model"},
        {"warmup_steps", "warmup_step"}, {"eval_max_batch", "eval_max_batches"}, {"dropuot", "dropout"},
        {"n_heads", "n_head"},   {"tokeniser", "tokenizer"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        const char *got = config_closest_key(pairs[i][0]);
        CHECK(got && strcmp(got, pairs[i][1]) == 0, "%s -> %s, expected %s", pairs[i][0], got ? got : "NULL",
              pairs[i][1]);
    }
    static const char *const far[] = {"x", "ab", "", "learning_rate_schedule_kind", "qqqqqqq"};
    for (size_t i = 0; i < sizeof far / sizeof *far; i++)
        CHECK(config_closest_key(far[i]) == NULL, "'%s' -> %s", far[i], config_closest_key(far[i]));
    CHECK(config_closest_key(NULL) == NULL, "NULL");
    CHECK(config_find_key("lr") && config_find_key("lr")->type == KEY_FLOAT, "find lr");
    CHECK(config_find_key("LR") == NULL && config_find_key("l") == NULL && config_find_key(NULL) == NULL, "exact only");
}

TEST(config_format_value_reads_back) {
    Config c;
    char buf[64];
    config_defaults(&c);
    config_format_value(&c, config_find_key("lr"), buf, sizeof buf);
    CHECK(strcmp(buf, "0.001") == 0, "lr '%s'", buf);
    config_format_value(&c, config_find_key("tie_weight"), buf, sizeof buf);
    CHECK(strcmp(buf, "true") == 0, "tie_weight '%s'", buf);
    config_format_value(&c, config_find_key("decay_groups"), buf, sizeof buf);
    CHECK(strcmp(buf, "linear,embedding") == 0, "decay_groups '%s'", buf);
    config_format_value(&c, config_find_key("max_step"), buf, sizeof buf);
    CHECK(strcmp(buf, "1000") == 0, "max_step '%s'", buf);
    c.weight_decay = 1.0 / 3.0;
    config_format_value(&c, config_find_key("weight_decay"), buf, sizeof buf);
    CHECK(strtod(buf, NULL) == 1.0 / 3.0, "1/3 printed as '%s'", buf);
    config_format_value(&c, config_find_key("dataset"), buf, 3);
    CHECK(strcmp(buf, "te") == 0, "truncation '%s'", buf);
}

/* ---- YAML ---- */

TEST(config_yaml_load_values) {
    Config c;
    Error err;
    const char *path;
    const char *text = "# a comment line\n"
                       "dataset: shakespeare   # trailing comment\n"
                       "d_model: 128\n"
                       "lr: 3e-4\n"
                       "tie_weight: no\n"
                       "out: \"runs/a: b # c\"\n"
                       "mixer: 'null'\n"
                       "data: ~\n"
                       "train_file:\n"
                       "decay_groups: [linear, norm]\n"
                       "arch: |-\n"
                       "  sfsf\n"
                       "\n"
                       "max_step: 20000\n";
    REQUIRE(load_text(text, &c, &err, &path) == 0, "load: %s", err.msg);
    CHECK(strcmp(c.dataset, "shakespeare") == 0 && c.d_model == 128 && c.lr == 3e-4 && !c.tie_weight, "scalars");
    CHECK(strcmp(c.out, "runs/a: b # c") == 0, "quoted colon and hash: '%s'", c.out);
    CHECK(strcmp(c.mixer, "null") == 0, "quoted null taken literally: '%s'", c.mixer);
    CHECK(c.data[0] == 0 && c.train_file[0] == 0, "null string is empty");
    CHECK(strcmp(c.decay_groups, "linear,norm") == 0, "flow list joined: '%s'", c.decay_groups);
    CHECK(strcmp(c.arch, "sfsf") == 0 && c.max_step == 20000, "block scalar, later key");
    CHECK(c.n_head == 4, "untouched key keeps its default");

    REQUIRE(load_text("decay_groups:\n  - bias\n  - norm\n  - other\n", &c, &err, &path) == 0, "%s", err.msg);
    CHECK(strcmp(c.decay_groups, "bias,norm,other") == 0, "block list joined: '%s'", c.decay_groups);
    REQUIRE(load_text("decay_groups: []\n", &c, &err, &path) == 0, "%s", err.msg);
    CHECK(c.decay_groups[0] == 0, "empty list: '%s'", c.decay_groups);
    REQUIRE(load_text("{lr: 0.5, seed: 7}\n", &c, &err, &path) == 0, "flow mapping: %s", err.msg);
    CHECK(c.lr == 0.5 && c.seed == 7, "flow mapping values");
    REQUIRE(load_text("---\nlr: 0.25\n...\n", &c, &err, &path) == 0, "explicit document: %s", err.msg);
    CHECK(c.lr == 0.25, "explicit document value");
}

TEST(config_yaml_empty_files) {
    static const char *const texts[] = {"", "# only a comment\n\n", "---\n", "\n\n\n"};
    Config c, d;
    Error err;
    const char *path;
    config_defaults(&d);
    for (int i = 0; i < 4; i++) {
        CHECK(load_text(texts[i], &c, &err, &path) == 0, "text %d: %s", i, err.msg);
        CHECK(memcmp(&c, &d, sizeof c) == 0, "text %d changed the config", i);
    }
}

TEST(config_yaml_missing_file) {
    Config c;
    Error err = {0};
    char path[1100], want[1200];
    snprintf(path, sizeof path, "%s/nope.yaml", test_tmpdir());
    config_defaults(&c);
    CHECK(config_load_yaml(&c, path, &err) == -1, "missing file loaded");
    snprintf(want, sizeof want, "cannot open config '%s': No such file or directory", path);
    CHECK(strcmp(err.msg, want) == 0, "msg: %s", err.msg);
    CHECK(config_load_yaml(&c, test_tmpdir(), &err) == -1, "a directory loaded");
    CHECK(contains(err.msg, "config '") && contains(err.msg, "Is a directory"), "msg: %s", err.msg);
}

/* Each bad file: the message must name the file at the given line and say `part`. */
TEST(config_yaml_errors_name_file_and_line) {
    static const struct {
        const char *text;
        int line;
        const char *part;
    } cases[] = {
        {"lr: 0.1\n\nd_modle: 3\n", 3, "unknown key 'd_modle' ("},
        {"lr: 0.1\n\nd_modle: 3\n", 3, "did you mean 'd_model'?"},
        {"lr: 0.1\nseed: 1\n# x\nnorm: mid\n", 4, "key 'norm' ("},
        {"lr: 0.1\nseed: 1\n# x\nnorm: mid\n", 4, "must be one of pre|post, got 'mid'"},
        {"batch_size: 6.5\n", 1, "expects an integer, got '6.5'"},
        {"lr: 1\nlr:\n", 2, "key 'lr' at "},
        {"lr: 1\nlr:\n", 2, "given twice (first at line 1)"},
        {"seed: 1\nlr: ~\n", 2, "has no value"},
        {"seed: 1\ncausal: null\n", 2, "has no value"},
        {"seed: 1\nnorm:\n", 2, "has no value"},
        {"lr: 1\nmodel:\n  d_model: 3\n", 2, "nested mappings are not supported; write keys flat"},
        {"decay_groups: [linear, [norm]]\n", 1, "a list may hold only plain values"},
        {"lr: &x 0.5\nmin_lr: *x\n", 2, "aliases"},
        {"lr: 1\n---\nlr: 2\n", 2, "a second YAML document"},
        {"- lr\n- seed\n", 1, "the top level must be a mapping of `key: value` lines, not a list"},
        {"\n\nhello\n", 3, "the top level must be a mapping"},
        {"? [a, b]\n: 1\n", 1, "a key must be a plain name"},
        {"lr: 1\nseed: 2\nd_model: 3: 4\n", 3, "invalid YAML: mapping values are not allowed"},
        {"lr: 1\nout: \"abc\nseed: 3\n", 4, "invalid YAML"},
        {"lr: 1\n  seed: 2\n", 1, "expects a finite number, got '1 seed'"},
        {"lr: [1, 2\nseed: 3\n", 2, "invalid YAML: did not find expected ',' or ']'"},
        {"lr: 1\n\tseed: 2\n", 2, "invalid YAML"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        Config c, before;
        Error err;
        const char *path;
        CHECK(load_text(cases[i].text, &c, &err, &path) == -1, "case %zu loaded", i);
        CHECK(contains(err.msg, path_line(path, cases[i].line)), "case %zu: no '%s' in: %s", i,
              path_line(path, cases[i].line), err.msg);
        CHECK(contains(err.msg, cases[i].part), "case %zu: no '%s' in: %s", i, cases[i].part, err.msg);
        config_defaults(&before);
        CHECK(memcmp(&c, &before, sizeof c) == 0, "case %zu: a failed load changed the config", i);
    }
}

TEST(config_yaml_exact_messages) {
    Config c;
    Error err;
    const char *path;
    char want[1200];
    CHECK(load_text("lr: 1\nmodel:\n  d_model: 3\n", &c, &err, &path) == -1, "nested loaded");
    snprintf(want, sizeof want, "key 'model' at %s:2: nested mappings are not supported; write keys flat", path);
    CHECK(strcmp(err.msg, want) == 0, "msg: %s", err.msg);
    CHECK(load_text("seed: 1\n\nd_modle: 3\n", &c, &err, &path) == -1, "unknown loaded");
    snprintf(want, sizeof want, "unknown key 'd_modle' (%s:3); did you mean 'd_model'?", path);
    CHECK(strcmp(err.msg, want) == 0, "msg: %s", err.msg);
    CHECK(load_text("lr: 1\nseed: 2\nd_model: 3: 4\n", &c, &err, &path) == -1, "bad syntax loaded");
    snprintf(want, sizeof want, "%s:3: invalid YAML: mapping values are not allowed in this context", path);
    CHECK(strcmp(err.msg, want) == 0, "msg: %s", err.msg);
}

/* ---- finalize ---- */

TEST(config_finalize_derives) {
    Config c;
    Error err = {0};
    config_defaults(&c);
    REQUIRE(config_finalize(&c, &err) == 0, "%s", err.msg);
    /* d_head stays 0: each attention module divides its width by its own n_head */
    CHECK(c.d_head == 0 && c.d_inner == 1024 && c.max_len == 256, "d_head %d d_inner %d max_len %d", c.d_head,
          c.d_inner, c.max_len);
    CHECK(c.eval_tgt_len == 256 && c.eval_batch_size == 64, "eval %d %d", c.eval_tgt_len, c.eval_batch_size);
    CHECK(strcmp(c.arch, "sfsfsfsf") == 0 && c.n_layer == 4, "arch '%s'", c.arch);
    Config again;
    memcpy(&again, &c, sizeof c);
    CHECK(config_finalize(&again, &err) == 0 && memcmp(&again, &c, sizeof c) == 0, "finalize twice differs");

    config_defaults(&c);
    config_set(&c, "arch", "ssf", NULL, &err);
    config_set(&c, "d_model", "96", NULL, &err);
    config_set(&c, "n_head", "5", NULL, &err);
    config_set(&c, "d_head", "16", NULL, &err);
    config_set(&c, "d_inner", "100", NULL, &err);
    config_set(&c, "tgt_len", "32", NULL, &err);
    config_set(&c, "max_len", "64", NULL, &err);
    config_set(&c, "eval_tgt_len", "64", NULL, &err);
    config_set(&c, "eval_batch_size", "3", NULL, &err);
    config_set(&c, "decay_groups", " linear , norm,,bias ", NULL, &err);
    REQUIRE(config_finalize(&c, &err) == 0, "%s", err.msg);
    CHECK(strcmp(c.arch, "ssf") == 0 && c.n_layer == 4, "explicit arch wins, n_layer left as given");
    CHECK(c.d_head == 16 && c.d_inner == 100 && c.max_len == 64, "explicit sizes kept");
    CHECK(c.eval_tgt_len == 64 && c.eval_batch_size == 3, "explicit eval sizes kept");
    CHECK(strcmp(c.decay_groups, "linear,norm,bias") == 0, "decay_groups cleaned: '%s'", c.decay_groups);

    config_defaults(&c);
    config_set(&c, "n_layer", "1", NULL, &err);
    config_set(&c, "decay_groups", "", NULL, &err);
    REQUIRE(config_finalize(&c, &err) == 0, "%s", err.msg);
    CHECK(strcmp(c.arch, "sf") == 0 && c.decay_groups[0] == 0, "one layer, no decay");
}

/* Each row breaks one rule: set k1 (and k2), finalize must fail saying `part`. */
TEST(config_finalize_rules_each) {
    static const struct {
        const char *k1, *v1, *k2, *v2, *part;
    } rules[] = {
        {"d_model", "0", 0, 0, "key 'd_model' must be > 0, got 0"},
        {"n_head", "-1", 0, 0, "key 'n_head' must be > 0"},
        {"d_head", "-1", 0, 0, "key 'd_head' must be >= 0, got -1"},
        {"d_inner", "-4", 0, 0, "key 'd_inner' must be >= 0"},
        {"batch_size", "0", 0, 0, "key 'batch_size' must be > 0"},
        {"tgt_len", "0", 0, 0, "key 'tgt_len' must be > 0"},
        {"batch_split", "0", 0, 0, "key 'batch_split' must be > 0"},
        {"batch_split", "3", 0, 0, "key 'batch_size' (64) must be divisible by key 'batch_split' (3)"},
        {"max_step", "0", 0, 0, "key 'max_step' must be > 0"},
        {"eval_tgt_len", "-1", 0, 0, "key 'eval_tgt_len' must be >= 0"},
        {"eval_batch_size", "-1", 0, 0, "key 'eval_batch_size' must be >= 0"},
        {"max_len", "-1", 0, 0, "key 'max_len' must be >= 0"},
        {"log_interval", "0", 0, 0, "key 'log_interval' must be > 0"},
        {"eval_interval", "-1", 0, 0, "key 'eval_interval' must be >= 0, or -1 (every epoch) with key 'epochs'"},
        {"eval_interval", "-2", "epochs", "3", "key 'eval_interval' must be >= 0, or -1"},
        {"ckpt_interval", "-1", 0, 0, "key 'ckpt_interval' must be >= 0"},
        {"eval_max_batches", "-1", 0, 0, "key 'eval_max_batches' must be >= 0"},
        {"keep_checkpoints", "0", 0, 0, "key 'keep_checkpoints' must be > 0"},
        {"warmup_step", "-1", 0, 0, "key 'warmup_step' must be >= 0"},
        {"threads", "-1", 0, 0, "key 'threads' must be >= 0"},
        {"init_from", "runs/x", "init_from_step", "-1", "key 'init_from_step' must be >= 0"},
        {"init_from_step", "99", 0, 0, "key 'init_from_step' (--checkpoint) names a checkpoint of the run that key 'init_from' gives"},
        {"n_layer", "0", 0, 0, "key 'n_layer' must be > 0 when 'arch' is empty"},
        {"n_layer", "600", 0, 0, "key 'n_layer' 600 is too large"},
        {"arch", "sfxf", 0, 0, "key 'arch' has 'x' at position 3"},
        {"arch", "sf f", 0, 0, "key 'arch' has ' ' at position 3"},
        {"tgt_len", "512", "max_len", "256", "tgt_len 512 is longer than max_len 256, the longest sequence the model allows"},
        {"eval_tgt_len", "300", 0, 0, "eval_tgt_len 300 is longer than max_len 256"},
        {"dropout", "1", 0, 0, "key 'dropout' must be in [0, 1), got 1"},
        {"pct_start", "0", 0, 0, "key 'pct_start' must be in (0, 1], got 0"},
        {"max_momentum", "1", 0, 0, "key 'max_momentum' must be in [0, 1), got 1"},
        {"dropout", "-0.1", 0, 0, "key 'dropout' must be in [0, 1)"},
        {"dropatt", "1.5", 0, 0, "key 'dropatt' must be in [0, 1)"},
        {"valid_fraction", "1", 0, 0, "key 'valid_fraction' must be in [0, 1)"},
        {"test_fraction", "-0.01", 0, 0, "key 'test_fraction' must be in [0, 1)"},
        {"valid_fraction", "0.5", "test_fraction", "0.5", "valid_fraction 0.5 + test_fraction 0.5 must be below 1"},
        {"lr", "0", 0, 0, "key 'lr' must be > 0, got 0"},
        {"min_lr", "-1e-5", 0, 0, "key 'min_lr' must be >= 0"},
        {"beta1", "1", 0, 0, "key 'beta1' must be in [0, 1)"},
        {"beta2", "-0.5", 0, 0, "key 'beta2' must be in [0, 1)"},
        {"eps", "0", 0, 0, "key 'eps' must be > 0"},
        {"weight_decay", "-0.1", 0, 0, "key 'weight_decay' must be >= 0"},
        {"clip", "-1", 0, 0, "key 'clip' must be >= 0"},
        {"init_std", "0", 0, 0, "key 'init_std' must be > 0"},
        {"decay_groups", "linear,bogus", 0, 0, "key 'decay_groups': unknown group 'bogus'"},
    };
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
        Config c, before;
        Error err = {0};
        config_defaults(&c);
        REQUIRE(config_set(&c, rules[i].k1, rules[i].v1, NULL, &err) == 0, "row %zu: %s", i, err.msg);
        if (rules[i].k2) REQUIRE(config_set(&c, rules[i].k2, rules[i].v2, NULL, &err) == 0, "row %zu: %s", i, err.msg);
        memcpy(&before, &c, sizeof c);
        CHECK(config_finalize(&c, &err) == -1, "row %zu (%s: %s) passed", i, rules[i].k1, rules[i].v1);
        CHECK(contains(err.msg, rules[i].part), "row %zu: no '%s' in: %s", i, rules[i].part, err.msg);
        CHECK(memcmp(&c, &before, sizeof c) == 0, "row %zu: a failed finalize changed the config", i);
    }
}

TEST(config_finalize_boundaries_pass) {
    static const char *const ok[][2] = {
        {"dropout", "0"},  {"dropout", "0.999"}, {"valid_fraction", "0"}, {"clip", "0"},
        {"min_lr", "0"},   {"warmup_step", "0"}, {"beta1", "0"},          {"weight_decay", "0"},
        {"threads", "0"},  {"eval_interval", "0"}, {"keep_checkpoints", "1"}, {"batch_split", "64"},
        {"max_len", "256"}, {"arch", "f"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        Config c;
        Error err = {0};
        config_defaults(&c);
        config_set(&c, ok[i][0], ok[i][1], NULL, &err);
        CHECK(config_finalize(&c, &err) == 0, "%s: %s rejected: %s", ok[i][0], ok[i][1], err.msg);
    }
}

/* ---- writing ---- */

/* A config with unusual values in every string field and exact-float traps. */
static void unusual_config(Config *c) {
    Error err;
    config_defaults(c);
    config_set(c, "data", "", NULL, &err);
    config_set(c, "train_file", "path with: colon # and hash", NULL, &err);
    config_set(c, "valid_file", "quote \" backslash \\ end\\", NULL, &err);
    config_set(c, "test_file", "tab\tnewline\nbell\a ~ null", NULL, &err);
    config_set(c, "mixer", "null", NULL, &err);
    config_set(c, "ffn", "- [a, b] {c: d}", NULL, &err);
    config_set(c, "arch", "sfsfss", NULL, &err);
    config_set(c, "out", "  leading and trailing blanks  ", NULL, &err);
    config_set(c, "decay_groups", "", NULL, &err);
    config_set(c, "pos", "none", NULL, &err);
    config_set(c, "lr", "3e-4", NULL, &err);
    config_set(c, "weight_decay", "0.3333333333333333", NULL, &err);
    config_set(c, "eps", "4.9406564584124654e-324", NULL, &err);
    config_set(c, "init_std", "1.7976931348623157e308", NULL, &err);
    config_set(c, "dropout", "-0", NULL, &err);
    config_set(c, "causal", "false", NULL, &err);
    config_set(c, "seed", "-9223372036854775807", NULL, &err);
    config_set(c, "threads", "-2147483648", NULL, &err);
    c->beta2 = 0.1 + 0.2; /* not the shortest decimal of any nearby number */
}

TEST(config_write_load_round_trip) {
    Config a, b;
    Error err = {0};
    char path[1100];
    unusual_config(&a);
    snprintf(path, sizeof path, "%s/config.yaml", test_tmpdir());
    REQUIRE(config_save(&a, path, &err) == 0, "save: %s", err.msg);
    config_defaults(&b);
    REQUIRE(config_load_yaml(&b, path, &err) == 0, "load: %s", err.msg);
    CHECK(memcmp(&a, &b, sizeof a) == 0, "round trip differs");
    CHECK(strcmp(b.valid_file, a.valid_file) == 0 && strcmp(b.test_file, a.test_file) == 0, "strings");
    CHECK(b.beta2 == 0.1 + 0.2 && b.eps == 4.9406564584124654e-324, "floats exact");

    /* the defaults, finalized, round trip too */
    config_defaults(&a);
    REQUIRE(config_finalize(&a, &err) == 0, "%s", err.msg);
    REQUIRE(config_save(&a, path, &err) == 0, "save: %s", err.msg);
    config_defaults(&b);
    REQUIRE(config_load_yaml(&b, path, &err) == 0, "load: %s", err.msg);
    CHECK(memcmp(&a, &b, sizeof a) == 0, "round trip of finalized defaults differs");
    REQUIRE(config_finalize(&b, &err) == 0 && memcmp(&a, &b, sizeof a) == 0, "finalize after reload changed it");
}

TEST(config_write_yaml_layout) {
    Config c;
    char *text = NULL;
    size_t len = 0;
    config_defaults(&c);
    FILE *f = open_memstream(&text, &len);
    REQUIRE(f, "open_memstream");
    CHECK(config_write_yaml(&c, f) == 0, "write");
    fclose(f);
    CHECK(strncmp(text, "# data\ndataset: \"text\"\ndata: \"\"\n", 32) == 0, "start: %.60s", text);
    CHECK(contains(text, "\n\n# model\narch: \"\"\nn_layer: 4\n"), "model section");
    CHECK(contains(text, "\nlr: 0.001\n") && contains(text, "\ntie_weight: true\n"), "numbers and bools");
    CHECK(contains(text, "\n# train\n") && contains(text, "\n# eval\n") && contains(text, "\n# run\n"), "sections");
    /* every key once, in table order */
    const char *at = text;
    for (int i = 0; i < config_key_count; i++) {
        char line[128];
        snprintf(line, sizeof line, "\n%s: ", config_keys[i].name);
        const char *hit = strstr(at, line);
        CHECK(hit != NULL, "key '%s' missing or out of order", config_keys[i].name);
        if (hit) at = hit + 1;
    }
    free(text);
}

TEST(config_save_errors_and_replaces) {
    Config c;
    Error err = {0};
    char path[1100], want[1200];
    const char *dir = test_tmpdir();
    config_defaults(&c);
    snprintf(path, sizeof path, "%s/missing/config.yaml", dir);
    CHECK(config_save(&c, path, &err) == -1, "saved into a missing directory");
    snprintf(want, sizeof want, "(temporary file for '%s'): No such file or directory", path);
    CHECK(strstr(err.msg, want) != NULL, "msg: %s", err.msg);

    snprintf(path, sizeof path, "%s/config.yaml", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f, "fopen");
    fputs("lr: 0.5\n", f);
    fclose(f);
    config_set(&c, "seed", "77", NULL, &err);
    REQUIRE(config_save(&c, path, &err) == 0, "save: %s", err.msg);
    Config back;
    config_defaults(&back);
    REQUIRE(config_load_yaml(&back, path, &err) == 0, "%s", err.msg);
    CHECK(back.seed == 77 && back.lr == 1e-3, "old file not replaced");
    /* nothing but config.yaml is left in the directory: no temp file */
    DIR *d = opendir(dir);
    REQUIRE(d, "opendir");
    int others = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "config.yaml")) others++;
    closedir(d);
    CHECK(others == 0, "%d stray files next to config.yaml", others);
}

TEST(config_print_help_lists_every_key) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    REQUIRE(f, "open_memstream");
    config_print_help(f);
    fclose(f);
    CHECK(contains(text, "data keys:") && contains(text, "model keys:") && contains(text, "train keys:") &&
              contains(text, "eval keys:") && contains(text, "run keys:"),
          "section headers");
    int type_column = -1;
    for (int i = 0; i < config_key_count; i++) {
        const ConfigKey *k = &config_keys[i];
        char start[128];
        snprintf(start, sizeof start, "\n  %s ", k->name);
        const char *line = strstr(text, start);
        REQUIRE(line, "key '%s' missing", k->name);
        line += 1;
        const char *end = strchr(line, '\n');
        CHECK(end && strstr(line, k->help) && strstr(line, k->help) < end, "help of '%s'", k->name);
        const char *type = line + 2 + strlen(k->name);
        while (*type == ' ') type++;
        if (type_column < 0) type_column = (int)(type - line);
        CHECK((int)(type - line) == type_column, "key '%s': type column not aligned", k->name);
        if (k->choices) CHECK(strncmp(type, k->choices, strlen(k->choices)) == 0, "choices of '%s'", k->name);
    }
    free(text);
}

/* ---- seed aliases ---- */

TEST(config_aliases_map_seed_flags) {
    Config c;
    Error err = {0};
    config_defaults(&c);
    static const struct {
        const char *attn_type, *mixer;
    } map[] = {{"2", "softmax"}, {"34", "linear"}, {"201", "fmm"}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        CHECK(config_set(&c, "attn_type", map[i].attn_type, "--attn_type", &err) == 0, "%s", err.msg);
        CHECK(strcmp(c.mixer, map[i].mixer) == 0, "attn_type %s -> %s, got %s", map[i].attn_type, map[i].mixer,
              c.mixer);
    }
    CHECK(config_set(&c, "attn_type", "24", "--attn_type", &err) == -1 && strstr(err.msg, "'24' is not supported") &&
              strstr(err.msg, "201=fmm"),
          "fast-weight attn_type: %s", err.msg);
    CHECK(config_set(&c, "work_dir", "runs/x", "--work_dir", &err) == 0 && strcmp(c.out, "runs/x") == 0, "work_dir");
    Config before = c;
    CHECK(config_set(&c, "cuda", NULL, "--cuda", &err) == 0 && memcmp(&before, &c, sizeof c) == 0,
          "--cuda is accepted and changes nothing");
    CHECK(config_set(&c, "multi_gpu", NULL, "--multi_gpu", &err) == 0 && memcmp(&before, &c, sizeof c) == 0,
          "--multi_gpu (every MPI rank: what seqlab does anyway) changes no key");
    for (int i = 0; i < config_alias_count; i++) {
        const ConfigAlias *a = &config_aliases[i];
        CHECK(!config_find_key(a->name), "alias '%s' hides a key", a->name);
        CHECK(a->kind != ALIAS_KEY ||
                  ((config_find_key(a->key) || config_is_section_key(a->key)) && (a->takes_value || a->values)),
              "alias '%s' target", a->name);
    }
}

/* The Nystromformer seed's `--task MRPC --checkpoint 99`: a GLUE task's
 * name sets the task kind, its files under the first data root holding
 * glue/<name> and its columns; keys set after it win; --checkpoint is the
 * step of init_from's checkpoint. */
TEST(config_glue_task_names_set_files_and_columns) {
    Config c;
    Error err = {0};
    config_defaults(&c);
    REQUIRE(config_set(&c, "task", "mrpc", "--task", &err) == 0, "%s", err.msg);
    CHECK(!strcmp(c.task, "classification") && !strcmp(c.text_column, "#1 String") &&
              !strcmp(c.text2_column, "#2 String") && !strcmp(c.label_column, "Quality") && c.header &&
              contains(c.train_file, "glue/MRPC/train.tsv") && contains(c.valid_file, "glue/MRPC/dev.tsv") &&
              contains(c.test_file, "glue/MRPC/test.tsv"),
          "MRPC: task %s, columns '%s' '%s' '%s', files %s %s %s", c.task, c.text_column, c.text2_column,
          c.label_column, c.train_file, c.valid_file, c.test_file);
    REQUIRE(config_set(&c, "task", "STS-B", "--task", &err) == 0 && config_set(&c, "train_file", "mine.tsv", "--train_file", &err) == 0,
            "%s", err.msg);
    CHECK(!strcmp(c.task, "regression") && !strcmp(c.label_column, "score") && !strcmp(c.train_file, "mine.tsv"),
          "STS-B then train_file: task %s, label '%s', train '%s'", c.task, c.label_column, c.train_file);
    REQUIRE(config_set(&c, "task", "CoLA", "--task", &err) == 0, "%s", err.msg);
    CHECK(!c.header && !strcmp(c.text_column, "3") && !strcmp(c.text2_column, "") && !c.test_file[0] &&
              !strcmp(c.label_names, ""),
          "CoLA: header %d, text '%s', test '%s'", c.header, c.text_column, c.test_file);
    REQUIRE(config_set(&c, "task", "MNLI", "--task", &err) == 0, "%s", err.msg);
    CHECK(contains(c.valid_file, "glue/MNLI/dev_matched.tsv") && !strcmp(c.label_names, "contradiction,entailment,neutral"),
          "MNLI: valid %s, labels %s", c.valid_file, c.label_names);
    CHECK(config_set(&c, "task", "SQuAD", "--task", &err) == -1 && contains(err.msg, "lm|mlm|classification"),
          "an unknown task: %s", err.msg);
    REQUIRE(config_set(&c, "checkpoint", "99", "--checkpoint", &err) == 0 && c.init_from_step == 99, "%s", err.msg);
}

TEST(config_mem_len_other_than_zero_is_refused) {
    Config c;
    Error err = {0};
    config_defaults(&c);
    c.mem_len = 150;
    CHECK(config_finalize(&c, &err) == -1 && strstr(err.msg, "mem_len") && strstr(err.msg, "not supported"), "%s",
          err.msg);
}

TEST(config_yaml_base_file) {
    const char *dir = test_tmpdir();
    char base[600], child[600], cycle[600], late[600];
    snprintf(base, sizeof base, "%s/base.yaml", dir);
    snprintf(child, sizeof child, "%s/child.yaml", dir);
    snprintf(cycle, sizeof cycle, "%s/cycle.yaml", dir);
    snprintf(late, sizeof late, "%s/late.yaml", dir);
    test_write_file(base, "d_model: 48\nlr: 0.5\n", 20);
    test_write_file(child, "base: base.yaml\nlr: 0.25\n", 25);
    test_write_file(cycle, "base: cycle.yaml\n", 17);
    test_write_file(late, "lr: 0.1\nbase: base.yaml\n", 24);
    Config c;
    Error err = {0};
    config_defaults(&c);
    REQUIRE(config_load_yaml(&c, child, &err) == 0, "%s", err.msg);
    CHECK(c.d_model == 48 && c.lr == 0.25, "base keys read, the file's own win: d_model %d lr %g", c.d_model, c.lr);
    CHECK(config_load_yaml(&c, cycle, &err) == -1 && strstr(err.msg, "nested base files"), "%s", err.msg);
    CHECK(config_load_yaml(&c, late, &err) == -1 && strstr(err.msg, "must be the first key"), "%s", err.msg);
}

/* ---- sections: keys that belong to a module (nn/keys.h checks them) ---- */

TEST(config_sections_from_yaml_and_flags) {
    Config c;
    Error err;
    const char *path;
    REQUIRE(load_text("arch: sf\nmixer:\n  name: fmm\n  diag_size: 20\n  kernels: [elu, elu_flip]\n  inner:\n"
                      "    kernel_size: 4\nffn.d_inner: 64\nblocks:\n  1:\n    ffn: {activation: relu}\n",
                      &c, &err, &path) == 0,
            "%s", err.msg);
    CHECK(!strcmp(c.mixer, "fmm"), "mixer.name sets the flat key: '%s'", c.mixer);
    const ConfigEntry *e = config_entry(&c, "mixer.diag_size");
    CHECK(e && !strcmp(e->value, "20") && !strcmp(e->where, path_line(path, 4)), "mixer.diag_size: %s at %s",
          e ? e->value : "-", e ? e->where : "-");
    e = config_entry(&c, "mixer.kernels");
    CHECK(e && !strcmp(e->value, "elu,elu_flip"), "a list in a section: '%s'", e ? e->value : "-");
    e = config_entry(&c, "mixer.inner.kernel_size");
    CHECK(e && !strcmp(e->value, "4") && !strcmp(e->where, path_line(path, 7)), "nested section");
    CHECK(config_entry(&c, "ffn.d_inner") && config_entry(&c, "blocks.1.ffn.activation"), "dotted and per-position");
    REQUIRE(config_set(&c, "mixer.diag_size", "5", "--mixer.diag_size", &err) == 0, "%s", err.msg);
    e = config_entry(&c, "mixer.diag_size");
    CHECK(e && !strcmp(e->value, "5") && !strcmp(e->where, "--mixer.diag_size"), "a flag replaces the file's entry");
    CHECK(config_set(&c, "mixr.diag_size", "5", "--mixr.diag_size", &err) == -1 &&
              strstr(err.msg, "unknown key 'mixr.diag_size'"),
          "unknown section: %s", err.msg);
    CHECK(load_text("model:\n  d_model: 3\n", &c, &err, &path) == -1 && strstr(err.msg, "nested mappings"),
          "a mapping under a flat key is refused: %s", err.msg);
}

TEST(config_sections_survive_save_and_load) {
    Config a, b;
    Error err = {0};
    config_defaults(&a);
    REQUIRE(config_set(&a, "mixer.diag_size", "20", "x", &err) == 0 && config_set(&a, "ffn.name", "mlp", "x", &err) == 0,
            "%s", err.msg);
    const char *path = write_file("saved.yaml", "");
    REQUIRE(config_save(&a, path, &err) == 0, "%s", err.msg);
    config_defaults(&b);
    REQUIRE(config_load_yaml(&b, path, &err) == 0, "%s", err.msg);
    const ConfigEntry *e = config_entry(&b, "mixer.diag_size");
    CHECK(b.n_entries == 1 && e && !strcmp(e->value, "20"), "%d entries after reload", b.n_entries);
}

/* Found by fuzzing (tests/fuzz/fuzz_config.c): a seed flag's alias as a YAML
 * key (cuda, multi_gpu: accepted, nothing to set) wrote past the table of
 * keys' lines. Now an alias key in YAML does what the flag does. */
TEST(config_yaml_accepts_seed_aliases_as_keys) {
    Config c;
    Error err;
    const char *path;
    CHECK(load_text("cuda: true\nmulti_gpu: \"\"\nattn_type: 201\nlr: 0.5\n", &c, &err, &path) == 0, "%s", err.msg);
    CHECK(strcmp(c.mixer, "fmm") == 0 && c.lr == 0.5, "attn_type 201 in YAML sets mixer fmm (got %s)", c.mixer);
    CHECK(load_text("attn_type: [1, 2]\n", &c, &err, &path) == -1 && contains(err.msg, path_line(path, 1)),
          "an alias with a list: %s", err.msg);
}
