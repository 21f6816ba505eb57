/* cnnkit's optional native int8 convolution kernels, loaded with ctypes (native/qconv.py).
 *
 * A plain C library (no Python C API). Activations are 8-bit (uint8 or int8, channels-last,
 * C-contiguous), weights 8-bit symmetric, widened to int16 and packed by the caller
 * (kernels/qconv.py). Every product and sum is exact in int32:
 *
 *   acc[m, o] = sum_{i, j, c} xq[n, oy*SH + i*DH - PT, ox*SW + j*DW - PL, c] * wq[i, j, c, o]
 *               (taps outside the image read the input zero point XZ)
 *   t         = (float) (acc[m, o] + bias[o]) * mult[o]          (float32, one rounding each)
 *   out       = f32: t;  u8 / s8: clamp(rint(t) + YZ, LO, HI)     (rint: half to even)
 *
 * (bias already holds - XZ * sum wq[., o] and the quantized float bias.) The requantization
 * is a float32 scale, not a fixed-point multiplier; the NumPy path (kernels/qconv.py) computes
 * the same float32 operations in the same order, so both give the same integers.
 *
 * Two convolution paths: the byte path (cnk_qconv2d_u8_rows, below, for weights within
 * +-64: vpmaddubsw) and this int16 one (any 8-bit weights).
 *
 * The convolution is an implicit GEMM: for each block of MR output pixels the patches are
 * gathered (widened to int16) into a small buffer, and the AVX2 micro-kernel multiplies them
 * by the packed weights, 16 output channels at a time, with vpmaddwd (two int16 products
 * summed into each int32 lane, exact for any 8-bit operands) and vpaddd. Packed weights:
 * bp[nb][kp][16][2] int16, kp = ceil(K / 2) pairs of the K = KH*KW*C axis (zero padded),
 * nb = ceil(COUT / 16) column blocks (zero padded).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#define CNK_ABI_VERSION 2
#include "cnk_abi.h"

#define MR 4
#define NR 16

typedef struct {
    int64_t h, w, c, kh, kw, oh, ow, sh, sw, dh, dw, pt, pl;
} geom_t;

/* dst[t] = src[t] as int16 (uint8 or int8 source), t < c. */
static inline void widen(const uint8_t *src, int is_signed, int16_t *dst, int64_t c)
{
    int64_t t = 0;
#if defined(__AVX2__)
    for (; t + 16 <= c; t += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(src + t));
        __m256i wv = is_signed ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v);
        _mm256_storeu_si256((__m256i *)(dst + t), wv);
    }
#endif
    if (is_signed)
        for (; t < c; t++) dst[t] = (int8_t)src[t];
    else
        for (; t < c; t++) dst[t] = src[t];
}

/* Row r of the patch matrix for output pixel m, widened to int16, into a (K rounded up to
 * even; the pad slot holds 0, matching the zero-padded weights). A tap row whose KW taps all
 * lie inside the image at dilation 1 is one contiguous run of KW*C input values. */
static void gather_row(const uint8_t *x, int is_signed, int16_t xz, const geom_t *g,
                       int64_t m, int16_t *a, int64_t kpad)
{
    int64_t per_img = g->oh * g->ow;
    int64_t n = m / per_img, rem = m % per_img, oy = rem / g->ow, ox = rem % g->ow;
    int64_t c = g->c, k = 0, ix0 = ox * g->sw - g->pl;
    int whole = g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->w;
    for (int64_t i = 0; i < g->kh; i++) {
        int64_t iy = oy * g->sh + i * g->dh - g->pt;
        if (iy < 0 || iy >= g->h) {
            for (int64_t t = 0; t < g->kw * c; t++) a[k + t] = xz;
            k += g->kw * c;
            continue;
        }
        const uint8_t *row = x + (n * g->h + iy) * g->w * c;
        if (whole) {
            widen(row + ix0 * c, is_signed, a + k, g->kw * c);
            k += g->kw * c;
            continue;
        }
        for (int64_t j = 0; j < g->kw; j++, k += c) {
            int64_t ix = ix0 + j * g->dw;
            if (ix < 0 || ix >= g->w)
                for (int64_t t = 0; t < c; t++) a[k + t] = xz;
            else
                widen(row + ix * c, is_signed, a + k, c);
        }
    }
    for (; k < kpad; k++) a[k] = 0;
}

