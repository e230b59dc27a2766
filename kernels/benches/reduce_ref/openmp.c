/* The C/OpenMP references of `kernels/benches/reduce.rs`, built by the bench at run time with
 * `gcc -O3 -march=native -ffast-math -fopenmp -shared -fPIC` (issue #9's reference) and loaded
 * with dlopen. Every loop is a `#pragma omp parallel for` with a dynamic schedule of `chunk`
 * elements (the chunks shmpool's pool and rayon get), over the bench's own shared buffers:
 * - `shmpool_ref_sum`, `shmpool_ref_dot`: the same reductions, in whatever order gcc likes
 *   (-ffast-math lets it reassociate and vectorize);
 * - `shmpool_ref_read`: the STREAM-style read kernel, an OR of every 64-bit word of `a` (and of
 *   `b`, in the same pass, when it is not NULL): one-cycle operations, so only memory limits it. */
#include <stdint.h>

double shmpool_ref_sum(const double *a, long n, long chunk, int threads) {
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(dynamic, chunk) num_threads(threads)
    for (long i = 0; i < n; i++) s += a[i];
    return s;
}

double shmpool_ref_dot(const double *a, const double *b, long n, long chunk, int threads) {
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(dynamic, chunk) num_threads(threads)
    for (long i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

uint64_t shmpool_ref_read(const double *a, const double *b, long n, long chunk, int threads) {
    const uint64_t *x = (const uint64_t *)a, *y = (const uint64_t *)b;
    uint64_t r = 0;
    if (y) {
#pragma omp parallel for reduction(| : r) schedule(dynamic, chunk) num_threads(threads)
        for (long i = 0; i < n; i++) r |= x[i] | y[i];
    } else {
#pragma omp parallel for reduction(| : r) schedule(dynamic, chunk) num_threads(threads)
        for (long i = 0; i < n; i++) r |= x[i];
    }
    return r;
}
