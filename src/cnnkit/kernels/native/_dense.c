/* A batch-invariant dense product for cnnkit (optional native helper, loaded with ctypes).
 *
 * Plain C99, no Python or NumPy headers. Arrays are float32, C-contiguous:
 *   x (N, K), w (K, M), y (N, M)
 *
 *   y[n, j] = (((0 + x[n, 0] w[0, j]) + x[n, 1] w[1, j]) + ...) + x[n, K-1] w[K-1, j]
 *
 * summed in that order for every element, one multiply-add per term (fused where the build
 * has FMA). Why: a BLAS GEMM gives row n of x W bit for bit the same only for some numbers of
 * rows N (remainder rows take other micro-kernels, one row is a GEMV), so a server that
 * stacks requests into one product could change an answer. Here every element goes through
 * the one tile function below, with the same instructions whatever N is: rows come in blocks
 * of RB and columns in panels of CB (a last partial panel of w is copied into a zero-padded
 * panel). The last N mod RB rows go one by one through tile1, which repeats a row of tile
 * with the same explicit fused multiply-adds (AVX2 + FMA builds); in builds without FMA
 * they are copied into a zero-padded block for tile itself. K is cut into blocks of KB: the
 * partial sums go to memory between blocks and come back unchanged (float32 both ways), so
 * the order of the additions is still k = 0, 1, ..., K-1. Row blocks share each
 * loaded panel row of w, so a batch costs far less than N one-row products. The function
 * holds no global state: several threads may run it at once on disjoint outputs. It returns
 * 0, or -1 when memory could not be allocated.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CNK_ABI_VERSION 1
#include "cnk_abi.h"

#if defined(__FMA__) && defined(__AVX2__)
#include <immintrin.h>
#define EXACT_MADD 1 /* madd is one explicit instruction: every tile computes alike */
#else
#define EXACT_MADD 0
#endif

#define RB 4  /* rows per block */
#define CB 16 /* columns per panel: two vectors of 8 */
#define PF 96 /* rows of w prefetched ahead */
#define KB 256 /* rows of w per block (16 KiB of a panel) */

typedef float v8 __attribute__((vector_size(32)));
typedef ptrdiff_t idx_t;

#if defined(__FMA__) && defined(__AVX2__)
/* acc + a * b with one rounding (explicit: no reliance on the compiler's contraction) */
static inline v8 madd(v8 a, v8 b, v8 acc)
{
    return (v8)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)acc);
}
#else
/* acc + a * b with two roundings (baseline builds have no fused multiply-add) */
static inline v8 madd(v8 a, v8 b, v8 acc)
{
    v8 p = a * b;
    return acc + p;
}
#endif

/* out[r, 0..CB) = init + sum_{q < k} x[r, q] w[q, 0..CB) for r < RB, q in order; init: 0, or
 * out itself (the partial sums of earlier columns of x) when ``more``; x rows xr apart, w
 * rows wr apart, out rows CB apart. Not inlined: one copy of the code serves every element. */
static __attribute__((noinline)) void tile(const float *restrict x, idx_t xr, idx_t k,
                                           const float *restrict w, idx_t wr,
                                           float *restrict out, int more)
{
    v8 acc[RB][2];
    for (int r = 0; r < RB; r++) {
        if (more) {
            memcpy(&acc[r][0], out + r * CB, sizeof acc[r][0]);
            memcpy(&acc[r][1], out + r * CB + 8, sizeof acc[r][1]);
        } else {
            acc[r][0] = acc[r][1] = (v8){0};
        }
    }
    for (idx_t q = 0; q < k; q++) {
        v8 w0, w1;
        __builtin_prefetch(w + (q + PF) * wr); /* rows of w far apart: ahead of the streamer */
        memcpy(&w0, w + q * wr, sizeof w0);
        memcpy(&w1, w + q * wr + 8, sizeof w1);
        for (int r = 0; r < RB; r++) {
            const float s = x[r * xr + q];
            const v8 xv = {s, s, s, s, s, s, s, s};
            acc[r][0] = madd(xv, w0, acc[r][0]);
            acc[r][1] = madd(xv, w1, acc[r][1]);
        }
    }
    for (int r = 0; r < RB; r++) {
        memcpy(out + r * CB, &acc[r][0], sizeof acc[r][0]);
        memcpy(out + r * CB + 8, &acc[r][1], sizeof acc[r][1]);
    }
}

