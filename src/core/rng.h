/* rng.h — counter-based random numbers (Philox4x32-10).
 *
 * Algorithm: Philox4x32 with 10 rounds (Salmon et al., "Parallel random numbers:
 * as easy as 1, 2, 3", SC 2011), the generator PyTorch uses on CUDA. A 64-bit key
 * (the run's seed) and a 128-bit counter (a 64-bit stream id, a 64-bit index)
 * map to four independent 32-bit words. Every random number in seqlab is a pure
 * function of (seed, stream, index):
 *   - dropout masks are keyed by (seed, step, layer, site) and the element index,
 *     so forward and backward regenerate the same mask without storing it and
 *     the result does not depend on threads or tiling;
 *   - parameter init is keyed by the parameter's position in the model;
 *   - resuming needs only the seed and the step — the "RNG state" of a run.
 *
 *     Rng r = rng_make(seed, rng_stream(RNG_INIT, param_index, 0));
 *     float x = rng_normal(&r);          // sequential use: counter advances
 *     uint32_t w = rng_bits(seed, stream, i);  // random access, no state
 */
#ifndef SEQLAB_RNG_H
#define SEQLAB_RNG_H

#include <stdint.h>

/* Purposes, mixed into stream ids so that streams of different uses never meet. */
enum { RNG_INIT = 1, RNG_DROPOUT = 2, RNG_SAMPLE = 3, RNG_DATA = 4, RNG_TEST = 5 };

typedef struct {
    uint64_t seed, stream, counter; /* counter counts 32-bit words drawn */
} Rng;

void philox4x32(uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo, uint32_t out[4]);

/* Combines a purpose and two ids into one stream id (SplitMix64 mixing). */
uint64_t rng_stream(uint64_t purpose, uint64_t a, uint64_t b);

/* Word `index` of stream `stream`: stateless and thread-safe. */
static inline uint32_t rng_bits(uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t w[4];
    philox4x32(seed, stream, index >> 2, w);
    return w[index & 3];
}

/* Dropout keeps an element when its word is >= this threshold (p in [0,1)). */
static inline uint32_t rng_drop_threshold(float p) {
    double t = (double)p * 4294967296.0;
    return t >= 4294967295.0 ? 4294967295u : (uint32_t)t;
}

static inline Rng rng_make(uint64_t seed, uint64_t stream) {
    Rng r = {seed, stream, 0};
    return r;
}
uint32_t rng_next(Rng *r);
float rng_uniform(Rng *r);             /* in [0, 1), 24 random bits */
float rng_normal(Rng *r);              /* N(0, 1), Box-Muller in double */

#endif
