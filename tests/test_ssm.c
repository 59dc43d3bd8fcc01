/* test_ssm.c — S5 against the oracles of spec ssm-hyena.md §4 (T-S5-1 …
 * T-S5-10): the chunked scan against the plain recurrence, the layer against
 * its convolution-kernel view, conjugate symmetry, the HiPPO-N values, the
 * discretisations, the clip gradient and determinism. Gradient checks and
 * step = forward of every variant are rows of test_modules.c. */
#include <complex.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/rng.h"
#include "../src/mixers/hippo.h"
#include "../src/mixers/s5.h"
#include "../src/ops/ops.h"
#include "rig.h"
#include "test.h"
#include "tolerance.h"

static void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t stream) {
    Rng r = rng_make(7, rng_stream(RNG_TEST, stream, 0));
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rng_uniform(&r);
}

/* The plain loop in double: x_t = a x_{t-1} + u_t along t (or against it). */
static void scan_reference(double complex *x, const float *u, size_t ld, const float *a, size_t B, size_t T,
                           size_t P, bool reverse) {
    for (size_t b = 0; b < B; b++)
        for (size_t p = 0; p < P; p++) {
            double complex s = 0;
            const double complex ap = a[p] + I * a[P + p];
            for (size_t i = 0; i < T; i++) {
                const size_t t = reverse ? T - 1 - i : i;
                const float *row = u + (b * T + t) * ld;
                s = ap * s + (row[p] + I * row[P + p]);
                x[(b * T + t) * P + p] = s;
            }
        }
}

/* T-S5-1, T-S5-7: every length around the chunk boundaries, both directions, 1 to 3 threads. */
TEST(ssm_scan_equals_the_recurrence) {
    static const size_t lengths[] = {1, 2, 3, 7, 128, 511, 512, 513, 1000, 1537};
    const size_t B = 2, P = 5, ld = 2 * P + 3; /* a wider row: the states need not fill it */
    float a[2 * 5];
    for (size_t p = 0; p < P; p++) { /* |a| = 0.9 .. 0.99999: slow states carry across many chunks */
        const double r = 1.0 - 0.1 * pow(10.0, -(double)p), th = 0.3 * (double)p - 0.5;
        a[p] = (float)(r * cos(th)), a[P + p] = (float)(r * sin(th));
    }
    for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++)
        for (int rev = 0; rev < 2; rev++) {
            const size_t T = lengths[li], n = B * T * ld;
            float *u = malloc(n * sizeof *u), *x = malloc(n * sizeof *x);
            float *work = malloc(ssm_scan_scratch(B, T, P) * sizeof(float));
            double complex *ref = malloc(B * T * P * sizeof *ref);
            fill_uniform(u, n, -1.0f, 1.0f, T);
            scan_reference(ref, u, ld, a, B, T, P, rev);
            float *first = malloc(n * sizeof *first);
            for (int threads = 1; threads <= 3; threads++) {
                memcpy(x, u, n * sizeof *x);
                omp_set_num_threads(threads);
                ssm_scan(x, ld, a, a + P, B, T, P, rev, work);
                double worst = 0, scale = 0;
                for (size_t i = 0; i < B * T; i++)
                    for (size_t p = 0; p < P; p++) {
                        const double complex r = ref[i * P + p];
                        worst = fmax(worst, cabs(x[i * ld + p] + I * x[i * ld + P + p] - r));
                        scale = fmax(scale, cabs(r));
                        CHECK(x[i * ld + 2 * P] == u[i * ld + 2 * P], "the scan wrote past its states");
                    }
                /* each state sums up to T terms, each a product of up to T factors */
                CHECK(worst <= rounding_tolerance(4.0 * (double)T, scale), "T %zu %s: off by %g (scale %g)", T,
                      rev ? "reverse" : "forward", worst, scale);
                if (threads == 1) memcpy(first, x, n * sizeof *x);
                else CHECK(!memcmp(first, x, n * sizeof *x), "T %zu: %d threads change the bits", T, threads);
            }
            omp_set_num_threads(omp_get_num_procs());
            free(u), free(x), free(work), free(ref), free(first);
        }
}

