/* Direct 2-D convolution kernels for cnnkit (optional native helper, loaded with ctypes).
 *
 * Plain C99, no Python or NumPy headers. All arrays are float32, C-contiguous, channels-last:
 *   x  (N, H, W, Cin), kernel k (KH, KW, Cin, Cout), z / dZ (N, OH, OW, Cout).
 * Geometry: output pixel (oy, ox) reads input (oy*SH + i*DH - PT, ox*SW + j*DW - PL) for the
 * kernel tap (i, j); input cells outside the image are zeros. PT / PL may be negative (crop);
 * the bottom / right padding follows from the output size.
 *
 *   forward  z[n, oy, ox, o]  = sum_{i, j, c} x[n, iy, ix, c] k[i, j, c, o] + b[o]
 *   dX       dx[n, iy, ix, c] = sum_{oy, ox, i, j: iy, ix as above} sum_o dz[n, oy, ox, o] k[i, j, c, o]
 *   dK       dk[i, j, c, o]   = sum_{n, oy, ox} x[n, iy, ix, c] dz[n, oy, ox, o]
 *
 * Every kernel copies one image at a time into a zero-padded buffer and runs register-blocked
 * tiles over it: RB pixels x CB output channels of accumulators, the CB-wide inner loops
 * vectorised by the compiler (no intrinsics). Sums run in a fixed order: results do not
 * depend on threads. The kernels hold no global state, so several threads may run them at
 * once on disjoint outputs (the one shared object, the small thread pool of
 * cnk_conv2d_forward_pieces at the end, serves one caller at a time). Each returns 0, or -1
 * when memory could not be allocated.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CNK_ABI_VERSION 1
#include "cnk_abi.h"

#if defined(__GNUC__)
#define CNK_INLINE static inline __attribute__((always_inline))
#else
#define CNK_INLINE static inline
#endif

#define MAX_RB 16
#define MAX_CB 32
#define RR 8 /* rows of the dK tile: (tap, input channel) pairs */

typedef ptrdiff_t idx_t;

/* Vectors of 8 or 16 floats (GNU C vector extensions, supported by gcc and clang): the
 * tiles keep their accumulators in vector registers. Loads and stores go through memcpy
 * (unaligned). 16-float vectors are used when the target has AVX-512. */
typedef float v8 __attribute__((vector_size(32)));
#if defined(__AVX512F__)
typedef float vwide __attribute__((vector_size(64)));
#else
typedef float vwide __attribute__((vector_size(32)));
#endif

/* Defines tile_<VT>(rb, nvec, ...): acc[r] (r < rb, nvec vectors of VT, cb = nvec * lanes)
 *   = init + sum_{t < ntap} sum_{q < kdim} x[r*xr + toff[t] + q] * w[(t*kdim + q)*cb + 0..cb)
 * stored to out[r*outr + c] for c < nv; init: out (accum), bias (cb-padded) or 0. */
