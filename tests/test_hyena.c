/* test_hyena.c — the FFT long convolution and the Hyena operator against the
 * oracles of spec ssm-hyena.md §4 (T-HY-1 … T-HY-7, T-HS-1, T-HS-2).
 * Gradient checks and step = forward of every variant are rows of
 * test_modules.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/rng.h"
#include "../src/mixers/hyena.h"
#include "../src/ops/ops.h"
#include "rig.h"
#include "test.h"
#include "tolerance.h"

static void fill(float *x, size_t n, uint64_t stream) {
    Rng r = rng_make(3, rng_stream(RNG_TEST, stream, 0));
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(&r);
}

static float *aligned_floats(size_t n) {
    float *p = aligned_alloc(64, ((n + 16) * sizeof(float) + 63) / 64 * 64);
    if (p) memset(p, 0, (n + 16) * sizeof(float));
    return p;
}

static double max_abs_d(const double *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* T-HY-1, T-HY-6, T-HY-7: forward and backward against the O(T^2) sums in
 * double, across the crossover, odd and prime lengths included; dh summed
 * over the batch equals the per-sequence gradients added. */
TEST(fftconv_equals_the_direct_convolution) {
    static const size_t lengths[] = {1, 2, 5, 64, 65, 1000, 4097};
    const size_t B = 2, C = 11;
    for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
        const size_t T = lengths[li], n = B * T * C;
        float *v = malloc(n * sizeof *v), *dy = malloc(n * sizeof *dy), *h = malloc(T * C * sizeof *h);
        float *y = malloc(n * sizeof *y), *dv = malloc(n * sizeof *dv), bias[11], dbias[11] = {0};
        float *dh = calloc(T * C, sizeof *dh), *dh1 = calloc(T * C, sizeof *dh1), *dv1 = malloc(n * sizeof *dv1);
        float *spectra = aligned_floats(fftconv_spectra_floats(T, C));
        float *scratch = malloc((fftconv_scratch(T, C) + 1) * sizeof(float));
        double *ry = calloc(n, sizeof *ry), *rdv = calloc(n, sizeof *rdv), *rdh = calloc(T * C, sizeof *rdh);
        fill(v, n, 1), fill(dy, n, 2), fill(h, T * C, 3), fill(bias, C, 4);
        for (size_t b = 0; b < B; b++)
            for (size_t t = 0; t < T; t++)
                for (size_t c = 0; c < C; c++) {
                    const size_t i = (b * T + t) * C + c;
                    ry[i] = (double)bias[c] * v[i];
                    rdv[i] = (double)bias[c] * dy[i];
                    for (size_t s = 0; s <= t; s++) ry[i] += (double)h[s * C + c] * v[(b * T + t - s) * C + c];
                    for (size_t s = 0; t + s < T; s++) {
                        rdv[i] += (double)h[s * C + c] * dy[(b * T + t + s) * C + c];
                        rdh[s * C + c] += (double)dy[(b * T + t + s) * C + c] * v[i];
                    }
                }
        fftconv_filter(spectra, h, T, C);
        fftconv_forward(y, v, h, spectra, bias, B, T, C, scratch);
        fftconv_backward(dv, dh, dbias, dy, v, h, spectra, bias, B, T, C, scratch);
        double wy = 0, wdv = 0, wdh = 0;
        for (size_t i = 0; i < n; i++) wy = fmax(wy, fabs(y[i] - ry[i])), wdv = fmax(wdv, fabs(dv[i] - rdv[i]));
        for (size_t i = 0; i < T * C; i++) wdh = fmax(wdh, fabs(dh[i] - rdh[i]));
        /* an FFT of length n sums n terms in log2 n rounds, three transforms in a row */
        const double terms = 3.0 * (fftconv_length(T) ? 2.0 * T : (double)T) + 4.0;
        CHECK(wy <= rounding_tolerance(terms, max_abs_d(ry, n)), "T %zu: y off by %g", T, wy);
        CHECK(wdv <= rounding_tolerance(terms, max_abs_d(rdv, n)), "T %zu: dv off by %g", T, wdv);
        CHECK(wdh <= rounding_tolerance(terms * B, max_abs_d(rdh, T * C)), "T %zu: dh off by %g", T, wdh);
        double db_worst = 0;
        for (size_t c = 0; c < C; c++) {
            double ref = 0;
            for (size_t i = 0; i < B * T; i++) ref += (double)v[i * C + c] * dy[i * C + c];
            db_worst = fmax(db_worst, fabs(dbias[c] - ref) / (1.0 + fabs(ref)));
        }
        CHECK(db_worst < 1e-5, "T %zu: dbias off by %g", T, db_worst);
        /* T-HY-7: the batch's dh is the sum of each sequence's */
        for (size_t b = 0; b < B; b++)
            fftconv_backward(dv1, dh1, NULL, dy + b * T * C, v + b * T * C, h, spectra, bias, 1, T, C, scratch);
        double wsum = 0;
        for (size_t i = 0; i < T * C; i++) wsum = fmax(wsum, fabs(dh1[i] - dh[i]));
        CHECK(wsum <= rounding_tolerance(terms * B, max_abs_d(rdh, T * C)), "T %zu: batch dh off the per-sequence sum by %g",
              T, wsum);
        free(v), free(dy), free(h), free(y), free(dv), free(dh), free(dh1), free(dv1), free(spectra), free(scratch);
        free(ry), free(rdv), free(rdh);
    }
}