/* T-S5-7: the reverse scan of u is the forward scan of u reversed in time, reversed back. */
TEST(ssm_reverse_scan_is_the_forward_scan_of_the_reversed_sequence) {
    const size_t T = 700, P = 3, ld = 2 * P;
    float a[6] = {0.95f, 0.5f, -0.7f, 0.1f, -0.6f, 0.2f};
    float *u = malloc(T * ld * sizeof *u), *rev = malloc(T * ld * sizeof *rev);
    float *work = malloc(ssm_scan_scratch(1, T, P) * sizeof(float));
    fill_uniform(u, T * ld, -1.0f, 1.0f, 99);
    for (size_t t = 0; t < T; t++) memcpy(rev + (T - 1 - t) * ld, u + t * ld, ld * sizeof *u);
    ssm_scan(u, ld, a, a + P, 1, T, P, true, work);
    ssm_scan(rev, ld, a, a + P, 1, T, P, false, work);
    double worst = 0, scale = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t k = 0; k < ld; k++) {
            worst = fmax(worst, fabs(u[t * ld + k] - rev[(T - 1 - t) * ld + k]));
            scale = fmax(scale, fabs(u[t * ld + k]));
        }
    CHECK(worst <= rounding_tolerance(4.0 * T, scale), "off by %g", worst);
    free(u), free(rev), free(work);
}

