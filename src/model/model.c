/* model.c — builds the embedding, the trunk (trunk.h) and the head, owns the
 * parameters and the activation arena, runs forward and backward; see model.h. */
#include "model.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/ops.h"

/* The RNG scope of everything outside the trunk (embedding, final norm, head). */
enum { EMBED_LAYER = 0xFFFF, SITE_EMBED_DROPOUT = 0, SITE_OUT_DROPOUT = 1, SITE_POOLER_IN = 2, SITE_POOLER_OUT = 3 };

/* The language-model head (full or adaptive softmax over the vocabulary):
 * the lm and mlm objectives score tokens with it. */
static bool lm_head(const Model *m) { return m->obj.kind == OBJ_LM || m->obj.kind == OBJ_MLM; }

static void declare_params(Model *m) {
    ParamSet *ps = &m->params;
    const size_t C = m->C, L = (size_t)m->cfg.max_len;
    if (m->linear_encoder) {
        params_add(ps, "encoder.weight", &m->wenc, &m->dwenc, GROUP_LINEAR, 2, C, (size_t)m->cfg.d_input);
        params_add(ps, "encoder.bias", &m->benc, &m->dbenc, GROUP_BIAS, 1, C);
    } else if (m->adaptive_input) {
        adaptive_input_params(&m->ain, ps);
    } else {
        params_add(ps, "embed.weight", &m->wte, &m->dwte, GROUP_EMBEDDING, 2, m->V, C);
    }
    if (strcmp(m->cfg.pos, "learned") == 0)
        params_add(ps, "pos_embed.weight", &m->wpe, &m->dwpe, GROUP_EMBEDDING, 2, L + (size_t)m->cfg.pos_offset, C);
    if (m->cfg.type_embed) params_add(ps, "type_embed.weight", &m->wtype, &m->dwtype, GROUP_EMBEDDING, 2, (size_t)1, C);
    if (m->cfg.embed_norm) {
        params_add(ps, "embed_norm.weight", &m->lne_w, &m->dlne_w, GROUP_NORM, 1, C);
        params_add(ps, "embed_norm.bias", &m->lne_b, &m->dlne_b, GROUP_NORM, 1, C);
    }
    trunk_params(&m->trunk, ps);
    params_prefix(ps, "%s", "");
    if (m->pre_ln && m->cfg.final_norm_affine) {
        params_add(ps, "norm_f.weight", &m->lnf_w, &m->dlnf_w, GROUP_NORM, 1, C);
        params_add(ps, "norm_f.bias", &m->lnf_b, &m->dlnf_b, GROUP_NORM, 1, C);
    }
    if (lm_head(m)) head_params(&m->head, ps, m->cfg.tie_weight && !m->linear_encoder, m->adaptive_input);
    objective_params(&m->obj, ps);
}