/* T-HY-5 at the convolution: a unit impulse passes v through, times 1 + b. */
TEST(fftconv_of_an_impulse_is_the_input) {
    const size_t T = 300, C = 4;
    float *v = malloc(T * C * sizeof *v), *y = malloc(T * C * sizeof *y), *h = calloc(T * C, sizeof *h);
    float bias[4] = {0.5f, -1.0f, 0.0f, 2.0f};
    float *spectra = aligned_floats(fftconv_spectra_floats(T, C)), *scratch = malloc(fftconv_scratch(T, C) * 4 + 64);
    fill(v, T * C, 9);
    for (size_t c = 0; c < C; c++) h[c] = 1.0f;
    fftconv_filter(spectra, h, T, C);
    fftconv_forward(y, v, h, spectra, bias, 1, T, C, scratch);
    double worst = 0;
    for (size_t i = 0; i < T * C; i++) worst = fmax(worst, fabs(y[i] - (1.0 + bias[i % C]) * v[i]));
    CHECK(worst < 1e-5, "off by %g", worst);
    free(v), free(y), free(h), free(spectra), free(scratch);
}

/* T-HY-4: the positional features and the window's rates. */
TEST(hyena_positional_features_and_decays) {
    const size_t L = 22, E = 5;
    float z[22 * 5], t[22], delta[128];
    hyena_positions(z, t, L, E);
    const float z0[5] = {0, 1, 1, 0, 0};
    for (size_t e = 0; e < E; e++) CHECK(z[e] == z0[e], "z_0[%zu] = %g", e, z[e]);
    CHECK(t[L - 1] == 1.0f && t[0] == 0.0f, "t runs %g .. %g", t[0], t[L - 1]);
    /* band 2 has frequency 1: cos(2 pi k / L), -sin(2 pi k / L) */
    CHECK(fabsf(z[3 * E + 2] - (float)cos(2 * M_PI * 3 / L)) < 1e-6 && fabsf(z[3 * E + 4] + (float)sin(2 * M_PI * 3 / L)) < 1e-6,
          "band 2 at k = 3");
    hyena_decays(delta, 128, 0.3, 1.5, 1e-2);
    CHECK(fabsf(delta[0] + 3.070113f) < 1e-5 && fabsf(delta[127] + 15.350567f) < 1e-5, "decays %g .. %g", delta[0],
          delta[127]);
    CHECK(fabs(exp(-fabs(delta[0])) - 0.046416) < 1e-6 && fabs(exp(-fabs(delta[127])) - 2.1544e-7) < 1e-10,
          "windows at t = 1");
}

static int hyena_rig(Rig *rig, const char *entries, size_t B, size_t T) {
    Config c;
    rig_config(&c);
    c.causal = true;
    c.max_len = (int)T;
    if (rig_set_entries(&c, entries)) return -1;
    return rig_build(rig, "hyena", "mixer", &c, B, T);
}