/* T-S5-5: the HiPPO-N eigenvalues and eigenvectors. */
TEST(hippo_n_eigenvalues_and_vectors) {
    Error err = {0};
    double complex lam[8], V[64];
    REQUIRE(hippo_n(2, lam, V, &err) == 0, "%s", err.msg);
    CHECK(fabs(creal(lam[0]) + 0.5) < 1e-12 && fabs(cimag(lam[0]) + 0.8660254) < 1e-7 &&
              fabs(cimag(lam[1]) - 0.8660254) < 1e-7,
          "n = 2: %g%+gi, %g%+gi", creal(lam[0]), cimag(lam[0]), creal(lam[1]), cimag(lam[1]));
    REQUIRE(hippo_n(4, lam, V, &err) == 0, "%s", err.msg);
    static const double omega4[4] = {-4.6032930, -0.5565011, 0.5565011, 4.6032930};
    for (int m = 0; m < 4; m++)
        CHECK(fabs(cimag(lam[m]) - omega4[m]) < 1e-6, "n = 4: omega_%d = %.7f, expected %.7f", m, cimag(lam[m]),
              omega4[m]);
    const size_t n = 8;
    REQUIRE(hippo_n(n, lam, V, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < n; i++) {
        CHECK(fabs(creal(lam[i]) + 0.5) < 1e-12, "Re lambda_%zu = %g", i, creal(lam[i]));
        if (i) CHECK(cimag(lam[i]) >= cimag(lam[i - 1]), "not ascending at %zu", i);
        for (size_t j = 0; j < n; j++) {
            double complex vhv = 0, rebuilt = 0; /* (V^H V)_ij and (V diag(i omega) V^H)_ij */
            for (size_t k = 0; k < n; k++) {
                vhv += conj(V[k * n + i]) * V[k * n + j];
                rebuilt += V[i * n + k] * I * cimag(lam[k]) * conj(V[j * n + k]);
            }
            const double skew = i == j ? 0.0 : (i > j ? -1.0 : 1.0) * sqrt((i + 0.5) * (j + 0.5));
            CHECK(cabs(vhv - (i == j ? 1.0 : 0.0)) < 1e-12, "V is not unitary at (%zu, %zu)", i, j);
            CHECK(cabs(rebuilt - skew) < 1e-12, "V diag(i omega) V^H differs from the skew part at (%zu, %zu)", i, j);
        }
    }
}

/* T-S5-6: small steps, bilinear against ZOH, stability. */
TEST(s5_discretizations_agree_to_their_orders) {
    const double re = -0.5, im = 1.7;
    const double complex L = re + I * im;
    for (double delta = 1e-2; delta >= 1e-4; delta /= 10) {
        const S5Discrete z = s5_discretize(re, im, log(delta), 1.0, false, true);
        const S5Discrete b = s5_discretize(re, im, log(delta), 1.0, false, false);
        CHECK(cabs(z.abar - (1.0 + L * delta)) < 2.0 * cabs(L * L) * delta * delta, "ZOH abar not 1 + L delta");
        CHECK(cabs(z.f - delta) < 2.0 * cabs(L) * delta * delta, "ZOH f not delta");
        CHECK(cabs(z.abar - b.abar) < cabs(L * L * L) * delta * delta * delta, "bilinear and ZOH differ at O(d^3)");
        CHECK(fabs(z.delta - delta) < 1e-15, "delta");
    }
    for (double step = 1e-3; step < 100; step *= 7) {
        CHECK(cabs(s5_discretize(-1e-3, 5.0, log(step), 1.0, false, true).abar) < 1.0, "ZOH |abar| >= 1");
        CHECK(cabs(s5_discretize(-1e-3, 5.0, log(step), 1.0, false, false).abar) < 1.0, "bilinear |abar| >= 1");
    }
    const S5Discrete c = s5_discretize(-1e-6, 1.0, 0.0, 1.0, true, true);
    CHECK(creal(c.lambda) == S5_CLIP_RE, "clip_eigs: Re lambda %g", creal(c.lambda));
}

/* A rig for one S5 layer with its own initial values (HiPPO Λ, ...), d_model 12. */
static int s5_rig(Rig *rig, const char *entries, bool causal, size_t B, size_t T) {
    Config c;
    rig_config(&c);
    c.causal = causal;
    if (rig_set_entries(&c, entries) || rig_build(rig, "s5", "mixer", &c, B, T)) return -1;
    module_init(rig->m, 21);
    return 0;
}

/* T-S5-2: y_k = sum_{s<=k} K_s u_{k-s} + D u_k with K_s = c Re(C̃ diag(Λ̄^s) B̄). */
TEST(s5_equals_its_convolution_kernel) {
    static const char *const variants[] = {"mixer.ssm_size=8;mixer.blocks=2;mixer.activation=none",
                                           "mixer.ssm_size=6;mixer.conj_sym=false;mixer.activation=none;"
                                           "mixer.discretization=bilinear"};
    for (int v = 0; v < 2; v++) {
        Rig rig;
        REQUIRE(s5_rig(&rig, variants[v], true, 2, 40) == 0, "build");
        const bool conj_sym = v == 0, zoh = v == 0;
        const size_t H = rig.C, T = rig.T, P = conj_sym ? 4 : 6;
        const float *lre = rig_param(&rig, "Lambda_re"), *lim = rig_param(&rig, "Lambda_im"), *Bt = rig_param(&rig, "B");
        const float *Ct = rig_param(&rig, "C"), *D = rig_param(&rig, "D"), *ls = rig_param(&rig, "log_step");
        double complex *bbar = malloc(P * H * sizeof *bbar), abar[8];
        for (size_t p = 0; p < P; p++) {
            const S5Discrete d = s5_discretize(lre[p], lim[p], ls[p], 1.0, false, zoh);
            abar[p] = d.abar;
            for (size_t h = 0; h < H; h++) bbar[p * H + h] = d.f * (Bt[(p * H + h) * 2] + I * Bt[(p * H + h) * 2 + 1]);
        }
        rig.ctx.training = false;
        module_forward(rig.f, rig.x, rig.y, &rig.ctx);
        double worst = 0, scale = 0;
        for (size_t b = 0; b < rig.B; b++)
            for (size_t k = 0; k < T; k++)
                for (size_t h = 0; h < H; h++) {
                    double y = (double)D[h] * rig.x[(b * T + k) * H + h];
                    for (size_t s = 0; s <= k; s++) /* lag s */
                        for (size_t p = 0; p < P; p++) {
                            double complex cb = 0;
                            for (size_t j = 0; j < H; j++) cb += bbar[p * H + j] * rig.x[(b * T + k - s) * H + j];
                            const double complex c = Ct[(h * P + p) * 2] + I * Ct[(h * P + p) * 2 + 1];
                            y += (conj_sym ? 2.0 : 1.0) * creal(c * cpow(abar[p], (double)s) * cb);
                        }
                    worst = fmax(worst, fabs(y - rig.y[(b * T + k) * H + h]));
                    scale = fmax(scale, fabs(y));
                }
        CHECK(worst <= rounding_tolerance(4.0 * (double)(T + H + P), scale), "variant %d: off by %g (scale %g)", v,
              worst, scale);
        free(bbar);
        rig_free(&rig);
    }
}

/* T-S5-4: P stored states with c = 2 equal 2P states holding both conjugates with c = 1. */
TEST(s5_conjugate_symmetry_equals_the_full_system) {
    Rig half, full;
    REQUIRE(s5_rig(&half, "mixer.ssm_size=8;mixer.blocks=2;mixer.activation=half_glu2", true, 2, 30) == 0, "build");
    REQUIRE(s5_rig(&full, "mixer.ssm_size=8;mixer.blocks=1;mixer.conj_sym=false;mixer.activation=half_glu2", true, 2,
                   30) == 0,
            "build");
    const size_t H = half.C, P = 4;
    memcpy(rig_param(&full, "D"), rig_param(&half, "D"), H * sizeof(float));
    memcpy(rig_param(&full, "out2.weight"), rig_param(&half, "out2.weight"), H * H * sizeof(float));
    memcpy(rig_param(&full, "out2.bias"), rig_param(&half, "out2.bias"), H * sizeof(float));
    for (size_t p = 0; p < P; p++)
        for (int k = 0; k < 2; k++) { /* state p and its conjugate p + P */
            const float sign = k ? -1.0f : 1.0f;
            const size_t q = p + k * P;
            rig_param(&full, "Lambda_re")[q] = rig_param(&half, "Lambda_re")[p];
            rig_param(&full, "Lambda_im")[q] = sign * rig_param(&half, "Lambda_im")[p];
            rig_param(&full, "log_step")[q] = rig_param(&half, "log_step")[p];
            for (size_t h = 0; h < H; h++) {
                rig_param(&full, "B")[(q * H + h) * 2] = rig_param(&half, "B")[(p * H + h) * 2];
                rig_param(&full, "B")[(q * H + h) * 2 + 1] = sign * rig_param(&half, "B")[(p * H + h) * 2 + 1];
                rig_param(&full, "C")[(h * 2 * P + q) * 2] = rig_param(&half, "C")[(h * P + p) * 2];
                rig_param(&full, "C")[(h * 2 * P + q) * 2 + 1] = sign * rig_param(&half, "C")[(h * P + p) * 2 + 1];
            }
        }
    memcpy(full.x, half.x, half.B * half.T * H * sizeof(float));
    half.ctx.training = full.ctx.training = false;
    module_forward(half.f, half.x, half.y, &half.ctx);
    module_forward(full.f, full.x, full.y, &full.ctx);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < half.B * half.T * H; i++) {
        worst = fmax(worst, fabs(half.y[i] - full.y[i]));
        scale = fmax(scale, fabs(half.y[i]));
    }
    CHECK(worst <= rounding_tolerance(4.0 * (half.T + 2 * H + 2 * P), scale), "off by %g (scale %g)", worst, scale);
    rig_free(&half);
    rig_free(&full);
}