#define DEFINE_TILE(VT)                                                                       \
    CNK_INLINE void tile_##VT(const int rb, const int nvec, const float *restrict x, idx_t xr, \
                              const idx_t *restrict toff, int ntap, int kdim,                 \
                              const float *restrict w, float *restrict out, idx_t outr,       \
                              int nv, const float *restrict bias, int accum)                  \
    {                                                                                         \
        enum { L = sizeof(VT) / sizeof(float) };                                              \
        const int cb = nvec * L;                                                              \
        VT acc[MAX_RB][MAX_CB / 8];                                                           \
        float buf[MAX_CB];                                                                    \
        for (int r = 0; r < rb; r++) {                                                        \
            for (int v = 0; v < nvec; v++) {                                                  \
                if (accum && nv == cb)                                                        \
                    memcpy(&acc[r][v], out + r * outr + v * L, sizeof(VT));                   \
                else if (bias)                                                                \
                    memcpy(&acc[r][v], bias + v * L, sizeof(VT));                             \
                else                                                                          \
                    acc[r][v] = (VT){0};                                                      \
            }                                                                                 \
            if (accum && nv < cb) { /* a partial channel block: through a buffer */           \
                for (int c = 0; c < cb; c++) buf[c] = c < nv ? out[r * outr + c] : 0.0f;      \
                for (int v = 0; v < nvec; v++) memcpy(&acc[r][v], buf + v * L, sizeof(VT));   \
            }                                                                                 \
        }                                                                                     \
        for (int t = 0; t < ntap; t++) {                                                      \
            const float *xt = x + toff[t];                                                    \
            const float *wt = w + (idx_t)t * kdim * cb;                                       \
            for (int q = 0; q < kdim; q++) {                                                  \
                VT wv[MAX_CB / 8];                                                            \
                for (int v = 0; v < nvec; v++)                                                \
                    memcpy(&wv[v], wt + (idx_t)q * cb + v * L, sizeof(VT));                   \
                for (int r = 0; r < rb; r++) {                                                \
                    const float xv = xt[r * xr + q];                                          \
                    for (int v = 0; v < nvec; v++) acc[r][v] += xv * wv[v];                   \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        for (int r = 0; r < rb; r++) {                                                        \
            if (nv == cb) {                                                                   \
                for (int v = 0; v < nvec; v++)                                                \
                    memcpy(out + r * outr + v * L, &acc[r][v], sizeof(VT));                   \
            } else {                                                                          \
                for (int v = 0; v < nvec; v++) memcpy(buf + v * L, &acc[r][v], sizeof(VT));   \
                for (int c = 0; c < nv; c++) out[r * outr + c] = buf[c];                      \
            }                                                                                 \
        }                                                                                     \
    }
DEFINE_TILE(v8)
DEFINE_TILE(vwide)

typedef void (*tile_fn)(const float *, idx_t, const idx_t *, int, int, const float *, float *,
                        idx_t, int, const float *, int);

#define TILE(RB, CB)                                                                          \
    static void tile_##RB##_##CB(const float *x, idx_t xr, const idx_t *toff, int ntap,      \
                                 int kdim, const float *w, float *out, idx_t outr, int nv,   \
                                 const float *bias, int accum)                               \
    {                                                                                         \
        if (CB == 8)                                                                          \
            tile_v8(RB, 1, x, xr, toff, ntap, kdim, w, out, outr, nv, bias, accum);          \
        else                                                                                  \
            tile_vwide(RB, CB * 4 / (int)sizeof(vwide), x, xr, toff, ntap, kdim, w, out, outr, \
                       nv, bias, accum);                                                      \
    }
#define TILES(CB)                                                                             \
    TILE(2, CB) TILE(3, CB) TILE(4, CB) TILE(5, CB) TILE(6, CB) TILE(7, CB) TILE(8, CB)        \
    TILE(9, CB) TILE(10, CB) TILE(11, CB) TILE(12, CB) TILE(13, CB) TILE(14, CB) TILE(15, CB)  \
    TILE(16, CB)
TILES(8)
TILES(16)
TILES(32)

#define TILE_ROW(CB)                                                                          \
    {NULL, NULL, tile_2_##CB, tile_3_##CB, tile_4_##CB, tile_5_##CB, tile_6_##CB, tile_7_##CB, \
     tile_8_##CB, tile_9_##CB, tile_10_##CB, tile_11_##CB, tile_12_##CB, tile_13_##CB,         \
     tile_14_##CB, tile_15_##CB, tile_16_##CB}
static const tile_fn TILE_TABLE[3][MAX_RB + 1] = {TILE_ROW(8), TILE_ROW(16), TILE_ROW(32)};

static tile_fn pick_tile(int rb, int cb)
{
    return TILE_TABLE[cb == 8 ? 0 : (cb == 16 ? 1 : 2)][rb];
}

/* Vector registers the tiles may fill with accumulators (32 registers with AVX-512, else 16;
 * the rest hold the kernel's vectors and the broadcast input). */
#if defined(__AVX512F__)
#define ACC_REGS 24
#else
#define ACC_REGS 12
#endif

/* Channel block: 8, 16 or 32 lanes (the last block zero-padded); at most 16 without AVX-512
 * (16 vector registers: a 32-lane block would not leave room for several pixels). */
static int pick_cb(idx_t channels)
{
#if defined(__AVX512F__)
    return channels <= 8 ? 8 : (channels <= 16 ? 16 : 32);
#else
    return channels <= 8 ? 8 : 16;
#endif
}

/* Pixels per tile: 2..16 for 8-channel tiles, else 2..8 (measured: 16 pixels x 16 lanes
 * ran slower than 8 x 16 on 32x32x16), at most ACC_REGS / vectors per pixel (``most``): of
 * most/2..most, the one that wastes the fewest padded pixels at the end of a row of
 * ``width``, the larger on ties. */
static int pick_rb(idx_t width, int cb)
{
    int nvec = cb == 8 ? 1 : cb * (int)sizeof(float) / (int)sizeof(vwide);
    int most = ACC_REGS / nvec;
    if (most > (cb == 8 ? MAX_RB : 8)) most = cb == 8 ? MAX_RB : 8;
    if (most < 2) most = 2;
    int best = most;
    idx_t best_w = (width + most - 1) / most * most;
    for (int rb = most - 1; rb >= (most + 1) / 2; rb--) {
        idx_t wr = (width + rb - 1) / rb * rb;
        if (wr < best_w) {
            best = rb;
            best_w = wr;
        }
    }
    return best;
}

/* Tiles per Winograd GEMM block: of 2..most, the one with the least estimated cost
 * padded_tiles * (rb + 3) / rb (each block call pays about 3 tiles' worth of set-up:
 * accumulators loaded and stored, the call). */
static int pick_rb_wino(idx_t tiles, int cb)
{
    int nvec = cb == 8 ? 1 : cb * (int)sizeof(float) / (int)sizeof(vwide);
    int most = ACC_REGS / nvec;
    if (most > (cb == 8 ? MAX_RB : 8)) most = cb == 8 ? MAX_RB : 8;
    if (most < 2) most = 2;
    int best = most;
    idx_t best_cost = -1;
    for (int rb = most; rb >= 2; rb--) {
        idx_t cost = (tiles + rb - 1) / rb * (rb + 3);  /* blocks * (rb + 3) */
        if (best_cost < 0 || cost < best_cost) {
            best = rb;
            best_cost = cost;
        }
    }
    return best;
}

/* xp (HP, WP, C) = image (H, W, C) shifted by (PT, PL), zeros outside. */
static void pad_image(const float *img, idx_t h, idx_t w, idx_t c, float *xp, idx_t hp,
                      idx_t wp, idx_t pt, idx_t pl)
{
    idx_t c0 = pl > 0 ? pl : 0;                   /* first padded column holding data */
    idx_t c1 = w + pl < wp ? w + pl : wp;         /* end of the data columns */
    for (idx_t y = 0; y < hp; y++) {
        float *row = xp + y * wp * c;
        idx_t iy = y - pt;
        if (iy < 0 || iy >= h || c1 <= c0) {
            memset(row, 0, (size_t)(wp * c) * sizeof(float));
            continue;
        }
        memset(row, 0, (size_t)(c0 * c) * sizeof(float));
        memcpy(row + c0 * c, img + (iy * w + (c0 - pl)) * c, (size_t)((c1 - c0) * c) * sizeof(float));
        memset(row + c1 * c, 0, (size_t)((wp - c1) * c) * sizeof(float));
    }
}

/* The inverse of pad_image for a gradient: dst (h, w, c) = the padded buffer src (hp, wp, c)
 * read at offset (pt, pl); cells of dst that fall outside src (pt or pl negative: a crop) are 0. */
static void crop_image(const float *src, idx_t hp, idx_t wp, idx_t pt, idx_t pl, float *dst,
                       idx_t h, idx_t w, idx_t c)
{
    for (idx_t iy = 0; iy < h; iy++) {
        idx_t y = iy + pt;
        float *row = dst + iy * w * c;
        if (y < 0 || y >= hp) {
            memset(row, 0, (size_t)(w * c) * sizeof(float));
            continue;
        }
        for (idx_t ix = 0; ix < w; ix++) {
            idx_t xx = ix + pl;
            if (xx < 0 || xx >= wp)
                memset(row + ix * c, 0, (size_t)c * sizeof(float));
            else
                memcpy(row + ix * c, src + (y * wp + xx) * c, (size_t)c * sizeof(float));
        }
    }
}

/* Where the convolution's output rows go: into z (po NULL), or, two at a time through a
 * band buffer, to their 2x2 pooling at stride 2 (max or average) of the values clamped to
 * [plo, phi], clamped to [lo, hi] (-inf / inf: no clamp). */
typedef struct {
    float *p;       /* pooled output (N, PH, PW, Cout) */
    idx_t ph, pw;   /* pooled rows and columns (OH / 2, OW / 2) */
    int avg;        /* 1: average, 0: max */
    float plo, phi; /* clamp of each value before the pooling (an activation of the conv) */
    float lo, hi;   /* clamp of the pooled values (an activation after the pooling) */
} pool_out;

CNK_INLINE float clampf(float v, float lo, float hi)
{
    v = v < lo ? lo : v; /* NaN stays NaN (as NumPy's clip) */
    return v > hi ? hi : v;
}

/* max(a, b), NaN when either is (as NumPy's maximum). */
CNK_INLINE float maxf(float a, float b) { return b > a || b != b ? b : a; }

/* out[px, o] over pw windows (rows r0, r1 at columns 2px, 2px+1): with t = clamp(tap, plo,
 * phi), max(max(t00, t01), max(t10, t11)) or ((t00 + t10) + (t01 + t11)) * 0.25 (the
 * order of the NumPy and C average kernels), then clamped to [lo, hi]. */
static void pool_rows(const float *restrict r0, const float *restrict r1, idx_t pw, idx_t cout,
                      const pool_out *po, float *restrict out)
{
    const float plo = po->plo, phi = po->phi, lo = po->lo, hi = po->hi;
    for (idx_t px = 0; px < pw; px++) {
        const float *a = r0 + 2 * px * cout, *c = r1 + 2 * px * cout;
        float *o = out + px * cout;
        if (po->avg) {
            for (idx_t q = 0; q < cout; q++) {
                float s = (clampf(a[q], plo, phi) + clampf(c[q], plo, phi))
                          + (clampf(a[q + cout], plo, phi) + clampf(c[q + cout], plo, phi));
                o[q] = clampf(s * 0.25f, lo, hi);
            }
        } else {
            for (idx_t q = 0; q < cout; q++) {
                float m = maxf(maxf(clampf(a[q], plo, phi), clampf(a[q + cout], plo, phi)),
                               maxf(clampf(c[q], plo, phi), clampf(c[q + cout], plo, phi)));
                o[q] = clampf(m, lo, hi);
            }
        }
    }
}

/* z = conv(x, k) + b for images [0, n), output rows [y0, y1) of each (z: the whole output;
 * only the input rows those output rows read are padded). With po (y0 even, y1 - y0 even):
 * the rows go to its pooling instead, two at a time through a band buffer (z unused). */
static int direct_rows(const float *x, int64_t n, int64_t h, int64_t w, int64_t cin,
                       const float *k, int64_t kh, int64_t kw, int64_t cout,
                       const float *bias, float *z, int64_t oh, int64_t ow, int64_t sh,
                       int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pl,
                       int64_t y0, int64_t y1, const pool_out *po)
{
    if (y1 <= y0 || n <= 0) return 0;
    const int cb = pick_cb(cout), rb = pick_rb(ow, cb);
    const idx_t ncb = (cout + cb - 1) / cb, taps = kh * kw;
    const idx_t owr = (ow + rb - 1) / rb * rb;
    const idx_t hp = (y1 - y0 - 1) * sh + (kh - 1) * dh + 1;
    const idx_t wp = (owr - 1) * sw + (kw - 1) * dw + 1;
    float *xp = malloc((size_t)(hp * wp * cin) * sizeof(float));
    float *wk = calloc((size_t)(ncb * taps * cin * cb), sizeof(float));
    float *bk = calloc((size_t)(ncb * cb), sizeof(float));
    idx_t *toff = malloc((size_t)taps * sizeof(idx_t));
    float *band = po ? malloc((size_t)(2 * ow * cout) * sizeof(float)) : NULL;
    float tmp[MAX_RB * MAX_CB];
    if (!xp || !wk || !bk || !toff || (po && !band)) {
        free(xp); free(wk); free(bk); free(toff); free(band);
        return -1;
    }
    /* wk[b, t, c, l] = k[t, c, b*cb + l] (zero for padded lanes: calloc) */
    for (idx_t ob = 0; ob < ncb; ob++) {
        const idx_t nv = cout - ob * cb < cb ? cout - ob * cb : cb;
        for (idx_t tc = 0; tc < taps * cin; tc++)
            memcpy(wk + (ob * taps * cin + tc) * cb, k + tc * cout + ob * cb,
                   (size_t)nv * sizeof(float));
    }
    if (bias) {
        for (idx_t o = 0; o < cout; o++) bk[o] = bias[o];
    }
    /* With dilation 1 along the width, the taps of one kernel row read KW*Cin consecutive
     * inputs: one "tap" of depth KW*Cin per kernel row (fewer, longer inner loops). */
    const int merge = dw == 1;
    const idx_t ntap = merge ? kh : taps, kdim = merge ? kw * cin : cin;
    for (idx_t i = 0; i < kh; i++)
        for (idx_t j = 0; j < kw; j++) toff[i * kw + j] = (i * dh * wp + j * dw) * cin;
    if (merge)
        for (idx_t i = 0; i < kh; i++) toff[i] = i * dh * wp * cin;
    tile_fn fn = pick_tile(rb, cb);
    for (idx_t b = 0; b < n; b++) {
        pad_image(x + b * h * w * cin, h, w, cin, xp, hp, wp, pt - y0 * sh, pl);
        float *zb = po ? NULL : z + (b * oh + y0) * ow * cout;
        for (idx_t y = 0; y < y1 - y0; y++) {
            float *zy = po ? band + (y & 1) * ow * cout : zb + y * ow * cout;
            for (idx_t x0 = 0; x0 < ow; x0 += rb) {
                const float *xs = xp + (y * sh * wp + x0 * sw) * cin;
                int full = x0 + rb <= ow;
                for (idx_t ob = 0; ob < ncb; ob++) {
                    int nv = (int)(cout - ob * cb < cb ? cout - ob * cb : cb);
                    float *zo = zy + x0 * cout + ob * cb;
                    const float *bo = bias ? bk + ob * cb : NULL;
                    const float *wo = wk + ob * taps * cin * cb;
                    if (full) {
                        fn(xs, sw * cin, toff, (int)ntap, (int)kdim, wo, zo, cout, nv, bo, 0);
                    } else {
                        fn(xs, sw * cin, toff, (int)ntap, (int)kdim, wo, tmp, cb, cb, bo, 0);
                        for (idx_t r = 0; r < ow - x0; r++)
                            memcpy(zo + r * cout, tmp + r * cb, (size_t)nv * sizeof(float));
                    }
                }
            }
            if (po && (y & 1))
                pool_rows(band, band + ow * cout, po->pw, cout, po,
                          po->p + (b * po->ph + (y0 + y) / 2) * po->pw * cout);
        }
    }
    free(xp); free(wk); free(bk); free(toff); free(band);
    return 0;
}

int cnk_conv2d_forward_rows(const float *x, int64_t n, int64_t h, int64_t w, int64_t cin,
                            const float *k, int64_t kh, int64_t kw, int64_t cout,
                            const float *bias, float *z, int64_t oh, int64_t ow, int64_t sh,
                            int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pl,
                            int64_t y0, int64_t y1)
{
    return direct_rows(x, n, h, w, cin, k, kh, kw, cout, bias, z, oh, ow, sh, sw, dh, dw, pt,
                       pl, y0, y1, NULL);
}

/* z = conv(x, k) + b for images [0, n) (all output rows). */
int cnk_conv2d_forward(const float *x, int64_t n, int64_t h, int64_t w, int64_t cin,
                       const float *k, int64_t kh, int64_t kw, int64_t cout, const float *bias,
                       float *z, int64_t oh, int64_t ow, int64_t sh, int64_t sw, int64_t dh,
                       int64_t dw, int64_t pt, int64_t pl)
{
    return cnk_conv2d_forward_rows(x, n, h, w, cin, k, kh, kw, cout, bias, z, oh, ow, sh, sw,
                                   dh, dw, pt, pl, 0, oh);
}

/* dx = the input gradient of the convolution for output error g, images [0, n): each output
 * tile's contributions k[i, j] . g are added into a zero-padded dX buffer, tap by tap. */
int cnk_conv2d_input_grad(const float *g, int64_t n, int64_t oh, int64_t ow, int64_t cout,
                          const float *k, int64_t kh, int64_t kw, int64_t cin, float *dx,
                          int64_t h, int64_t w, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                          int64_t pt, int64_t pl)
{
    const int cb = pick_cb(cin), rb = pick_rb(ow, cb);
    const idx_t ncb = (cin + cb - 1) / cb, taps = kh * kw;
    const idx_t owr = (ow + rb - 1) / rb * rb;
    idx_t hp = (oh - 1) * sh + (kh - 1) * dh + 1, wp = (owr - 1) * sw + (kw - 1) * dw + 1;
    if (hp < h + pt) hp = h + pt;
    if (wp < w + pl) wp = w + pl;
    float *dp = malloc((size_t)(hp * wp * cin) * sizeof(float));
    float *wk = calloc((size_t)(ncb * taps * cout * cb), sizeof(float));
    float *gr = calloc((size_t)(owr * cout), sizeof(float));
    idx_t zero = 0;
    if (!dp || !wk || !gr) {
        free(dp); free(wk); free(gr);
        return -1;
    }
    /* wk[b, t, o, l] = k[t, b*cb + l, o] (zero for padded lanes: calloc) */
    for (idx_t cbk = 0; cbk < ncb; cbk++) {
        const idx_t nv = cin - cbk * cb < cb ? cin - cbk * cb : cb;
        for (idx_t t = 0; t < taps; t++)
            for (idx_t l = 0; l < nv; l++) {
                const float *src = k + (t * cin + cbk * cb + l) * cout;
                float *dst = wk + (cbk * taps + t) * cout * cb + l;
                for (idx_t o = 0; o < cout; o++) dst[o * cb] = src[o];
            }
    }
    tile_fn fn = pick_tile(rb, cb);
    for (idx_t b = 0; b < n; b++) {
        memset(dp, 0, (size_t)(hp * wp * cin) * sizeof(float));
        const float *gb = g + b * oh * ow * cout;
        for (idx_t y = 0; y < oh; y++) {
            memcpy(gr, gb + y * ow * cout, (size_t)(ow * cout) * sizeof(float));
            for (idx_t x0 = 0; x0 < ow; x0 += rb) {
                for (idx_t i = 0; i < kh; i++) {
                    for (idx_t j = 0; j < kw; j++) {
                        float *d0 = dp + ((y * sh + i * dh) * wp + x0 * sw + j * dw) * cin;
                        for (idx_t cbk = 0; cbk < ncb; cbk++) {
                            int nv = (int)(cin - cbk * cb < cb ? cin - cbk * cb : cb);
                            fn(gr + x0 * cout, cout, &zero, 1, (int)cout,
                               wk + (cbk * taps + i * kw + j) * cout * cb, d0 + cbk * cb,
                               sw * cin, nv, NULL, 1);
                        }
                    }
                }
            }
        }
        crop_image(dp, hp, wp, pt, pl, dx + b * h * w * cin, h, w, cin);
    }
    free(dp); free(wk); free(gr);
    return 0;
}

/* One output pixel's contributions to dX for cnk_conv2d_input_grad_rowrun: for kernel rows
 * i0 <= i < i0 + ni (ni <= ROWRUN_KH), NV vectors r_i = sum_o gp[o] wk[i, o, :] added into
 * d0 + i * drow (lanes past KW*Cin hold zeros: wk's padding). The rows' sums run side by
 * side (independent chains of multiply-adds hide their latency). */
#define ROWRUN_KH 8
CNK_INLINE void rowrun_pixel(const int nv, const float *restrict gp, idx_t cout,
                             const float *restrict wk, idx_t cb, idx_t i0, int ni, float *d0,
                             idx_t drow)
{
    enum { L = sizeof(vwide) / sizeof(float) };
    vwide acc[ROWRUN_KH][MAX_CB / L];
    for (int i = 0; i < ni; i++)
        for (int v = 0; v < nv; v++) acc[i][v] = (vwide){0};
    for (idx_t o = 0; o < cout; o++) {
        const float s = gp[o];
        for (int i = 0; i < ni; i++) {
            const float *wi = wk + ((i0 + i) * cout + o) * cb;
            for (int v = 0; v < nv; v++) {
                vwide wv;
                memcpy(&wv, wi + v * L, sizeof(vwide));
                acc[i][v] += s * wv;
            }
        }
    }
    for (int i = 0; i < ni; i++) {
        float *d = d0 + (i0 + i) * drow;
        for (int v = 0; v < nv; v++) {
            vwide dv;
            memcpy(&dv, d + v * L, sizeof(vwide));
            dv += acc[i][v];
            memcpy(d + v * L, &dv, sizeof(vwide));
        }
    }
}

/* dx as cnk_conv2d_input_grad, for dilation 1 along the width and KW*Cin <= MAX_CB (few input
 * channels, e.g. 5x5x6): per output pixel p and kernel row i, the KW*Cin values
 *   r[p, i, (j, c)] = sum_o g[p, o] k[i, j, c, o]
 * are a few vectors (instead of Cin lanes per tap: no lanes wasted on a channel block of 8
 * for 6 channels), added into the KW*Cin consecutive cells of the padded dX row
 * oy*SH + i*DH from column ox*SW on (pixel by pixel, as their runs overlap). Returns -2 when
 * KW*Cin > MAX_CB. */
int cnk_conv2d_input_grad_rowrun(const float *g, int64_t n, int64_t oh, int64_t ow,
                                 int64_t cout, const float *k, int64_t kh, int64_t kw,
                                 int64_t cin, float *dx, int64_t h, int64_t w, int64_t sh,
                                 int64_t sw, int64_t dh, int64_t pt, int64_t pl)
{
    enum { L = sizeof(vwide) / sizeof(float) };
    const idx_t run = kw * cin;
    if (run > MAX_CB) return -2;
    const int nv = (int)((run + L - 1) / L);
    const idx_t cb = (idx_t)nv * L;
    idx_t hp = (oh - 1) * sh + (kh - 1) * dh + 1, wp = (ow - 1) * sw + kw;
    if (hp < h + pt) hp = h + pt;
    if (wp < w + pl) wp = w + pl;
    const size_t dsize = (size_t)(hp * wp * cin + cb); /* + slack for the padded lanes */
    float *dp = malloc(dsize * sizeof(float));
    float *wk = calloc((size_t)(kh * cout * cb), sizeof(float));
    if (!dp || !wk) {
        free(dp); free(wk);
        return -1;
    }
    /* wk[i, o, j*cin + c] = k[i, j, c, o] (zero for padded lanes: calloc) */
    for (idx_t i = 0; i < kh; i++)
        for (idx_t l = 0; l < run; l++)
            for (idx_t o = 0; o < cout; o++)
                wk[(i * cout + o) * cb + l] = k[(i * run + l) * cout + o];
    const idx_t drow = dh * wp * cin;
    const idx_t step = (cb + sw * cin - 1) / (sw * cin);
    for (idx_t b = 0; b < n; b++) {
        memset(dp, 0, dsize * sizeof(float));
        const float *gb = g + b * oh * ow * cout;
        for (idx_t y = 0; y < oh; y++) {
            /* pixels in the order 0, step, 2*step, ..., 1, 1 + step, ...: the runs of
             * consecutive pixels do not overlap (a load overlapping a pending store stalls
             * store-to-load forwarding) */
            for (idx_t x1 = 0; x1 < step && x1 < ow; x1++)
            for (idx_t x = x1; x < ow; x += step) {
                const float *gp = gb + (y * ow + x) * cout;
                float *d0 = dp + (y * sh * wp + x * sw) * cin;
                for (idx_t i0 = 0; i0 < kh; i0 += ROWRUN_KH) {
                    const int ni = (int)(kh - i0 < ROWRUN_KH ? kh - i0 : ROWRUN_KH);
                    if (nv == 1 && ni == 5)
                        rowrun_pixel(1, gp, cout, wk, cb, i0, 5, d0, drow);
                    else if (nv == 2 && ni == 5)
                        rowrun_pixel(2, gp, cout, wk, cb, i0, 5, d0, drow);
                    else if (nv == 1 && ni == 3)
                        rowrun_pixel(1, gp, cout, wk, cb, i0, 3, d0, drow);
                    else if (nv == 2 && ni == 3)
                        rowrun_pixel(2, gp, cout, wk, cb, i0, 3, d0, drow);
                    else
                        rowrun_pixel(nv, gp, cout, wk, cb, i0, ni, d0, drow);
                }
            }
        }
        crop_image(dp, hp, wp, pt, pl, dx + b * h * w * cin, h, w, cin);
    }
    free(dp); free(wk);
    return 0;
}

/* dK tile: acc[r][0..cb) (r < rr) += sum over the output pixels of
 * xp[pixel + xoff[r]] * gz[pixel][0..cb), cb = nvec lanes of VT. */
#define DEFINE_DK_TILE(VT)                                                                    \
    CNK_INLINE void dk_tile_##VT(const int rr, const int nvec, const float *restrict xp,      \
                                 const idx_t *restrict xoff, const float *restrict gz,        \
                                 idx_t gstride, idx_t oh, idx_t ow, idx_t ystep, idx_t xstep, \
                                 float *restrict acc_out)                                     \
    {                                                                                         \
        enum { L = sizeof(VT) / sizeof(float) };                                              \
        const int cb = nvec * L;                                                              \
        VT acc[RR][MAX_CB / 8];                                                               \
        idx_t off[RR];                                                                        \
        for (int r = 0; r < rr; r++) {                                                        \
            off[r] = xoff[r];                                                                 \
            for (int v = 0; v < nvec; v++)                                                    \
                memcpy(&acc[r][v], acc_out + r * cb + v * L, sizeof(VT));                     \
        }                                                                                     \
        for (idx_t y = 0; y < oh; y++) {                                                      \
            const float *xy = xp + y * ystep;                                                 \
            const float *gy = gz + y * ow * gstride;                                          \
            for (idx_t x = 0; x < ow; x++) {                                                  \
                const float *xs = xy + x * xstep;                                             \
                VT gv[MAX_CB / 8];                                                            \
                for (int v = 0; v < nvec; v++)                                                \
                    memcpy(&gv[v], gy + x * gstride + v * L, sizeof(VT));                     \
                for (int r = 0; r < rr; r++) {                                                \
                    const float xv = xs[off[r]];                                              \
                    for (int v = 0; v < nvec; v++) acc[r][v] += xv * gv[v];                   \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        for (int r = 0; r < rr; r++)                                                          \
            for (int v = 0; v < nvec; v++)                                                    \
                memcpy(acc_out + r * cb + v * L, &acc[r][v], sizeof(VT));                     \
    }
DEFINE_DK_TILE(v8)
DEFINE_DK_TILE(vwide)

typedef void (*dk_fn)(const float *, const idx_t *, const float *, idx_t, idx_t, idx_t, idx_t,
                      idx_t, float *);
/* RRV rows x CB lanes of accumulators: one v8 vector for CB 8, else vwide vectors */
#define DK_TILE(RRV, CB)                                                                      \
    static void dk_tile_##RRV##_##CB(const float *xp, const idx_t *xoff, const float *gz,    \
                                     idx_t gstride, idx_t oh, idx_t ow, idx_t ystep,          \
                                     idx_t xstep, float *acc)                                 \
    {                                                                                         \
        if (CB % 16)                                                                          \
            dk_tile_v8(RRV, CB / 8, xp, xoff, gz, gstride, oh, ow, ystep, xstep, acc);        \
        else                                                                                  \
            dk_tile_vwide(RRV, CB * 4 / (int)sizeof(vwide), xp, xoff, gz, gstride, oh, ow,    \
                          ystep, xstep, acc);                                                 \
    }
DK_TILE(8, 8)
DK_TILE(8, 16)
DK_TILE(8, 32)
DK_TILE(6, 16)

/* dK tile shape (rows rr, lanes cb) for cout output channels. With AVX-512, RR rows of one
 * or two 16-lane vectors; with AVX2 (16 registers), RR rows of one 8-lane vector, or from 16
 * channels 6 rows of two (12 accumulators: 12 FMAs per 8 loads instead of 8 per 9; 1.2-1.5x
 * on U-Net's 3x3 layers, 8x8 to 64x64, 16 to 128 channels; 4 x 16, 4 x 24 and 3 x 32 were
 * slower). The sum order per dK element is the same for every shape. */
static void pick_dk_tile(idx_t cout, int *rr, int *cb)
{
#if defined(__AVX512F__)
    *rr = RR;
    *cb = pick_cb(cout);
#else
    *rr = cout >= 16 ? 6 : RR;
    *cb = cout >= 16 ? 16 : 8;
#endif
}

static dk_fn dk_tile_for(int rr, int cb)
{
    if (rr == 6 && cb == 16) return dk_tile_6_16;
    return cb == 8 ? dk_tile_8_8 : (cb == 16 ? dk_tile_8_16 : dk_tile_8_32);
}

/* dk (KH*KW*Cin, Cout) = the kernel gradient summed over images [0, n) (overwritten). */
int cnk_conv2d_kernel_grad(const float *x, int64_t n, int64_t h, int64_t w, int64_t cin,
                           const float *g, int64_t oh, int64_t ow, int64_t cout, float *dk,
                           int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh,
                           int64_t dw, int64_t pt, int64_t pl)
{
    int rr, cb;
    pick_dk_tile(cout, &rr, &cb);
    const idx_t ncb = (cout + cb - 1) / cb, rows = kh * kw * cin;
    const idx_t rows_r = (rows + rr - 1) / rr * rr;
    const idx_t hp = (oh - 1) * sh + (kh - 1) * dh + 1, wp = (ow - 1) * sw + (kw - 1) * dw + 1;
    const int pad_g = (cout % cb) != 0;
    float *xp = malloc((size_t)(hp * wp * cin) * sizeof(float));
    float *acc = calloc((size_t)(ncb * rows_r * cb), sizeof(float));
    idx_t *xoff = malloc((size_t)rows_r * sizeof(idx_t));
    float *gp = pad_g ? calloc((size_t)(oh * ow * ncb * cb), sizeof(float)) : NULL;
    if (!xp || !acc || !xoff || (pad_g && !gp)) {
        free(xp); free(acc); free(xoff); free(gp);
        return -1;
    }
    for (idx_t r = 0; r < rows_r; r++) {
        idx_t q = r < rows ? r : rows - 1;  /* padded rows repeat the last one (discarded) */
        idx_t t = q / cin, c = q % cin;
        xoff[r] = ((t / kw) * dh * wp + (t % kw) * dw) * cin + c;
    }
    dk_fn fn = dk_tile_for(rr, cb);
    const idx_t gstride = pad_g ? ncb * cb : cout;
    for (idx_t b = 0; b < n; b++) {
        pad_image(x + b * h * w * cin, h, w, cin, xp, hp, wp, pt, pl);
        const float *gb = g + b * oh * ow * cout;
        if (pad_g) {
            for (idx_t p = 0; p < oh * ow; p++)
                memcpy(gp + p * gstride, gb + p * cout, (size_t)cout * sizeof(float));
            gb = gp;
        }
        for (idx_t ob = 0; ob < ncb; ob++)
            for (idx_t r0 = 0; r0 < rows_r; r0 += rr)
                fn(xp, xoff + r0, gb + ob * cb, gstride, oh, ow, sh * wp * cin, sw * cin,
                   acc + (ob * rows_r + r0) * cb);
    }
    for (idx_t ob = 0; ob < ncb; ob++) {
        const idx_t nv = cout - ob * cb < cb ? cout - ob * cb : cb;
        for (idx_t r = 0; r < rows; r++)
            memcpy(dk + r * cout + ob * cb, acc + (ob * rows_r + r) * cb,
                   (size_t)nv * sizeof(float));
    }
    free(xp); free(acc); free(xoff); free(gp);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Winograd F(2x2, 3x3) forward for 3x3 kernels at stride 1, dilation 1 (Lavin & Gray):
 *   per 4x4 input tile d (stride 2) and channel pair, the 2x2 output tile
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A, summed over input channels:
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1].
 * The channel sums are 16 matrix products (one per tile position xi) of the transformed
 * inputs V[xi] (tiles x Cin) with the transformed kernel U[xi] (Cin x Cout): 4 instead of 9
 * multiply-adds per output pixel. Done one row of tiles at a time (buffers in cache).
 * --------------------------------------------------------------------------------------- */

/* u (16, Cin, Cout, packed per channel block as [xi][b][c][cb]) = G g G^T per channel pair;
 * inner loops over a block's output channels (contiguous in k and u), MAX_CB lanes at a time
 * (a constant trip count: vectorised). WK_CC input channels at a time go through a local
 * buffer and then to the 16 planes of u as contiguous runs (writing the 16 planes pixel by
 * pixel measured 3-5x slower: planes 4 KB apart alias in the L1 cache). */
#define WK_CC 8
static void wino_kernel(const float *k, idx_t cin, idx_t cout, int cb, idx_t ncb, float *u)
{
    float buf[16][WK_CC][MAX_CB];
    for (idx_t ob = 0; ob < ncb; ob++) {
        const int nv = (int)(cout - ob * cb < cb ? cout - ob * cb : cb);
        for (idx_t c0 = 0; c0 < cin; c0 += WK_CC) {
            const idx_t cc = cin - c0 < WK_CC ? cin - c0 : WK_CC;
            for (idx_t q = 0; q < cc; q++) {
                const idx_t c = c0 + q;
                float g[3][3][MAX_CB], t[4][3][MAX_CB];
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++) {
                        const float *src = k + ((i * 3 + j) * cin + c) * cout + ob * cb;
                        for (int l = 0; l < MAX_CB; l++) g[i][j][l] = l < nv ? src[l] : 0.0f;
                    }
                for (int j = 0; j < 3; j++)
                    for (int l = 0; l < MAX_CB; l++) {
                        t[0][j][l] = g[0][j][l];
                        t[1][j][l] = 0.5f * (g[0][j][l] + g[1][j][l] + g[2][j][l]);
                        t[2][j][l] = 0.5f * (g[0][j][l] - g[1][j][l] + g[2][j][l]);
                        t[3][j][l] = g[2][j][l];
                    }
                for (int i = 0; i < 4; i++)
                    for (int l = 0; l < MAX_CB; l++) {
                        buf[i * 4 + 0][q][l] = t[i][0][l];
                        buf[i * 4 + 1][q][l] = 0.5f * (t[i][0][l] + t[i][1][l] + t[i][2][l]);
                        buf[i * 4 + 2][q][l] = 0.5f * (t[i][0][l] - t[i][1][l] + t[i][2][l]);
                        buf[i * 4 + 3][q][l] = t[i][2][l];
                    }
            }
            for (int xi = 0; xi < 16; xi++) {
                float *dst = u + ((xi * ncb + ob) * cin + c0) * cb;
                for (idx_t q = 0; q < cc; q++)
                    for (int l = 0; l < cb; l++) dst[q * cb + l] = buf[xi][q][l];
            }
        }
    }
}

/* v[xi*plane + tx*cin + c] = (B^T d B)[xi] for the 4x4 tiles at columns 2*tx of the 4 rows
 * at xr; t: scratch of 16*cin floats. Every inner loop runs over the channels (vectorised). */
static void wino_input(const float *restrict xr, idx_t wp, idx_t cin, idx_t ntx, idx_t plane,
                       float *restrict v, float *restrict t)
{
    const idx_t rs = wp * cin;
    enum { L = sizeof(vwide) / sizeof(float) };
    if (cin % L == 0) { /* whole vectors of channels: the tile stays in registers */
        for (idx_t tx = 0; tx < ntx; tx++) {
            for (idx_t c = 0; c < cin; c += L) {
                const float *d = xr + 2 * tx * cin + c;
                vwide e[4][4], t[4][4];
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++)
                        memcpy(&e[i][j], d + i * rs + j * cin, sizeof(vwide));
                for (int j = 0; j < 4; j++) {
                    t[0][j] = e[0][j] - e[2][j];
                    t[1][j] = e[1][j] + e[2][j];
                    t[2][j] = e[2][j] - e[1][j];
                    t[3][j] = e[1][j] - e[3][j];
                }
                float *vt = v + tx * cin + c;
                for (int i = 0; i < 4; i++) {
                    vwide r0 = t[i][0] - t[i][2], r1 = t[i][1] + t[i][2];
                    vwide r2 = t[i][2] - t[i][1], r3 = t[i][1] - t[i][3];
                    memcpy(vt + (i * 4 + 0) * plane, &r0, sizeof(vwide));
                    memcpy(vt + (i * 4 + 1) * plane, &r1, sizeof(vwide));
                    memcpy(vt + (i * 4 + 2) * plane, &r2, sizeof(vwide));
                    memcpy(vt + (i * 4 + 3) * plane, &r3, sizeof(vwide));
                }
            }
        }
        return;
    }
    for (idx_t tx = 0; tx < ntx; tx++) {
        const float *d = xr + 2 * tx * cin;
        for (int j = 0; j < 4; j++) {
            const float *d0 = d + j * cin, *d1 = d0 + rs, *d2 = d1 + rs, *d3 = d2 + rs;
            float *t0 = t + (0 * 4 + j) * cin, *t1 = t + (1 * 4 + j) * cin;
            float *t2 = t + (2 * 4 + j) * cin, *t3 = t + (3 * 4 + j) * cin;
            for (idx_t c = 0; c < cin; c++) {
                t0[c] = d0[c] - d2[c];
                t1[c] = d1[c] + d2[c];
                t2[c] = d2[c] - d1[c];
                t3[c] = d1[c] - d3[c];
            }
        }
        for (int i = 0; i < 4; i++) {
            const float *r0 = t + (i * 4) * cin, *r1 = r0 + cin, *r2 = r1 + cin, *r3 = r2 + cin;
            float *v0 = v + (i * 4 + 0) * plane + tx * cin, *v1 = v0 + plane;
            float *v2 = v1 + plane, *v3 = v2 + plane;
            for (idx_t c = 0; c < cin; c++) {
                v0[c] = r0[c] - r2[c];
                v1[c] = r1[c] + r2[c];
                v2[c] = r2[c] - r1[c];
                v3[c] = r1[c] - r3[c];
            }
        }
    }
}

/* z rows (2 ty, 2 ty + 1) = A^T m A (+ bias) for tiles tx < ntx; m[xi][tx][o] (tile stride cp,
 * plane stride ``plane``); t: scratch of 8*cout floats. Inner loops over the channels. */
static void wino_output(const float *restrict m, idx_t ntx, idx_t cp, idx_t plane,
                        const float *restrict bias, float *restrict z, idx_t oh_left, idx_t ow,
                        idx_t cout, float *restrict t)
{
    enum { L = sizeof(vwide) / sizeof(float) };
    if (cout % L == 0) { /* whole vectors of channels: the tile stays in registers */
        for (idx_t tx = 0; tx < ntx; tx++) {
            for (idx_t o = 0; o < cout; o += L) {
                const float *mt = m + tx * cp + o;
                vwide e[4][4], t[2][4], b = (vwide){0};
                if (bias) memcpy(&b, bias + o, sizeof(vwide));
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++)
                        memcpy(&e[i][j], mt + (i * 4 + j) * plane, sizeof(vwide));
                for (int j = 0; j < 4; j++) {
                    t[0][j] = e[0][j] + e[1][j] + e[2][j];
                    t[1][j] = e[1][j] - e[2][j] - e[3][j];
                }
                for (int i = 0; i < 2 && i < oh_left; i++) {
                    float *z0 = z + (i * ow + 2 * tx) * cout + o;
                    vwide y0 = t[i][0] + t[i][1] + t[i][2] + b;
                    memcpy(z0, &y0, sizeof(vwide));
                    if (2 * tx + 1 < ow) {
                        vwide y1 = t[i][1] - t[i][2] - t[i][3] + b;
                        memcpy(z0 + cout, &y1, sizeof(vwide));
                    }
                }
            }
        }
        return;
    }
    for (idx_t tx = 0; tx < ntx; tx++) {
        const float *mt = m + tx * cp;
        for (int j = 0; j < 4; j++) {
            const float *m0 = mt + j * plane, *m1 = m0 + 4 * plane, *m2 = m1 + 4 * plane;
            const float *m3 = m2 + 4 * plane;
            float *t0 = t + j * cout, *t1 = t + (4 + j) * cout;
            for (idx_t o = 0; o < cout; o++) {
                t0[o] = m0[o] + m1[o] + m2[o];
                t1[o] = m1[o] - m2[o] - m3[o];
            }
        }
        for (int i = 0; i < 2 && i < oh_left; i++) {
            const float *r0 = t + i * 4 * cout, *r1 = r0 + cout, *r2 = r1 + cout;
            const float *r3 = r2 + cout;
            float *z0 = z + (i * ow + 2 * tx) * cout;
            if (bias) {
                for (idx_t o = 0; o < cout; o++) z0[o] = r0[o] + r1[o] + r2[o] + bias[o];
            } else {
                for (idx_t o = 0; o < cout; o++) z0[o] = r0[o] + r1[o] + r2[o];
            }
            if (2 * tx + 1 < ow) {
                float *z1 = z0 + cout;
                if (bias) {
                    for (idx_t o = 0; o < cout; o++) z1[o] = r1[o] - r2[o] - r3[o] + bias[o];
                } else {
                    for (idx_t o = 0; o < cout; o++) z1[o] = r1[o] - r2[o] - r3[o];
                }
            }
        }
    }
}

/* Floats in the transformed kernel of cnk_winograd_kernel: 16 * Cin * Cout rounded up to the
 * channel block. */
int64_t cnk_winograd_kernel_size(int64_t cin, int64_t cout)
{
    const int cb = pick_cb(cout);
    return 16 * cin * ((cout + cb - 1) / cb) * cb;
}

/* u = G g G^T of the 3x3 kernel k (3, 3, Cin, Cout), packed for cnk_conv2d_forward_winograd
 * (u holds cnk_winograd_kernel_size floats). */
void cnk_winograd_kernel(const float *k, int64_t cin, int64_t cout, float *u)
{
    const int cb = pick_cb(cout);
    const idx_t ncb = (cout + cb - 1) / cb;
    wino_kernel(k, cin, cout, cb, ncb, u);
}

/* z = conv(x, k) + b for a 3x3 kernel, stride 1, dilation 1, by Winograd F(2x2, 3x3), output
 * rows [y0, y1) of images [0, n) (tiles from row y0); u: the kernel transformed by
 * cnk_winograd_kernel; with po as in direct_rows. */
static int wino_rows(const float *x, int64_t n, int64_t h, int64_t w, int64_t cin,
                     const float *u, int64_t cout, const float *bias, float *z, int64_t oh,
                     int64_t ow, int64_t pt, int64_t pl, int64_t y0, int64_t y1,
                     const pool_out *po)
{
    if (y1 <= y0 || n <= 0) return 0;
    const int cb = pick_cb(cout);
    const idx_t ncb = (cout + cb - 1) / cb, cp = ncb * cb;
    const idx_t th = (y1 - y0 + 1) / 2, tw = (ow + 1) / 2;
    const int rb = pick_rb_wino(tw, cb);
    const idx_t twr = (tw + rb - 1) / rb * rb;
    const idx_t hp = 2 * th + 2, wp = 2 * twr + 2;
    float *xp = malloc((size_t)(hp * wp * cin) * sizeof(float));
    float *v = malloc((size_t)(16 * twr * cin) * sizeof(float));
    float *m = malloc((size_t)(16 * twr * cp) * sizeof(float));
    float *t = malloc((size_t)(16 * (cin > cout ? cin : cout)) * sizeof(float));
    float *band = po ? malloc((size_t)(2 * ow * cout) * sizeof(float)) : NULL;
    idx_t zero = 0;
    if (!xp || !v || !m || !t || (po && !band)) {
        free(xp); free(v); free(m); free(t); free(band);
        return -1;
    }
    tile_fn fn = pick_tile(rb, cb);
    for (idx_t b = 0; b < n; b++) {
        pad_image(x + b * h * w * cin, h, w, cin, xp, hp, wp, pt - y0, pl);
        float *zb = po ? NULL : z + (b * oh + y0) * ow * cout;
        for (idx_t ty = 0; ty < th; ty++) {
            wino_input(xp + 2 * ty * wp * cin, wp, cin, twr, twr * cin, v, t);
            for (int xi = 0; xi < 16; xi++) {
                const float *vx = v + xi * twr * cin;
                float *mx = m + xi * twr * cp;
                for (idx_t t0 = 0; t0 < twr; t0 += rb)
                    for (idx_t ob = 0; ob < ncb; ob++)
                        fn(vx + t0 * cin, cin, &zero, 1, (int)cin,
                           u + (xi * ncb + ob) * cin * cb, mx + t0 * cp + ob * cb, cp, cb,
                           NULL, 0);
            }
            if (po) {
                wino_output(m, tw, cp, twr * cp, bias, band, 2, ow, cout, t);
                pool_rows(band, band + ow * cout, po->pw, cout, po,
                          po->p + (b * po->ph + y0 / 2 + ty) * po->pw * cout);
            } else {
                wino_output(m, tw, cp, twr * cp, bias, zb + 2 * ty * ow * cout,
                            y1 - y0 - 2 * ty, ow, cout, t);
            }
        }
    }
    free(xp); free(v); free(m); free(t); free(band);
    return 0;
}

int cnk_conv2d_forward_winograd_rows(const float *x, int64_t n, int64_t h, int64_t w,
                                     int64_t cin, const float *u, int64_t cout,
                                     const float *bias, float *z, int64_t oh, int64_t ow,
                                     int64_t pt, int64_t pl, int64_t y0, int64_t y1)
{
    return wino_rows(x, n, h, w, cin, u, cout, bias, z, oh, ow, pt, pl, y0, y1, NULL);
}

/* cnk_conv2d_forward_winograd_rows over all output rows. */
int cnk_conv2d_forward_winograd(const float *x, int64_t n, int64_t h, int64_t w, int64_t cin,
                                const float *u, int64_t cout, const float *bias, float *z,
                                int64_t oh, int64_t ow, int64_t pt, int64_t pl)
{
    return cnk_conv2d_forward_winograd_rows(x, n, h, w, cin, u, cout, bias, z, oh, ow, pt, pl,
                                            0, oh);
}

/* p (N, OH/2, OW/2, Cout) = clamp(pool(clamp(conv(x, k) + b, plo, phi)), lo, hi): the 2x2
 * max (avg 0) or average (avg 1) pooling at stride 2 ("valid": an odd last row or column
 * is dropped) of the clamped convolution, computed two output rows at a time (the
 * full-size output is never stored); by Winograd when u (the transformed kernel of
 * cnk_winograd_kernel; k unused, 3x3 stride 1 dilation 1) is given, else directly. Each
 * pooled value is the same as pooling the output of cnk_conv2d_forward(_winograd): the
 * same tiles compute the same sums. */
int cnk_conv2d_forward_pool(const float *x, int64_t n, int64_t h, int64_t w, int64_t cin,
                            const float *k, const float *u, int64_t kh, int64_t kw,
                            int64_t cout, const float *bias, float *p, int64_t oh, int64_t ow,
                            int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t pt,
                            int64_t pl, int64_t avg, float plo, float phi, float lo, float hi)
{
    pool_out po = {p, oh / 2, ow / 2, avg != 0, plo, phi, lo, hi};
    if (po.ph <= 0 || po.pw <= 0) return 0;
    if (u)
        return wino_rows(x, n, h, w, cin, u, cout, bias, NULL, oh, ow, pt, pl, 0, 2 * po.ph,
                         &po);
    return direct_rows(x, n, h, w, cin, k, kh, kw, cout, bias, NULL, oh, ow, sh, sw, dh, dw,
                       pt, pl, 0, 2 * po.ph, &po);
}

/* ---------------------------------------------------------------------------------------
 * Winograd kernel gradient for 3x3 kernels at stride 1, dilation 1, F(3x3, 2x2):
 *   dK[., ., c, o] = G^T [ sum over 2x2 output tiles (A dY A^T) . (B^T d B) ] G
 * with d the 4x4 input tile of channel c, dY the 2x2 output-error tile of channel o and A, B,
 * G the matrices of the forward (A = (A^T)^T, 4x2). The tile sums are 16 products
 * V[xi]^T (Cin x tiles) @ Y[xi] (tiles x Cout), accumulated by the dK tiles.
 * --------------------------------------------------------------------------------------- */

/* y[xi][t][o] = (A e A^T)[xi] of the 2x2 error tiles e at (2 ty, 2 tx) of g (oh, ow, cout),
 * zero beyond the output; t = ty * tw + tx, row stride cp (>= cout, padding lanes zero). */
static void wino_error(const float *g, idx_t oh, idx_t ow, idx_t cout, idx_t th, idx_t tw,
                       idx_t cp, float *restrict y)
{
    const idx_t plane = th * tw * cp;
    for (idx_t ty = 0; ty < th; ty++) {
        for (idx_t tx = 0; tx < tw; tx++) {
            const idx_t t = ty * tw + tx;
            const float *e[2][2];
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) {
                    idx_t oy = 2 * ty + i, ox = 2 * tx + j;
                    e[i][j] = (oy < oh && ox < ow) ? g + (oy * ow + ox) * cout : NULL;
                }
            enum { L = sizeof(vwide) / sizeof(float) };
            idx_t o0 = 0;
            if (cout % L == 0) { /* whole vectors of channels */
                for (; o0 < cout; o0 += L) {
                    vwide v[2][2], r[4][2];
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++) {
                            if (e[i][j]) memcpy(&v[i][j], e[i][j] + o0, sizeof(vwide));
                            else v[i][j] = (vwide){0};
                        }
                    for (int j = 0; j < 2; j++) {
                        r[0][j] = v[0][j];
                        r[1][j] = v[0][j] + v[1][j];
                        r[2][j] = v[0][j] - v[1][j];
                        r[3][j] = -v[1][j];
                    }
                    for (int i = 0; i < 4; i++) {
                        float *yt = y + (i * 4) * plane + t * cp + o0;
                        vwide y0 = r[i][0], y1 = r[i][0] + r[i][1], y2 = r[i][0] - r[i][1];
                        vwide y3 = -r[i][1];
                        memcpy(yt, &y0, sizeof(vwide));
                        memcpy(yt + plane, &y1, sizeof(vwide));
                        memcpy(yt + 2 * plane, &y2, sizeof(vwide));
                        memcpy(yt + 3 * plane, &y3, sizeof(vwide));
                    }
                }
            }
            for (idx_t o = o0; o < cout; o++) {
                float v[2][2], r[4][2];
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) v[i][j] = e[i][j] ? e[i][j][o] : 0.0f;
                for (int j = 0; j < 2; j++) {
                    r[0][j] = v[0][j];
                    r[1][j] = v[0][j] + v[1][j];
                    r[2][j] = v[0][j] - v[1][j];
                    r[3][j] = -v[1][j];
                }
                for (int i = 0; i < 4; i++) {
                    float *yt = y + (i * 4) * plane + t * cp + o;
                    yt[0] = r[i][0];
                    yt[plane] = r[i][0] + r[i][1];
                    yt[2 * plane] = r[i][0] - r[i][1];
                    yt[3 * plane] = -r[i][1];
                }
            }
            for (idx_t o = cout; o < cp; o++)
                for (int xi = 0; xi < 16; xi++) y[xi * plane + t * cp + o] = 0.0f;
        }
    }
}

