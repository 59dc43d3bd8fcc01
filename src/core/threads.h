/* threads.h — one thread count for seqlab's OpenMP loops and the GEMM backend.
 *
 * oneDNN (and the OpenMP build of OpenBLAS) run on the same OpenMP thread
 * pool as seqlab's loops: setting the count here sets it for the products too,
 * and a product issued inside a parallel region runs on its calling thread. */
#ifndef SEQLAB_THREADS_H
#define SEQLAB_THREADS_H

#include <stdbool.h>

/* Sets the number of threads (n <= 0: one per core). Returns the count used. */
int threads_set(int n);
/* The count set (outside threads_serial, also OpenMP's default team). */
int threads_get(void);
/* serial: OpenMP loops that follow run on the calling thread alone, except
 * those that ask for threads_get() threads by name (one-row products,
 * attention over a long context). A one-token step is made of loops over a
 * few hundred floats, where waking a thread costs more than it saves. */
void threads_serial(bool serial);
/* The machine's cores online; the cores this process may run on (taskset, a container's cpuset,
 * mpirun's binding). */
int threads_cores(void);
int threads_allowed(void);

#endif