int model_build(Model *m, const Config *cfg, size_t vocab, Error *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->V = vocab;
    m->C = (size_t)cfg->d_model;
    m->pre_ln = strcmp(cfg->norm, "pre") == 0;
    params_init(&m->params);
    if (vocab < 2) return err_set(err, "vocabulary of %zu symbols: a language model needs at least 2", vocab);
    m->linear_encoder = strcmp(cfg->encoder, "linear") == 0;
    if (m->linear_encoder && cfg->d_input < 1) return err_set(err, "key 'd_input' must be >= 1, got %d", cfg->d_input);
    if (trunk_build(&m->trunk, &m->cfg, m->C, err) || head_configure(&m->head, cfg, vocab, m->C, err) ||
        objective_configure(&m->obj, cfg, m->C, err))
        return -1;
    if (m->obj.kind == OBJ_LM && m->linear_encoder)
        return err_set(err, "key 'encoder' linear reads real values, which have no next token to predict: use "
                            "task classification or regression");
    m->adaptive_input = m->head.div_val > 1;
    if (m->adaptive_input) adaptive_input_configure(&m->ain, &m->head);
    declare_params(m);
    if (params_allocate(&m->params, err)) return -1;
    if (m->adaptive_input) {
        adaptive_input_tie(&m->ain, &m->head, cfg->tie_weight);
    } else if (cfg->tie_weight && !m->linear_encoder) {
        m->head.w = m->wte;
        m->head.dw = m->dwte;
    }
    head_bind(&m->head);
    if (m->pre_ln && !cfg->final_norm_affine) { /* the kernels' weight 1 and bias 0, never updated */
        if (!(m->lnf_plain = xcalloc(4 * m->C, sizeof(float), err))) return -1;
        m->lnf_w = m->lnf_plain, m->lnf_b = m->lnf_w + m->C, m->dlnf_w = m->lnf_b + m->C, m->dlnf_b = m->dlnf_w + m->C;
        for (size_t c = 0; c < m->C; c++) m->lnf_w[c] = 1.0f;
    }
    m->emb_scale = strcmp(cfg->emb_scale, "sqrt_d") == 0 ? sqrtf((float)m->C) : 1.0f;
    m->reversed_positions = strcmp(cfg->pos, "sinusoidal_reversed") == 0;
    if (strncmp(cfg->pos, "sinusoidal", 10) == 0) {
        m->sinusoid = xmalloc((size_t)cfg->max_len * m->C * sizeof(float), err);
        if (!m->sinusoid) return -1;
        sinusoidal_fill(m->sinusoid, (size_t)cfg->max_len, m->C);
    }
    return 0;
}

int model_check(const Config *cfg, Error *err) {
    Trunk t;
    int rc = trunk_build(&t, cfg, (size_t)cfg->d_model, err);
    trunk_free(&t);
    return rc;
}

bool model_has_memory(const Model *m) {
    for (size_t i = 0; i < m->trunk.n_sublayers; i++)
        if (module_memory_size(m->trunk.sublayers[i])) return true;
    return false;
}

int model_memory_init(const Model *m, ModelMemory *mm, size_t rows, Error *err) {
    memset(mm, 0, sizeof *mm);
    if (!model_has_memory(m)) return 0;
    const size_t n = m->trunk.n_sublayers;
    mm->rows = rows, mm->n = n;
    if (!(mm->size = xcalloc(n, sizeof *mm->size, err)) || !(mm->cur = xcalloc(n, sizeof *mm->cur, err)) ||
        !(mm->next = xcalloc(n, sizeof *mm->next, err)))
        return model_memory_free(mm), -1;
    for (size_t i = 0; i < n; i++) {
        mm->size[i] = module_memory_size(m->trunk.sublayers[i]);
        if (!mm->size[i]) continue;
        if (!(mm->cur[i] = xcalloc(rows * mm->size[i], sizeof(float), err)) ||
            !(mm->next[i] = xcalloc(rows * mm->size[i], sizeof(float), err)))
            return model_memory_free(mm), -1;
    }
    return 0;
}

void model_memory_free(ModelMemory *mm) {
    for (size_t i = 0; i < mm->n; i++) {
        if (mm->cur) free(mm->cur[i]);
        if (mm->next) free(mm->next[i]);
    }
    free(mm->size), free(mm->cur), free(mm->next);
    memset(mm, 0, sizeof *mm);
}

void model_memory_clear(ModelMemory *mm) {
    for (size_t i = 0; i < mm->n; i++)
        if (mm->size[i]) memset(mm->cur[i], 0, mm->rows * mm->size[i] * sizeof(float));
}

void model_memory_advance(ModelMemory *mm) {
    for (size_t i = 0; i < mm->n; i++) {
        float *t = mm->cur[i];
        mm->cur[i] = mm->next[i], mm->next[i] = t;
    }
}

void model_free(Model *m) {
    model_memory_free(&m->train_memory);
    trunk_free(&m->trunk);
    free(m->sinusoid);
    free(m->lnf_plain);
    free(m->scratch);
    free(m->logits);
    for (size_t i = 0; i < MODEL_PLANS; i++) arena_free(&m->plans[i].arena);
    params_free(&m->params);
    memset(m, 0, sizeof *m);
}

/* The input embedding's dropout: embed_dropout, which a config left at -1 gives the value of dropout. */
static float embed_dropout(const Model *m) {
    return (float)(m->cfg.embed_dropout < 0 ? m->cfg.dropout : m->cfg.embed_dropout);
}

