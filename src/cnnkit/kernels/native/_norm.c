/* cnnkit's optional native batch-normalisation kernels (training mode), loaded with ctypes.
 *
 * A plain C library (no Python C API). Every array is float32, C-contiguous, channels-last,
 * seen as (rows, C): the caller (native/norm.py) passes one block of rows of the full
 * (M, C) array, and combines the blocks' partial sums (float64) in block order.
 *
 *   cnk_bn_stats       s1[c] = sum_r (x[r, c] - t[c]),  s2[c] = sum_r (x[r, c] - t[c])^2
 *                      (float64 sums; t = a shift near the mean, e.g. the first row, so that
 *                      var = (s2 - s1^2 / M) / M does not cancel)
 *   cnk_bn_normalize   y[r, c] = (x[r, c] - mu[c]) * a[c] + b[c]
 *   cnk_bn_grad_sums   sg[c] = sum_r g[r, c],  sgx[c] = sum_r g[r, c] * (x[r, c] - mu[c])
 *                      (float64 sums)
 *   cnk_bn_grad_input  dx[r, c] = g[r, c] * k1[c] + (x[r, c] - mu[c]) * k2[c] + k3[c]
 *   cnk_relu_backward  o[i] = g[i] * [x[i] > 0]   (flat arrays)
 *   cnk_relu_forward   o[i] = x[i] < 0 ? 0 : x[i]   (flat arrays)
 *   cnk_maxpool2x2_*   2x2 max pooling at stride 2 and its backward (see below)
 *   cnk_avgpool2x2_*   2x2 average pooling at stride 2 and its backward (see below)
 *
 * The sums run over tiles of TILE_ROWS rows (in L1 after the first chunk reads them) and
 * chunks of CHUNK channels, 4 at a time, whose float64 accumulators stay in registers.
 */

#include <stdint.h>
#include <string.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#define CNK_ABI_VERSION 1
#include "cnk_abi.h"

#define CHUNK 16
#define TILE_ROWS 64

/* The float64 sums use 4-double vectors (32 bytes): AVX2's width. 8-double generic vectors
 * were kept in memory and moved through general registers on targets without 512-bit
 * registers (the AVX2 and baseline builds), ~5x slower than the loads they sum. Each chunk
 * of 16 channels is summed as 4 groups of 4 in turn (sumq_* below), each in registers. */
typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));

/* 4 floats from p (any alignment) widened to doubles. */
static inline v4d load4(const float *p)
{
#if defined(__AVX__)
    return (v4d)_mm256_cvtps_pd(_mm_loadu_ps(p));
#else
    v4f v;
    memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, v4d);
#endif
}