/* One output value: requantized (kind 0 uint8, 1 int8) or scaled float (kind 2). */
static inline void store_one(void *out, int kind, int64_t idx, int32_t acc, float mult,
                             int32_t yz, int32_t lo, int32_t hi)
{
    float t = (float)acc * mult;
    if (kind == 2) { ((float *)out)[idx] = t; return; }
    int32_t q = (int32_t)nearbyintf(t) + yz;
    q = q < lo ? lo : (q > hi ? hi : q);
    if (kind == 0) ((uint8_t *)out)[idx] = (uint8_t)q;
    else ((int8_t *)out)[idx] = (int8_t)q;
}

typedef struct {
    const int32_t *bias;
    const float *mult;
    int kind;
    int32_t yz, lo, hi;
    void *out;
    int64_t cout;
} requant_t;

/* acc[r][NR] of rows m0 .. m0 + rows - 1, columns o0 .. o0 + NR - 1 (only < cout stored). */
static void store_block(const requant_t *rq, const int32_t *acc, int64_t m0, int rows,
                        int64_t o0)
{
    int64_t ncol = rq->cout - o0 < NR ? rq->cout - o0 : NR;
    for (int r = 0; r < rows; r++)
        for (int64_t o = 0; o < ncol; o++)
            store_one(rq->out, rq->kind, (m0 + r) * rq->cout + o0 + o,
                      acc[r * NR + o] + rq->bias[o0 + o], rq->mult[o0 + o], rq->yz, rq->lo,
                      rq->hi);
}

#if defined(__AVX2__)
/* acc (MR x NR int32) = a (MR rows of kpad int16) x bp (one packed column block). */
static void micro_kernel(const int16_t *a, int64_t kpad, const int16_t *bp, int32_t *acc)
{
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00;
    __m256i c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    const int16_t *a0 = a, *a1 = a + kpad, *a2 = a + 2 * kpad, *a3 = a + 3 * kpad;
    int64_t kp = kpad / 2;
    for (int64_t p = 0; p < kp; p++) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(bp + p * 2 * NR));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + p * 2 * NR + 16));
        int32_t v;
        memcpy(&v, a0 + 2 * p, 4);
        __m256i x = _mm256_set1_epi32(v);
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x, b0));
        c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x, b1));
        memcpy(&v, a1 + 2 * p, 4);
        x = _mm256_set1_epi32(v);
        c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x, b0));
        c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x, b1));
        memcpy(&v, a2 + 2 * p, 4);
        x = _mm256_set1_epi32(v);
        c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(x, b0));
        c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(x, b1));
        memcpy(&v, a3 + 2 * p, 4);
        x = _mm256_set1_epi32(v);
        c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(x, b0));
        c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(x, b1));
    }
    /* the packed pair layout interleaves columns: lane l of b0 holds column l of the first
     * 8, lane l of b1 column 8 + l */
    _mm256_storeu_si256((__m256i *)(acc + 0), c00);
    _mm256_storeu_si256((__m256i *)(acc + 8), c01);
    _mm256_storeu_si256((__m256i *)(acc + 16), c10);
    _mm256_storeu_si256((__m256i *)(acc + 24), c11);
    _mm256_storeu_si256((__m256i *)(acc + 32), c20);
    _mm256_storeu_si256((__m256i *)(acc + 40), c21);
    _mm256_storeu_si256((__m256i *)(acc + 48), c30);
    _mm256_storeu_si256((__m256i *)(acc + 56), c31);
}

/* A full MR x NR block of uint8 / int8 outputs requantized with AVX2 (same float32
 * operations as store_one: cvt, mul, round to nearest even, add, clamp). */
