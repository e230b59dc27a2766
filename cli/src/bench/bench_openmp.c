/* The C/OpenMP contender of `shmpool bench`: the array workloads' kernels (inplace, sum, poly,
 * stencil, dot, matmul, pipeline) in plain C with
 * `#pragma omp parallel for`, as the hardware's reference. Dynamic schedules: on a shared
 * machine a static one waits for whichever thread the OS runs last. The harness writes this file to a
 * scratch directory, builds it with `gcc -O3 -march=native -fopenmp`, and speaks the line
 * protocol documented in cli/src/bench/bridge.rs on stdin/stdout. Requests are flat JSON objects
 * written by the harness without spaces, so a key search is all the parsing needed. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STEPS 10
#define MAX_CELLS 4096

enum kind { INPLACE, SUM, POLY, STENCIL, DOT, MATMUL, PIPELINE };

struct cell {
    int used, kind, workers, parity;
    long n, side, cells;
    double *buf;
};

static struct cell cells[MAX_CELLS];
static double coef[17];

static long num(const char *line, const char *key) {
    const char *p = strstr(line, key);
    return p ? atol(p + strlen(key)) : -1;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double init(long i) { return (double)(i % 1000) * 0.001; }
static double second(long i) { return (double)(i % 997) * 0.001; }

/* Fresh data: dot's second operand and matmul's B follow the first (`second`), C is zeroed. */
static void reset(struct cell *c) {
    for (long i = 0; i < c->cells; i++) c->buf[i] = init(i);
    if (c->kind == DOT || c->kind == MATMUL)
        for (long i = 0; i < c->cells; i++) c->buf[c->cells + i] = second(i);
    if (c->kind == MATMUL)
        for (long i = 0; i < c->cells; i++) c->buf[2 * c->cells + i] = 0.0;
    c->parity = 0;
}

static double once(struct cell *c) {
    double *a = c->buf;
    long n = c->n;
    double s = 0.0;
    switch (c->kind) {
    case INPLACE:
#pragma omp parallel for schedule(dynamic, 16384) num_threads(c->workers)
        for (long i = 0; i < n; i++) a[i] = a[i] * 1.0001 + 0.5;
        break;
    case SUM:
#pragma omp parallel for schedule(dynamic, 16384) num_threads(c->workers) reduction(+ : s)
        for (long i = 0; i < n; i++) s += a[i];
        break;
    case POLY:
#pragma omp parallel for schedule(dynamic, 16384) num_threads(c->workers)
        for (long i = 0; i < n; i++) {
            double x = a[i], y = coef[16];
            for (int k = 15; k >= 0; k--) y = y * x + coef[k];
            a[i] = y;
        }
        break;
    case STENCIL: {
        long w = c->side;
        for (int step = 0; step < STEPS; step++) {
            double *src = c->buf + c->parity * c->cells, *dst = c->buf + (1 - c->parity) * c->cells;
#pragma omp parallel for schedule(dynamic, 16) num_threads(c->workers)
            for (long r = 0; r < w; r++) {
                for (long col = 0; col < w; col++) {
                    long i = r * w + col;
                    double v = src[i];
                    if (r == 0 || r == w - 1 || col == 0 || col == w - 1)
                        dst[i] = v;
                    else
                        dst[i] = ((src[i - w] + src[i + w]) + (src[i - 1] + src[i + 1])) * 0.25;
                }
            }
            c->parity = 1 - c->parity;
        }
        break;
    }
    case PIPELINE:
        /* The three stages on each element: a*1.0001 + 0.5, clamp to [0, 1], 0.25a^2 - 0.5a + 1. */
#pragma omp parallel for schedule(dynamic, 16384) num_threads(c->workers)
        for (long i = 0; i < n; i++) {
            double x = a[i] * 1.0001 + 0.5;
            x = x < 0.0 ? 0.0 : x;
            x = x > 1.0 ? 1.0 : x;
            a[i] = (0.25 * x - 0.5) * x + 1.0;
        }
        break;
    case DOT: {
        const double *b = a + n;
#pragma omp parallel for schedule(dynamic, 16384) num_threads(c->workers) reduction(+ : s)
        for (long i = 0; i < n; i++) s += a[i] * b[i];
        break;
    }
    case MATMUL: {
        /* C = A x B, N x N row-major, i-k-j order so the inner loop runs along rows. */
        long w = c->side;
        const double *b = a + c->cells;
        double *out = a + 2 * c->cells;
#pragma omp parallel for schedule(dynamic, 4) num_threads(c->workers)
        for (long i = 0; i < w; i++) {
            double *row = out + i * w;
            for (long j = 0; j < w; j++) row[j] = 0.0;
            for (long k = 0; k < w; k++) {
                double aik = a[i * w + k];
                const double *brow = b + k * w;
                for (long j = 0; j < w; j++) row[j] += aik * brow[j];
            }
        }
        break;
    }
    }
    return s;
}