/* dk (3*3*Cin, Cout) = the kernel gradient of a 3x3 stride-1 convolution over images [0, n)
 * by Winograd F(3x3, 2x2) (overwritten). */
int cnk_conv2d_kernel_grad_winograd(const float *x, int64_t n, int64_t h, int64_t w,
                                    int64_t cin, const float *g, int64_t oh, int64_t ow,
                                    int64_t cout, float *dk, int64_t pt, int64_t pl)
{
    int rr, cb;
    pick_dk_tile(cout, &rr, &cb);
    const idx_t ncb = (cout + cb - 1) / cb, cp = ncb * cb;
    const idx_t rows_r = (cin + rr - 1) / rr * rr;
    const idx_t th = (oh + 1) / 2, tw = (ow + 1) / 2, nt = th * tw;
    const idx_t hp = 2 * th + 2, wp = 2 * tw + 2;
    float *xp = malloc((size_t)(hp * wp * cin) * sizeof(float));
    float *v = malloc((size_t)(16 * nt * cin) * sizeof(float));
    float *y = malloc((size_t)(16 * nt * cp) * sizeof(float));
    float *acc = calloc((size_t)(16 * ncb * rows_r * cb), sizeof(float));
    float *t = malloc((size_t)(16 * cin) * sizeof(float));
    idx_t *xoff = malloc((size_t)rows_r * sizeof(idx_t));
    if (!xp || !v || !y || !acc || !t || !xoff) {
        free(xp); free(v); free(y); free(acc); free(t); free(xoff);
        return -1;
    }
    for (idx_t r = 0; r < rows_r; r++) xoff[r] = r < cin ? r : cin - 1;
    dk_fn fn = dk_tile_for(rr, cb);
    for (idx_t b = 0; b < n; b++) {
        pad_image(x + b * h * w * cin, h, w, cin, xp, hp, wp, pt, pl);
        for (idx_t ty = 0; ty < th; ty++)  /* v[xi][ty*tw + tx][c] */
            wino_input(xp + 2 * ty * wp * cin, wp, cin, tw, nt * cin, v + ty * tw * cin, t);
        wino_error(g + b * oh * ow * cout, oh, ow, cout, th, tw, cp, y);
        for (int xi = 0; xi < 16; xi++)
            for (idx_t ob = 0; ob < ncb; ob++)
                for (idx_t r0 = 0; r0 < rows_r; r0 += rr)
                    fn(v + xi * nt * cin, xoff + r0, y + xi * nt * cp + ob * cb, cp, 1, nt, 0,
                       cin, acc + ((xi * ncb + ob) * rows_r + r0) * cb);
    }
    /* dk[i, j, c, o] = (G^T M G)[i][j], M[xi] = acc[xi][o / cb][c][o % cb] */
    for (idx_t c = 0; c < cin; c++) {
        for (idx_t o = 0; o < cout; o++) {
            float m[4][4], q[3][4];
            for (int xi = 0; xi < 16; xi++)
                m[xi / 4][xi % 4] = acc[((xi * ncb + o / cb) * rows_r + c) * cb + o % cb];
            for (int j = 0; j < 4; j++) {
                q[0][j] = m[0][j] + 0.5f * (m[1][j] + m[2][j]);
                q[1][j] = 0.5f * (m[1][j] - m[2][j]);
                q[2][j] = 0.5f * (m[1][j] + m[2][j]) + m[3][j];
            }
            for (int i = 0; i < 3; i++) {
                dk[((i * 3 + 0) * cin + c) * cout + o] = q[i][0] + 0.5f * (q[i][1] + q[i][2]);
                dk[((i * 3 + 1) * cin + c) * cout + o] = 0.5f * (q[i][1] - q[i][2]);
                dk[((i * 3 + 2) * cin + c) * cout + o] = 0.5f * (q[i][1] + q[i][2]) + q[i][3];
            }
        }
    }
    free(xp); free(v); free(y); free(acc); free(t); free(xoff);
    return 0;
}