static void store_block_vec(const requant_t *rq, const int32_t *acc, int64_t m0, int64_t o0)
{
    __m256i b0 = _mm256_loadu_si256((const __m256i *)(rq->bias + o0));
    __m256i b1 = _mm256_loadu_si256((const __m256i *)(rq->bias + o0 + 8));
    __m256 s0 = _mm256_loadu_ps(rq->mult + o0), s1 = _mm256_loadu_ps(rq->mult + o0 + 8);
    __m256i z = _mm256_set1_epi32(rq->yz), lo = _mm256_set1_epi32(rq->lo);
    __m256i hi = _mm256_set1_epi32(rq->hi);
    for (int r = 0; r < MR; r++) {
        __m256i a0 = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + r * NR)), b0);
        __m256i a1 = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + r * NR + 8)),
                                      b1);
        __m256 t0 = _mm256_mul_ps(_mm256_cvtepi32_ps(a0), s0);
        __m256 t1 = _mm256_mul_ps(_mm256_cvtepi32_ps(a1), s1);
        if (rq->kind == 2) {
            float *o = (float *)rq->out + (m0 + r) * rq->cout + o0;
            _mm256_storeu_ps(o, t0);
            _mm256_storeu_ps(o + 8, t1);
            continue;
        }
        __m256i q0 = _mm256_add_epi32(_mm256_cvtps_epi32(t0), z);
        __m256i q1 = _mm256_add_epi32(_mm256_cvtps_epi32(t1), z);
        q0 = _mm256_min_epi32(_mm256_max_epi32(q0, lo), hi);
        q1 = _mm256_min_epi32(_mm256_max_epi32(q1, lo), hi);
        __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
        __m128i lo128 = _mm256_castsi256_si128(w16), hi128 = _mm256_extracti128_si256(w16, 1);
        __m128i b = rq->kind == 0 ? _mm_packus_epi16(lo128, hi128)
                                  : _mm_packs_epi16(lo128, hi128);
        _mm_storeu_si128((__m128i *)((int8_t *)rq->out + (m0 + r) * rq->cout + o0), b);
    }
}
#else
static void micro_kernel(const int16_t *a, int64_t kpad, const int16_t *bp, int32_t *acc)
{
    for (int r = 0; r < MR; r++) {
        int32_t s[NR] = {0};
        const int16_t *ar = a + r * kpad;
        for (int64_t p = 0; p < kpad / 2; p++) {
            int32_t x0 = ar[2 * p], x1 = ar[2 * p + 1];
            const int16_t *b = bp + p * 2 * NR;
            /* lanes: b[2 l], b[2 l + 1] = column l (l < 8) of the pair; 16 + ... for 8 + l */
            for (int l = 0; l < 8; l++) {
                s[l] += x0 * b[2 * l] + x1 * b[2 * l + 1];
                s[8 + l] += x0 * b[16 + 2 * l] + x1 * b[16 + 2 * l + 1];
            }
        }
        memcpy(acc + r * NR, s, sizeof s);
    }
}
#endif

/* Output pixels [m0, m1) of the convolution (see the top of the file). Returns 0, or -1 when
 * the patch buffer cannot be allocated. */
int cnk_qconv2d_rows(const uint8_t *x, int64_t n, int64_t h, int64_t w, int64_t c,
                     int64_t is_signed, int64_t xz, const int16_t *bp, int64_t kh, int64_t kw,
                     int64_t cout, const int32_t *bias, const float *mult, int64_t oh,
                     int64_t ow, int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt,
                     int64_t pl, int64_t kind, int64_t yz, int64_t lo, int64_t hi, void *out,
                     int64_t m0, int64_t m1)
{
    (void)n;
    geom_t g = {h, w, c, kh, kw, oh, ow, sh, sw, dh, dw, pt, pl};
    int64_t k = kh * kw * c, kpad = (k + 1) / 2 * 2, nb = (cout + NR - 1) / NR;
    requant_t rq = {bias, mult, (int)kind, (int32_t)yz, (int32_t)lo, (int32_t)hi, out, cout};
    int16_t *a = (int16_t *)malloc((size_t)(MR * kpad) * sizeof(int16_t));
    if (a == NULL) return -1;
    int32_t acc[MR * NR];
    for (int64_t m = m0; m < m1; m += MR) {
        int rows = m1 - m < MR ? (int)(m1 - m) : MR;
        for (int r = 0; r < MR; r++) {
            if (r < rows) gather_row(x, (int)is_signed, (int16_t)xz, &g, m + r, a + r * kpad, kpad);
            else memset(a + r * kpad, 0, (size_t)kpad * sizeof(int16_t));
        }
        for (int64_t b = 0; b < nb; b++) {
            micro_kernel(a, kpad, bp + b * (kpad / 2) * 2 * NR, acc);
#if defined(__AVX2__)
            if (rows == MR && b * NR + NR <= cout) {
                store_block_vec(&rq, acc, m, b * NR);
                continue;
            }
#endif
            store_block(&rq, acc, m, rows, b * NR);
        }
    }
    free(a);
    return 0;
}