static void digest(struct cell *c, double s) {
    if (c->kind == SUM || c->kind == DOT) {
        printf("{\"ok\":true,\"digest\":[%.17g]}\n", s);
        return;
    }
    double *a = c->buf + (c->kind == MATMUL ? 2 : c->parity) * c->cells;
    long n = c->cells;
    double t = 0.0;
    for (long i = 0; i < n; i++) t += a[i];
    printf("{\"ok\":true,\"digest\":[%.17g,%.17g,%.17g,%.17g,%.17g,%.17g]}\n", t, a[0], a[n / 4],
           a[n / 2], a[3 * n / 4], a[n - 1]);
}

int main(void) {
    static char line[4096];
    double x = 0.5;
    for (int k = 0; k < 17; k++, x *= -0.5) coef[k] = x;
    printf("{\"hello\":1,\"openmp\":%d,\"max_threads\":%d}\n", _OPENMP, omp_get_max_threads());
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        long id = num(line, "\"id\":");
        struct cell *c = (id >= 0 && id < MAX_CELLS) ? &cells[id] : NULL;
        if (strstr(line, "\"cmd\":\"quit\"")) break;
        if (!c) {
            printf("{\"error\":\"request without a valid id\"}\n");
        } else if (strstr(line, "\"cmd\":\"setup\"")) {
            if (!strstr(line, "\"contender\":\"c-openmp\"")) {
                printf("{\"na\":\"only c-openmp runs here\"}\n");
            } else {
                int kind = strstr(line, "\"workload\":\"inplace\"")   ? INPLACE
                           : strstr(line, "\"workload\":\"sum\"")     ? SUM
                           : strstr(line, "\"workload\":\"poly\"")    ? POLY
                           : strstr(line, "\"workload\":\"stencil\"") ? STENCIL
                           : strstr(line, "\"workload\":\"dot\"")     ? DOT
                           : strstr(line, "\"workload\":\"matmul\"")  ? MATMUL
                           : strstr(line, "\"workload\":\"pipeline\"") ? PIPELINE
                                                                      : -1;
                long n = num(line, "\"size\":"), w = num(line, "\"workers\":");
                if (kind < 0) {
                    printf("{\"na\":\"the C contender runs the array workloads only\"}\n");
                } else if (n <= 0 || w <= 0) {
                    printf("{\"error\":\"bad size or workers\"}\n");
                } else {
                    c->kind = kind;
                    c->n = n;
                    c->workers = (int)w;
                    c->side = 64;
                    if (kind == MATMUL) {
                        c->side = n;
                        c->cells = n * n;
                    } else if (kind == STENCIL) {
                        while (c->side * 2 * c->side * 2 <= n && c->side < 4096) c->side *= 2;
                        c->cells = c->side * c->side;
                    } else {
                        c->cells = n;
                    }
                    int copies = kind == MATMUL ? 3 : (kind == STENCIL || kind == DOT) ? 2 : 1;
                    c->buf = malloc(sizeof(double) * (size_t)c->cells * copies);
                    if (!c->buf) {
                        printf("{\"error\":\"out of memory\"}\n");
                    } else {
                        c->used = 1;
                        reset(c);
                        printf("{\"ok\":true}\n");
                    }
                }
            }
        } else if (!c->used) {
            printf("{\"error\":\"no such cell\"}\n");
        } else if (strstr(line, "\"cmd\":\"check\"")) {
            reset(c);
            digest(c, once(c));
        } else if (strstr(line, "\"cmd\":\"run\"")) {
            double t = now();
            volatile double s = once(c);
            (void)s;
            printf("{\"ok\":true,\"seconds\":%.9g}\n", now() - t);
        } else if (strstr(line, "\"cmd\":\"close\"")) {
            free(c->buf);
            c->buf = NULL;
            c->used = 0;
            printf("{\"ok\":true}\n");
        } else {
            printf("{\"error\":\"unknown command\"}\n");
        }
        fflush(stdout);
    }
    return 0;
}
