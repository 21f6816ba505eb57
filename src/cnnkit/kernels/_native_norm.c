/* cnnkit's optional native batch-normalisation kernels (training mode), loaded with ctypes.
 *
 * A plain C library (no Python C API). Every array is float32, C-contiguous, channels-last,
 * seen as (rows, C): the caller (native_norm.py) passes one block of rows of the full
 * (M, C) array, and combines the blocks' partial sums (float64) in block order.
 *
 *   cnk_bn_stats       s1[c] = sum_r (x[r, c] - t[c]),  s2[c] = sum_r (x[r, c] - t[c])^2
 *                      (float64 sums; t = a shift near the mean, e.g. the first row, so that
 *                      var = (s2 - s1^2 / M) / M does not cancel)
 *   cnk_bn_normalize   y[r, c] = (x[r, c] - mu[c]) * a[c] + b[c]
 *   cnk_bn_grad_sums   sg[c] = sum_r g[r, c],  sgx[c] = sum_r g[r, c] * (x[r, c] - mu[c])
 *                      (float64 sums)
 *   cnk_bn_grad_input  dx[r, c] = g[r, c] * k1[c] + (x[r, c] - mu[c]) * k2[c] + k3[c]
 *
 * The sums run over tiles of TILE_ROWS rows (in L1 after the first chunk reads them) and
 * chunks of CHUNK channels whose float64 accumulators stay in registers for a tile.
 */

#include <stdint.h>

#define CHUNK 16
#define TILE_ROWS 64

/* s1 += sum (x - t), s2 += sum (x - t)^2 over rows [0, n) and channels [c0, c0 + CHUNK). */
static void stats_chunk(const float *restrict x, int64_t n, int64_t c, int64_t c0,
                        const float *restrict t, double *restrict s1, double *restrict s2)
{
    double a1[CHUNK], a2[CHUNK], sh[CHUNK];
    for (int j = 0; j < CHUNK; j++) {
        a1[j] = s1[c0 + j];
        a2[j] = s2[c0 + j];
        sh[j] = (double)t[c0 + j];
    }
    for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * c + c0;
        for (int j = 0; j < CHUNK; j++) {
            double d = (double)xr[j] - sh[j];
            a1[j] += d;
            a2[j] += d * d;
        }
    }
    for (int j = 0; j < CHUNK; j++) {
        s1[c0 + j] = a1[j];
        s2[c0 + j] = a2[j];
    }
}

/* The same for the channels [c0, c) (fewer than CHUNK), one at a time. */
static void stats_tail(const float *restrict x, int64_t n, int64_t c, int64_t c0,
                       const float *restrict t, double *restrict s1, double *restrict s2)
{
    for (int64_t j = c0; j < c; j++) {
        double a1 = s1[j], a2 = s2[j], sh = (double)t[j];
        for (int64_t r = 0; r < n; r++) {
            double d = (double)x[r * c + j] - sh;
            a1 += d;
            a2 += d * d;
        }
        s1[j] = a1;
        s2[j] = a2;
    }
}

void cnk_bn_stats(const float *x, int64_t rows, int64_t c, const float *t, double *s1,
                  double *s2)
{
    int64_t full = c - c % CHUNK;
    for (int64_t j = 0; j < c; j++) {
        s1[j] = 0.0;
        s2[j] = 0.0;
    }
    for (int64_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
        int64_t n = rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS;
        const float *xt = x + r0 * c;
        for (int64_t c0 = 0; c0 < full; c0 += CHUNK)
            stats_chunk(xt, n, c, c0, t, s1, s2);
        if (full < c)
            stats_tail(xt, n, c, full, t, s1, s2);
    }
}

/* sg += sum g, sgx += sum g * (x - mu) over rows [0, n) and channels [c0, c0 + CHUNK). */
static void grad_chunk(const float *restrict g, const float *restrict x, int64_t n, int64_t c,
                       int64_t c0, const float *restrict mu, double *restrict sg,
                       double *restrict sgx)
{
    double a1[CHUNK], a2[CHUNK], m[CHUNK];
    for (int j = 0; j < CHUNK; j++) {
        a1[j] = sg[c0 + j];
        a2[j] = sgx[c0 + j];
        m[j] = (double)mu[c0 + j];
    }
    for (int64_t r = 0; r < n; r++) {
        const float *gr = g + r * c + c0, *xr = x + r * c + c0;
        for (int j = 0; j < CHUNK; j++) {
            double gv = (double)gr[j];
            a1[j] += gv;
            a2[j] += gv * ((double)xr[j] - m[j]);
        }
    }
    for (int j = 0; j < CHUNK; j++) {
        sg[c0 + j] = a1[j];
        sgx[c0 + j] = a2[j];
    }
}

static void grad_tail(const float *restrict g, const float *restrict x, int64_t n, int64_t c,
                      int64_t c0, const float *restrict mu, double *restrict sg,
                      double *restrict sgx)
{
    for (int64_t j = c0; j < c; j++) {
        double a1 = sg[j], a2 = sgx[j], m = (double)mu[j];
        for (int64_t r = 0; r < n; r++) {
            double gv = (double)g[r * c + j];
            a1 += gv;
            a2 += gv * ((double)x[r * c + j] - m);
        }
        sg[j] = a1;
        sgx[j] = a2;
    }
}

void cnk_bn_grad_sums(const float *g, const float *x, int64_t rows, int64_t c,
                      const float *mu, double *sg, double *sgx)
{
    int64_t full = c - c % CHUNK;
    for (int64_t j = 0; j < c; j++) {
        sg[j] = 0.0;
        sgx[j] = 0.0;
    }
    for (int64_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
        int64_t n = rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS;
        const float *gt = g + r0 * c, *xt = x + r0 * c;
        for (int64_t c0 = 0; c0 < full; c0 += CHUNK)
            grad_chunk(gt, xt, n, c, c0, mu, sg, sgx);
        if (full < c)
            grad_tail(gt, xt, n, c, full, mu, sg, sgx);
    }
}

void cnk_bn_normalize(const float *restrict x, int64_t rows, int64_t c,
                      const float *restrict mu, const float *restrict a,
                      const float *restrict b, float *restrict y)
{
    if (c == 1) {
        float m = mu[0], av = a[0], bv = b[0];
        for (int64_t r = 0; r < rows; r++)
            y[r] = (x[r] - m) * av + bv;
        return;
    }
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        float *yr = y + r * c;
        for (int64_t j = 0; j < c; j++)
            yr[j] = (xr[j] - mu[j]) * a[j] + b[j];
    }
}

void cnk_bn_grad_input(const float *restrict g, const float *restrict x, int64_t rows,
                       int64_t c, const float *restrict mu, const float *restrict k1,
                       const float *restrict k2, const float *restrict k3,
                       float *restrict dx)
{
    if (c == 1) {
        float m = mu[0], a = k1[0], b = k2[0], d = k3[0];
        for (int64_t r = 0; r < rows; r++)
            dx[r] = g[r] * a + (x[r] - m) * b + d;
        return;
    }
    for (int64_t r = 0; r < rows; r++) {
        const float *gr = g + r * c, *xr = x + r * c;
        float *dr = dx + r * c;
        for (int64_t j = 0; j < c; j++)
            dr[j] = gr[j] * k1[j] + (xr[j] - mu[j]) * k2[j] + k3[j];
    }
}