/* ---- u8 x s8 path: weights in [-64, 64], activations as bytes ----------------------------
 *
 * Packed weights: bq[nb][kq][16][4] int8, kq = ceil(K / 4) quads of the K axis (zero padded),
 * 16 output channels per block; the patches stay bytes (uint8; int8 inputs are moved to
 * uint8 by x + 128, and the caller's bias then holds - 128 sum wq[., o] more). The AVX2
 * micro-kernel multiplies 4 byte pairs per lane with vpmaddubsw (u8 x s8 -> two s16 pair
 * sums) and adds the pairs with vpmaddwd by ones: 32 multiply-adds for 3 instructions.
 * vpmaddubsw saturates a pair sum to int16; with |w| <= 64 every pair sum is at most
 * 255 * 64 * 2 = 32640 < 32767, so nothing saturates and acc is exact. */

#define KQ(k) (((k) + 3) / 4)

/* The output pixel (n, oy, ox) of a flattened index, and the next one. */
typedef struct { int64_t n, oy, ox; } pix_t;

static inline pix_t pix_of(const geom_t *g, int64_t m)
{
    int64_t per_img = g->oh * g->ow, rem = m % per_img;
    pix_t p = {m / per_img, rem / g->ow, rem % g->ow};
    return p;
}

static inline void pix_next(pix_t *p, const geom_t *g)
{
    if (++p->ox == g->ow) {
        p->ox = 0;
        if (++p->oy == g->oh) { p->oy = 0; p->n++; }
    }
}

/* memcpy / memset without a library call for the short runs of small channel counts: below
 * 32 bytes one fixed-size move per set bit of len (a byte loop would be turned back into a
 * memcpy call by the compiler) */
static inline void copy_bytes(uint8_t *d, const uint8_t *s, int64_t len)
{
    if (len >= 32) { memcpy(d, s, (size_t)len); return; }
    int64_t t = 0;
    if (len & 16) { memcpy(d, s, 16); t = 16; }
    if (len & 8) { memcpy(d + t, s + t, 8); t += 8; }
    if (len & 4) { memcpy(d + t, s + t, 4); t += 4; }
    if (len & 2) { memcpy(d + t, s + t, 2); t += 2; }
    if (len & 1) d[t] = s[t];
}

static inline void fill_bytes(uint8_t *d, uint8_t v, int64_t len)
{
    if (len >= 32) { memset(d, v, (size_t)len); return; }
    int64_t t = 0;
    if (len & 16) { memset(d, v, 16); t = 16; }
    if (len & 8) { memset(d + t, v, 8); t += 8; }
    if (len & 4) { memset(d + t, v, 4); t += 4; }
    if (len & 2) { memset(d + t, v, 2); t += 2; }
    if (len & 1) d[t] = v;
}

/* Row r of the byte patch matrix for output pixel p (kpad = 4 KQ(K); pad bytes 0, outside
 * taps the input zero point as a byte; int8 input flipped to uint8 by xor 0x80). */
static void gather_row_u8(const uint8_t *x, int is_signed, uint8_t xzb, const geom_t *g,
                          pix_t p, uint8_t *a, int64_t kpad)
{
    int64_t c = g->c, k = 0, ix0 = p.ox * g->sw - g->pl;
    int whole = g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->w;
    for (int64_t i = 0; i < g->kh; i++) {
        int64_t iy = p.oy * g->sh + i * g->dh - g->pt;
        if (iy < 0 || iy >= g->h) {
            fill_bytes(a + k, xzb, g->kw * c);
            k += g->kw * c;
            continue;
        }
        const uint8_t *row = x + (p.n * g->h + iy) * g->w * c;
        if (whole) {
            copy_bytes(a + k, row + ix0 * c, g->kw * c);
            k += g->kw * c;
            continue;
        }
        for (int64_t j = 0; j < g->kw; j++, k += c) {
            int64_t ix = ix0 + j * g->dw;
            if (ix < 0 || ix >= g->w) fill_bytes(a + k, xzb, c);
            else copy_bytes(a + k, row + ix * c, c);
        }
    }
    if (is_signed)  /* the gathered bytes (taps and xzb alike) are x + 128 */
        for (int64_t t = 0; t < k; t++) a[t] ^= 0x80;
    for (; k < kpad; k++) a[k] = 0;
}