/* ---------------------------------------------------------------------------------------
 * A small spinning thread pool for row pieces of one forward call (batch 1 and other small
 * batches). Waking a sleeping thread costs ~40-70 us on the project's VM, as much as a whole
 * small convolution; these workers instead spin for SPIN_NS after each job (as OpenMP's do)
 * and only then sleep on a condition variable, so the convolutions of one inference pass
 * hand over in well under a microsecond. One caller at a time uses the pool; a concurrent
 * (or nested) caller runs its pieces on its own thread. Pieces write disjoint output rows,
 * so results do not depend on which thread runs which piece.
 * --------------------------------------------------------------------------------------- */
#define POOL_MAX 15
/* Spin time (ns) before a worker sleeps. Measured on ResNet-20 predict at batch 1 (min us,
 * same process): no pool 1764, spinning 0 / 20 / 50 us 1907 / 1917 / 1907 (every hand-over
 * wakes a sleeping thread), 200 us 1574, 2 ms 1556. */
#define SPIN_NS 200000L

typedef struct {
    void (*fn)(void *, int64_t);
    void *ctx;
    int64_t n;
    atomic_llong next, done;
} pool_job;

static struct {
    pthread_mutex_t busy, mu;
    pthread_cond_t cv;
    _Atomic(pool_job *) current;
    atomic_llong seq;
    atomic_int inside, sleepers, started;
    int fork_hooked;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
          NULL, 0, 0, 0, 0, 0};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