/* T-S5-5 (the layer's side), T-S5-6 (steady state): with conj_sym the kept
 * eigenvalues have Im < 0; under a constant input the ZOH layer settles at
 * y = c Re(C̃ (-Λ^-1 B̃ u)) + D u. */
TEST(s5_init_and_steady_state) {
    Rig rig;
    REQUIRE(s5_rig(&rig, "mixer.ssm_size=8;mixer.blocks=2;mixer.activation=none;mixer.dt_min=0.05;mixer.dt_max=0.1",
                   true, 1, 600) == 0,
            "build");
    const size_t H = rig.C, T = rig.T, P = 4;
    const float *lre = rig_param(&rig, "Lambda_re"), *lim = rig_param(&rig, "Lambda_im"), *Bt = rig_param(&rig, "B");
    const float *Ct = rig_param(&rig, "C"), *D = rig_param(&rig, "D"), *ls = rig_param(&rig, "log_step");
    for (size_t p = 0; p < P; p++) {
        CHECK(lre[p] == -0.5f && lim[p] < 0.0f, "Lambda_%zu = %g%+gi", p, lre[p], lim[p]);
        CHECK(ls[p] >= (float)log(0.05) && ls[p] < (float)log(0.1), "log_step_%zu = %g", p, ls[p]);
    }
    for (size_t t = 0; t < T; t++)
        for (size_t h = 0; h < H; h++) rig.x[t * H + h] = rig.x[h]; /* constant input */
    rig.ctx.training = false;
    module_forward(rig.f, rig.x, rig.y, &rig.ctx);
    double worst = 0;
    for (size_t h = 0; h < H; h++) {
        double y = (double)D[h] * rig.x[h];
        for (size_t p = 0; p < P; p++) {
            double complex bu = 0;
            for (size_t j = 0; j < H; j++) bu += (Bt[(p * H + j) * 2] + I * Bt[(p * H + j) * 2 + 1]) * rig.x[j];
            const double complex x = -bu / (lre[p] + I * lim[p]);
            y += 2.0 * creal((Ct[(h * P + p) * 2] + I * Ct[(h * P + p) * 2 + 1]) * x);
        }
        worst = fmax(worst, fabs(y - rig.y[(T - 1) * H + h]) / fmax(1.0, fabs(y)));
    }
    CHECK(worst < 1e-4, "the last output is %g away from the steady state", worst);
    rig_free(&rig);
}

