/* checkpoint.c — see checkpoint.h. */
#include "checkpoint.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/safetensors.h"

#define CKPT_FORMAT "seqlab-checkpoint"
#define CKPT_VERSION "2"

/* The scalar fields of TrainState, in file order. */
enum { N_STATE_INTS = 5 };
static const char *const state_int_names[N_STATE_INTS] = {"train.step", "train.seed", "train.cursor", "train.epoch",
                                                          "train.tokens"};

static void state_ints(const TrainState *st, int64_t out[N_STATE_INTS]) {
    out[0] = (int64_t)st->step;
    out[1] = (int64_t)st->seed;
    out[2] = (int64_t)st->cursor;
    out[3] = (int64_t)st->epoch;
    out[4] = (int64_t)st->tokens;
}

/* Name of an optimizer state tensor of a parameter: "optim.exp_avg.<param>". */
static void state_name(char *buf, size_t n, const char *which, const char *param) {
    snprintf(buf, n, "optim.%s.%s", which, param);
}

static int parse_step(const char *name, uint64_t *step) {
    unsigned long long s;
    int used = 0;
    if (sscanf(name, "ckpt-%llu.safetensors%n", &s, &used) != 1 || name[used] != 0) return 0;
    *step = s;
    return 1;
}

/* Deletes all but the newest `keep` checkpoints of dir. */
static void prune(const char *dir, int keep) {
    DIR *d = opendir(dir);
    if (!d) return;
    uint64_t steps[4096];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 4096;)
        if (parse_step(e->d_name, &steps[n])) n++;
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        size_t newer = 0;
        for (size_t j = 0; j < n; j++) newer += steps[j] > steps[i];
        if (newer >= (size_t)keep) {
            char path[2048];
            snprintf(path, sizeof path, "%s/ckpt-%" PRIu64 ".safetensors", dir, steps[i]);
            unlink(path);
        }
    }
}

/* The training streams' memory of sublayer i as a tensor: "memory.<its
 * path>" (rows, size), in spec (for expect_tensor) and name. */
static ParamSpec memory_spec(const Model *m, size_t i) {
    ParamSpec s = {.ndim = 2, .shape = {m->train_memory.rows, m->train_memory.size[i]}};
    s.numel = s.shape[0] * s.shape[1];
    snprintf(s.name, sizeof s.name, "memory.%s", m->trunk.sublayers[i]->path);
    return s;
}

int ckpt_save(const char *dir, const Model *m, const Optimizer *o, const TrainState *st, int keep, Error *err) {
    const ParamSet *ps = &m->params;
    const ModelMemory *mm = &m->train_memory;
    const size_t n = (1 + OPTIM_MAX_STATE) * ps->count + N_STATE_INTS + 1 + mm->n;
    StTensorOut *t = xcalloc(n, sizeof *t, err);
    char(*names)[160] = xcalloc(OPTIM_MAX_STATE * ps->count + mm->n + 1, sizeof *names, err);
    ParamSpec *memory = xcalloc(mm->n + 1, sizeof *memory, err);
    if (!t || !names || !memory) {
        free(t);
        free(names);
        free(memory);
        return -1;
    }
    size_t k = 0, used = 0;
    for (size_t i = 0; i < ps->count; i++) {
        const ParamSpec *s = &ps->specs[i];
        t[k++] = (StTensorOut){s->name, ST_F32, (size_t)s->ndim, s->shape, ps->values + s->offset};
    }
    for (size_t i = 0; o && i < ps->count; i++)
        for (int slot = 0; slot < o->n_state; slot++) {
            const ParamSpec *s = &ps->specs[i];
            const char *which;
            float *buf = optim_state(o, ps, i, slot, &which);
            if (!buf) continue;
            state_name(names[used], sizeof names[0], which, s->name);
            t[k++] = (StTensorOut){names[used++], ST_F32, (size_t)s->ndim, s->shape, buf};
        }
    for (size_t i = 0; i < mm->n; i++) /* the streams' past, so a resumed run continues bit for bit */
        if (mm->size[i]) {
            memory[i] = memory_spec(m, i);
            t[k++] = (StTensorOut){memory[i].name, ST_F32, 2, memory[i].shape, mm->cur[i]};
        }
    static const size_t one[1] = {1};
    int64_t ints[N_STATE_INTS];
    state_ints(st, ints);
    for (int i = 0; i < N_STATE_INTS; i++) t[k++] = (StTensorOut){state_int_names[i], ST_I64, 1, one, &ints[i]};
    t[k++] = (StTensorOut){"train.elapsed_s", ST_F64, 1, one, &st->elapsed_s};

    char *yaml = NULL, vocab[32], step[32];
    size_t yaml_len = 0;
    FILE *mem = open_memstream(&yaml, &yaml_len);
    if (mem) {
        config_write_yaml(&m->cfg, mem);
        fclose(mem);
    }
    snprintf(vocab, sizeof vocab, "%zu", m->V);
    snprintf(step, sizeof step, "%" PRIu64, st->step);
    StMetaPair meta[] = {{"format", CKPT_FORMAT},           {"format_version", CKPT_VERSION},
                         {"optimizer", m->cfg.optim},       {"config", yaml ? yaml : ""},
                         {"vocab_size", vocab},             {"step", step}};
    char path[2048];
    snprintf(path, sizeof path, "%s/ckpt-%" PRIu64 ".safetensors", dir, st->step);
    int rc = st_write(path, t, k, meta, sizeof meta / sizeof meta[0], err);
    free(yaml);
    free(t);
    free(names);
    free(memory);
    if (!rc) prune(dir, keep);
    return rc;
}