CNK_INLINE void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Take pieces of ``j`` until none is left. */
static void pool_take(pool_job *j)
{
    for (;;) {
        int64_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n) return;
        j->fn(j->ctx, i);
        atomic_fetch_add(&j->done, 1);
    }
}

/* A job is new to a worker when it is published and its number is not the last one the
 * worker entered. */
static int pool_nothing_new(int64_t last)
{
    return atomic_load(&pool.current) == NULL || atomic_load(&pool.seq) == last;
}

static void *pool_worker(void *arg)
{
    (void)arg;
    int64_t last = -1;
    for (;;) {
        int64_t t0 = now_ns();
        int spins = 0;
        while (pool_nothing_new(last)) {
            cpu_relax();
            if (++spins % 256 != 0) continue;
            sched_yield(); /* spinning, but any other thread of this core goes first */
            if (now_ns() - t0 > SPIN_NS) {
                pthread_mutex_lock(&pool.mu);
                atomic_fetch_add(&pool.sleepers, 1);
                while (pool_nothing_new(last)) pthread_cond_wait(&pool.cv, &pool.mu);
                atomic_fetch_sub(&pool.sleepers, 1);
                pthread_mutex_unlock(&pool.mu);
            }
        }
        /* enter, then read the job: the caller withdraws it and waits for ``inside`` to drop
         * to 0 before it returns, so a job read after entering outlives our use of it (and
         * its number is the one read with it: the next job needs ``inside`` at 0 first) */
        atomic_fetch_add(&pool.inside, 1);
        pool_job *j = atomic_load(&pool.current);
        int64_t s = atomic_load(&pool.seq);
        if (j != NULL) {
            pool_take(j);
            last = s;
        }
        atomic_fetch_sub(&pool.inside, 1);
    }
    return NULL;
}

