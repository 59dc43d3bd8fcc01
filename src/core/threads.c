/* threads.c — see threads.h. */
#include "threads.h"

#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include "gemm.h"

static int configured; /* 0 until threads_set: OpenMP's own default */

int threads_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int threads_allowed(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return threads_cores();
    const int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

int threads_set(int n) {
    if (n <= 0) n = threads_cores();
    configured = n;
    omp_set_num_threads(n);
    gemm_set_threads(n);
    return n;
}

int threads_get(void) { return configured ? configured : omp_get_max_threads(); }

void threads_serial(bool serial) {
    if (!configured) configured = omp_get_max_threads();
    omp_set_num_threads(serial ? 1 : configured);
}
