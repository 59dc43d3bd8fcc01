/* relative_bias.c — the relative position biases of MEGA and SeqBoat (spec
 * mega-seqboat.md §3) as the attention kernel's offset tables. The "simple" one of MEGA
 * (SimpleRelativePositionalBias) and SeqBoat (FastRelativePositionalBias),
 * spec mega-seqboat.md §3.1: a learned b[2P - 1] gives query i and key j the
 * bias b[P - 1 + (j - i)]. The attention kernel takes a bias as a table of
 * 2n - 1 offsets for a length n (AttentionShape.bias); relative_bias_table
 * and _backward make it from b and send its gradient back. For n > P (SeqBoat
 * only; MEGA refuses it) an offset beyond the table takes its end value. */
#include "ops.h"

#include <math.h>

/* The entry of b (2P - 1) that offset k - (n - 1) of a length-n table reads. */
static size_t entry(size_t P, size_t n, size_t k) {
    const long at = (long)P - 1 + (long)k - ((long)n - 1);
    return at < 0 ? 0 : at > 2 * (long)P - 2 ? 2 * P - 2 : (size_t)at;
}

void relative_bias_table(float *table, const float *b, size_t P, size_t n) {
    for (size_t k = 0; k < 2 * n - 1; k++) table[k] = b[entry(P, n, k)];
}

void relative_bias_backward(float *db, const float *dtable, size_t P, size_t n) {
    for (size_t k = 0; k < 2 * n - 1; k++) db[entry(P, n, k)] += dtable[k];
}

/* ---- MEGA's rotary bias (RotaryRelativePositionalBias, spec §3.2) ----
 * bias[i][j] = <rot_i(alpha), rot_j(beta)> with rot_t turning the pair
 * (v[m], v[m + Z/2]) by the angle t f_m, f_m = 10000^(-m / (Z/2)). Written
 * out, the product depends on j - i alone:
 *   sum_m A_m cos((j - i) f_m) + B_m sin((j - i) f_m),
 *   A_m = a1 b1 + a2 b2,  B_m = a2 b1 - a1 b2  (a1 = alpha[m], a2 = alpha[m + Z/2], ...),
 * so the 2n - 1 offsets are computed directly, in double. */

static double rotary_frequency(size_t m, size_t half) { return exp(-(double)m * log(10000.0) / (double)half); }

void rotary_bias_table(float *table, const float *alpha, const float *beta, size_t Z, size_t n) {
    const size_t half = Z / 2;
    for (size_t k = 0; k < 2 * n - 1; k++) {
        const double delta = (double)k - (double)(n - 1);
        double sum = 0.0;
        for (size_t m = 0; m < half; m++) {
            const double a1 = alpha[m], a2 = alpha[m + half], b1 = beta[m], b2 = beta[m + half];
            const double angle = delta * rotary_frequency(m, half);
            sum += (a1 * b1 + a2 * b2) * cos(angle) + (a2 * b1 - a1 * b2) * sin(angle);
        }
        table[k] = (float)sum;
    }
}

void rotary_bias_backward(float *dalpha, float *dbeta, const float *dtable, const float *alpha, const float *beta,
                          size_t Z, size_t n) {
    const size_t half = Z / 2;
    for (size_t m = 0; m < half; m++) {
        double dA = 0.0, dB = 0.0; /* the gradient of A_m and B_m */
        for (size_t k = 0; k < 2 * n - 1; k++) {
            const double angle = ((double)k - (double)(n - 1)) * rotary_frequency(m, half);
            dA += dtable[k] * cos(angle);
            dB += dtable[k] * sin(angle);
        }
        const double a1 = alpha[m], a2 = alpha[m + half], b1 = beta[m], b2 = beta[m + half];
        dalpha[m] += (float)(dA * b1 - dB * b2);
        dalpha[m + half] += (float)(dA * b2 + dB * b1);
        dbeta[m] += (float)(dA * a1 + dB * a2);
        dbeta[m + half] += (float)(dA * a2 - dB * a1);
    }
}

/* ---- SeqBoat's RoPE (spec §3.3): pairs (v[2m], v[2m + 1]) as complex
 * numbers times exp(i pos θ_m), θ_m = 10000^(-2m/Z), pos the token's original
 * position. The rotation is orthogonal: its gradient is the inverse turn.
 * The turns come from a table made once (cos, sin per position and pair). */
void rope_table(float *cs, size_t first, size_t P, size_t Z) {
    for (size_t p = 0; p < P; p++)
        for (size_t m = 0; m < Z / 2; m++) {
            const double angle = (double)(first + p) * pow(10000.0, -2.0 * (double)m / (double)Z);
            cs[(p * (Z / 2) + m) * 2] = (float)cos(angle);
            cs[(p * (Z / 2) + m) * 2 + 1] = (float)sin(angle);
        }
}

void rope_rotate(float *x, size_t ld, const int32_t *pos, size_t N, size_t Z, const float *cs, bool inverse) {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++) {
        const float *turn = cs + (size_t)pos[r] * Z;
        for (size_t m = 0; m < Z / 2; m++) {
            const float c = turn[2 * m], s = inverse ? -turn[2 * m + 1] : turn[2 * m + 1];
            float *v = x + r * ld + 2 * m;
            const float re = v[0], im = v[1];
            v[0] = re * c - im * s;
            v[1] = re * s + im * c;
        }
    }
}