/* A LayerNorm outside the trunk: weight 1 (ln_init normal: N(1, 0.02)), bias 0. */
static void norm_init(Model *m, float *w, float *b, uint64_t seed, int index) {
    init_normal(w, m->C, strcmp(m->cfg.ln_init, "normal") == 0 ? 0.02f : 0.0f, seed, EMBED_LAYER, index);
    for (size_t c = 0; c < m->C; c++) {
        w[c] += 1.0f;
        b[c] = 0.0f;
    }
}

void model_init(Model *m, uint64_t seed) {
    /* the embedding tables: N(0, init_std); gpt2 and pytorch (the Nystromformer code's explicit
     * init): N(0, 0.02); flax: nn.Embed's N(0, 1/sqrt(d_model)) */
    const float std = !strcmp(m->cfg.init, "flax") || !strcmp(m->cfg.embed_init, "inv_sqrt_d")
                          ? (float)(1.0 / sqrt((double)m->C))
                      : !strcmp(m->cfg.init, "gpt2") || !strcmp(m->cfg.init, "pytorch") ? 0.02f
                                                                                   : (float)m->cfg.init_std;
    if (m->linear_encoder) {
        init_normal(m->wenc, m->C * (size_t)m->cfg.d_input, std, seed, EMBED_LAYER, 6);
        memset(m->benc, 0, m->C * sizeof(float));
    } else if (m->adaptive_input) {
        adaptive_input_init(&m->ain, std, seed, EMBED_LAYER);
    } else {
        init_normal(m->wte, m->V * m->C, std, seed, EMBED_LAYER, 0);
    }
    if (m->wpe) init_normal(m->wpe, ((size_t)m->cfg.max_len + (size_t)m->cfg.pos_offset) * m->C, std, seed, EMBED_LAYER, 1);
    if (m->wtype) init_normal(m->wtype, m->C, std, seed, EMBED_LAYER, 7);
    trunk_init(&m->trunk, seed);
    if (m->pre_ln && m->cfg.final_norm_affine) norm_init(m, m->lnf_w, m->lnf_b, seed, 3);
    if (m->lne_w) norm_init(m, m->lne_w, m->lne_b, seed, 8);
    if (lm_head(m) && !m->cfg.tie_weight && !m->adaptive_input)
        init_normal(m->head.w, m->V * m->C, std, seed, EMBED_LAYER, 2);
    for (size_t i = 0; !m->cfg.tie_weight && m->adaptive_input && i <= m->head.n_clusters; i++)
        init_normal(m->head.tw[i], (m->head.cutoff[i + 1] - m->head.cutoff[i]) * m->head.dim[i], std, seed, EMBED_LAYER,
                    60 + (int)i);
    if (lm_head(m)) head_init(&m->head, &m->cfg, seed, EMBED_LAYER);
    objective_init(&m->obj, seed, EMBED_LAYER);
}

/* Every activation buffer of shape (B, T); runs on a counting arena first. */
static void model_layout(Model *m, size_t B, size_t T, Arena *a) {
    const size_t N = B * T, C = m->C;
    m->x0 = arena_take(a, N * C);
    if (m->lne_w) {
        m->xsum = arena_take(a, N * C);
        m->lne_mean = arena_take(a, N);
        m->lne_rstd = arena_take(a, N);
    }
    m->xf = arena_shared(a, ARENA_SHARED_PRE_NORM, N * C); /* also every pre-norm use's Norm(x): nn/residual.c */
    trunk_layout(&m->trunk, B, T, a);
    m->lnf_mean = arena_take(a, N);
    m->lnf_rstd = arena_take(a, N);
    if (lm_head(m)) head_layout(&m->head, N, a);
    objective_layout(&m->obj, B, T, a);
    if (m->adaptive_input) adaptive_input_layout(&m->ain, N, a);
    m->losses = arena_take(a, N);
    m->tmp_d = arena_take(a, N * C);
    m->grad = arena_take(a, N * C);
}