static inline v4d loadd(const double *p)
{
    v4d v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void stored(double *p, v4d v) { memcpy(p, &v, sizeof v); }

/* s1 += sum (x - t), s2 += sum (x - t)^2 over rows [0, n) and channels [c0, c0 + 4): even
 * and odd rows into separate accumulators (short add chains), summed at the end (a fixed
 * order: results depend on n only, and are those of every build). */
static void stats_quad(const float *restrict x, int64_t n, int64_t c, int64_t c0,
                       const float *restrict t, double *restrict s1, double *restrict s2)
{
    const v4d z = {0};
    v4d sh = load4(t + c0);
    v4d a = z, b = z, e = z, f = z;
    const float *xr = x + c0;
    int64_t r = 0;
    for (; r + 1 < n; r += 2, xr += 2 * c) {
        v4d d = load4(xr) - sh, g = load4(xr + c) - sh;
        a += d;
        b += d * d;
        e += g;
        f += g * g;
    }
    if (r < n) {
        v4d d = load4(xr) - sh;
        a += d;
        b += d * d;
    }
    stored(s1 + c0, loadd(s1 + c0) + (a + e));
    stored(s2 + c0, loadd(s2 + c0) + (b + f));
}

static void stats_chunk(const float *restrict x, int64_t n, int64_t c, int64_t c0,
                        const float *restrict t, double *restrict s1, double *restrict s2)
{
    for (int64_t q = 0; q < CHUNK; q += 4)
        stats_quad(x, n, c, c0 + q, t, s1, s2);
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
    int64_t full = c - c % CHUNK, quads = c - c % 4;
    for (int64_t j = 0; j < c; j++) {
        s1[j] = 0.0;
        s2[j] = 0.0;
    }
    for (int64_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
        int64_t n = rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS;
        const float *xt = x + r0 * c;
        for (int64_t c0 = 0; c0 < full; c0 += CHUNK)
            stats_chunk(xt, n, c, c0, t, s1, s2);
        for (int64_t c0 = full; c0 < quads; c0 += 4)
            stats_quad(xt, n, c, c0, t, s1, s2);
        if (quads < c)
            stats_tail(xt, n, c, quads, t, s1, s2);
    }
}

/* sg += sum g, sgx += sum g * (x - mu) over rows [0, n) and channels [c0, c0 + 4)
 * (vectorised as stats_quad). */
static void grad_quad(const float *restrict g, const float *restrict x, int64_t n, int64_t c,
                      int64_t c0, const float *restrict mu, double *restrict sg,
                      double *restrict sgx)
{
    const v4d z = {0};
    v4d m = load4(mu + c0);
    v4d a = z, b = z, e = z, f = z;
    const float *gr = g + c0, *xr = x + c0;
    int64_t r = 0;
    for (; r + 1 < n; r += 2, gr += 2 * c, xr += 2 * c) {
        v4d g0 = load4(gr), h0 = load4(gr + c);
        a += g0;
        b += g0 * (load4(xr) - m);
        e += h0;
        f += h0 * (load4(xr + c) - m);
    }
    if (r < n) {
        v4d g0 = load4(gr);
        a += g0;
        b += g0 * (load4(xr) - m);
    }
    stored(sg + c0, loadd(sg + c0) + (a + e));
    stored(sgx + c0, loadd(sgx + c0) + (b + f));
}

static void grad_chunk(const float *restrict g, const float *restrict x, int64_t n, int64_t c,
                       int64_t c0, const float *restrict mu, double *restrict sg,
                       double *restrict sgx)
{
    for (int64_t q = 0; q < CHUNK; q += 4)
        grad_quad(g, x, n, c, c0 + q, mu, sg, sgx);
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
    int64_t full = c - c % CHUNK, quads = c - c % 4;
    for (int64_t j = 0; j < c; j++) {
        sg[j] = 0.0;
        sgx[j] = 0.0;
    }
    for (int64_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
        int64_t n = rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS;
        const float *gt = g + r0 * c, *xt = x + r0 * c;
        for (int64_t c0 = 0; c0 < full; c0 += CHUNK)
            grad_chunk(gt, xt, n, c, c0, mu, sg, sgx);
        for (int64_t c0 = full; c0 < quads; c0 += 4)
            grad_quad(gt, xt, n, c, c0, mu, sg, sgx);
        if (quads < c)
            grad_tail(gt, xt, n, c, quads, mu, sg, sgx);
    }
}

typedef float v16f __attribute__((vector_size(64)));

static inline v16f loadf(const float *p)
{
    v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void storef(float *p, v16f v) { memcpy(p, &v, sizeof v); }

/* y = (x - mu) * a + b on rows [0, rows): 16-wide float vectors, then the channels left. */
void cnk_bn_normalize(const float *restrict x, int64_t rows, int64_t c,
                      const float *restrict mu, const float *restrict a,
                      const float *restrict b, float *restrict y)
{
    int64_t full = c - c % 16;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        float *yr = y + r * c;
        for (int64_t j = 0; j < full; j += 16)
            storef(yr + j, (loadf(xr + j) - loadf(mu + j)) * loadf(a + j) + loadf(b + j));
        for (int64_t j = full; j < c; j++)
            yr[j] = (xr[j] - mu[j]) * a[j] + b[j];
    }
}

/* dx = g * k1 + (x - mu) * k2 + k3 on rows [0, rows) (vectorised as cnk_bn_normalize);
 * dx may be g itself (each element is read before it is written). */
void cnk_bn_grad_input(const float *g, const float *restrict x, int64_t rows,
                       int64_t c, const float *restrict mu, const float *restrict k1,
                       const float *restrict k2, const float *restrict k3, float *dx)
{
    int64_t full = c - c % 16;
    for (int64_t r = 0; r < rows; r++) {
        const float *gr = g + r * c, *xr = x + r * c;
        float *dr = dx + r * c;
        for (int64_t j = 0; j < full; j += 16)
            storef(dr + j, loadf(gr + j) * loadf(k1 + j)
                   + (loadf(xr + j) - loadf(mu + j)) * loadf(k2 + j) + loadf(k3 + j));
        for (int64_t j = full; j < c; j++)
            dr[j] = gr[j] * k1[j] + (xr[j] - mu[j]) * k2[j] + k3[j];
    }
}

/* ---- batch norm fused with the ReLU (act 1) or ReLU6 (act 2) that reads only its output ----
 * Forward: y = act((x - mu) * a + b), act the clip of cnk_relu_forward (NaN and -0 kept).
 * Backward: the activation's error g times its mask m = [0 < y] (ReLU) or [0 < y < 6] (ReLU6)
 * (y in (0, 6) exactly where the batch norm's output is), then the batch-norm backward on
 * g * m: the same float32 products as the two kernels one after the other, without the
 * masked error ever being stored. */
static inline float act_clip(float v, int act)
{
    v = v < 0.0f ? 0.0f : v;
    return (act == 2 && v > 6.0f) ? 6.0f : v;
}

/* The activation's mask as 0 / 1, one loop per activation (the compiler vectorises each). */
#define MASK_RELU(y) ((y) > 0.0f ? 1.0f : 0.0f)
#define MASK_RELU6(y) ((((y) > 0.0f) & ((y) < 6.0f)) ? 1.0f : 0.0f)

void cnk_bn_normalize_act(const float *restrict x, int64_t rows, int64_t c,
                          const float *restrict mu, const float *restrict a,
                          const float *restrict b, float *restrict y, int64_t act)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        float *yr = y + r * c;
        for (int64_t j = 0; j < c; j++)
            yr[j] = act_clip((xr[j] - mu[j]) * a[j] + b[j], (int)act);
    }
}

