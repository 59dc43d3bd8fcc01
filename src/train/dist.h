/* dist.h — data parallelism over MPI ranks (OpenMPI).
 *
 * `mpirun -np R seqlab train CONFIG` trains one model on R processes, on one
 * machine or several. Every rank holds the whole model and builds the whole
 * step's batch (batch_size rows, as one process would); rank r trains on its
 * share of the rows, the gradients are summed over the ranks, and every rank
 * takes the same optimizer step, so the weights stay equal on all of them.
 * What one process would compute — the loss, the evaluation, dropout masks
 * (keyed by the global row) — is what R ranks compute, to the rounding of the
 * sums' order (trainer.c, docs/distributed.md).
 *
 * MPI is started only under a launcher (mpirun sets OMPI_COMM_WORLD_SIZE or
 * PMIX_RANK); a plain `seqlab ...` is one rank without MPI, and so is a build
 * without MPI (`make MPI=0`): then every function here is the one-rank case.
 *
 *     dist_init(&argc, &argv);
 *     dist_sum_floats(grads, n);        // every rank: the sum over the ranks
 *     if (dist_rank() == 0) write...;
 *     dist_finalize();
 *
 * Collectives must be called by every rank in the same order. A rank that
 * fails calls dist_abort, which stops all of them (the error was printed
 * first); checkpoints are written to a temporary file and renamed, so none
 * is left half-written.
 */
#ifndef SEQLAB_DIST_H
#define SEQLAB_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

/* Starts MPI when launched by mpirun (else one rank). Returns -1 with a
 * message when MPI fails to start or this build has no MPI but was launched
 * with several ranks. */
int dist_init(int *argc, char ***argv, Error *err);
void dist_finalize(void);
/* Stops every rank with exit code `code` (a failure on one rank must not
 * leave the others waiting in a collective). Returns only with one rank. */
void dist_abort(int code);

int dist_rank(void);
int dist_size(void);
/* Ranks on this machine (threads per rank default to its cores divided by them). */
int dist_local_size(void);

/* This rank's share of n items: [lo, hi), contiguous, in rank order, sizes
 * differing by at most one. */
void dist_share(size_t n, size_t *lo, size_t *hi);

/* In place, on every rank: the element-wise sum over the ranks. */
void dist_sum_floats(float *x, size_t n);
void dist_sum_doubles(double *x, size_t n);
void dist_sum_u64(uint64_t *x, size_t n);
/* The array of n items (item_bytes each), whose items in chunks of `group`
 * are shared by dist_share of the chunks: each rank's part of it, gathered
 * into every rank, unchanged to the bit. */
void dist_gather_shares(void *array, size_t n, size_t group, size_t item_bytes);
/* The sum of parts[0, n) in index order, as one process adds them, once each
 * rank has filled its share (dist_share of the chunks of `group`) of parts;
 * parts ends up whole on every rank. */
double dist_sum_in_order(double *parts, size_t n, size_t group);
/* Rank 0's bytes into every rank. */
void dist_broadcast(void *buf, size_t bytes);
/* 0 when every rank passed the same text; else -1 and a message naming the
 * first rank that differs and the first differing line (what: "config"). */
int dist_check_same(const char *text, const char *what, Error *err);

/* Seconds this rank has spent in the collectives so far. */
double dist_comm_seconds(void);

#endif