/* T-S5-9: with clip_eigs a Re Λ above -1e-4 gets no gradient, exactly. */
TEST(s5_clipped_eigenvalue_has_zero_gradient) {
    Rig rig;
    REQUIRE(s5_rig(&rig, "mixer.ssm_size=4;mixer.clip_eigs=true", true, 2, 9) == 0, "build");
    float *lre = rig_param(&rig, "Lambda_re");
    lre[0] = -1e-5f;
    rig_backward(&rig);
    const float *g = rig.ps.grads + params_find(&rig.ps, "Lambda_re")->offset;
    CHECK(g[0] == 0.0f, "gradient %g at a clipped eigenvalue", g[0]);
    CHECK(g[1] != 0.0f, "no gradient at an unclipped eigenvalue");
    rig_free(&rig);
}

/* T-S5-10: the same bits run after run, forward and backward (the scan alone
 * keeps them on any thread count, ssm_scan_equals_the_recurrence; the GEMM
 * libraries do not promise that). */
TEST(s5_is_deterministic_across_runs_and_threads) {
    Rig rig;
    REQUIRE(s5_rig(&rig, "mixer.ssm_size=8;mixer.activation=full_glu;mixer.conj_sym=false;mixer.bidirectional=true",
                   false, 3, 1100) == 0,
            "build");
    const size_t n = rig.B * rig.T * rig.C;
    float *first = malloc((n + rig.ps.total) * sizeof(float));
    for (int run = 0; run < 3; run++) {
        rig_backward(&rig);
        if (run == 0) {
            memcpy(first, rig.dx, n * sizeof(float));
            memcpy(first + n, rig.ps.grads, rig.ps.total * sizeof(float));
        } else {
            CHECK(!memcmp(first, rig.dx, n * sizeof(float)), "run %d: input gradients differ", run);
            CHECK(!memcmp(first + n, rig.ps.grads, rig.ps.total * sizeof(float)), "run %d: parameter gradients differ",
                  run);
        }
    }
    free(first);
    rig_free(&rig);
}