static void pool_after_fork_child(void)
{
    pthread_mutex_init(&pool.busy, NULL);
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.cv, NULL);
    atomic_store(&pool.current, NULL);
    atomic_store(&pool.inside, 0);
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.started, 0); /* the child has none of the parent's threads */
}

/* Runs fn(ctx, i) for i < n on the caller and up to threads - 1 pool workers. */
static void pool_run(void (*fn)(void *, int64_t), void *ctx, int64_t n, int threads)
{
    if (threads > POOL_MAX + 1) threads = POOL_MAX + 1;
    if (threads <= 1 || n <= 1 || pthread_mutex_trylock(&pool.busy) != 0) {
        for (int64_t i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    if (!pool.fork_hooked) {
        pthread_atfork(NULL, NULL, pool_after_fork_child);
        pool.fork_hooked = 1;
    }
    while (atomic_load(&pool.started) < threads - 1) {
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&tid, &attr, pool_worker, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0) break; /* fewer workers: the caller takes more pieces */
        atomic_fetch_add(&pool.started, 1);
    }
    pool_job job = {fn, ctx, n, 0, 0};
    atomic_fetch_add(&pool.seq, 1);
    atomic_store(&pool.current, &job);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.cv);
        pthread_mutex_unlock(&pool.mu);
    }
    pool_take(&job);
    for (int spins = 0; atomic_load(&job.done) < n; spins++) {
        if (spins > 4096) sched_yield(); else cpu_relax();
    }
    atomic_store(&pool.current, NULL);
    while (atomic_load(&pool.inside) > 0) cpu_relax();
    pthread_mutex_unlock(&pool.busy);
}

