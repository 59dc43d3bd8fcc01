/* test_mega.c — the oracles of spec mega-seqboat.md §2.8, §3.5, §4.11 and
 * §6.11 for the ema, mega and seqboat mixers and their ops (gradient checks
 * and step = forward are in test_modules.c, whole models in test_golden.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rig.h"
#include "test.h"

static int build(Rig *rig, const char *name, bool causal, const char *entries, size_t B, size_t T) {
    Config c;
    rig_config(&c);
    c.causal = causal;
    c.dropout = 0.0;
    if (rig_set_entries(&c, entries)) return -1;
    if (rig_build(rig, name, "mixer", &c, B, T)) return -1;
    rig->ctx.training = false;
    return 0;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* §2.8.3: with N = 1 the kernel is scale γ p β q^j exactly (scale 1). */
TEST(ema_kernel_closed_form_for_one_expansion) {
    const float delta = 0.3f, alpha = -0.7f, beta = 1.2f, gamma = -0.4f;
    float k[12];
    ema_kernel(k, &delta, &alpha, &beta, &gamma, 1, 1, 1, 10, 12);
    const double p = 1 / (1 + exp(-0.3)), a = 1 / (1 + exp(0.7)), q = 1 - p * a;
    for (int j = 0; j < 12; j++) {
        const double want = j < 10 ? gamma * p * beta * pow(q, j) : 0.0;
        CHECK(fabs(k[j] - want) <= 1e-6 * fabs(want) + 1e-9, "k[%d] = %.9g, want %.9g", j, k[j], want);
    }
}

/* §2.8.4-6: causality; a bidirectional EMA whose backward kernels are 0
 * equals the causal one; padded positions feed nothing to the others. */
TEST(ema_causality_bidirectional_and_padding) {
    Rig causal, bidir;
    REQUIRE(build(&causal, "ema", true, "mixer.n_dim=3", 2, 100) == 0, "build");
    REQUIRE(build(&bidir, "ema", false, "mixer.n_dim=3", 2, 100) == 0, "build");
    const size_t C = causal.C, n = 2 * 100 * C;
    /* the forward-time half of the bidirectional parameters := the causal ones; gamma of the rest := 0 */
    const char *names[] = {"delta", "alpha", "beta", "gamma"};
    for (int i = 0; i < 4; i++) memcpy(rig_param(&bidir, names[i]), rig_param(&causal, names[i]), C * 3 * sizeof(float));
    memset(rig_param(&bidir, "gamma") + C * 3, 0, C * 3 * sizeof(float));
    memcpy(rig_param(&bidir, "omega"), rig_param(&causal, "omega"), C * sizeof(float));
    memcpy(bidir.x, causal.x, n * sizeof(float));
    module_forward(causal.f, causal.x, causal.y, &causal.ctx);
    module_forward(bidir.f, bidir.x, bidir.y, &bidir.ctx);
    CHECK(max_diff(causal.y, bidir.y, n) < 1e-5, "bidirectional with k2 = 0 differs by %.3g", max_diff(causal.y, bidir.y, n));
    float *before = malloc(n * sizeof(float));
    memcpy(before, causal.y, n * sizeof(float));
    for (size_t i = 60 * C; i < 100 * C; i++) causal.x[i] += 1.0f; /* row 0, t >= 60 */
    module_forward(causal.f, causal.x, causal.y, &causal.ctx);
    /* the FFT mixes rounding across positions: unchanged up to it */
    CHECK(max_diff(causal.y, before, 60 * C) < 1e-5, "outputs before t = 60 moved by %.3g", max_diff(causal.y, before, 60 * C));
    CHECK(max_diff(causal.y + 60 * C, before + 60 * C, 40 * C) > 1e-3, "outputs after t = 60 did not move");
    /* padding: row 0's positions 40.. are padded; changing them leaves 0..39 and only omega x at them */
    float mask[200];
    for (int t = 0; t < 200; t++) mask[t] = t < 40 || t >= 100 ? 1.0f : 0.0f;
    bidir.ctx.mask = mask;
    module_forward(bidir.f, bidir.x, bidir.y, &bidir.ctx);
    memcpy(before, bidir.y, n * sizeof(float));
    for (size_t i = 40 * C; i < 100 * C; i++) bidir.x[i] -= 2.0f;
    module_forward(bidir.f, bidir.x, bidir.y, &bidir.ctx);
    CHECK(max_diff(bidir.y, before, 40 * C) < 1e-5, "padded positions reached real ones (%.3g)", max_diff(bidir.y, before, 40 * C));
    free(before);
    rig_free(&causal);
    rig_free(&bidir);
}