/* T-HY-2: outputs before t0 do not move when the input at t0 changes, through the FFT path. */
TEST(hyena_is_causal) {
    static const char *const variants[] = {"mixer.order=3", "mixer.filter.name=s5;mixer.filter.ssm_size=4;mixer.filter.clip_eigs=true"};
    for (int k = 0; k < 2; k++) {
        Rig rig;
        REQUIRE(hyena_rig(&rig, variants[k], 2, 200) == 0, "build %s", variants[k]);
        rig.ctx.training = false;
        const size_t T = rig.T, C = rig.C, t0 = 117, n = 2 * T * C;
        module_forward(rig.f, rig.x, rig.y, &rig.ctx);
        float *before = malloc(n * sizeof *before);
        memcpy(before, rig.y, n * sizeof *before);
        for (size_t b = 0; b < 2; b++)
            for (size_t c = 0; c < C; c++) rig.x[(b * T + t0) * C + c] += 3.0f;
        module_forward(rig.f, rig.x, rig.y, &rig.ctx);
        double worst = 0, moved = 0, scale = 0;
        for (size_t b = 0; b < 2; b++)
            for (size_t t = 0; t < T; t++)
                for (size_t c = 0; c < C; c++) {
                    const size_t i = (b * T + t) * C + c;
                    if (t < t0) worst = fmax(worst, fabs(rig.y[i] - before[i]));
                    else moved = fmax(moved, fabs(rig.y[i] - before[i]));
                    scale = fmax(scale, fabs(before[i]));
                }
        CHECK(worst <= 1e-6 * scale, "%s: outputs before t0 moved by %g (scale %g)", variants[k], worst, scale);
        CHECK(moved > 1e-3 * scale, "%s: the change at t0 had no effect", variants[k]);
        free(before);
        rig_free(&rig);
    }
}

/* T-HS-2 (identity filter) and T-HY-5 (a zero filter leaves the feed-through):
 * without the short convolution, out = W_out(k ⊙ x_0 ⊙ x_1 ⊙ v) + b_out
 * with k = 1 for the identity, k = b for the implicit filter with its last
 * MLP layer zero. */
TEST(hyena_closed_forms) {
    static const char *const variants[] = {"mixer.filter.name=identity;mixer.short_filter_order=0",
                                           "mixer.short_filter_order=0"};
    for (int k = 0; k < 2; k++) {
        Rig rig;
        REQUIRE(hyena_rig(&rig, variants[k], 2, 90) == 0, "build");
        const size_t D = rig.C, N = rig.B * rig.T;
        if (k == 1) memset(rig_param(&rig, "implicit_filter.3.weight"), 0, D * 64 * sizeof(float));
        const float *w_in = rig_param(&rig, "in_proj.weight"), *b_in = rig_param(&rig, "in_proj.bias");
        const float *w_out = rig_param(&rig, "out_proj.weight"), *b_out = rig_param(&rig, "out_proj.bias");
        const float *fb = k ? rig_param(&rig, "filter_bias") : NULL;
        rig.ctx.training = false;
        module_forward(rig.f, rig.x, rig.y, &rig.ctx);
        double worst = 0, scale = 0;
        for (size_t i = 0; i < N; i++) {
            double z[3 * 64], g[64];
            for (size_t j = 0; j < 3 * D; j++) {
                z[j] = b_in[j];
                for (size_t e = 0; e < D; e++) z[j] += (double)w_in[j * D + e] * rig.x[i * D + e];
            }
            for (size_t d = 0; d < D; d++) g[d] = z[d] * z[D + d] * z[2 * D + d] * (fb ? fb[d] : 1.0);
            for (size_t o = 0; o < D; o++) {
                double y = b_out[o];
                for (size_t d = 0; d < D; d++) y += (double)w_out[o * D + d] * g[d];
                worst = fmax(worst, fabs(y - rig.y[i * D + o]));
                scale = fmax(scale, fabs(y));
            }
        }
        CHECK(worst <= rounding_tolerance(4.0 * D + 8, scale), "variant %d: off by %g (scale %g)", k, worst, scale);
        rig_free(&rig);
    }
}