typedef struct {
    const float *x, *k, *u, *bias;
    float *z;
    int64_t n, h, w, cin, kh, kw, cout, oh, ow, sh, sw, dh, dw, pt, pl;
    int64_t per_image, step;
    atomic_int failed;
} fwd_ctx;

/* Piece i: image i / per_image, its share (i % per_image) of the output rows, cut at
 * multiples of ``step`` rows. */
static void fwd_piece(void *arg, int64_t i)
{
    fwd_ctx *c = arg;
    const int64_t b = i / c->per_image, part = i % c->per_image;
    const int64_t units = (c->oh + c->step - 1) / c->step;
    int64_t y0 = units * part / c->per_image * c->step;
    int64_t y1 = units * (part + 1) / c->per_image * c->step;
    if (y1 > c->oh) y1 = c->oh;
    if (y0 >= y1) return;
    const float *xb = c->x + b * c->h * c->w * c->cin;
    float *zb = c->z + b * c->oh * c->ow * c->cout;
    int rc = c->u ? cnk_conv2d_forward_winograd_rows(xb, 1, c->h, c->w, c->cin, c->u, c->cout,
                                                     c->bias, zb, c->oh, c->ow, c->pt, c->pl,
                                                     y0, y1)
                  : cnk_conv2d_forward_rows(xb, 1, c->h, c->w, c->cin, c->k, c->kh, c->kw,
                                            c->cout, c->bias, zb, c->oh, c->ow, c->sh, c->sw,
                                            c->dh, c->dw, c->pt, c->pl, y0, y1);
    if (rc != 0) atomic_store(&c->failed, 1);
}