/* §2.8.8: beta's init is ±1 (alternating along N) plus N(0, 0.02); SeqBoat's truncation keeps
 * every draw within 2 std and shrinks the std to 0.88 of it. */
TEST(ema_init_statistics) {
    for (int trunc = 0; trunc < 2; trunc++) {
        Config c;
        rig_config(&c);
        c.d_model = 256;
        REQUIRE(rig_set_entries(&c, trunc ? "mixer.n_dim=4;mixer.init=trunc_normal" : "mixer.n_dim=4") == 0, "keys");
        ModuleSpec spec = {.cfg = &c, .kind = "mixer", .name = "ema", .flat = true, .C_in = 256, .C_out = 256};
        snprintf(spec.section[0], sizeof spec.section[0], "mixer");
        Error err = {0};
        Module *m = module_build(&spec, &err);
        REQUIRE(m, "%s", err.msg);
        ParamSet ps;
        params_init(&ps);
        module_params(m, &ps);
        REQUIRE(params_allocate(&ps, &err) == 0, "alloc");
        module_init(m, 7);
        const float *beta = ps.values + params_find(&ps, "beta")->offset;
        for (int nn = 0; nn < 4; nn++) {
            double s = 0, s2 = 0, worst = 0;
            const double sign = nn % 2 ? -1.0 : 1.0;
            for (int d = 0; d < 256; d++) {
                const double e = beta[d * 4 + nn] - sign;
                s += e, s2 += e * e, worst = fmax(worst, fabs(e));
            }
            const double mean = s / 256, sd = sqrt(s2 / 256 - mean * mean), want = trunc ? 0.0176 : 0.02;
            CHECK(fabs(mean) < 0.004 && fabs(sd - want) < 0.003, "%s beta[:, %d]: mean offset %.4f std %.4f (want %.4f)",
                  trunc ? "trunc" : "normal", nn, mean, sd, want);
            if (trunc) CHECK(worst <= 0.04 + 1e-7, "a truncated draw at %.4f from its mean", worst);
        }
        params_free(&ps);
        module_free(m);
    }
}

