/* allreduce.c — the time of MPI_Allreduce (float sum, in place, as the trainer
 * sums its gradients) against the message size, for the scaling model of
 * docs/distributed.md. One JSON line per size, on rank 0:
 *   {"ranks", "bytes", "seconds" (median of the repetitions), "algbw_gbs"
 *    (bytes / seconds), "busbw_gbs" (algbw x 2 (R - 1) / R: the bytes each
 *    link carries in a ring all-reduce, comparable across R)}
 *
 *   make bench/allreduce
 *   mpirun -np 2 bench/allreduce                      # shared memory (one machine)
 *   mpirun -np 2 --mca btl self,tcp bench/allreduce   # TCP over loopback
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

enum { REPS = 15 };

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median time of REPS all-reduces of n floats, after two to warm up. */
static double median_seconds(float *x, int n) {
    double t[REPS];
    for (int r = -2; r < REPS; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        const double dt = MPI_Wtime() - t0;
        double slowest; /* a collective ends when its last rank does */
        MPI_Allreduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (r >= 0) t[r] = slowest;
    }
    qsort(t, REPS, sizeof *t, by_value);
    return t[REPS / 2];
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    const int max_floats = 1 << 24; /* 64 MB: the gradients of a 16M-parameter model */
    float *x = malloc((size_t)max_floats * sizeof *x);
    if (!x) MPI_Abort(MPI_COMM_WORLD, 1);
    for (int i = 0; i < max_floats; i++) x[i] = 1e-3f * (float)(i % 1000);
    for (int n = 1 << 10; n <= max_floats; n <<= 2) {
        const double s = median_seconds(x, n), bytes = 4.0 * n, algbw = bytes / s / 1e9;
        if (rank == 0)
            printf("{\"ranks\": %d, \"bytes\": %.0f, \"seconds\": %.6g, \"algbw_gbs\": %.3f, \"busbw_gbs\": %.3f}\n",
                   ranks, bytes, s, algbw, algbw * 2.0 * (ranks - 1) / ranks);
    }
    free(x);
    MPI_Finalize();
    return 0;
}