/* gm = g * mask(y) for one tile of rows (channels-last, row length c), into scratch. */
static void masked_tile(const float *restrict g, const float *restrict y, int64_t n, int64_t c,
                        int act, float *restrict gm)
{
    if (act == 2)
        for (int64_t i = 0; i < n * c; i++)
            {
                float m = MASK_RELU6(y[i]); /* a variable: as one expression, not vectorised */
                gm[i] = g[i] * m;
            }
    else
        for (int64_t i = 0; i < n * c; i++)
            {
                float m = MASK_RELU(y[i]);
                gm[i] = g[i] * m;
            }
}

/* cnk_bn_grad_sums on g * mask(y), tile by tile through an L1-sized scratch of gm. */
void cnk_bn_grad_sums_act(const float *g, const float *y, const float *x, int64_t rows,
                          int64_t c, const float *mu, double *sg, double *sgx, int64_t act,
                          float *scratch)
{
    int64_t full = c - c % CHUNK, quads = c - c % 4;
    for (int64_t j = 0; j < c; j++) {
        sg[j] = 0.0;
        sgx[j] = 0.0;
    }
    for (int64_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
        int64_t n = rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS;
        const float *xt = x + r0 * c;
        masked_tile(g + r0 * c, y + r0 * c, n, c, (int)act, scratch);
        for (int64_t c0 = 0; c0 < full; c0 += CHUNK)
            grad_chunk(scratch, xt, n, c, c0, mu, sg, sgx);
        for (int64_t c0 = full; c0 < quads; c0 += 4)
            grad_quad(scratch, xt, n, c, c0, mu, sg, sgx);
        if (quads < c)
            grad_tail(scratch, xt, n, c, quads, mu, sg, sgx);
    }
}

