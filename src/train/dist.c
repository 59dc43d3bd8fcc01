/* dist.c — see dist.h. With SEQLAB_MPI the collectives are MPI's (OpenMPI);
 * without it, or not launched by mpirun, every function is the one-rank case. */
#include "dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef SEQLAB_MPI
#include <mpi.h>
#endif

static int rank_id, n_ranks = 1, n_local = 1;
static double comm_s;


void dist_share(size_t n, size_t *lo, size_t *hi) {
    *lo = n * (size_t)rank_id / (size_t)n_ranks;
    *hi = n * (size_t)(rank_id + 1) / (size_t)n_ranks;
}

double dist_sum_in_order(double *parts, size_t n, size_t group) {
    dist_gather_shares(parts, n, group, sizeof *parts);
    double total = 0.0;
    for (size_t i = 0; i < n; i++) total += parts[i];
    return total;
}

int dist_rank(void) { return rank_id; }
int dist_size(void) { return n_ranks; }
int dist_local_size(void) { return n_local; }
double dist_comm_seconds(void) { return comm_s; }

#ifdef SEQLAB_MPI

static bool started; /* MPI_Init was called */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* mpirun (ORTE) and PMIx launchers say so in the environment. */
static bool launched_by_mpirun(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}

int dist_init(int *argc, char ***argv, Error *err) {
    if (!launched_by_mpirun()) return 0;
    int provided;
    /* FUNNELED: only the main thread calls MPI; OpenMP threads compute between the calls */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return err_set(err, "MPI_Init failed");
    started = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_id);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_id, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &n_local);
    MPI_Comm_free(&local);
    return 0;
}

void dist_finalize(void) {
    if (started) MPI_Finalize();
    started = false;
}

void dist_abort(int code) {
    if (n_ranks > 1) {
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
}

/* MPI counts are ints: long arrays go in chunks. */
enum { CHUNK = 1 << 28 };

static void sum_in_place(void *x, size_t n, size_t item, MPI_Datatype type) {
    if (n_ranks == 1) return;
    double t0 = now_s();
    for (size_t i = 0; i < n; i += CHUNK) {
        const int count = (int)(n - i < CHUNK ? n - i : CHUNK);
        MPI_Allreduce(MPI_IN_PLACE, (char *)x + i * item, count, type, MPI_SUM, MPI_COMM_WORLD);
    }
    comm_s += now_s() - t0;
}

void dist_sum_floats(float *x, size_t n) { sum_in_place(x, n, sizeof *x, MPI_FLOAT); }
void dist_sum_doubles(double *x, size_t n) { sum_in_place(x, n, sizeof *x, MPI_DOUBLE); }
void dist_sum_u64(uint64_t *x, size_t n) { sum_in_place(x, n, sizeof *x, MPI_UINT64_T); }

void dist_broadcast(void *buf, size_t bytes) {
    if (n_ranks == 1) return;
    double t0 = now_s();
    for (size_t i = 0; i < bytes; i += CHUNK)
        MPI_Bcast((char *)buf + i, (int)(bytes - i < CHUNK ? bytes - i : CHUNK), MPI_BYTE, 0, MPI_COMM_WORLD);
    comm_s += now_s() - t0;
}

void dist_gather_shares(void *array, size_t n, size_t group, size_t item_bytes) {
    if (n_ranks == 1) return;
    double t0 = now_s();
    const size_t groups = (n + group - 1) / group;
    int *counts = malloc((size_t)n_ranks * sizeof *counts), *starts = malloc((size_t)n_ranks * sizeof *starts);
    if (!counts || !starts) { /* the other ranks wait in the collective: no error can be returned to them */
        fprintf(stderr, "seqlab: out of memory gathering %zu items over %d ranks\n", n, n_ranks);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Datatype item;
    MPI_Type_contiguous((int)item_bytes, MPI_BYTE, &item);
    MPI_Type_commit(&item);
    for (int r = 0; r < n_ranks; r++) {
        const size_t lo = groups * (size_t)r / (size_t)n_ranks * group, hi = groups * (size_t)(r + 1) / (size_t)n_ranks * group;
        starts[r] = (int)(lo < n ? lo : n);
        counts[r] = (int)(hi < n ? hi : n) - starts[r];
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, item, array, counts, starts, item, MPI_COMM_WORLD);
    MPI_Type_free(&item);
    free(counts);
    free(starts);
    comm_s += now_s() - t0;
}

/* Line `line` (1-based) of text into out. */
static void line_of(const char *text, int line, char *out, size_t n) {
    for (int k = 1; k < line && *text; k++) text += strcspn(text, "\n") + (text[strcspn(text, "\n")] == '\n');
    snprintf(out, n, "%.*s", (int)strcspn(text, "\n"), text);
}

/* The first line where a and b differ (1-based), 0 when equal. */
static int first_difference(const char *a, const char *b) {
    int line = 1;
    for (size_t i = 0;; i++) {
        if (a[i] != b[i]) return line;
        if (!a[i]) return 0;
        line += a[i] == '\n';
    }
}

int dist_check_same(const char *text, const char *what, Error *err) {
    if (n_ranks == 1) return 0;
    unsigned long long len = strlen(text) + 1;
    MPI_Bcast(&len, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    char *first = malloc(len);
    if (!first) return err_set(err, "out of memory comparing the ranks' %s", what);
    if (rank_id == 0) memcpy(first, text, len);
    MPI_Bcast(first, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD);
    const int line = first_difference(first, text);
    int mine = line ? rank_id : INT_MAX, differing;
    MPI_Allreduce(&mine, &differing, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (differing == INT_MAX) {
        free(first);
        return 0;
    }
    /* the differing rank tells every rank where, so each prints the same message */
    char where[2][200] = {{0}};
    int at = line;
    MPI_Bcast(&at, 1, MPI_INT, differing, MPI_COMM_WORLD);
    line_of(first, at, where[0], sizeof where[0]);
    line_of(text, at, where[1], sizeof where[1]);
    MPI_Bcast(where[1], sizeof where[1], MPI_CHAR, differing, MPI_COMM_WORLD);
    free(first);
    return err_set(err, "rank %d's %s differs from rank 0's at line %d: '%s' against '%s' (every rank must run the "
                   "same command on the same files)", differing, what, at, where[1], where[0]);
}

#else /* one rank, no MPI */

int dist_init(int *argc, char ***argv, Error *err) {
    (void)argc, (void)argv;
    const char *ranks = getenv("OMPI_COMM_WORLD_SIZE");
    if (ranks && atoi(ranks) > 1)
        return err_set(err, "launched by mpirun with several ranks, but this seqlab was built without MPI "
                            "(install libopenmpi-dev and rebuild: make)");
    return 0;
}
void dist_finalize(void) {}
void dist_abort(int code) { (void)code; }
void dist_sum_floats(float *x, size_t n) { (void)x, (void)n; }
void dist_sum_doubles(double *x, size_t n) { (void)x, (void)n; }
void dist_sum_u64(uint64_t *x, size_t n) { (void)x, (void)n; }
void dist_broadcast(void *buf, size_t bytes) { (void)buf, (void)bytes; }
void dist_gather_shares(void *array, size_t n, size_t group, size_t item_bytes) {
    (void)array, (void)n, (void)group, (void)item_bytes;
}
int dist_check_same(const char *text, const char *what, Error *err) {
    (void)text, (void)what, (void)err;
    return 0;
}

#endif
