/* cnnkit's optional native element-wise int8 kernels, loaded with ctypes (native/qarith.py).
 *
 * A plain C library (no Python C API), the same float32 operations in the same order as the
 * NumPy kernels (kernels/qarith.py, kernels/quantize.py), so both give the same codes. It is
 * built with -ffp-contract=off: a fused multiply-add would round once where NumPy rounds
 * twice.
 *
 *   add:      y = clamp(rint(float(a - ZA) * MA + float(b - ZB) * MB) + ZY, LO, HI)
 *   quantize: q = clamp(rint(x * INV) + Z, QMIN, QMAX)        (x float32, INV = 1 / s)
 *   max pool: y = max of each 2x2 window at stride 2 (channels-last, no padding), then
 *             clamped to [LO, HI]
 *
 * rint rounds half to even (the default rounding mode, as vcvtps2dq does). Codes are uint8
 * or int8 (``is_signed``). A NaN input to quantize gives an unspecified code.
 */

#include <stdint.h>
#include <math.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#define CNK_ABI_VERSION 1
#include "cnk_abi.h"

static inline int32_t load_code(const uint8_t *p, int64_t i, int is_signed)
{
    return is_signed ? (int32_t)(int8_t)p[i] : (int32_t)p[i];
}

static inline void store_code(uint8_t *p, int64_t i, int32_t q, int32_t lo, int32_t hi)
{
    q = q < lo ? lo : (q > hi ? hi : q);
    p[i] = (uint8_t)q;  /* two's complement byte of an int8 code too */
}

#if defined(__AVX2__)
static inline __m256i load8(const uint8_t *p, int is_signed)
{
    __m128i v = _mm_loadl_epi64((const __m128i *)p);
    return is_signed ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
}

/* 8 int32 codes (already clamped to a byte's range) -> 8 bytes at p */
static inline void store8(uint8_t *p, __m256i q, int is_signed)
{
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    __m128i w = _mm_packs_epi32(lo, hi);
    __m128i b = is_signed ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w);
    _mm_storel_epi64((__m128i *)p, b);
}
#endif

/* y[i] for i < n (module docstring). */
void cnk_qadd(const uint8_t *a, const uint8_t *b, int64_t n, int64_t is_signed, int64_t za,
              int64_t zb, float ma, float mb, int64_t zy, int64_t lo, int64_t hi, uint8_t *y)
{
    int64_t i = 0;
    int s = (int)is_signed;
#if defined(__AVX2__)
    __m256i vza = _mm256_set1_epi32((int32_t)za), vzb = _mm256_set1_epi32((int32_t)zb);
    __m256i vzy = _mm256_set1_epi32((int32_t)zy), vlo = _mm256_set1_epi32((int32_t)lo);
    __m256i vhi = _mm256_set1_epi32((int32_t)hi);
    __m256 vma = _mm256_set1_ps(ma), vmb = _mm256_set1_ps(mb);
    for (; i + 8 <= n; i += 8) {
        __m256 ta = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(load8(a + i, s), vza)), vma);
        __m256 tb = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(load8(b + i, s), vzb)), vmb);
        __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_add_ps(ta, tb)), vzy);
        store8(y + i, _mm256_min_epi32(_mm256_max_epi32(q, vlo), vhi), s);
    }
#endif
    for (; i < n; i++) {
        float ta = (float)(load_code(a, i, s) - (int32_t)za) * ma;
        float tb = (float)(load_code(b, i, s) - (int32_t)zb) * mb;
        store_code(y, i, (int32_t)nearbyintf(ta + tb) + (int32_t)zy, (int32_t)lo,
                   (int32_t)hi);
    }
}

/* q[i] for i < n (module docstring); the clamp is done on the rounded float before the
 * conversion (rint(x INV) in [QMIN - Z, QMAX - Z]), so huge values clamp too. */
void cnk_quantize(const float *x, int64_t n, float inv, int64_t z, int64_t qmin,
                  int64_t qmax, int64_t is_signed, uint8_t *q)
{
    int64_t i = 0;
    float flo = (float)(qmin - z), fhi = (float)(qmax - z);
#if defined(__AVX2__)
    __m256 vinv = _mm256_set1_ps(inv), vflo = _mm256_set1_ps(flo), vfhi = _mm256_set1_ps(fhi);
    __m256i vz = _mm256_set1_epi32((int32_t)z);
    for (; i + 8 <= n; i += 8) {
        __m256 t = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vinv),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        t = _mm256_min_ps(_mm256_max_ps(t, vflo), vfhi);
        store8(q + i, _mm256_add_epi32(_mm256_cvtps_epi32(t), vz), (int)is_signed);
    }
#endif
    for (; i < n; i++) {
        float t = nearbyintf(x[i] * inv);
        t = t < flo ? flo : (t > fhi ? fhi : t);
        q[i] = (uint8_t)((int32_t)t + (int32_t)z);
    }
}

static inline int32_t max4(const uint8_t *p00, const uint8_t *p01, const uint8_t *p10,
                           const uint8_t *p11, int64_t t, int is_signed)
{
    int32_t a = load_code(p00, t, is_signed), b = load_code(p01, t, is_signed);
    int32_t c = load_code(p10, t, is_signed), d = load_code(p11, t, is_signed);
    a = a > b ? a : b;
    c = c > d ? c : d;
    return a > c ? a : c;
}

/* 2x2 stride-2 max pooling of x (N, H, W, C) into y (N, H / 2, W / 2, C) (odd edges are
 * dropped, as "valid" pooling does), clamped to [lo, hi]. */
void cnk_qmaxpool2x2(const uint8_t *x, int64_t n, int64_t h, int64_t w, int64_t c,
                     int64_t is_signed, int64_t lo, int64_t hi, uint8_t *y)
{
    int64_t oh = h / 2, ow = w / 2;
    int s = (int)is_signed;
#if defined(__AVX2__)
    /* signed max by flipping the sign bit into the unsigned order */
    __m256i flip = _mm256_set1_epi8(s ? (char)0x80 : 0);
    __m256i vlo = _mm256_set1_epi8((char)(uint8_t)((int32_t)lo ^ (s ? 0x80 : 0)));
    __m256i vhi = _mm256_set1_epi8((char)(uint8_t)((int32_t)hi ^ (s ? 0x80 : 0)));
#endif
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < oh; i++) {
            const uint8_t *r0 = x + ((b * h + 2 * i) * w) * c, *r1 = r0 + w * c;
            uint8_t *out = y + ((b * oh + i) * ow) * c;
            for (int64_t j = 0; j < ow; j++) {
                const uint8_t *p00 = r0 + 2 * j * c, *p01 = p00 + c;
                const uint8_t *p10 = r1 + 2 * j * c, *p11 = p10 + c;
                uint8_t *o = out + j * c;
                int64_t t = 0;
#if defined(__AVX2__)
                for (; t + 32 <= c; t += 32) {
#define LD(p) _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)((p) + t)), flip)
                    __m256i m = _mm256_max_epu8(_mm256_max_epu8(LD(p00), LD(p01)),
                                                _mm256_max_epu8(LD(p10), LD(p11)));
#undef LD
                    m = _mm256_min_epu8(_mm256_max_epu8(m, vlo), vhi);
                    _mm256_storeu_si256((__m256i *)(o + t), _mm256_xor_si256(m, flip));
                }
#endif
                for (; t < c; t++)
                    store_code(o, t, max4(p00, p01, p10, p11, t, s), (int32_t)lo,
                               (int32_t)hi);
            }
        }
}