/* The plan slot for (B, T): a cached one, or the least recently used (freed). */
static size_t plan_slot(Model *m, size_t B, size_t T, bool *hit) {
    size_t victim = 0;
    for (size_t i = 0; i < MODEL_PLANS; i++) {
        if (m->plans[i].arena.base && m->plans[i].B == B && m->plans[i].T == T) {
            *hit = true;
            return i;
        }
        if (m->plans[i].last_use < m->plans[victim].last_use) victim = i;
    }
    *hit = false;
    arena_free(&m->plans[victim].arena);
    return victim;
}

int model_plan(Model *m, size_t B, size_t T, Error *err) {
    if (m->scratch && m->B == B && m->T == T) return 0;
    if (T > (size_t)m->cfg.max_len)
        return err_set(err, "sequence of %zu tokens is longer than max_len %d, the longest the model allows", T,
                       m->cfg.max_len);
    bool hit;
    size_t i = plan_slot(m, B, T, &hit);
    if (!hit) {
        Arena count = arena_counting();
        model_layout(m, B, T, &count);
        const double need = (double)count.used * sizeof(float), have = (double)machine_memory_bytes();
        if (need > have)
            return err_set(err, "the activations of %zu rows of %zu tokens need %.1f GiB, more than this machine's %.1f "
                           "GiB: lower batch_size (or raise batch_split) or tgt_len (in evaluation eval_batch_size or "
                           "eval_tgt_len), or make the model smaller (d_model, d_inner, n_head, arch)", B, T,
                           need / 1073741824.0, have / 1073741824.0);
        if (arena_alloc(&m->plans[i].arena, count.used, err)) return -1;
        m->plans[i].B = B;
        m->plans[i].T = T;
    }
    m->plans[i].last_use = ++m->plan_clock;
    arena_rewind(&m->plans[i].arena);
    model_layout(m, B, T, &m->plans[i].arena);
    size_t need = trunk_scratch(&m->trunk, B, T);
    if (need > m->scratch_floats || !m->scratch) {
        free(m->scratch);
        m->scratch = xmalloc(need * sizeof(float), err);
        if (!m->scratch) return -1;
        m->scratch_floats = need;
    }
    m->B = B;
    m->T = T;
    return 0;
}

static int check_ids(const int32_t *ids, size_t B, size_t T, size_t V, const char *what, Error *err) {
    for (size_t n = 0; n < B * T; n++)
        if (ids[n] < 0 || (size_t)ids[n] >= V)
            return err_set(err, "%s id %d at (row %zu, position %zu) is outside the vocabulary [0, %zu)", what,
                           ids[n], n / T, n % T, V);
    return 0;
}

/* Training passes report auxiliary losses and statistics; evaluation does not. */
static Ctx make_ctx(Model *m, const PassMode *mode) {
    Ctx c = {.B = m->B, .T = m->T, .training = mode->training, .causal = m->cfg.causal, .seed = mode->seed,
             .step = mode->step, .row0 = mode->row0, .scope = EMBED_LAYER, .scratch = m->scratch,
             .aux = mode->training ? &m->aux : NULL, .stats = mode->training ? &m->stats : NULL};
    return c;
}

void model_step_begin(Model *m, size_t micro_batches) {
    m->aux = (AuxLoss){.sum = 0.0, .scale = 1.0f / (float)micro_batches};
    memset(&m->stats, 0, sizeof m->stats);
}

/* Adds the position table: rows 0..T-1 (from pos_offset on), or T-1..0 for
 * reversed positions; and the type vector. */
static void add_positions(Model *m) {
    const size_t C = m->C, T = m->T;
    if (m->wtype) positions_add(m->x0, m->wtype, m->B * T, 1, C);
    if (m->wpe) positions_add(m->x0, m->wpe + (size_t)m->cfg.pos_offset * C, m->B, T, C);
    if (!m->sinusoid) return;
    if (!m->reversed_positions) {
        positions_add(m->x0, m->sinusoid, m->B, T, C);
        return;
    }
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < m->B; b++)
        for (size_t t = 0; t < T; t++)
            for (size_t c = 0; c < C; c++) m->x0[(b * T + t) * C + c] += m->sinusoid[(T - 1 - t) * C + c];
}

