/* metrics.c - how good the scores are: the area under the ROC curve by
 * ranks (Mann-Whitney U, ties counted a half), calibration in bins of
 * equal count (mean prediction beside the observed rate), and Spearman's
 * rank correlation for LTV. */
#include "predict/predict_internal.h"

#include <math.h>
#include <stdlib.h>

typedef struct ranked {
    double v;
    size_t i;
} ranked;

static int ranked_order(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Average ranks (1-based) of v, ties sharing the mean of their ranks. */
static double *ranks(const double *v, size_t n) {
    ranked *r = malloc((n ? n : 1) * sizeof *r);
    double *out = malloc((n ? n : 1) * sizeof *out);
    if (!r || !out) {
        free(r);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        r[i] = (ranked){v[i], i};
    qsort(r, n, sizeof *r, ranked_order);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && r[j].v == r[i].v)
            j++;
        double mean = ((double)i + 1 + (double)j) / 2; /* ranks i+1 .. j */
        for (size_t k = i; k < j; k++)
            out[r[k].i] = mean;
        i = j;
    }
    free(r);
    return out;
}

double predict_auc(const double *score, const uint8_t *label, size_t n) {
    double *r = ranks(score, n);
    if (!r) return NAN;
    double pos = 0, sum = 0;
    for (size_t i = 0; i < n; i++)
        if (label[i]) pos++, sum += r[i];
    free(r);
    double neg = (double)n - pos;
    if (pos == 0 || neg == 0) return NAN;
    return (sum - pos * (pos + 1) / 2) / (pos * neg);
}

bsp_err predict_calibration(const double *p, const uint8_t *label, size_t n, size_t bins,
                            predict_bin *out) {
    if (bins == 0 || bins > PREDICT_BINS_MAX) return BSP_EINVAL;
    ranked *r = malloc((n ? n : 1) * sizeof *r);
    if (!r) return BSP_ENOMEM;
    for (size_t i = 0; i < n; i++)
        r[i] = (ranked){p[i], i};
    qsort(r, n, sizeof *r, ranked_order);
    for (size_t b = 0; b < bins; b++) {
        size_t from = b * n / bins, to = (b + 1) * n / bins;
        double sp = 0, sy = 0;
        for (size_t k = from; k < to; k++)
            sp += r[k].v, sy += label[r[k].i];
        size_t m = to - from;
        out[b] = (predict_bin){m, m ? sp / (double)m : NAN, m ? sy / (double)m : NAN};
    }
    free(r);
    return BSP_OK;
}

double predict_spearman(const double *a, const double *b, size_t n) {
    double *ra = ranks(a, n), *rb = ranks(b, n);
    double result = NAN;
    if (ra && rb && n > 1) {
        double mean = ((double)n + 1) / 2, sab = 0, saa = 0, sbb = 0;
        for (size_t i = 0; i < n; i++) {
            double x = ra[i] - mean, y = rb[i] - mean;
            sab += x * y, saa += x * x, sbb += y * y;
        }
        if (saa > 0 && sbb > 0) result = sab / sqrt(saa * sbb);
    }
    free(ra);
    free(rb);
    return result;
}