/* tile for one row (r = 0): the same madd of the same values in the same order as each row
 * of tile, so the same bits where madd is one explicit instruction (EXACT_MADD). */
static __attribute__((noinline)) void tile1(const float *restrict x, idx_t k,
                                            const float *restrict w, idx_t wr,
                                            float *restrict out, int more)
{
    v8 a0 = {0}, a1 = {0};
    if (more) {
        memcpy(&a0, out, sizeof a0);
        memcpy(&a1, out + 8, sizeof a1);
    }
    for (idx_t q = 0; q < k; q++) {
        v8 w0, w1;
        __builtin_prefetch(w + (q + PF) * wr);
        memcpy(&w0, w + q * wr, sizeof w0);
        memcpy(&w1, w + q * wr + 8, sizeof w1);
        const float s = x[q];
        const v8 xv = {s, s, s, s, s, s, s, s};
        a0 = madd(xv, w0, a0);
        a1 = madd(xv, w1, a1);
    }
    memcpy(out, &a0, sizeof a0);
    memcpy(out + 8, &a1, sizeof a1);
}

/* Columns [k0, k0 + kl) of x against rows [k0, k0 + kl) of one panel of w (wp, rows wr
 * apart), added to the panel's partial sums ybuf (rows CB apart) when ``more``. */
static void panel_block(const float *x, idx_t n, idx_t k, const float *xpad, idx_t k0,
                        idx_t kl, const float *wp, idx_t wr, float *ybuf, int more)
{
    for (idx_t n0 = 0; n0 < n; n0 += RB) {
        const idx_t rows = n - n0 < RB ? n - n0 : RB;
        float *out = ybuf + n0 * CB;
        if (rows == RB)
            tile(x + n0 * k + k0, k, kl, wp + k0 * wr, wr, out, more);
        else if (EXACT_MADD) /* the last rows one by one */
            for (idx_t r = 0; r < rows; r++)
                tile1(x + (n0 + r) * k + k0, kl, wp + k0 * wr, wr, out + r * CB, more);
        else /* the last rows through their zero-padded copy */
            tile(xpad + k0, k, kl, wp + k0 * wr, wr, out, more);
    }
}

/* y = x w for x (n, k), w (k, m), y (n, m), as the header says. */
int cnk_dense_rows(const float *x, int64_t n, int64_t k, const float *w, int64_t m, float *y)
{
    if (n <= 0 || m <= 0) return 0;
    if (k <= 0) {
        memset(y, 0, sizeof(float) * (size_t)(n * m));
        return 0;
    }
    const idx_t npad = (n + RB - 1) / RB * RB;
    float *xpad = calloc((size_t)(RB * k), sizeof(float));
    float *wpad = malloc(sizeof(float) * CB * (size_t)k);
    float *ybuf = malloc(sizeof(float) * CB * (size_t)npad);
    if (!xpad || !wpad || !ybuf) {
        free(xpad);
        free(wpad);
        free(ybuf);
        return -1;
    }
    if (n % RB) memcpy(xpad, x + (n - n % RB) * k, sizeof(float) * (size_t)(n % RB * k));
    for (idx_t j0 = 0; j0 < m; j0 += CB) {
        const idx_t ncols = m - j0 < CB ? m - j0 : CB;
        const float *wp = w + j0;
        idx_t wr = m;
        if (ncols < CB) { /* the last columns, zero-padded */
            memset(wpad, 0, sizeof(float) * CB * (size_t)k);
            for (idx_t q = 0; q < k; q++)
                memcpy(wpad + q * CB, w + q * m + j0, sizeof(float) * (size_t)ncols);
            wp = wpad;
            wr = CB;
        }
        /* K in blocks: a block of the panel stays in L1 while every row block reads it */
        for (idx_t k0 = 0; k0 < k; k0 += KB)
            panel_block(x, n, k, xpad, k0, k - k0 < KB ? k - k0 : KB, wp, wr, ybuf, k0 > 0);
        for (idx_t r = 0; r < n; r++)
            memcpy(y + r * m + j0, ybuf + r * CB, sizeof(float) * (size_t)ncols);
    }
    free(xpad);
    free(wpad);
    free(ybuf);
    return 0;
}