/* The attention op against the plain formula: scores, masks, function, bias. */
static void naive_attention(float *o, const float *q, const float *k, const float *v, const GauShape *s) {
    for (size_t b = 0; b < s->B; b++)
        for (size_t i = 0; i < s->T; i++) {
            double w[64], most = -INFINITY, sum = 0;
            size_t n_keys = 0;
            const size_t c0 = s->chunk ? i / s->chunk * s->chunk : 0, c1 = s->chunk ? fmin(c0 + s->chunk, s->T) : s->T;
            for (size_t j = c0; j < c1; j++) n_keys += !s->key_mask || s->key_mask[b * s->T + j] != 0.0f;
            for (size_t j = 0; j < s->T; j++) {
                bool ok = j >= c0 && j < c1 && (!s->causal || j <= i) && (!s->key_mask || s->key_mask[b * s->T + j] != 0.0f);
                if (s->window) ok = ok && j + s->window >= i && (s->causal || j <= i + s->window);
                double dot = 0;
                for (size_t z = 0; z < s->Z; z++) dot += (double)q[(b * s->T + i) * s->Z + z] * k[(b * s->T + j) * s->Z + z];
                const double len = s->len == GAU_LEN_FIXED ? (double)s->fixed_len : s->len == GAU_LEN_ROW ? (double)(i - c0 + 1) : (double)(n_keys ? n_keys : 1);
                long off = (long)j - (long)i, R = (long)s->bias_radius;
                off = off < 1 - R ? 1 - R : off > R - 1 ? R - 1 : off;
                const double bias = s->bias ? s->bias[off + R - 1] : 0.0;
                w[j] = !ok ? NAN : s->fn == GAU_SOFTMAX ? dot * s->scale + bias : dot / len + bias;
                if (ok) most = fmax(most, w[j]);
            }
            for (size_t j = 0; j < s->T; j++) {
                if (isnan(w[j])) w[j] = 0;
                else if (s->fn == GAU_SOFTMAX) w[j] = exp(w[j] - most), sum += w[j];
                else w[j] = s->fn == GAU_RELU2 ? pow(fmax(w[j], 0), 2) : 0.5 * (1 + erf((w[j] - sqrt(0.5)) / (sqrt(1 / (4 * M_PI)) * sqrt(2))));
            }
            for (size_t h = 0; h < s->H; h++) {
                double acc = 0;
                for (size_t j = 0; j < s->T; j++) acc += (s->fn == GAU_SOFTMAX ? w[j] / sum : w[j]) * v[(b * s->T + j) * s->H + h];
                o[(b * s->T + i) * s->H + h] = (float)acc;
            }
        }
}

/* §4.11.1, §4.11.3: chunks equal attention with a block-diagonal mask, for every function,
 * causal or not, with padding, windows and a clamped bias. */
TEST(gau_attention_matches_the_formula) {
    enum { B = 2, T = 13, Z = 4, H = 3 };
    float q[B * T * Z], k[B * T * Z], v[B * T * H], o[B * T * H], want[B * T * H], lse[B * T], bias[7], mask[B * T];
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) q[i] = sinf(0.7f * i), k[i] = cosf(1.3f * i);
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) v[i] = sinf(0.37f * i + 1);
    for (int i = 0; i < 7; i++) bias[i] = 0.1f * i - 0.2f;
    for (int i = 0; i < B * T; i++) mask[i] = i % 5 == 3 ? 0.0f : 1.0f;
    const struct { size_t chunk, window; bool causal, masked; GauFn fn; GauLen len; } cases[] = {
        {4, 0, true, false, GAU_SOFTMAX, GAU_LEN_ROW},  {4, 0, false, true, GAU_SOFTMAX, GAU_LEN_KEYS},
        {5, 0, true, false, GAU_RELU2, GAU_LEN_ROW},    {0, 0, false, true, GAU_LAPLACE, GAU_LEN_KEYS},
        {0, 3, true, true, GAU_SOFTMAX, GAU_LEN_FIXED}, {0, 2, false, false, GAU_RELU2, GAU_LEN_FIXED},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        GauShape s = {.B = B, .T = T, .Z = Z, .H = H, .ldq = Z, .ldk = Z, .ldv = H, .ldo = H, .chunk = cases[c].chunk,
                      .window = cases[c].window, .causal = cases[c].causal, .fn = cases[c].fn, .scale = 0.5f,
                      .len = cases[c].len, .fixed_len = 4, .key_mask = cases[c].masked ? mask : NULL, .bias = bias,
                      .bias_radius = 4};
        float *scratch = calloc(gau_attention_scratch(&s) + 1, sizeof(float));
        gau_attention_forward(o, lse, q, k, v, &s, scratch);
        naive_attention(want, q, k, v, &s);
        /* a softmax row without a visible key (a padded query of a masked causal row) is 0 by definition here */
        CHECK(max_diff(o, want, B * T * H) < 1e-5, "case %zu: off by %.3g", c, max_diff(o, want, B * T * H));
        free(scratch);
    }
}

