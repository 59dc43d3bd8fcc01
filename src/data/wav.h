/* wav.h — one WAV file into floats, through libsndfile.
 *
 * Speech Commands (tasks/speech_commands.h) and the spoken-digit stand-in
 * (scripts/speech_standin.sh) store 16 kHz mono 16-bit PCM WAV clips;
 * wav_read returns their samples as floats scaled by 1/32768 (libsndfile's
 * normalisation: -32768 -> -1, 32767 -> 0.99997), so in [-1, 1) for 16-bit
 * PCM. Other PCM widths and float WAVs read too, at libsndfile's scale.
 *
 * libsndfile reads a file cut short without complaint (it shortens the data
 * to what is there), so wav_read first walks the RIFF chunks itself and
 * refuses a file whose 'data' chunk runs past its end.
 *
 *     float *x;  size_t n;
 *     if (wav_read("sc/yes/0a7c2a8d_nohash_0.wav", 16000, &x, &n, &err)) ...
 *     ...                                                  // x[0 .. n)
 *     free(x);
 */
#ifndef SEQLAB_WAV_H
#define SEQLAB_WAV_H

#include <stddef.h>

#include "../core/error.h"

/* Reads the mono WAV file at path, sampled at expect_rate Hz, into *samples
 * (owned by the caller, *n of them, at least one). Returns 0, or -1 with
 * *samples NULL and a message naming the path: missing or unreadable, empty,
 * not a WAV file (RIFF/RIFX/RF64 'WAVE'), truncated, more than one channel,
 * another sample rate, no samples. */
int wav_read(const char *path, unsigned expect_rate, float **samples, size_t *n, Error *err);

#endif