/* x0 from the ids (embedding, adaptive input) or the real values (linear). */
static void encode(Model *m) {
    const size_t N = m->B * m->T, C = m->C;
    if (m->linear_encoder) linear_forward(m->x0, m->inputs, m->wenc, m->benc, N, (size_t)m->cfg.d_input, C);
    else if (m->adaptive_input) adaptive_input_forward(&m->ain, m->x0, m->ids, N);
    else embedding_forward(m->x0, m->ids, m->wte, N, C);
}

static void embed_forward(Model *m, const Ctx *p) {
    const size_t N = m->B * m->T, C = m->C;
    encode(m);
    if (m->emb_scale != 1.0f)
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < N * C; i++) m->x0[i] *= m->emb_scale;
    add_positions(m);
    if (m->lne_w) {
        memcpy(m->xsum, m->x0, N * C * sizeof(float));
        layernorm_forward(m->x0, m->lne_mean, m->lne_rstd, m->xsum, m->lne_w, m->lne_b, N, C);
    }
    DropoutKey k = ctx_dropout(p, SITE_EMBED_DROPOUT, embed_dropout(m), C);
    dropout_forward(m->x0, m->x0, N * C, &k);
}

static void embed_backward(Model *m, float *grad, const Ctx *p) {
    const size_t N = m->B * m->T, C = m->C;
    DropoutKey k = ctx_dropout(p, SITE_EMBED_DROPOUT, embed_dropout(m), C);
    dropout_backward(grad, grad, N * C, &k);
    if (m->lne_w) { /* the head's buffer is free by now */
        layernorm_backward(m->tmp_d, m->dlne_w, m->dlne_b, grad, m->xsum, m->lne_mean, m->lne_rstd, m->lne_w, N, C,
                           false);
        grad = m->tmp_d;
    }
    if (m->wpe) positions_backward(m->dwpe + (size_t)m->cfg.pos_offset * C, grad, m->B, m->T, C);
    if (m->wtype) positions_backward(m->dwtype, grad, m->B * m->T, 1, C);
    if (m->emb_scale != 1.0f)
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < N * C; i++) grad[i] *= m->emb_scale;
    if (m->linear_encoder)
        linear_backward(NULL, m->dwenc, m->dbenc, grad, m->inputs, m->wenc, N, (size_t)m->cfg.d_input, C, false);
    else if (m->adaptive_input) adaptive_input_backward(&m->ain, grad, m->ids, N);
    else embedding_backward(m->dwte, grad, m->ids, N, C, m->V);
}

/* Residual stream entering trunk use i (i = n_uses: leaving the trunk). */
static const float *block_input(const Model *m, size_t i) { return trunk_input(&m->trunk, m->x0, i); }

/* Adds the seconds since *t0 to stage `stage` of the profile (if any), forward or backward. */
static void profile_mark(Model *m, size_t stage, bool backward, double *t0) {
    if (!m->profile) return;
    double now = omp_get_wtime();
    m->profile[2 * stage + backward] += now - *t0;
    *t0 = now;
}

/* Inference: the scores of every token into m->logits, allocated here
 * (training never comes this way, so its steps stay allocation-free). */
static int score_all(Model *m, const float *hidden, size_t N, Error *err) {
    const size_t need = N * m->V + head_logits_scratch(&m->head);
    if (need > m->logits_floats) {
        free(m->logits);
        m->logits_floats = 0;
        if (!(m->logits = xmalloc(need * sizeof(float), err))) return -1;
        m->logits_floats = need;
    }
    head_logits(&m->head, hidden, N, m->logits, m->logits + N * m->V);
    return 0;
}