/* §3.5: RoPE keeps <rot_i q, rot_j k> a function of j - i. */
TEST(rope_depends_on_the_offset_only) {
    float q[8], k[8], q2[8], k2[8], turns[30 * 8];
    rope_table(turns, 0, 30, 8);
    for (int i = 0; i < 8; i++) q[i] = sinf(i + 1.0f), k[i] = cosf(2.0f * i);
    double first = 0;
    for (int shift = 0; shift < 3; shift++) {
        const int32_t pi = 5 + 7 * shift, pj = 2 + 7 * shift;
        memcpy(q2, q, sizeof q), memcpy(k2, k, sizeof k);
        rope_rotate(q2, 8, &pi, 1, 8, turns, false);
        rope_rotate(k2, 8, &pj, 1, 8, turns, false);
        double dot = 0;
        for (int i = 0; i < 8; i++) dot += q2[i] * k2[i];
        if (!shift) first = dot;
        CHECK(fabs(dot - first) < 1e-5, "shift %d: %.7f vs %.7f", shift, dot, first);
        rope_rotate(q2, 8, &pi, 1, 8, turns, true); /* the inverse turn gives q back */
        CHECK(max_diff(q2, q, 8) < 1e-6, "inverse rotation");
    }
}

/* §4.11.5: the update gate shut gives Y = X; open, Y = Hh, which (pre-norm)
 * sees X only through LayerNorm(X): a shift of every channel of a row by
 * one constant changes nothing. */
TEST(mega_update_gate_limits) {
    Rig r;
    REQUIRE(build(&r, "mega", true, "mixer.z_dim=4;mixer.h_dim=6;mixer.n_dim=2;mixer.chunk_size=3", 2, 7) == 0, "build");
    const size_t C = r.C, n = 2 * 7 * C;
    float *bm = rig_param(&r, "mx_proj.bias"), *wm = rig_param(&r, "mx_proj.weight");
    for (size_t d = 0; d < C; d++) bm[d] = -1e4f, memset(wm + d * C, 0, C * sizeof(float));
    module_forward(r.f, r.x, r.y, &r.ctx);
    CHECK(max_diff(r.y, r.x, n) == 0.0, "U = 0: Y != X (off by %.3g)", max_diff(r.y, r.x, n));
    for (size_t d = 0; d < C; d++) bm[d] = 1e4f;
    module_forward(r.f, r.x, r.y, &r.ctx);
    float *open = malloc(n * sizeof(float));
    memcpy(open, r.y, n * sizeof(float));
    for (size_t i = 0; i < n; i++) r.x[i] += 3.0f;
    module_forward(r.f, r.x, r.y, &r.ctx);
    CHECK(max_diff(r.y, open, n) < 1e-5, "U = 1: Y moved by %.3g with a constant shift of X", max_diff(r.y, open, n));
    CHECK(max_diff(open, r.x, n) > 1.0, "U = 1 left Y = X");
    rig_free(&r);
    free(open);
}