#if defined(__AVX2__)
#define UB_STEP(x, b0, b1, c0, c1, ones) do { \
        c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(_mm256_maddubs_epi16(x, b0), ones)); \
        c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(_mm256_maddubs_epi16(x, b1), ones)); \
    } while (0)

/* acc (MR x NR int32) = rows a[0..MR) (kq quads of bytes) x bq (one packed column block). */
static void micro_kernel_u8(const uint8_t *const *a, int64_t kq, const int8_t *bq,
                            int32_t *acc)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00;
    __m256i c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    const uint8_t *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
    for (int64_t q = 0; q < kq; q++) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(bq + q * 4 * NR));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(bq + q * 4 * NR + 32));
        int32_t v;
        memcpy(&v, a0 + 4 * q, 4);
        __m256i x = _mm256_set1_epi32(v);
        UB_STEP(x, b0, b1, c00, c01, ones);
        memcpy(&v, a1 + 4 * q, 4);
        x = _mm256_set1_epi32(v);
        UB_STEP(x, b0, b1, c10, c11, ones);
        memcpy(&v, a2 + 4 * q, 4);
        x = _mm256_set1_epi32(v);
        UB_STEP(x, b0, b1, c20, c21, ones);
        memcpy(&v, a3 + 4 * q, 4);
        x = _mm256_set1_epi32(v);
        UB_STEP(x, b0, b1, c30, c31, ones);
    }
    _mm256_storeu_si256((__m256i *)(acc + 0), c00);
    _mm256_storeu_si256((__m256i *)(acc + 8), c01);
    _mm256_storeu_si256((__m256i *)(acc + 16), c10);
    _mm256_storeu_si256((__m256i *)(acc + 24), c11);
    _mm256_storeu_si256((__m256i *)(acc + 32), c20);
    _mm256_storeu_si256((__m256i *)(acc + 40), c21);
    _mm256_storeu_si256((__m256i *)(acc + 48), c30);
    _mm256_storeu_si256((__m256i *)(acc + 56), c31);
}

/* acc[0..NR) = one row a (kq quads) x bq: the tail of a piece (batch-1 dense layers) */
static void micro_kernel_u8_row(const uint8_t *a, int64_t kq, const int8_t *bq, int32_t *acc)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c0 = _mm256_setzero_si256(), c1 = c0, d0 = c0, d1 = c0;
    int64_t q = 0;
    for (; q + 2 <= kq; q += 2) {  /* two chains: the adds do not wait on each other */
        int32_t v, u;
        memcpy(&v, a + 4 * q, 4);
        memcpy(&u, a + 4 * q + 4, 4);
        __m256i x = _mm256_set1_epi32(v), y = _mm256_set1_epi32(u);
        const int8_t *b = bq + q * 4 * NR;
        UB_STEP(x, _mm256_loadu_si256((const __m256i *)b),
                _mm256_loadu_si256((const __m256i *)(b + 32)), c0, c1, ones);
        UB_STEP(y, _mm256_loadu_si256((const __m256i *)(b + 64)),
                _mm256_loadu_si256((const __m256i *)(b + 96)), d0, d1, ones);
    }
    for (; q < kq; q++) {
        int32_t v;
        memcpy(&v, a + 4 * q, 4);
        __m256i x = _mm256_set1_epi32(v);
        const int8_t *b = bq + q * 4 * NR;
        UB_STEP(x, _mm256_loadu_si256((const __m256i *)b),
                _mm256_loadu_si256((const __m256i *)(b + 32)), c0, c1, ones);
    }
    _mm256_storeu_si256((__m256i *)acc, _mm256_add_epi32(c0, d0));
    _mm256_storeu_si256((__m256i *)(acc + 8), _mm256_add_epi32(c1, d1));
}
#else
static void micro_kernel_u8_row(const uint8_t *a, int64_t kq, const int8_t *bq, int32_t *acc)
{
    for (int l = 0; l < NR; l++) {
        int32_t s = 0;
        for (int64_t q = 0; q < kq; q++)
            for (int t = 0; t < 4; t++)
                s += (int32_t)a[4 * q + t] * bq[(q * NR + l) * 4 + t];
        acc[l] = s;
    }
}