/* Ids, targets, labels of a batch in their ranges (targets of mlm may be -1). */
static int check_batch(const Model *m, const Batch *b, Error *err) {
    if (b->B != m->B || b->T != m->T)
        return err_set(err, "a batch of %zu x %zu for a model planned for %zu x %zu", b->B, b->T, m->B, m->T);
    if (!m->linear_encoder && (!b->ids || check_ids(b->ids, b->B, b->T, m->V, "token", err))) return b->ids ? -1 : err_set(err, "a batch without token ids");
    if (m->linear_encoder && !b->inputs) return err_set(err, "a batch without input values for the linear encoder");
    const size_t E = objective_examples(&m->obj, b->B);
    switch (m->obj.kind) {
    case OBJ_LM: return b->targets ? check_ids(b->targets, b->B, b->T, m->V, "target", err) : 0;
    case OBJ_MLM:
        for (size_t n = 0; b->targets && n < b->B * b->T; n++)
            if (b->targets[n] < -1 || b->targets[n] >= (int32_t)m->V)
                return err_set(err, "masked-LM target %d at (row %zu, position %zu) is outside [-1, %zu)", b->targets[n],
                               n / b->T, n % b->T, m->V);
        return 0;
    case OBJ_CLASSIFICATION:
        for (size_t e = 0; b->labels && e < E; e++)
            if (b->labels[e] < 0 || (size_t)b->labels[e] >= m->obj.K)
                return err_set(err, "label %d of example %zu is outside the %zu classes (objective.classes)",
                               b->labels[e], e, m->obj.K);
        return 0;
    case OBJ_REGRESSION: return 0;
    case OBJ_SLOTS:
        if (!b->slots) return err_set(err, "a wikihop batch without its candidates' slots");
        for (size_t r = 0; b->labels && r < b->B; r++)
            if (b->labels[r] < 0 || (size_t)b->labels[r] >= b->T || b->slots[r * b->T + (size_t)b->labels[r]] == 0.0f)
                return err_set(err, "answer position %d of row %zu is not one of the row's candidate slots", b->labels[r],
                               r);
        return 0;
    }
    return 0;
}

/* The objective's loss (or, for the lm without targets, every token's scores). */
/* A dropout of the pooled head over its (E, C) rows: numbered by example
 * (from the micro-batch's first row), so batch_split does not change it. */
static DropoutKey pooler_dropout(const Model *m, const Ctx *p, int site) {
    DropoutKey k = ctx_dropout(p, site, (float)m->cfg.dropout, m->C);
    k.first = p->row0 * m->C;
    return k;
}

static int objective_forward(Model *m, const Batch *b, const Ctx *p, float *hidden, float grad_scale,
                             double *loss_sum, Error *err) {
    const size_t N = m->B * m->T;
    /* the head's gradient lands where model_backward starts from */
    float *dhidden = grad_scale != 0.0f ? (m->pre_ln ? m->tmp_d : m->grad) : NULL;
    const ObjectiveBatch ob = {.B = b->B, .T = b->T, .mask = b->mask, .targets = b->targets, .labels = b->labels,
                               .values = b->values, .slots = b->slots,
                               .pooler_drop = {pooler_dropout(m, p, SITE_POOLER_IN), pooler_dropout(m, p, SITE_POOLER_OUT)}};
    double loss = 0.0;
    size_t scored;
    switch (m->obj.kind) {
    case OBJ_LM:
        if (!b->targets) return score_all(m, hidden, N, err);
        loss = head_loss(&m->head, hidden, N, b->targets, m->losses, grad_scale, dhidden);
        break;
    case OBJ_MLM:
        if (!b->targets) return score_all(m, objective_transform(&m->obj, hidden, N), N, err);
        loss = objective_masked(&m->obj, &m->head, hidden, &ob, m->losses, grad_scale, dhidden, &scored);
        break;
    case OBJ_CLASSIFICATION:
    case OBJ_REGRESSION:
        if (!b->labels && !b->values && grad_scale != 0.0f)
            return err_set(err, "a batch without labels to train the %s objective on", m->cfg.task);
        loss = objective_pooled(&m->obj, hidden, &ob, grad_scale, dhidden);
        break;
    case OBJ_SLOTS:
        if (!b->labels && grad_scale != 0.0f) return err_set(err, "a wikihop batch without answers to train on");
        loss = objective_slots(&m->obj, hidden, &ob, grad_scale, dhidden);
        break;
    }
    if (loss_sum) *loss_sum = loss;
    return 0;
}