/* dx = (g * mask(y)) * k1 + (x - mu) * k2 + k3 on rows [0, rows) for one mask. */
#define GRAD_INPUT_ACT(MASK)                                                                  \
    for (int64_t r = 0; r < rows; r++) {                                                      \
        const float *gr = g + r * c, *yr = y + r * c, *xr = x + r * c;                        \
        float *dr = dx + r * c;                                                               \
        for (int64_t j = 0; j < c; j++) {                                                     \
            float m = MASK(yr[j]);                                                            \
            float gm = gr[j] * m;                                                             \
            dr[j] = gm * k1[j] + (xr[j] - mu[j]) * k2[j] + k3[j];                             \
        }                                                                                     \
    }

/* dx = (g * mask(y)) * k1 + (x - mu) * k2 + k3; dx may be g itself. */
void cnk_bn_grad_input_act(const float *g, const float *y, const float *restrict x,
                           int64_t rows, int64_t c, const float *restrict mu,
                           const float *restrict k1, const float *restrict k2,
                           const float *restrict k3, float *dx, int64_t act)
{
    if (act == 2) {
        GRAD_INPUT_ACT(MASK_RELU6)
    } else {
        GRAD_INPUT_ACT(MASK_RELU)
    }
}

/* ReLU backward, the step that usually follows batch norm's forward in reverse:
 * o[i] = g[i] * (x[i] > 0 ? 1 : 0) (as NumPy's g * (x > 0): NaN or infinite g gives NaN where
 * x <= 0, a negative g gives -0); o may be g itself. */
void cnk_relu_backward(const float *g, const float *restrict x, int64_t n, float *o)
{
    /* A plain loop, vectorised by the compiler at each target's width: the 16-lane
     * comparisons of the generic vectors were lowered to scalar code where the target has
     * no 512-bit compare (the baseline and AVX2 builds). */
    for (int64_t i = 0; i < n; i++) {
        float m = x[i] > 0.0f ? 1.0f : 0.0f;
        o[i] = g[i] * m;
    }
}

/* ReLU forward: o[i] = x[i] < 0 ? +0 : x[i] (as NumPy's clip(x, 0, inf): NaN and -0 are
 * kept); o may be x itself. A plain loop for the same reason as the backward's (the generic
 * 16-lane form compiled to a compare and a branch per value on AVX2: ~25x slower). */
void cnk_relu_forward(const float *x, int64_t n, float *o)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        o[i] = v < 0.0f ? 0.0f : v;
    }
}

/* ---- 2x2 max pooling at stride 2 (no padding), the tournament form of pool.py ----------
 * x (n, h, w, c) -> y (n, h/2, w/2, c) (odd last row / column dropped):
 *   a = max(x00, x01), b = max(x10, x11), y = max(b, a), with NumPy's maximum
 *   (max(p, q) = p if p >= q or p is NaN, else q), and the comparisons kept as 0/1 bytes
 *   m01 = x01 > x00, m23 = x11 > x10, mab = b > a (ties go to the first tap).
 * The backward routes g to the winning tap: g * [!mab & !m01] to x00, g * [!mab & m01] to
 * x01, g * [mab & !m23] to x10, g * [mab & m23] to x11 (a multiply, as NumPy's g * mask).
 * Vectorised over 16 channels: c must be a multiple of 16. */
typedef int32_t v16i __attribute__((vector_size(64)));
typedef uint8_t v16b __attribute__((vector_size(16)));