static void micro_kernel_u8(const uint8_t *const *a, int64_t kq, const int8_t *bq,
                            int32_t *acc)
{
    for (int r = 0; r < MR; r++) {
        int32_t s[NR] = {0};
        for (int64_t q = 0; q < kq; q++)
            for (int l = 0; l < NR; l++)
                for (int t = 0; t < 4; t++)
                    s[l] += (int32_t)a[r][4 * q + t] * bq[(q * NR + l) * 4 + t];
        memcpy(acc + r * NR, s, sizeof s);
    }
}
#endif

/* ---- VNNI (opt-in, see cnk_qconv_vnni) ----------------------------------------------------
 * vpdpbusd adds the 4 products u8 x s8 of each lane's quad to its int32 accumulator with no
 * intermediate saturation, so any 8-bit weights are exact; the packed quads are its operand
 * layout. Two encodings: EVEX ymm (AVX512-VNNI + VL: Cascade Lake and later Xeons, Zen 4) and
 * VEX (AVX-VNNI: Alder Lake, Sapphire Rapids). Compiled per function (target attribute), used
 * only after cnk_qconv_vnni(1) found the CPU feature. */
#if defined(__AVX2__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define CNK_VNNI 1
#define VNNI_KERNEL(name, isa, DP) \
__attribute__((target(isa))) static void name(const uint8_t *const *a, int64_t kq, \
                                              const int8_t *bq, int32_t *acc) \
{ \
    __m256i c[2 * MR]; \
    for (int r = 0; r < 2 * MR; r++) c[r] = _mm256_setzero_si256(); \
    for (int64_t q = 0; q < kq; q++) { \
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(bq + q * 4 * NR)); \
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(bq + q * 4 * NR + 32)); \
        for (int r = 0; r < MR; r++) { \
            int32_t v; \
            memcpy(&v, a[r] + 4 * q, 4); \
            __m256i x = _mm256_set1_epi32(v); \
            c[2 * r] = DP(c[2 * r], x, b0); \
            c[2 * r + 1] = DP(c[2 * r + 1], x, b1); \
        } \
    } \
    for (int r = 0; r < 2 * MR; r++) _mm256_storeu_si256((__m256i *)(acc + 8 * r), c[r]); \
}
VNNI_KERNEL(micro_kernel_vnni512, "avx2,avx512f,avx512vl,avx512vnni", _mm256_dpbusd_epi32)
VNNI_KERNEL(micro_kernel_avxvnni, "avx2,avxvnni", _mm256_dpbusd_avx_epi32)
#endif

static int vnni_mode;  /* 0 off, 1 AVX512-VNNI, 2 AVX-VNNI: set by cnk_qconv_vnni */

/* Switch the VNNI micro-kernel on (want != 0, when the CPU has it) or off; returns the mode
 * now in force (0 off, 1 AVX512-VNNI, 2 AVX-VNNI). Off by default. */
int cnk_qconv_vnni(int64_t want)
{
    vnni_mode = 0;
#if defined(CNK_VNNI)
    if (want) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl"))
            vnni_mode = 1;
        else if (__builtin_cpu_supports("avxvnni"))
            vnni_mode = 2;
    }
#else
    (void)want;
#endif
    return vnni_mode;
}

/* acc (MR x NR) for rows a[0..MR) by the micro-kernel in force: VNNI when switched on (any
 * 8-bit weights), else vpmaddubsw (|wq| <= 64 only). */
static inline void block_u8(const uint8_t *const *a, int64_t kq, const int8_t *bq,
                            int32_t *acc)
{
#if defined(CNK_VNNI)
    if (vnni_mode == 1) { micro_kernel_vnni512(a, kq, bq, acc); return; }
    if (vnni_mode == 2) { micro_kernel_avxvnni(a, kq, bq, acc); return; }
#endif
    micro_kernel_u8(a, kq, bq, acc);
}

/* Output pixels [m0, m1) of the convolution by the u8 x s8 path (weights packed as above,
 * every |wq| <= 64 unless VNNI is on; for int8 input ``bias`` must include - 128 sum wq). A
 * 1x1 stride-1 unpadded convolution of uint8 input with C % 4 == 0 reads its rows in place. */