int ckpt_latest(const char *dir, char *path, size_t n, Error *err) {
    DIR *d = opendir(dir);
    if (!d) return err_errno(err, "cannot open run directory '%s'", dir);
    uint64_t best = 0, step;
    int found = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (parse_step(e->d_name, &step) && (!found || step > best)) {
            best = step;
            found = 1;
        }
    closedir(d);
    if (!found) return err_set(err, "no checkpoint (ckpt-<step>.safetensors) in run directory '%s'", dir);
    snprintf(path, n, "%s/ckpt-%" PRIu64 ".safetensors", dir, best);
    return 0;
}

/* The F32 tensor `name` with exactly the shape of s, or an error. */
static const StTensorInfo *expect_tensor(const StFile *f, const char *name, const ParamSpec *s, Error *err) {
    const StTensorInfo *t = st_find(f, name);
    if (!t) {
        err_set(err, "checkpoint '%s' has no tensor '%s' (a checkpoint of another model?)", f->path, name);
        return NULL;
    }
    bool same = t->dtype == ST_F32 && t->ndim == (size_t)s->ndim;
    for (int d = 0; same && d < s->ndim; d++) same = t->shape[d] == s->shape[d];
    if (!same) {
        char want[64], got[64] = "";
        params_shape_str(s, want, sizeof want);
        for (size_t d = 0, used = 0; d < t->ndim && used < sizeof got; d++)
            used += (size_t)snprintf(got + used, sizeof got - used, d ? " x %zu" : "%zu", t->shape[d]);
        err_set(err, "checkpoint '%s': tensor '%s' has shape [%s] %s but the model needs [%s] F32", f->path, name,
                got, st_dtype_name(t->dtype), want);
        return NULL;
    }
    return t;
}

static int read_state(const StFile *f, TrainState *st, Error *err) {
    int64_t ints[N_STATE_INTS];
    for (int i = 0; i < N_STATE_INTS; i++) {
        const StTensorInfo *t = st_find(f, state_int_names[i]);
        if (!t || t->numel != 1 || st_read_as(f, t, ST_I64, &ints[i], 1, err))
            return err_set(err, "checkpoint '%s' lacks the train state '%s'", f->path, state_int_names[i]);
    }
    const StTensorInfo *t = st_find(f, "train.elapsed_s");
    double elapsed = 0.0;
    if (!t || t->numel != 1 || st_read_as(f, t, ST_F64, &elapsed, 1, err))
        return err_set(err, "checkpoint '%s' lacks the train state 'train.elapsed_s'", f->path);
    *st = (TrainState){(uint64_t)ints[0], (uint64_t)ints[1], (uint64_t)ints[2], (uint64_t)ints[3],
                       (uint64_t)ints[4], elapsed};
    return 0;
}