/* §6.11.5, .7: all inactive gives Y = silu(Hx + X); scaling the temperature changes g, never a. */
TEST(seqboat_inactive_and_temperature) {
    Rig r;
    REQUIRE(build(&r, "seqboat", true, "mixer.z_dim=4;mixer.h_dim=5;mixer.n_dim=2;mixer.chunk_size=2", 2, 9) == 0, "build");
    const size_t C = r.C, N = 2 * 9;
    float *bx = rig_param(&r, "hx_proj.bias"), *wx = rig_param(&r, "hx_proj.weight");
    const float saved0 = bx[0];
    bx[0] = 1e4f; /* u0 >> u1: nobody active */
    module_forward(r.f, r.x, r.y, &r.ctx);
    /* silu(Hx + X) with Hx = M Wx + bx: recompute from the EMA output the frame
     * kept (SeqBoatFrame's fourth member) */
    const float *m = ((float **)r.f->data)[3];
    double worst = 0;
    for (size_t t = 0; t < N; t++)
        for (size_t d = 0; d < C; d++) {
            double hx = bx[2 + d];
            for (size_t e = 0; e < C; e++) hx += (double)m[t * C + e] * wx[(2 + d) * C + e];
            const double pre = hx + r.x[t * C + d], want = pre / (1 + exp(-pre));
            worst = fmax(worst, fabs(want - r.y[t * C + d]));
        }
    CHECK(worst < 1e-5, "all inactive: Y differs from silu(Hx + X) by %.3g", worst);
    /* half the tokens active: bx[1] - bx[0] at the median of -(w1 - w0).m */
    float du[2 * 9];
    for (size_t t = 0; t < N; t++) {
        du[t] = 0.0f;
        for (size_t e = 0; e < C; e++) du[t] -= m[t * C + e] * (wx[C + e] - wx[e]);
    }
    for (size_t i = 0; i < N; i++) /* a small sort for the median */
        for (size_t j = i + 1; j < N; j++)
            if (du[j] < du[i]) { const float tmp = du[i]; du[i] = du[j]; du[j] = tmp; }
    bx[0] = saved0;
    bx[1] = saved0 + 0.5f * (du[N / 2 - 1] + du[N / 2]);
    Stats stats = {0};
    r.ctx.stats = &stats;
    r.ctx.path = "blocks.0";
    module_forward(r.f, r.x, r.y, &r.ctx);
    const double rate = stats.n ? stats.sum[0] / (double)stats.count[0] : -1;
    CHECK(fabs(rate - 0.5) < 1e-9, "half the tokens active: activation rate %.3f", rate);
    float *temp = rig_param(&r, "q_router.temp");
    temp[0] += 1.0f;
    memset(&stats, 0, sizeof stats);
    module_forward(r.f, r.x, r.y, &r.ctx);
    CHECK(stats.n && stats.sum[0] / (double)stats.count[0] == rate, "temperature changed the activation rate");
    rig_free(&r);
}

/* §6.11.2, .3: a sequence's output is the same alone or batched with a denser one; and causal
 * through the router: perturbing the future leaves the past. */
TEST(seqboat_batch_invariance_and_causality) {
    const char *keys[] = {"mixer.z_dim=4;mixer.h_dim=5;mixer.chunk_size=2;mixer.rel_pos=rotary",
                          "mixer.z_dim=4;mixer.h_dim=5;mixer.attention=relu2"};
    for (int c = 0; c < 2; c++) {
        Rig two, one;
        REQUIRE(build(&two, "seqboat", true, keys[c], 2, 11) == 0 && build(&one, "seqboat", true, keys[c], 1, 11) == 0,
                "build");
        const size_t C = two.C, n = 11 * C;
        float *bx = rig_param(&two, "hx_proj.bias");
        bx[1] += 0.5f; /* more active tokens overall */
        memcpy(one.ps.values, two.ps.values, two.ps.total * sizeof(float));
        for (size_t i = n; i < 2 * n; i++) two.x[i] = 3.0f * sinf((float)i); /* row 1: other tokens */
        memcpy(one.x, two.x, n * sizeof(float));
        module_forward(two.f, two.x, two.y, &two.ctx);
        module_forward(one.f, one.x, one.y, &one.ctx);
        CHECK(max_diff(two.y, one.y, n) < 1e-6, "case %d: batched differs from alone by %.3g", c, max_diff(two.y, one.y, n));
        float *before = malloc(n * sizeof(float));
        memcpy(before, one.y, n * sizeof(float));
        for (size_t i = 6 * C; i < n; i++) one.x[i] += 2.0f;
        module_forward(one.f, one.x, one.y, &one.ctx);
        CHECK(max_diff(one.y, before, 6 * C) == 0.0, "case %d: the future moved the past", c);
        free(before);
        rig_free(&two);
        rig_free(&one);
    }
}