int cnk_qconv2d_u8_rows(const uint8_t *x, int64_t n, int64_t h, int64_t w, int64_t c,
                        int64_t is_signed, int64_t xz, const int8_t *bq, int64_t kh,
                        int64_t kw, int64_t cout, const int32_t *bias, const float *mult,
                        int64_t oh, int64_t ow, int64_t sh, int64_t sw, int64_t dh,
                        int64_t dw, int64_t pt, int64_t pl, int64_t kind, int64_t yz,
                        int64_t lo, int64_t hi, void *out, int64_t m0, int64_t m1)
{
    (void)n;
    geom_t g = {h, w, c, kh, kw, oh, ow, sh, sw, dh, dw, pt, pl};
    int64_t k = kh * kw * c, kq = KQ(k), kpad = 4 * kq, nb = (cout + NR - 1) / NR;
    int direct = !is_signed && kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0
                 && pl == 0 && oh == h && ow == w && c % 4 == 0;
    requant_t rq = {bias, mult, (int)kind, (int32_t)yz, (int32_t)lo, (int32_t)hi, out, cout};
    uint8_t *buf = (uint8_t *)malloc((size_t)(MR * kpad));
    if (buf == NULL) return -1;
    uint8_t xzb = (uint8_t)(is_signed ? (int8_t)xz : xz);
    int32_t acc[MR * NR];
    const uint8_t *rows_p[MR];
    pix_t p = pix_of(&g, m0);
    for (int64_t m = m0; m < m1; m += MR) {
        int rows = m1 - m < MR ? (int)(m1 - m) : MR;
        for (int r = 0; r < MR; r++) {
            uint8_t *a = buf + r * kpad;
            if (r >= rows) {  /* zero rows, read only by the VNNI kernel on a short tail */
                if (vnni_mode) memset(a, 0, (size_t)kpad);
                rows_p[r] = a;
                continue;
            }
            if (direct) rows_p[r] = x + (m + r) * c;
            else { gather_row_u8(x, (int)is_signed, xzb, &g, p, a, kpad); rows_p[r] = a; }
            pix_next(&p, &g);
        }
        for (int64_t b = 0; b < nb; b++) {
            const int8_t *bb = bq + b * kq * 4 * NR;
            if (rows == MR || vnni_mode) block_u8(rows_p, kq, bb, acc);
            else  /* a short tail: no work on padding rows */
                for (int r = 0; r < rows; r++)
                    micro_kernel_u8_row(rows_p[r], kq, bb, acc + r * NR);
#if defined(__AVX2__)
            if (rows == MR && b * NR + NR <= cout) {
                store_block_vec(&rq, acc, m, b * NR);
                continue;
            }
#endif
            store_block(&rq, acc, m, rows, b * NR);
        }
    }
    free(buf);
    return 0;
}

/* Depthwise convolution (multiplier 1), output pixels [m0, m1): acc[m, c] = sum_{i, j}
 * xq[n, iy, ix, c] * wq[i, j, c] (outside taps read XZ), requantized as above. wq is int32
 * (KH, KW, C); AVX2 takes 8 channels per vector (vpmulld), the rest one at a time. */

#if defined(__AVX2__)
/* 8 accumulators (+ bias) requantized to out[0..8) (kind as store_one) */
static inline void store8_vec(void *out, int kind, int64_t idx, __m256i acc, __m256 s,
                              __m256i z, __m256i lo, __m256i hi)
{
    __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), s);
    if (kind == 2) { _mm256_storeu_ps((float *)out + idx, t); return; }
    __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(t), z);
    q = _mm256_min_epi32(_mm256_max_epi32(q, lo), hi);
    __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    __m128i b = kind == 0 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
    _mm_storel_epi64((__m128i *)((int8_t *)out + idx), b);
}
#endif

/* One output pixel's channels [0, c) of the depthwise convolution; src[tap] is the input
 * pixel the tap reads, or NULL outside the image (then it reads XZ). */
