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
 * panel). The last N mod RB rows go one by one through row1, which streams w row by row
 * with the same explicit fused multiply-adds per element as tile (AVX2 + FMA builds); in
 * builds without FMA they are copied into a zero-padded block for tile itself. K is cut into blocks of KB rows
 * of w, each swept panel after panel (so w is read row by row, as a GEMV reads it, also for
 * wide layers); the partial sums go to memory between blocks and come back unchanged
 * (float32 both ways), so the order of the additions is still k = 0, 1, ..., K-1. Row blocks share each
 * loaded panel row of w, so a batch costs far less than N one-row products. The function
 * holds no global state: several threads may run it at once on disjoint outputs. It returns
 * 0, or -1 when memory could not be allocated.
 */
#include <math.h>
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

#define RB 4    /* rows per block */
#define CB 16   /* columns per panel: two vectors of 8 */
#define KB 128  /* rows of w per block */
#define NB 64   /* rows of x per chunk (bounds the partial-sum buffer) */
#define PF 64   /* floats of a row of w prefetched ahead: the panels that come next */

typedef float v8 __attribute__((vector_size(32)));
typedef ptrdiff_t idx_t;

#if EXACT_MADD
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
 * rows wr apart, out rows outr apart. Not inlined: one copy of the code serves every
 * element. */
static __attribute__((noinline)) void tile(const float *restrict x, idx_t xr, idx_t k,
                                           const float *restrict w, idx_t wr,
                                           float *restrict out, idx_t outr, int more)
{
    v8 acc[RB][2];
    for (int r = 0; r < RB; r++) {
        if (more) {
            memcpy(&acc[r][0], out + r * outr, sizeof acc[r][0]);
            memcpy(&acc[r][1], out + r * outr + 8, sizeof acc[r][1]);
        } else {
            acc[r][0] = acc[r][1] = (v8){0};
        }
    }
    for (idx_t q = 0; q < k; q++) {
        v8 w0, w1;
        __builtin_prefetch(w + q * wr + PF);
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
        memcpy(out + r * outr, &acc[r][0], sizeof acc[r][0]);
        memcpy(out + r * outr + 8, &acc[r][1], sizeof acc[r][1]);
    }
}

#if EXACT_MADD
#define SW 64 /* columns of a one-row strip: eight vectors in registers */

/* acc[j0 .. j0 + SW) += x[q] w[q, j0 ..] for q in [k0, k0 + kl), in order, in registers. */
static inline void strip(const float *restrict x, idx_t k0, idx_t kl, const float *restrict w,
                         idx_t m, idx_t j0, float *restrict acc)
{
    v8 a[SW / 8];
    for (int v = 0; v < SW / 8; v++) memcpy(&a[v], acc + j0 + 8 * v, sizeof a[v]);
    for (idx_t q = k0; q < k0 + kl; q++) {
        const float s = x[q];
        const v8 xv = {s, s, s, s, s, s, s, s};
        const float *wq = w + q * m + j0;
        for (int l = 0; l < SW; l += 16) __builtin_prefetch(wq + 8 * m + l);
        for (int v = 0; v < SW / 8; v++) {
            v8 b;
            memcpy(&b, wq + 8 * v, sizeof b);
            a[v] = madd(xv, b, a[v]);
        }
    }
    for (int v = 0; v < SW / 8; v++) memcpy(acc + j0 + 8 * v, &a[v], sizeof a[v]);
}

/* One row: acc[j] = madd(x[q], w[q, j], acc[j]) for q = 0, 1, ... with the same fused
 * multiply-adds as tile (vector lanes, or fmaf for the last m mod 8 columns: one rounding
 * too), so the same bits; w read in blocks of KB rows, strip by strip (SW columns in
 * registers), the columns left over through memory. acc: m floats of scratch. */
static __attribute__((noinline)) void row1(const float *restrict x, idx_t k,
                                           const float *restrict w, idx_t m,
                                           float *restrict acc, float *restrict y)
{
    const idx_t ms = m / SW * SW, mv = m / 8 * 8;
    memset(acc, 0, sizeof(float) * (size_t)m);
    for (idx_t k0 = 0; k0 < k; k0 += KB) {
        const idx_t kl = k - k0 < KB ? k - k0 : KB;
        for (idx_t j0 = 0; j0 < ms; j0 += SW) strip(x, k0, kl, w, m, j0, acc);
        for (idx_t q = k0; q < k0 + kl && ms < m; q++) {
            const float s = x[q];
            const v8 xv = {s, s, s, s, s, s, s, s};
            const float *wq = w + q * m;
            for (idx_t j = ms; j < mv; j += 8) {
                v8 c, b;
                memcpy(&c, acc + j, sizeof c);
                memcpy(&b, wq + j, sizeof b);
                c = madd(xv, b, c);
                memcpy(acc + j, &c, sizeof c);
            }
            for (idx_t j = mv; j < m; j++) acc[j] = fmaf(s, wq[j], acc[j]);
        }
    }
    memcpy(y, acc, sizeof(float) * (size_t)m);
}
#endif