int model_forward_batch(Model *m, const Batch *b, const PassMode *mode, float grad_scale, double *loss_sum,
                        Error *err) {
    if (check_batch(m, b, err)) return -1;
    Ctx p = make_ctx(m, mode);
    p.mask = b->mask;
    double t0 = omp_get_wtime();
    m->ids = b->ids;
    m->inputs = b->inputs;
    embed_forward(m, &p);
    profile_mark(m, 0, false, &t0);
    const size_t uses = m->trunk.n_uses;
    for (size_t i = 0; i < uses; i++) {
        const TrunkUse *u = &m->trunk.uses[i];
        const ModelMemory *mm = mode->memory;
        const size_t s = u->sublayer, size = mm && mm->n ? mm->size[s] : 0;
        p.memory = size ? mm->cur[s] + mode->row0 * size : NULL;
        p.memory_next = size && u->first ? mm->next[s] + mode->row0 * size : NULL;
        p.memory_source = block_input(m, u->layer_start);
        p.repeat_use = !u->first;
        module_forward(u->frame, block_input(m, i), u->x_out, &p);
        profile_mark(m, i + 1, false, &t0);
    }
    p.memory = NULL, p.memory_next = NULL, p.memory_source = NULL;
    float *top = m->trunk.uses[uses - 1].x_out, *hidden = m->pre_ln ? m->xf : top;
    const size_t N = m->B * m->T;
    if (m->pre_ln) layernorm_forward(m->xf, m->lnf_mean, m->lnf_rstd, top, m->lnf_w, m->lnf_b, N, m->C);
    /* in place: backward needs only the dropped hidden state (head) and the
     * final norm's input, not this buffer's undropped values */
    DropoutKey drop = ctx_dropout(&p, SITE_OUT_DROPOUT, (float)m->cfg.out_dropout, m->C);
    dropout_forward(hidden, hidden, N * m->C, &drop);
    if (objective_forward(m, b, &p, hidden, grad_scale, loss_sum, err)) return -1;
    profile_mark(m, uses + 1, false, &t0);
    m->mask = b->mask;
    return 0;
}

int model_forward(Model *m, const int32_t *ids, const int32_t *targets, const PassMode *mode, float grad_scale,
                  double *loss_sum, Error *err) {
    const Batch b = {.B = m->B, .T = m->T, .ids = ids, .targets = targets};
    return model_forward_batch(m, &b, mode, grad_scale, loss_sum, err);
}

void model_backward(Model *m, const PassMode *mode) {
    Ctx p = make_ctx(m, mode);
    p.mask = m->mask; /* the forward's padding */
    double t0 = omp_get_wtime();
    const size_t N = m->B * m->T, uses = m->trunk.n_uses;
    float *dhidden = m->pre_ln ? m->tmp_d : m->grad; /* filled by the forward's head */
    DropoutKey drop = ctx_dropout(&p, SITE_OUT_DROPOUT, (float)m->cfg.out_dropout, m->C);
    dropout_backward(dhidden, dhidden, N * m->C, &drop);
    if (m->pre_ln)
        layernorm_backward(m->grad, m->dlnf_w, m->dlnf_b, m->tmp_d, block_input(m, uses), m->lnf_mean,
                           m->lnf_rstd, m->lnf_w, N, m->C, false);
    profile_mark(m, uses + 1, true, &t0);
    for (size_t i = uses; i-- > 0;) { /* in place: d x_out in, d x_in out */
        p.repeat_use = !m->trunk.uses[i].first;
        module_backward(m->trunk.uses[i].frame, m->grad, m->grad, &p);
        profile_mark(m, i + 1, true, &t0);
    }
    embed_backward(m, m->grad, &p);
    profile_mark(m, 0, true, &t0);
}

void model_after_update(Model *m) {
    for (size_t i = 0; i < m->trunk.n_sublayers; i++) module_after_update(m->trunk.sublayers[i]);
}

void model_zero_grad(Model *m) { memset(m->params.grads, 0, m->params.total * sizeof(float)); }