static void depthwise_pixel(const uint8_t *const *src, int is_signed, int32_t xz,
                            const int32_t *wq, int64_t taps, int64_t c, const requant_t *rq,
                            int64_t m)
{
    int64_t t = 0;
#if defined(__AVX2__)
    __m256i z = _mm256_set1_epi32(rq->yz), lo = _mm256_set1_epi32(rq->lo);
    __m256i hi = _mm256_set1_epi32(rq->hi), vxz = _mm256_set1_epi32(xz);
#define DW_LOAD(p, off) (is_signed ? _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((p) + (off)))) \
                                   : _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)((p) + (off)))))
    for (; t + 32 <= c; t += 32) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(rq->bias + t)), a1, a2, a3;
        a1 = _mm256_loadu_si256((const __m256i *)(rq->bias + t + 8));
        a2 = _mm256_loadu_si256((const __m256i *)(rq->bias + t + 16));
        a3 = _mm256_loadu_si256((const __m256i *)(rq->bias + t + 24));
        for (int64_t k = 0; k < taps; k++) {
            const int32_t *wk = wq + k * c + t;
            const uint8_t *p = src[k];
            __m256i x0 = vxz, x1 = vxz, x2 = vxz, x3 = vxz;
            if (p != NULL) {
                x0 = DW_LOAD(p, t); x1 = DW_LOAD(p, t + 8);
                x2 = DW_LOAD(p, t + 16); x3 = DW_LOAD(p, t + 24);
            }
            a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(x0, _mm256_loadu_si256((const __m256i *)wk)));
            a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(x1, _mm256_loadu_si256((const __m256i *)(wk + 8))));
            a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(x2, _mm256_loadu_si256((const __m256i *)(wk + 16))));
            a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(x3, _mm256_loadu_si256((const __m256i *)(wk + 24))));
        }
        int64_t o = m * c + t;
        store8_vec(rq->out, rq->kind, o, a0, _mm256_loadu_ps(rq->mult + t), z, lo, hi);
        store8_vec(rq->out, rq->kind, o + 8, a1, _mm256_loadu_ps(rq->mult + t + 8), z, lo, hi);
        store8_vec(rq->out, rq->kind, o + 16, a2, _mm256_loadu_ps(rq->mult + t + 16), z, lo, hi);
        store8_vec(rq->out, rq->kind, o + 24, a3, _mm256_loadu_ps(rq->mult + t + 24), z, lo, hi);
    }
    for (; t + 8 <= c; t += 8) {
        __m256i acc = _mm256_loadu_si256((const __m256i *)(rq->bias + t));
        for (int64_t k = 0; k < taps; k++) {
            __m256i xv = src[k] != NULL ? DW_LOAD(src[k], t) : vxz;
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(
                xv, _mm256_loadu_si256((const __m256i *)(wq + k * c + t))));
        }
        store8_vec(rq->out, rq->kind, m * c + t, acc, _mm256_loadu_ps(rq->mult + t), z, lo, hi);
    }
#undef DW_LOAD
#endif
    for (; t < c; t++) {
        int32_t acc = 0;
        for (int64_t k = 0; k < taps; k++) {
            int32_t v = xz;
            if (src[k] != NULL)
                v = is_signed ? (int32_t)(int8_t)src[k][t] : (int32_t)src[k][t];
            acc += v * wq[k * c + t];
        }
        store_one(rq->out, rq->kind, m * c + t, acc + rq->bias[t], rq->mult[t], rq->yz,
                  rq->lo, rq->hi);
    }
}

int cnk_qdepthwise_rows(const uint8_t *x, int64_t n, int64_t h, int64_t w, int64_t c,
                        int64_t is_signed, int64_t xz, const int32_t *wq, int64_t kh,
                        int64_t kw, const int32_t *bias, const float *mult, int64_t oh,
                        int64_t ow, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                        int64_t pt, int64_t pl, int64_t kind, int64_t yz, int64_t lo,
                        int64_t hi, void *out, int64_t m0, int64_t m1)
{
    (void)n;
    geom_t g = {h, w, c, kh, kw, oh, ow, sh, sw, dh, dw, pt, pl};
    requant_t rq = {bias, mult, (int)kind, (int32_t)yz, (int32_t)lo, (int32_t)hi, out, c};
    const uint8_t **src = (const uint8_t **)malloc((size_t)(kh * kw) * sizeof(*src));
    if (src == NULL) return -1;
    pix_t p = pix_of(&g, m0);
    for (int64_t m = m0; m < m1; m++, pix_next(&p, &g)) {
        for (int64_t i = 0; i < kh; i++) {
            int64_t iy = p.oy * sh + i * dh - pt;
            for (int64_t j = 0; j < kw; j++) {
                int64_t ix = p.ox * sw + j * dw - pl;
                src[i * kw + j] = iy >= 0 && iy < h && ix >= 0 && ix < w
                                  ? x + ((p.n * h + iy) * w + ix) * c : NULL;
            }
        }
        depthwise_pixel(src, (int)is_signed, (int32_t)xz, wq, kh * kw, c, &rq, m);
    }
    free(src);
    return 0;
}