static inline v16f load_flags(const uint8_t *p)
{
    v16b b;
    memcpy(&b, p, sizeof b);
    return __builtin_convertvector(b, v16f);
}

/* The forward's compares at the target's own vector width (16 / 8 / 4 lanes with AVX-512 /
 * AVX / SSE2): 16-lane compares producing masks were lowered to a compare and a branch per
 * value where the target has no 512-bit compare (measured 3.5-10x slower on AVX2). */
#if defined(__AVX512F__)
#define PW 16
#elif defined(__AVX__)
#define PW 8
#else
#define PW 4
#endif
typedef float pvf __attribute__((vector_size(PW * 4)));
typedef int32_t pvi __attribute__((vector_size(PW * 4)));
typedef uint8_t pvb __attribute__((vector_size(PW)));

static inline pvf ploadf(const float *p)
{
    pvf v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* NumPy's maximum: p where p >= q or p is NaN, else q. */
static inline pvf np_maxp(pvf p, pvf q)
{
    pvi take_p = (p >= q) | (p != p);
    return (pvf)(((pvi)p & take_p) | ((pvi)q & ~take_p));
}

/* A lane mask (all ones / zeros) as PW bytes 1 / 0. */
static inline void pstore_flags(uint8_t *p, pvi m)
{
    pvb b = __builtin_convertvector(m & 1, pvb);
    memcpy(p, &b, sizeof b);
}

/* c must be a multiple of 16 (the caller checks), so of PW. */
void cnk_maxpool2x2_forward(const float *restrict x, int64_t n, int64_t h, int64_t w,
                            int64_t c, float *restrict y, uint8_t *restrict m01,
                            uint8_t *restrict m23, uint8_t *restrict mab)
{
    int64_t ho = h / 2, wo = w / 2;
    for (int64_t i = 0; i < n; i++)
        for (int64_t oy = 0; oy < ho; oy++) {
            const float *r0 = x + ((i * h + 2 * oy) * w) * c, *r1 = r0 + w * c;
            int64_t o = ((i * ho + oy) * wo) * c;
            for (int64_t ox = 0; ox < wo; ox++, o += c) {
                const float *p00 = r0 + 2 * ox * c, *p01 = p00 + c;
                const float *p10 = r1 + 2 * ox * c, *p11 = p10 + c;
                for (int64_t k = 0; k < c; k += PW) {
                    pvf x00 = ploadf(p00 + k), x01 = ploadf(p01 + k);
                    pvf x10 = ploadf(p10 + k), x11 = ploadf(p11 + k);
                    pvf a = np_maxp(x00, x01), b = np_maxp(x10, x11);
                    pvf top = np_maxp(b, a);
                    pstore_flags(m01 + o + k, x01 > x00);
                    pstore_flags(m23 + o + k, x11 > x10);
                    pstore_flags(mab + o + k, b > a);
                    memcpy(y + o + k, &top, sizeof top);
                }
            }
        }
}

/* c must be a multiple of 16 (the caller checks). */
void cnk_maxpool2x2_backward(const float *restrict g, const uint8_t *restrict m01,
                             const uint8_t *restrict m23, const uint8_t *restrict mab,
                             int64_t n, int64_t h, int64_t w, int64_t c, float *restrict gx)
{
    int64_t ho = h / 2, wo = w / 2;
    for (int64_t i = 0; i < n; i++)
        for (int64_t oy = 0; oy < ho; oy++) {
            float *r0 = gx + ((i * h + 2 * oy) * w) * c, *r1 = r0 + w * c;
            int64_t o = ((i * ho + oy) * wo) * c;
            for (int64_t ox = 0; ox < wo; ox++, o += c) {
                float *p00 = r0 + 2 * ox * c, *p01 = p00 + c;
                float *p10 = r1 + 2 * ox * c, *p11 = p10 + c;
                for (int64_t k = 0; k < c; k += 16) {
                    v16f gv = loadf(g + o + k), low = load_flags(mab + o + k);
                    v16f right = load_flags(m01 + o + k), low_right = load_flags(m23 + o + k);
                    v16f top = 1.0f - low;
                    storef(p00 + k, gv * (top * (1.0f - right)));
                    storef(p01 + k, gv * (top * right));
                    storef(p10 + k, gv * (low * (1.0f - low_right)));
                    storef(p11 + k, gv * (low * low_right));
                }
            }
        }
}

/* ---- 2x2 average pooling at stride 2 (no padding), any number of channels ---------------
 * x (n, h, w, c) -> y (n, h/2, w/2, c) (odd last row / column dropped):
 *   y = ((x00 + x10) + (x01 + x11)) * 0.25   (pool.py's order: the two rows first)
 * backward: every tap of a window gets g * 0.25; an odd last row / column of gx gets 0. */
/* One image row pair (forward) / one output row (backward); ``c`` is a constant where
 * inlined from the switches below (small channel counts: the loops unrolled). */
static inline __attribute__((always_inline)) void avg_row_fwd(
    const float *restrict r0, const float *restrict r1, int64_t wo, const int64_t c,
    float *restrict yo)
{
    for (int64_t ox = 0; ox < wo; ox++) {
        const float *p00 = r0 + 2 * ox * c, *p10 = r1 + 2 * ox * c;
        float *q = yo + ox * c;
        for (int64_t k = 0; k < c; k++)
            q[k] = ((p00[k] + p10[k]) + (p00[c + k] + p10[c + k])) * 0.25f;
    }
}

static inline __attribute__((always_inline)) void avg_row_bwd(
    const float *restrict go, int64_t wo, const int64_t c, float *restrict r0)
{
    for (int64_t ox = 0; ox < wo; ox++) {
        float *p = r0 + 2 * ox * c;
        const float *q = go + ox * c;
        for (int64_t k = 0; k < c; k++) {
            float v = q[k] * 0.25f;
            p[k] = v;
            p[c + k] = v;
        }
    }
}

#define AVG_CASES(CALL) \
    switch (c) {                                                                              \
    case 1: CALL(1); break;                                                                   \
    case 3: CALL(3); break;                                                                   \
    case 6: CALL(6); break;                                                                   \
    case 8: CALL(8); break;                                                                   \
    case 16: CALL(16); break;                                                                 \
    default: CALL(c); break;                                                                  \
    }

void cnk_avgpool2x2_forward(const float *restrict x, int64_t n, int64_t h, int64_t w,
                            int64_t c, float *restrict y)
{
    int64_t ho = h / 2, wo = w / 2;
    for (int64_t i = 0; i < n; i++)
        for (int64_t oy = 0; oy < ho; oy++) {
            const float *r0 = x + ((i * h + 2 * oy) * w) * c, *r1 = r0 + w * c;
            float *yo = y + ((i * ho + oy) * wo) * c;
#define FWD(C) avg_row_fwd(r0, r1, wo, C, yo)
            AVG_CASES(FWD)
#undef FWD
        }
}

void cnk_avgpool2x2_backward(const float *restrict g, int64_t n, int64_t h, int64_t w,
                             int64_t c, float *restrict gx)
{
    int64_t ho = h / 2, wo = w / 2;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t oy = 0; oy < ho; oy++) {
            float *r0 = gx + ((i * h + 2 * oy) * w) * c, *r1 = r0 + w * c;
            const float *go = g + ((i * ho + oy) * wo) * c;
#define BWD(C) avg_row_bwd(go, wo, C, r0)
            AVG_CASES(BWD)
#undef BWD
            if (w & 1) memset(r0 + 2 * wo * c, 0, (size_t)c * sizeof(float));
            memcpy(r1, r0, (size_t)(w * c) * sizeof(float));
        }
        if (h & 1) memset(gx + ((i * h + h - 1) * w) * c, 0, (size_t)(w * c) * sizeof(float));
    }
}
