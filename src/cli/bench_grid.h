/* bench_grid.h — seqlab bench's options, its summary line, and the grid of
 * mixers x lengths (each point in a child process). */
#ifndef SEQLAB_BENCH_GRID_H
#define SEQLAB_BENCH_GRID_H

#include <stdbool.h>
#include <stdio.h>

#include "../train/bench.h"

typedef struct {
    int steps, warmup, vocab, gen_tokens;
    long tokens;                 /* grid: tokens per step (batch_size = tokens / length) */
    const char *mixers, *lengths; /* grid: comma lists (borrowed from argv) */
    bool help, profile;
} BenchArgs;

/* Runs `argv` (a seqlab bench command line) once per grid point. Returns the
 * exit code: 0 when every point ran. */
int bench_grid(int argc, char **argv, const BenchArgs *a);

/* One line: tokens/s, step split, GFLOP/s and its share of the peak, generation, memory. */
void bench_report(FILE *f, const Config *c, const Model *m, const BenchResult *r, double peak, double gen);

#endif
