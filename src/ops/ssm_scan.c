/* ssm_scan.c — complex diagonal linear recurrences x_t = a ⊙ x_{t-1} + u_t,
 * the state-space part of S5 (spec ssm-hyena.md §1.7, §1.11).
 *
 * Why chunks. The recurrence is sequential in t but independent per state p
 * and per sequence b. Running one (b, p) per thread leaves threads idle at
 * batch 1 and strides through memory; a Blelloch tree scan does twice the
 * work in log T passes over the whole tensor. Cutting each sequence into
 * chunks does neither: (1) every chunk's end state from zero (one read of
 * the chunk), (2) the carry into each chunk from the end states (T/CHUNK
 * steps per state), (3) every chunk again from its carry, writing x (one
 * more read, one write). Work is 2x the plain loop, but the loop over p
 * is contiguous (re and im in separate halves of a row) and vectorises, and
 * B * T/CHUNK independent chunks keep every thread busy at any batch. The
 * chunk length is fixed, not derived from the thread count, so results are
 * the same bits on any number of threads. */
#include <stdint.h>
#include <string.h>

#include "ops.h"

enum { CHUNK = 512 }; /* steps per chunk: 512 rows of 2P floats stay in L2 for the second pass */

static size_t n_chunks(size_t T) { return (T + CHUNK - 1) / CHUNK; }

/* The scan's end states and a^CHUNK; the gradient's partial sums (doubles) need twice that. */
size_t ssm_scan_scratch(size_t B, size_t T, size_t P) { return 2 * (B * n_chunks(T) + 1) * 2 * P; }

/* r (2P: re, im) = a^n, in double: the factor that carries a state across n steps. */
static void power(float *r, const float *a_re, const float *a_im, size_t P, size_t n) {
    for (size_t p = 0; p < P; p++) {
        double re = 1.0, im = 0.0;
        for (size_t k = 0; k < n; k++) {
            const double t = re * a_re[p] - im * a_im[p];
            im = re * a_im[p] + im * a_re[p];
            re = t;
        }
        r[p] = (float)re, r[P + p] = (float)im;
    }
}

/* Rows [t0, t1) of one sequence from state s (2P: re, im), visited forward
 * or backward; writes every state to x_out when set (x_out may be u), and
 * leaves the last one in s. */
static void run_chunk(float *s, float *x_out, const float *u, size_t ld, const float *a_re, const float *a_im,
                      size_t P, size_t t0, size_t t1, bool reverse) {
    float *sr = s, *si = s + P;
    for (size_t i = 0; i < t1 - t0; i++) {
        const size_t t = reverse ? t1 - 1 - i : t0 + i;
        const float *ur = u + t * ld, *ui = ur + P;
#pragma omp simd
        for (size_t p = 0; p < P; p++) {
            const float re = a_re[p] * sr[p] - a_im[p] * si[p] + ur[p];
            const float im = a_re[p] * si[p] + a_im[p] * sr[p] + ui[p];
            sr[p] = re;
            si[p] = im;
        }
        if (x_out) {
            memcpy(x_out + t * ld, sr, P * sizeof(float));
            memcpy(x_out + t * ld + P, si, P * sizeof(float));
        }
    }
}

/* Chunk k in scan order: its rows [t0, t1). */
static void chunk_rows(size_t k, size_t nc, size_t T, bool reverse, size_t *t0, size_t *t1) {
    const size_t c = reverse ? nc - 1 - k : k;
    *t0 = c * CHUNK;
    *t1 = *t0 + CHUNK < T ? *t0 + CHUNK : T;
}

void ssm_scan(float *x, size_t ld, const float *a_re, const float *a_im, size_t B, size_t T, size_t P, bool reverse,
              float *scratch) {
    const size_t nc = n_chunks(T), S = 2 * P;
    if (T == 0) return;
    float *ends = scratch, *pow_full = ends + B * nc * S;
    power(pow_full, a_re, a_im, P, CHUNK);
    /* (1) the end state of every chunk but the last in scan order, from zero */
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < nc - 1; k++) {
            size_t r0, r1;
            chunk_rows(k, nc, T, reverse, &r0, &r1);
            float *s = ends + (b * nc + k) * S;
            memset(s, 0, S * sizeof(float));
            run_chunk(s, NULL, x + b * T * ld, ld, a_re, a_im, P, r0, r1, reverse);
        }
    /* (2) carries, in place of the end states: slot k becomes the state after
     * chunk k, a^CHUNK ⊙ (slot k-1) + end_k (chunks after the first in scan
     * order are full: only the sequence's tail chunk can be short, and it is
     * the last of a forward scan, the first of a reverse one) */
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t k = 1; k < nc - 1; k++) {
            const float *prev = ends + (b * nc + k - 1) * S;
            float *e = ends + (b * nc + k) * S;
            for (size_t p = 0; p < P; p++) {
                const float re = pow_full[p] * prev[p] - pow_full[P + p] * prev[P + p] + e[p];
                const float im = pow_full[p] * prev[P + p] + pow_full[P + p] * prev[p] + e[P + p];
                e[p] = re, e[P + p] = im;
            }
        }
    /* (3) every chunk again from the state before it, writing the states */
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < nc; k++) {
            size_t r0, r1;
            chunk_rows(k, nc, T, reverse, &r0, &r1);
            float s[2 * SSM_MAX_STATES];
            if (k == 0) memset(s, 0, S * sizeof(float));
            else memcpy(s, ends + (b * nc + k - 1) * S, S * sizeof(float));
            run_chunk(s, x + b * T * ld, x + b * T * ld, ld, a_re, a_im, P, r0, r1, reverse);
        }
}

/* Partial sums per (sequence, chunk) in double, then added in a fixed order:
 * the same bits on any number of threads. */
void ssm_scan_grad_a(float *da, const float *x, const float *r, size_t ld, size_t B, size_t T, size_t P,
                     bool reverse, float *scratch) {
    const size_t nc = n_chunks(T), S = 2 * P;
    /* doubles at the next 8-byte boundary (scratch is float-aligned; ssm_scan_scratch leaves room) */
    double *part = (double *)(((uintptr_t)scratch + sizeof(double) - 1) & ~(uintptr_t)(sizeof(double) - 1));
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t c = 0; c < nc; c++) {
            double *acc = part + (b * nc + c) * S;
            memset(acc, 0, S * sizeof(double));
            const size_t t0 = c * CHUNK, t1 = t0 + CHUNK < T ? t0 + CHUNK : T;
            for (size_t t = t0; t < t1; t++) {
                if (reverse ? t + 1 >= T : t == 0) continue; /* the state before the first is 0 */
                const float *xp = x + (b * T + (reverse ? t + 1 : t - 1)) * ld, *rt = r + (b * T + t) * ld;
#pragma omp simd
                for (size_t p = 0; p < P; p++) {
                    acc[p] += (double)xp[p] * rt[p] + (double)xp[P + p] * rt[P + p];
                    acc[P + p] += (double)xp[p] * rt[P + p] - (double)xp[P + p] * rt[p];
                }
            }
        }
    for (size_t j = 0; j < S; j++) {
        double sum = 0.0;
        for (size_t i = 0; i < B * nc; i++) sum += part[i * S + j];
        da[j] += (float)sum;
    }
}
