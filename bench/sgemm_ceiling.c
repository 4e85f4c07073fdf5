/* sgemm_ceiling.c - OpenBLAS's single-precision matrix multiply rate on this
 * machine, the ceiling that EASE's training (Cholesky factorization and
 * inversion in LAPACK, on the same BLAS) is compared with.
 *
 *   sgemm_ceiling [N [REPEATS]]
 *
 * Multiplies two N x N matrices (default 2048) REPEATS times (default 5)
 * after one warm-up, with OpenBLAS's default threads, and prints
 * `sgemm_gflops <best of the repeats>`. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2048, repeats = argc > 2 ? atoi(argv[2]) : 5;
    if (n < 64 || n > 16384 || repeats < 1) {
        fprintf(stderr, "usage: sgemm_ceiling [N 64..16384 [REPEATS]]\n");
        return 2;
    }
    size_t len = (size_t)n * (size_t)n;
    float *a = malloc(len * sizeof *a), *b = malloc(len * sizeof *b), *c = malloc(len * sizeof *c);
    if (!a || !b || !c) {
        fprintf(stderr, "sgemm_ceiling: out of memory\n");
        free(a);
        free(b);
        free(c);
        return 1;
    }
    for (size_t i = 0; i < len; i++) {
        a[i] = (float)(i % 7) * 0.25f;
        b[i] = (float)(i % 5) * 0.5f;
    }
    double best = 0;
    for (int r = 0; r <= repeats; r++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        double gflops = 2.0 * n * (double)n * n / (now_s() - t0) / 1e9;
        if (r > 0 && gflops > best) best = gflops; /* r == 0 warms up */
    }
    printf("sgemm_gflops %.1f\n", best);
    free(a);
    free(b);
    free(c);
    return 0;
}