/* Checks every tensor needed before anything is copied. */
static int validate(const StFile *f, const Model *m, const Optimizer *o, Error *err) {
    const char *format = st_meta(f, "format");
    if (!format || strcmp(format, CKPT_FORMAT) != 0)
        return err_set(err, "'%s' is a safetensors file but not a seqlab checkpoint (metadata format is %s)", f->path,
                       format ? format : "missing");
    const char *version = st_meta(f, "format_version");
    if (!version || (strcmp(version, "1") != 0 && strcmp(version, CKPT_VERSION) != 0))
        return err_set(err, "checkpoint '%s' has format version %s; this seqlab reads versions 1 and " CKPT_VERSION,
                       f->path, version ? version : "(none)");
    char name[160];
    for (size_t i = 0; i < m->params.count; i++) {
        const ParamSpec *s = &m->params.specs[i];
        if (!expect_tensor(f, s->name, s, err)) return -1;
        for (int slot = 0; o && slot < o->n_state; slot++) {
            const char *which;
            if (!optim_state(o, &m->params, i, slot, &which)) continue;
            state_name(name, sizeof name, which, s->name);
            if (!expect_tensor(f, name, s, err)) return -1;
        }
    }
    return 0;
}

/* Resuming training (an optimizer given) also resumes the streams' memory. */
static int read_memory(const StFile *f, Model *m, Error *err) {
    if (!m->train_memory.n && model_memory_init(m, &m->train_memory, (size_t)m->cfg.batch_size, err)) return -1;
    for (size_t i = 0; i < m->train_memory.n; i++) {
        if (!m->train_memory.size[i]) continue;
        const ParamSpec s = memory_spec(m, i);
        const StTensorInfo *t = expect_tensor(f, s.name, &s, err);
        if (!t || st_read_as(f, t, ST_F32, m->train_memory.cur[i], s.numel, err)) return -1;
    }
    return 0;
}

int ckpt_load(const char *path, Model *m, Optimizer *o, TrainState *st, Error *err) {
    StFile f;
    if (st_open(&f, path, err)) return -1;
    TrainState state;
    int rc = validate(&f, m, o, err) || read_state(&f, &state, err) ? -1 : 0;
    if (!rc && o && model_has_memory(m)) rc = read_memory(&f, m, err);
    ParamSet *ps = &m->params;
    char name[160];
    for (size_t i = 0; !rc && i < ps->count; i++) {
        const ParamSpec *s = &ps->specs[i];
        rc = st_read_as(&f, st_find(&f, s->name), ST_F32, ps->values + s->offset, s->numel, err);
        for (int slot = 0; !rc && o && slot < o->n_state; slot++) {
            const char *which;
            float *buf = optim_state(o, ps, i, slot, &which);
            if (!buf) continue;
            state_name(name, sizeof name, which, s->name);
            rc = st_read_as(&f, st_find(&f, name), ST_F32, buf, s->numel, err);
        }
    }
    if (!rc && st) *st = state;
    st_close(&f);
    return rc;
}

/* ---- starting a run from another run's weights ---- */

/* Appends name to a comma list of n bytes, ending it with "..." once full. */
static void list_add(char *list, size_t n, const char *name) {
    const size_t used = strlen(list);
    if (used >= 3 && !strcmp(list + used - 3, "...")) return; /* already cut */
    const int w = snprintf(list + used, n - used, "%s%s", used ? ", " : "", name);
    if (w < 0 || (size_t)w >= n - used) snprintf(list + n - 4, 4, "...");
}

/* rows (R, C) into the model's table (R', C): rows [0, offset) as they are,
 * rows [offset, R) repeated (R' - offset) / (R - offset) times. */
static int tile_positions(const StFile *f, const StTensorInfo *t, const ParamSpec *s, size_t offset, float *dst,
                          Error *err) {
    const size_t R = t->shape[0], C = s->shape[1], Rm = s->shape[0];
    if (R <= offset || (Rm - offset) % (R - offset))
        return err_set(err, "'%s': pos_embed.weight has %zu rows (%zu positions); the model's %zu positions are not "
                            "a multiple of them, so the table cannot be tiled", f->path, R, R - offset, Rm - offset);
    float *rows = malloc(R * C * sizeof(float));
    if (!rows) return err_set(err, "out of memory reading '%s'", f->path);
    int rc = st_read_as(f, t, ST_F32, rows, R * C, err);
    for (size_t r = 0; !rc && r < Rm; r++) {
        const size_t from = r < offset ? r : offset + (r - offset) % (R - offset);
        memcpy(dst + r * C, rows + from * C, C * sizeof(float));
    }
    free(rows);
    return rc;
}

static bool same_shape(const StTensorInfo *t, const ParamSpec *s) {
    if ((int)t->ndim != s->ndim) return false;
    for (int d = 0; d < s->ndim; d++)
        if (t->shape[d] != s->shape[d]) return false;
    return true;
}

/* The checkpoint file of `path`: itself, or a run directory's of `step`
 * (0: its newest). */
