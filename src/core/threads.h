/* threads.h — one thread count for seqlab's OpenMP loops and OpenBLAS.
 *
 * seqlab links the OpenMP build of OpenBLAS (libopenblas0-openmp), so both
 * share one OpenMP thread pool: setting it here sets it for the BLAS too, and a
 * BLAS call made inside a parallel region runs on its calling thread. */
#ifndef SEQLAB_THREADS_H
#define SEQLAB_THREADS_H

/* Sets the number of threads (n <= 0: one per core). Returns the count used. */
int threads_set(int n);
int threads_get(void);
int threads_cores(void);

#endif