/* Rows [0, n) of x (n <= NB, rows k apart; xpad: the last n mod RB rows zero-padded to RB)
 * times rows [k0, k0 + kl) of one panel of w (wp, rows wr apart), into the partial sums
 * ybuf (rows outr apart), added to them when ``more``. */
static void panel_rows(const float *x, idx_t n, idx_t k, const float *xpad, idx_t k0,
                       idx_t kl, const float *wp, idx_t wr, float *ybuf, idx_t outr, int more)
{
    for (idx_t n0 = 0; n0 < n; n0 += RB) {
        const idx_t rows = n - n0 < RB ? n - n0 : RB;
        float *out = ybuf + n0 * outr;
        if (rows == RB)
            tile(x + n0 * k + k0, k, kl, wp, wr, out, outr, more);
        else /* the last rows through their zero-padded copy (builds without FMA) */
            tile(xpad + k0, k, kl, wp, wr, out, outr, more);
    }
}

/* y rows [0, n) (n <= NB) of x w; mp = m rounded up to CB; wpad: the last partial panel of
 * w zero-padded (K rows of CB), ybuf: RB-padded rows of mp partial sums. */
static void chunk(const float *x, idx_t n, idx_t k, const float *w, idx_t m, idx_t mp,
                  const float *wpad, float *xpad, float *ybuf, float *y)
{
    if (!EXACT_MADD && n % RB) {
        memset(xpad, 0, sizeof(float) * RB * (size_t)k);
        memcpy(xpad, x + (n - n % RB) * k, sizeof(float) * (size_t)(n % RB * k));
    }
    for (idx_t k0 = 0; k0 < k; k0 += KB) {
        const idx_t kl = k - k0 < KB ? k - k0 : KB;
        for (idx_t j0 = 0; j0 < mp; j0 += CB) {
            const int full = j0 + CB <= m;
            const float *wp = full ? w + k0 * m + j0 : wpad + k0 * CB;
            panel_rows(x, n, k, xpad, k0, kl, wp, full ? m : CB, ybuf + j0, mp, k0 > 0);
        }
    }
    for (idx_t r = 0; r < n; r++) memcpy(y + r * m, ybuf + r * mp, sizeof(float) * (size_t)m);
}

/* y = x w for x (n, k), w (k, m), y (n, m), as the header says. */
int cnk_dense_rows(const float *x, int64_t n, int64_t k, const float *w, int64_t m, float *y)
{
    if (n <= 0 || m <= 0) return 0;
    if (k <= 0) {
        memset(y, 0, sizeof(float) * (size_t)(n * m));
        return 0;
    }
    const idx_t mp = (m + CB - 1) / CB * CB, tail = m % CB;
    /* rows through the tiles: all, or (FMA builds) all but the last n mod RB, streamed */
    const idx_t blocked = EXACT_MADD ? n - n % RB : n;
    const int need_x = blocked % RB != 0, need_w = tail && blocked > 0;
    const idx_t rows = n < NB ? (n + RB - 1) / RB * RB : NB; /* partial sums held at once */
    float *xpad = need_x ? malloc(sizeof(float) * RB * (size_t)k) : NULL;
    float *wpad = need_w ? calloc((size_t)(CB * k), sizeof(float)) : NULL;
    float *ybuf = malloc(sizeof(float) * (size_t)(rows * mp));
    if ((need_x && !xpad) || (need_w && !wpad) || !ybuf) {
        free(xpad);
        free(wpad);
        free(ybuf);
        return -1;
    }
    for (idx_t q = 0; need_w && q < k; q++) /* the last columns, zero-padded */
        memcpy(wpad + q * CB, w + q * m + (m - tail), sizeof(float) * (size_t)tail);
#if EXACT_MADD
    for (idx_t r = blocked; r < n; r++) row1(x + r * k, k, w, m, ybuf, y + r * m);
#endif
    for (idx_t n0 = 0; n0 < blocked; n0 += NB)
        chunk(x + n0 * k, blocked - n0 < NB ? blocked - n0 : NB, k, w, m, mp, wpad, xpad, ybuf,
              y + n0 * m);
    free(xpad);
    free(wpad);
    free(ybuf);
    return 0;
}
