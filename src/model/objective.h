/* objective.h — what the model's last hidden states are trained to do
 * (internal to src/model; key `task`, keys of section `objective`):
 *
 *   lm              next-token prediction at every position (heads.h)
 *   mlm             the same head at the masked positions only (targets -1
 *                   elsewhere: the ignore index), BERT's objective; with
 *                   `mlm_transform` the rows first pass BERT's head transform
 *                   LN(act(dense(x))) (parameters mlm_head.dense.*, mlm_head.norm.*)
 *   classification  one vector per example pooled over its real tokens
 *                   (mean, first, last), optionally BERT's pooler
 *                   Dropout -> dense -> tanh -> Dropout (`pooler: tanh`, the
 *                   Nystromformer code's sequence-classification head),
 *                   a linear classifier, cross-entropy;
 *                   with `pair`, two texts per example (rows 2e, 2e+1)
 *                   encoded separately and classified from [u, v, u*v, u-v]
 *                   (the LRA retrieval two-tower form)
 *   regression      the same pooled vector, a linear map to one value, the
 *                   squared error (GLUE STS-B)
 *   wikihop         a linear map of every position to one score; the
 *                   candidates' slots (the batch's `slots`) compete in a
 *                   softmax, cross-entropy with the answer's slot (the
 *                   Nystromformer code's ModelForWiKiHop: its -1e9 on the
 *                   other positions is exactly this in float32)
 *
 * The pooled heads have parameters head.weight (K, C or 4C) and head.bias
 * (K), wikihop's (1, C) and (1); their scores (logits, predictions, or
 * wikihop's (B, T) position scores) stay in `scores` for the evaluation's
 * metrics. */
#ifndef SEQLAB_OBJECTIVE_H
#define SEQLAB_OBJECTIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/config.h"
#include "../core/params.h"
#include "../ops/ops.h"

typedef enum { OBJ_LM, OBJ_MLM, OBJ_CLASSIFICATION, OBJ_REGRESSION, OBJ_SLOTS } ObjectiveKind;
typedef enum { POOL_MEAN, POOL_FIRST, POOL_LAST } Pooling;

typedef struct {
    ObjectiveKind kind;
    /* keys (section objective) */
    char pooling[CFG_NAME];
    int classes;
    bool pair;
    bool mlm_transform;
    char pooler[CFG_NAME];    /* none | tanh */
    double init_std;
    char init[CFG_NAME];      /* the model's scheme: pytorch draws the dense layers U(+-1/sqrt(fan_in)) */
    /* derived */
    Pooling pool;
    size_t C, K, in;          /* in: the classifier's input width, C or 4C */
    float *w, *dw, *b, *db;   /* (K, in), (K) */
    /* per shape (arena), pooled objectives */
    float *pooled, *dpooled;  /* (B, C): one row per text */
    float *feat, *dfeat;      /* (E, in): the classifier's input */
    float *p_in, *p_out;      /* (E, C) pooler: its dropped input, tanh(dense(p_in)) */
    float *scores, *dscores;  /* (E, K): logits, or the regression's predictions, and their gradient; slots: (B, T) */
    float *losses;            /* (E) */
    Activation act;           /* of the mlm transform: the model's activation */
    float *tw, *dtw, *tb, *dtb; /* (C, C), (C) mlm_head.dense */
    float *pw, *dpw, *pb, *dpb; /* (C, C), (C) pooler.dense, or NULL */
    float *nw, *dnw, *nb, *dnb; /* (C) mlm_head.norm */
    /* per shape, mlm: the scored rows gathered */
    float *rows, *drows;      /* (N, C) */
    float *t_act, *t_slope, *t_out, *t_dtmp; /* (N, C) the transform: act(dense(rows)), act', LN output, a gradient */
    float *t_mean, *t_rstd;   /* (N) */
    int32_t *index, *targets; /* (N) */
    float *row_losses;        /* (N) */
} Objective;

/* The pooled and masked objectives' view of a batch. */
typedef struct {
    size_t B, T;
    const float *mask;      /* (B, T) or NULL: all real */
    const int32_t *targets; /* (B, T) mlm: -1 where nothing is scored */
    const int32_t *labels;  /* (E) classification */
    const float *values;    /* (E) regression */
    const float *slots;     /* (B, T) wikihop: 1 at the candidates' slots; labels: the answer's position */
    DropoutKey pooler_drop[2]; /* the pooler's dropouts before and after it (rate 0 when not training) */
} ObjectiveBatch;

/* The objective of a task (key `task`); -1 for an unknown one. */
int objective_kind(const char *task, ObjectiveKind *kind);
int objective_configure(Objective *o, const Config *cfg, size_t C, Error *err);
/* Examples per batch of B rows: B, or B / 2 with pairs. */
size_t objective_examples(const Objective *o, size_t B);
void objective_params(Objective *o, ParamSet *ps);
void objective_init(Objective *o, uint64_t seed, uint64_t scope);
/* Pooled objectives' and mlm's buffers for (B, T). */
void objective_layout(Objective *o, size_t B, size_t T, Arena *a);

/* Loss of the pooled objectives over hidden (B, T, C), summed over the
 * examples; with grad_scale != 0 also dhidden (B, T, C), overwritten. */
double objective_pooled(Objective *o, const float *hidden, const ObjectiveBatch *b, float grad_scale,
                        float *dhidden);
/* wikihop: the loss of the answers' slots among the candidates', summed
 * over the rows (labels NULL: the scores only); with grad_scale != 0 also
 * dhidden (B, T, C), overwritten. */
double objective_slots(Objective *o, const float *hidden, const ObjectiveBatch *b, float grad_scale, float *dhidden);
/* The head's input for n rows x (N, C at most): x itself, or with
 * mlm_transform LN(act(dense(x))) (in the objective's buffers, kept for
 * backward). */
const float *objective_transform(Objective *o, const float *x, size_t n);
/* Masked LM: the head's loss at the scored positions only (targets >= 0),
 * summed; losses (B*T) get 0 elsewhere; dhidden (B, T, C) overwritten (0 at
 * unscored rows) when grad_scale != 0. Returns the sum; *scored the count. */
struct Head;
double objective_masked(Objective *o, struct Head *h, const float *hidden, const ObjectiveBatch *b, float *losses,
                        float grad_scale, float *dhidden, size_t *scored);

#endif
