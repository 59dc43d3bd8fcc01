/* test_golden.c — whole models against an independent PyTorch implementation.
 *
 * tests/ref/golden_lm.py (run with Debian's python3-torch; golden_ssm.py for
 * the S5 / Hyena / Hyena-S5 mixers, golden_nystrom.py for Nyström) writes
 * tests/golden/lm_*.safetensors: a config, a batch, initial parameters, and,
 * computed in float64, the logits, the loss, every parameter gradient, the
 * losses of 10 optimizer steps (AdamW or Adam, clipping, schedule) and the
 * final parameters. Here the fp32 C model loads the same parameters and must
 * reproduce all of it; each tensor's max abs and relative error is printed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/safetensors.h"
#include "../src/model/model.h"
#include "../src/train/optim.h"
#include "test.h"
#include "tolerance.h"

typedef struct {
    StFile f;
    Config cfg;
    Model m;
    size_t B, T, V;
    int32_t *ids, *targets;
    bool *unused; /* per parameter element (params.total): the loss does not depend on it (reference gradient 0) */
} Golden;

static const StTensorInfo *need(const Golden *g, const char *name) {
    const StTensorInfo *t = st_find(&g->f, name);
    if (!t) printf("    golden file lacks '%s'\n", name);
    return t;
}

static int read_f32(const Golden *g, const char *name, float *out, size_t n) {
    const StTensorInfo *t = need(g, name);
    Error err = {0};
    if (!t || st_read_as(&g->f, t, ST_F32, out, n, &err)) {
        if (t) printf("    %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int load_config(Golden *g, Error *err) {
    char path[512];
    snprintf(path, sizeof path, "%s/golden.yaml", test_tmpdir());
    FILE *f = fopen(path, "w");
    if (!f) return err_set(err, "cannot write %s", path);
    fputs(st_meta(&g->f, "config"), f);
    fclose(f);
    config_defaults(&g->cfg);
    return config_load_yaml(&g->cfg, path, err) || config_finalize(&g->cfg, err) ? -1 : 0;
}

static int golden_open(Golden *g, const char *file) {
    memset(g, 0, sizeof *g);
    Error err = {0};
    char path[512];
    snprintf(path, sizeof path, "tests/golden/%s", file);
    if (st_open(&g->f, path, &err) || load_config(g, &err)) {
        printf("    %s\n", err.msg);
        return -1;
    }
    g->V = (size_t)atol(st_meta(&g->f, "vocab_size"));
    const StTensorInfo *ids = need(g, "ids");
    if (!ids || ids->ndim != 2) return -1;
    g->B = ids->shape[0];
    g->T = ids->shape[1];
    g->ids = malloc(g->B * g->T * sizeof(int32_t));
    g->targets = malloc(g->B * g->T * sizeof(int32_t));
    if (st_read_as(&g->f, ids, ST_I32, g->ids, g->B * g->T, &err) ||
        st_read_as(&g->f, need(g, "targets"), ST_I32, g->targets, g->B * g->T, &err) ||
        model_build(&g->m, &g->cfg, g->V, &err) || model_plan(&g->m, g->B, g->T, &err)) {
        printf("    %s\n", err.msg);
        return -1;
    }
    /* every parameter of the C model must be in the file, with its shape */
    g->unused = calloc(g->m.params.total, sizeof *g->unused);
    char name[200];
    for (size_t i = 0; i < g->m.params.count; i++) {
        const ParamSpec *s = &g->m.params.specs[i];
        snprintf(name, sizeof name, "param.%s", s->name);
        if (read_f32(g, name, g->m.params.values + s->offset, s->numel)) return -1;
    }
    return 0;
}

static void golden_close(Golden *g) {
    free(g->unused);
    model_free(&g->m);
    st_close(&g->f);
    free(g->ids);
    free(g->targets);
}

/* Max abs error and that error relative to `scale`, or when scale is 0 to
 * the reference's largest magnitude. */
static double compare_scaled(const char *label, const float *got, const float *want, size_t n, double scale,
                             double tol) {
    double max_abs = 0, largest = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (e > max_abs) max_abs = e, worst = i;
        largest = fmax(largest, fabs(want[i]));
    }
    if (scale == 0) scale = largest;
    double rel = max_abs / fmax(scale, 1e-12);
    printf("    %-42s max abs %.2e  rel %.2e%s\n", label, max_abs, rel, rel > tol ? "  NOT OK" : "");
    if (rel > tol) printf("      first worst at %zu: got %.8g want %.8g\n", worst, got[worst], want[worst]);
    return rel;
}

static double compare(const char *label, const float *got, const float *want, size_t n, double tol) {
    return compare_scaled(label, got, want, n, 0, tol);
}

/* The training pass (dropout is 0 in every golden file; a mixture of experts
 * routes to its training top_k and adds its balance loss, as the reference's
 * training does). */
static double loss_and_grads(Golden *g, float grad_scale) {
    PassMode mode = {.training = true};
    double sum = 0;
    Error err = {0};
    model_zero_grad(&g->m);
    model_step_begin(&g->m, 1);
    if (model_forward(&g->m, g->ids, g->targets, &mode, grad_scale, &sum, &err)) printf("    %s\n", err.msg);
    if (grad_scale != 0.0f) model_backward(&g->m, &mode);
    return sum / (double)(g->B * g->T);
}

static void check_forward_backward(Golden *g, const char *file) {
    const size_t N = g->B * g->T;
    float *want = malloc(N * g->V * sizeof(float));
    PassMode inference = {.training = false};
    Error err = {0};
    if (model_forward(&g->m, g->ids, NULL, &inference, 0.0f, NULL, &err)) printf("    %s\n", err.msg);
    if (read_f32(g, "logits", want, N * g->V) == 0)
        CHECK(compare("logits", g->m.logits, want, N * g->V, 1e-5) <= 1e-5, "%s: logits", file);
    double loss = loss_and_grads(g, 0.0f);
    float want_loss;
    REQUIRE(read_f32(g, "loss", &want_loss, 1) == 0, "%s: no loss", file);
    printf("    loss %.9f (reference %.9f)\n", loss, want_loss);
    CHECK(fabs(loss - want_loss) < 1e-5, "%s: loss %.9f vs %.9f", file, loss, want_loss);
    loss_and_grads(g, 1.0f / (float)N);
    float **refs = calloc(g->m.params.count, sizeof *refs);
    char name[200];
    double largest = 0.0;
    for (size_t i = 0; i < g->m.params.count; i++) {
        const ParamSpec *s = &g->m.params.specs[i];
        refs[i] = malloc(s->numel * sizeof(float));
        snprintf(name, sizeof name, "grad.%s", s->name);
        if (read_f32(g, name, refs[i], s->numel)) free(refs[i]), refs[i] = NULL;
        else largest = fmax(largest, max_abs(refs[i], s->numel));
    }
    for (size_t i = 0; i < g->m.params.count; i++) {
        const ParamSpec *s = &g->m.params.specs[i];
        if (!refs[i]) continue;
        snprintf(name, sizeof name, "grad.%s", s->name);
        const float *got = g->m.params.grads + s->offset;
        /* Elements the loss does not depend on (the key bias of a softmax: a
         * shift of every score of a row; MEGA's and SeqBoat's beta[1] is one):
         * the float64 gradient is 1e-16 of the others, ours float32 rounding of
         * sums that cancel. The others are compared as usual. */
        bool *unused = g->unused + s->offset;
        float *used_got = malloc(s->numel * sizeof(float)), *used_ref = malloc(s->numel * sizeof(float));
        size_t n_used = 0;
        double unused_got = 0.0;
        for (size_t k = 0; k < s->numel; k++) {
            /* (an exact 0 too: a dead unit, an absent token, or a sum that cancels exactly in float64 at
             * the first step but not at the next) */
            unused[k] = fabs(refs[i][k]) <= 1e-12 * largest;
            if (unused[k]) unused_got = fmax(unused_got, fabs(got[k]));
            else used_got[n_used] = got[k], used_ref[n_used++] = refs[i][k];
        }
        if (n_used < s->numel) {
            const double bound = rounding_tolerance_exact(g->T + g->m.C, largest);
            printf("    %-42s %zu of %zu elements unused by the loss: |grad| %.2e (rounding bound %.2e)\n", name,
                   s->numel - n_used, s->numel, unused_got, bound);
            CHECK(unused_got <= bound, "%s: %s should be 0 up to rounding where unused", file, name);
        }
        if (n_used) CHECK(compare(name, used_got, used_ref, n_used, 1e-4) <= 1e-4, "%s: %s", file, name);
        free(used_got);
        free(used_ref);
        free(refs[i]);
    }
    free(refs);
    free(want);
}

/* Final parameters are compared relative to how far the reference moved
 * them: Adam divides each gradient by its own running RMS, so an element
 * whose gradient sits at fp32 rounding level (1e-7 of the tensor's) can take
 * a different step than in fp64; the error is bounded by the step size, not
 * by the parameter's magnitude. Elements the loss does not use are
 * skipped: Adam turns their rounding-level gradient into steps of up to lr. */
static void check_final_params(Golden *g, const float *initial, const char *file) {
    char name[200];
    for (size_t i = 0; i < g->m.params.count; i++) {
        const ParamSpec *s = &g->m.params.specs[i];
        float *ref = malloc(s->numel * sizeof(float)), *got = malloc(s->numel * sizeof(float));
        snprintf(name, sizeof name, "final.%s", s->name);
        if (read_f32(g, name, ref, s->numel) == 0) {
            double moved = 0;
            size_t n = 0;
            for (size_t k = 0; k < s->numel; k++) {
                if (g->unused[s->offset + k]) continue;
                moved = fmax(moved, fabs(ref[k] - initial[s->offset + k]));
                got[n] = g->m.params.values[s->offset + k], ref[n++] = ref[k];
            }
            double rel = n ? compare_scaled(name, got, ref, n, moved, 1e-3) : 0.0;
            CHECK(rel <= 1e-3, "%s: %s", file, name);
        }
        free(ref);
        free(got);
    }
}

static void check_training(Golden *g, const char *file) {
    float *initial = malloc(g->m.params.total * sizeof(float));
    memcpy(initial, g->m.params.values, g->m.params.total * sizeof(float));
    Optimizer opt;
    Error err = {0};
    REQUIRE(optim_build(&opt, &g->cfg, &g->m.params, &err) == 0, "%s: %s", file, err.msg);
    const size_t N = g->B * g->T;
    float losses[10], want[10], lrs[10], want_lrs[10], norms[10], want_norms[10];
    for (uint64_t s = 0; s < 10; s++) {
        losses[s] = (float)loss_and_grads(g, 1.0f / (float)N);
        norms[s] = (float)optim_clip(&g->m.params, g->cfg.clip);
        lrs[s] = (float)schedule_lr(&g->cfg, s);
        optim_set_beta1(&opt, schedule_beta1(&g->cfg, s));
        optim_step(&opt, &g->m.params, lrs[s], s + 1);
        model_after_update(&g->m);
    }
    REQUIRE(read_f32(g, "train.losses", want, 10) == 0 && read_f32(g, "train.lr", want_lrs, 10) == 0 &&
                read_f32(g, "train.grad_norms", want_norms, 10) == 0,
            "%s: no train.losses, train.lr or train.grad_norms", file);
    for (int s = 0; s < 10; s++) {
        CHECK(fabs(losses[s] - want[s]) < 2e-5, "%s: step %d loss %.7f vs reference %.7f", file, s, losses[s], want[s]);
        CHECK(fabs(lrs[s] - want_lrs[s]) <= 1e-6 * want_lrs[s], "%s: step %d lr %.8g vs reference %.8g", file, s,
              lrs[s], want_lrs[s]);
    }
    CHECK(compare("train.grad_norms", norms, want_norms, 10, 1e-4) <= 1e-4, "%s: gradient norms", file);
    printf("    10 steps: loss %.6f -> %.6f (reference %.6f -> %.6f)\n", losses[0], losses[9], want[0], want[9]);
    check_final_params(g, initial, file);
    optim_free(&opt);
    free(initial);
}

static void run_golden(const char *file) {
    Golden g;
    if (golden_open(&g, file) == 0) {
        check_forward_backward(&g, file);
        check_training(&g, file);
    } else {
        test_fail(__FILE__, __LINE__, "%s: cannot set up", file);
    }
    golden_close(&g);
}

TEST(golden_preln_causal) { run_golden("lm_preln_causal.safetensors"); }
TEST(golden_postln_bidirectional) { run_golden("lm_postln_bidir.safetensors"); }
TEST(golden_long_tiles) { run_golden("lm_long_tiles.safetensors"); }
TEST(golden_fmm_linear) { run_golden("lm_fmm_linear.safetensors"); }
TEST(golden_fmm_band) { run_golden("lm_fmm_band.safetensors"); }
TEST(golden_band_bidirectional) { run_golden("lm_band_bidir.safetensors"); }
TEST(golden_fmm_2kernel) { run_golden("lm_fmm_2kernel.safetensors"); }
TEST(golden_fmm_mode3) { run_golden("lm_fmm_mode3.safetensors"); }
TEST(golden_fmm_adaptive) { run_golden("lm_fmm_adaptive.safetensors"); }
TEST(golden_adaptive_untied) { run_golden("lm_adaptive_untied.safetensors"); }
TEST(golden_adaptive_div2) { run_golden("lm_adaptive_div2.safetensors"); }
TEST(golden_s5) { run_golden("lm_s5.safetensors"); }
TEST(golden_s5_bidir_bilinear) { run_golden("lm_s5_bidir_bilinear.safetensors"); }
TEST(golden_hyena) { run_golden("lm_hyena.safetensors"); }
TEST(golden_hyena_order3) { run_golden("lm_hyena_order3.safetensors"); }
TEST(golden_hyena_s5) { run_golden("lm_hyena_s5.safetensors"); }
TEST(golden_nystrom) { run_golden("lm_nystrom.safetensors"); }
TEST(golden_nystrom_per_matrix) { run_golden("lm_nystrom_per_matrix.safetensors"); }
TEST(golden_mega) { run_golden("lm_mega.safetensors"); }
TEST(golden_mega_rotary_relu2) { run_golden("lm_mega_rotary_relu2.safetensors"); }
TEST(golden_mega_bidir_laplace) { run_golden("lm_mega_bidir_laplace.safetensors"); }
TEST(golden_seqboat) { run_golden("lm_seqboat.safetensors"); }
TEST(golden_seqboat_simple_bidir) { run_golden("lm_seqboat_simple_bidir.safetensors"); }
TEST(golden_seqboat_full) { run_golden("lm_seqboat_full.safetensors"); }
TEST(golden_nystrom_exact) { run_golden("lm_nystrom_exact.safetensors"); }
TEST(golden_moe) { run_golden("lm_moe.safetensors"); }
TEST(golden_moe_brainformer) { run_golden("lm_moe_brainformer.safetensors"); }
TEST(golden_moe_balance) { run_golden("lm_moe_balance.safetensors"); }
TEST(golden_moe_frozen_gate) { run_golden("lm_moe_frozen_gate.safetensors"); }
TEST(golden_span) { run_golden("lm_span.safetensors"); }
TEST(golden_span_post_trim) { run_golden("lm_span_post_trim.safetensors"); }
TEST(golden_span_fixed) { run_golden("lm_span_fixed.safetensors"); }