static int init_file(const char *path, uint64_t step, char *out, size_t n, Error *err) {
    DIR *d = opendir(path);
    if (!d && step) return err_set(err, "key 'init_from_step' %" PRIu64 " needs a run directory, not the file '%s'", step, path);
    if (!d) return snprintf(out, n, "%s", path) >= (int)n ? err_set(err, "path too long: %s", path) : 0;
    closedir(d);
    if (!step) return ckpt_latest(path, out, n, err);
    snprintf(out, n, "%s/ckpt-%" PRIu64 ".safetensors", path, step);
    if (access(out, R_OK) != 0)
        return err_errno(err, "run '%s' has no readable checkpoint of step %" PRIu64 " (key init_from_step)", path, step);
    return 0;
}

/* Rows of a vocabulary-indexed table (the embedding, an LM head) grew: the
 * checkpoint's rows load, the added tokens' rows keep their initial values. */
static bool vocabulary_grew(const StTensorInfo *t, const ParamSpec *s) {
    if (strcmp(s->name, "embed.weight") && strcmp(s->name, "head.weight") && strcmp(s->name, "head.bias")) return false;
    if ((int)t->ndim != s->ndim || t->shape[0] >= s->shape[0]) return false;
    for (int d = 1; d < s->ndim; d++)
        if (t->shape[d] != s->shape[d]) return false;
    return true;
}

/* One parameter of ckpt_init_from into dst (values + its offset). */
static int init_param(const StFile *f, const ParamSpec *s, const Model *m, float *values, CkptInit *r, Error *err) {
    const StTensorInfo *t = st_find(f, s->name);
    float *dst = values + s->offset;
    if (t && same_shape(t, s)) {
        r->loaded++;
        return st_read_as(f, t, ST_F32, dst, s->numel, err);
    }
    if (t && vocabulary_grew(t, s)) {
        r->loaded++;
        list_add(r->tiled_names, sizeof r->tiled_names, s->name); /* reported with the reshaped ones */
        return st_read_as(f, t, ST_F32, dst, t->numel, err);
    }
    if (t && !strcmp(s->name, "pos_embed.weight") && t->ndim == 2 && t->shape[1] == s->shape[1] &&
        t->shape[0] < s->shape[0]) {
        r->tiled++;
        list_add(r->tiled_names, sizeof r->tiled_names, s->name);
        return tile_positions(f, t, s, (size_t)m->cfg.pos_offset, dst, err);
    }
    /* absent, or the output head of another task (an MLM decoder bias under a classifier): initial values */
    if (!t || !strncmp(s->name, "head.", 5)) {
        r->fresh++;
        list_add(r->fresh_names, sizeof r->fresh_names, s->name);
        return 0;
    }
    char want[64], got[64] = "";
    params_shape_str(s, want, sizeof want);
    for (size_t d = 0; d < t->ndim; d++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%zu", d ? " x " : "", (size_t)t->shape[d]);
    return err_set(err, "init_from: '%s' has %s as %s, the model needs %s", f->path, s->name, got, want);
}

int ckpt_init_from(const char *path, uint64_t step, Model *m, CkptInit *r, Error *err) {
    char file[2048];
    StFile f;
    memset(r, 0, sizeof *r);
    if (init_file(path, step, file, sizeof file, err) || st_open(&f, file, err)) return err_prefix(err, "init_from");
    const char *format = st_meta(&f, "format");
    int rc = 0;
    if (!format || strcmp(format, CKPT_FORMAT) != 0)
        rc = err_set(err, "init_from: '%s' is not a seqlab checkpoint (metadata format is %s)", file,
                     format ? format : "missing");
    ParamSet *ps = &m->params;
    float *values = rc ? NULL : malloc(ps->total * sizeof(float)); /* m stays unchanged on failure */
    if (!rc && !values) rc = err_set(err, "out of memory");
    if (values) memcpy(values, ps->values, ps->total * sizeof(float));
    for (size_t i = 0; !rc && i < ps->count; i++) rc = init_param(&f, &ps->specs[i], m, values, r, err);
    for (size_t k = 0; !rc && k < f.n_tensors; k++) {
        const char *name = f.tensors[k].name;
        if (params_find(ps, name) || !strncmp(name, "optim.", 6) || !strncmp(name, "train.", 6)) continue;
        r->skipped++;
        list_add(r->skipped_names, sizeof r->skipped_names, name);
    }
    if (!rc) memcpy(ps->values, values, ps->total * sizeof(float));
    free(values);
    st_close(&f);
    return rc;
}