/* cnk_conv2d_forward (u == NULL) or cnk_conv2d_forward_winograd (u: the transformed kernel;
 * k unused) over images [0, n), each image's output rows cut into per_image pieces (at
 * multiples of ``step`` rows), the pieces shared by the caller and threads - 1 pool
 * workers. */
int cnk_conv2d_forward_pieces(const float *x, int64_t n, int64_t h, int64_t w, int64_t cin,
                              const float *k, const float *u, int64_t kh, int64_t kw,
                              int64_t cout, const float *bias, float *z, int64_t oh,
                              int64_t ow, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                              int64_t pt, int64_t pl, int64_t per_image, int64_t step,
                              int64_t threads)
{
    if (n <= 0) return 0;
    if (per_image < 1) per_image = 1;
    if (step < 1) step = 1;
    fwd_ctx c = {x, k, u, bias, z, n, h, w, cin, kh, kw, cout, oh, ow, sh, sw, dh, dw, pt, pl,
                 per_image, step, 0};
    pool_run(fwd_piece, &c, n * per_image, (int)threads);
    return atomic_load(&c.failed) ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------
 * Depthwise 2-D convolution forward (channel multiplier 1):
 *   z[n, oy, ox, c] = b[c] + sum_{i, j} x[n, oy*SH + i*DH - PT, ox*SW + j*DW - PL, c] k[i, j, c]
 * Per output row and block of L channels, the KH*KW kernel vectors stay in registers and the
 * row's pixels stream through; input rows outside the image read a zero row, and the few
 * pixels whose window leaves the image on the left or right take a checked path.
 * --------------------------------------------------------------------------------------- */
#define DW_MAX_TAPS 49

CNK_INLINE void dw_row(const int kh, const int kw, const float *const *rows, idx_t w,
                       idx_t c_all, const float *restrict k, const float *restrict bias,
                       float *restrict zr, idx_t ow, idx_t sw, idx_t dw, idx_t pl)
{
    enum { L = sizeof(vwide) / sizeof(float) };
    /* output columns whose whole window lies inside the image: [lo, hi) */
    idx_t lo = pl > 0 ? (pl + sw - 1) / sw : 0;
    idx_t last = w - 1 - (kw - 1) * dw + pl; /* largest ox*sw allowed */
    idx_t hi = last < 0 ? 0 : last / sw + 1;
    if (hi > ow) hi = ow;
    if (lo > hi) lo = hi;
    idx_t c = 0;
    for (; c + L <= c_all; c += L) {
        vwide kv[DW_MAX_TAPS], b0 = (vwide){0};
        for (int t = 0; t < kh * kw; t++) memcpy(&kv[t], k + t * c_all + c, sizeof(vwide));
        if (bias) memcpy(&b0, bias + c, sizeof(vwide));
        for (idx_t ox = lo; ox < hi; ox++) {
            vwide acc = b0;
            const idx_t x0 = ox * sw - pl;
            for (int i = 0; i < kh; i++) {
                const float *r = rows[i] + x0 * c_all + c;
                for (int j = 0; j < kw; j++) {
                    vwide xv;
                    memcpy(&xv, r + j * dw * c_all, sizeof(vwide));
                    acc += xv * kv[i * kw + j];
                }
            }
            memcpy(zr + ox * c_all + c, &acc, sizeof(vwide));
        }
    }
    /* the channel tail of the interior, then every channel of the border columns */
    for (idx_t ox = 0; ox < ow; ox++) {
        const int border = ox < lo || ox >= hi;
        const idx_t c0 = border ? 0 : c;
        if (c0 >= c_all) continue;
        const idx_t x0 = ox * sw - pl;
        float *zo = zr + ox * c_all;
        for (idx_t q = c0; q < c_all; q++) zo[q] = bias ? bias[q] : 0.0f;
        for (int i = 0; i < kh; i++) {
            for (int j = 0; j < kw; j++) {
                const idx_t ix = x0 + j * dw;
                if (ix < 0 || ix >= w) continue;
                const float *xr = rows[i] + ix * c_all;
                const float *kt = k + (i * kw + j) * c_all;
                for (idx_t q = c0; q < c_all; q++) zo[q] += xr[q] * kt[q];
            }
        }
    }
}

/* z = depthwise conv(x, k) + b for images [0, n), output rows [y0, y1); k (KH, KW, C). */
int cnk_depthwise_forward_rows(const float *x, int64_t n, int64_t h, int64_t w, int64_t c,
                               const float *k, int64_t kh, int64_t kw, const float *bias,
                               float *z, int64_t oh, int64_t ow, int64_t sh, int64_t sw,
                               int64_t dh, int64_t dw, int64_t pt, int64_t pl, int64_t y0,
                               int64_t y1)
{
    if (y1 <= y0 || n <= 0) return 0;
    if (kh * kw > DW_MAX_TAPS || kh > 16) return -2;
    float *zero = calloc((size_t)(w * c > 0 ? w * c : 1), sizeof(float));
    if (!zero) return -1;
    const float *rows[16];
    for (idx_t b = 0; b < n; b++) {
        const float *xb = x + b * h * w * c;
        for (idx_t oy = y0; oy < y1; oy++) {
            for (idx_t i = 0; i < kh; i++) {
                idx_t iy = oy * sh + i * dh - pt;
                rows[i] = (iy < 0 || iy >= h) ? zero : xb + iy * w * c;
            }
            float *zr = z + ((b * oh) + oy) * ow * c;
            if (kh == 3 && kw == 3)
                dw_row(3, 3, rows, w, c, k, bias, zr, ow, sw, dw, pl);
            else if (kh == 5 && kw == 5)
                dw_row(5, 5, rows, w, c, k, bias, zr, ow, sw, dw, pl);
            else
                dw_row((int)kh, (int)kw, rows, w, c, k, bias, zr, ow, sw, dw, pl);
        }
    }
    free(zero);
    return 0;
}

/* Depthwise backward (multiplier 1) for images [0, n), inner loops over the channels:
 *   dx[n, iy, ix, c] = sum over the (oy, ox, i, j) that read (iy, ix) of g[n, oy, ox, c] k[i, j, c]
 *   dk[i, j, c]      = sum_{n, oy, ox} x[n, iy, ix, c] g[n, oy, ox, c]   (overwritten)
 * with iy = oy*SH + i*DH - PT, ix = ox*SW + j*DW - PL. dx or dk may be NULL (not wanted). */
int cnk_depthwise_backward(const float *x, const float *g, int64_t n, int64_t h, int64_t w,
                           int64_t c, const float *k, int64_t kh, int64_t kw, float *dx,
                           float *dk, int64_t oh, int64_t ow, int64_t sh, int64_t sw,
                           int64_t dh, int64_t dw, int64_t pt, int64_t pl)
{
    if (dx) memset(dx, 0, (size_t)(n * h * w * c) * sizeof(float));
    if (dk) memset(dk, 0, (size_t)(kh * kw * c) * sizeof(float));
    for (idx_t b = 0; b < n; b++) {
        const float *xb = x ? x + b * h * w * c : NULL;
        const float *gb = g + b * oh * ow * c;
        float *dxb = dx ? dx + b * h * w * c : NULL;
        for (idx_t oy = 0; oy < oh; oy++) {
            const float *gr = gb + oy * ow * c;
            for (idx_t i = 0; i < kh; i++) {
                const idx_t iy = oy * sh + i * dh - pt;
                if (iy < 0 || iy >= h) continue;
                for (idx_t j = 0; j < kw; j++) {
                    const float *kt = k ? k + (i * kw + j) * c : NULL;
                    float *dkt = dk ? dk + (i * kw + j) * c : NULL;
                    for (idx_t ox = 0; ox < ow; ox++) {
                        const idx_t ix = ox * sw + j * dw - pl;
                        if (ix < 0 || ix >= w) continue;
                        const float *restrict gg = gr + ox * c;
                        if (dxb) {
                            float *restrict d = dxb + (iy * w + ix) * c;
                            for (idx_t q = 0; q < c; q++) d[q] += gg[q] * kt[q];
                        }
                        if (dkt) {
                            const float *restrict xx = xb + (iy * w + ix) * c;
                            float *restrict a = dkt;
                            for (idx_t q = 0; q < c; q++) a[q] += xx[q] * gg[q];
                        }
                    }
                }
            }
        }
    }
    return 0;
}
