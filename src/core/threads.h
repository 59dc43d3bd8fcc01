/* threads.h — one thread count for seqlab's OpenMP loops and the GEMM backend.
 *
 * oneDNN (and the OpenMP build of OpenBLAS) run on the same OpenMP thread
 * pool as seqlab's loops: setting the count here sets it for the products too,
 * and a product issued inside a parallel region runs on its calling thread. */
#ifndef SEQLAB_THREADS_H
#define SEQLAB_THREADS_H

/* Sets the number of threads (n <= 0: one per core). Returns the count used. */
int threads_set(int n);
int threads_get(void);
int threads_cores(void);

#endif
