/* Buffer (NCHW) <-> image (N, H, CB, W, 4) transforms, MACE memory layout:
 * texel (x, y) of the activation image holds n = y / H, h = y % H, w = x % W,
 * c = 4 * (x / W) + k.  Filter image (OCB, KH, KW, IC, 4): MACE's conv filter
 * image [OCB*KH*KW rows, IC columns, 4].  Padding channels are zero. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "status.h"
#include "layout.h"

static int check_act(int64_t x_len, int64_t img_len, int64_t n, int64_t c,
                     int64_t h, int64_t w, int64_t r0, int64_t r1,
                     int64_t c0, int64_t c1)
{
    if (n < 0 || c < 1 || h < 0 || w < 0)
        return CF_ESHAPE;
    if (r0 < 0 || r1 > h || r0 > r1 || c0 < 0 || c1 > c || c0 > c1)
        return CF_ERANGE;
    int64_t cb = (c + 3) / 4;
    if (x_len < n * c * h * w || img_len < n * h * cb * w * 4)
        return CF_ESIZE;
    return CF_OK;
}

/* Both transforms walk the image in memory order (row, block, column, lane) so
 * that every texel is written or read once as 16 contiguous bytes; a full block
 * reads four channel rows side by side, which the compiler turns into a 4x4
 * transpose.  Lanes outside the channel region are left alone. */
int cf_to_image(const float *x, int64_t x_len, float *img, int64_t img_len,
                int64_t n, int64_t c, int64_t h, int64_t w,
                int64_t r0, int64_t r1, int64_t c0, int64_t c1)
{
    if (!x || !img)
        return CF_ENULL;
    int st = check_act(x_len, img_len, n, c, h, w, r0, r1, c0, c1);
    if (st)
        return st;
    const int64_t cb = (c + 3) / 4;
    /* The last block's padding lanes are written as zero whenever the region
     * reaches the last real channel. */
    const int64_t cpad = (c1 == c) ? cb * 4 : c1;
    if (c0 >= cpad)
        return CF_OK;
    const int64_t b0 = c0 / 4, b1 = (cpad + 3) / 4;
    for (int64_t in = 0; in < n; ++in)
        for (int64_t ih = r0; ih < r1; ++ih)
            for (int64_t b = b0; b < b1; ++b) {
                float *dst = img + (((in * h + ih) * cb + b) * w) * 4;
                const int64_t ch = 4 * b;
                if (ch >= c0 && ch + 4 <= c1) {
                    const float *s0 = x + ((in * c + ch) * h + ih) * w;
                    const float *s1 = s0 + h * w, *s2 = s1 + h * w, *s3 = s2 + h * w;
                    for (int64_t iw = 0; iw < w; ++iw) {
                        dst[4 * iw + 0] = s0[iw];
                        dst[4 * iw + 1] = s1[iw];
                        dst[4 * iw + 2] = s2[iw];
                        dst[4 * iw + 3] = s3[iw];
                    }
                    continue;
                }
                for (int64_t k = 0; k < 4; ++k) {
                    const int64_t chk = ch + k;
                    if (chk < c0 || chk >= cpad)
                        continue;
                    if (chk < c) {
                        const float *src = x + ((in * c + chk) * h + ih) * w;
                        for (int64_t iw = 0; iw < w; ++iw)
                            dst[4 * iw + k] = src[iw];
                    } else {
                        for (int64_t iw = 0; iw < w; ++iw)
                            dst[4 * iw + k] = 0.0f;
                    }
                }
            }
    return CF_OK;
}

int cf_to_buffer(const float *img, int64_t img_len, float *x, int64_t x_len,
                 int64_t n, int64_t c, int64_t h, int64_t w,
                 int64_t r0, int64_t r1, int64_t c0, int64_t c1)
{
    if (!x || !img)
        return CF_ENULL;
    int st = check_act(x_len, img_len, n, c, h, w, r0, r1, c0, c1);
    if (st)
        return st;
    const int64_t cb = (c + 3) / 4;
    if (c0 >= c1)
        return CF_OK;
    const int64_t b0 = c0 / 4, b1 = (c1 + 3) / 4;
    for (int64_t in = 0; in < n; ++in)
        for (int64_t ih = r0; ih < r1; ++ih)
            for (int64_t b = b0; b < b1; ++b) {
                const float *src = img + (((in * h + ih) * cb + b) * w) * 4;
                const int64_t ch = 4 * b;
                if (ch >= c0 && ch + 4 <= c1) {
                    float *d0 = x + ((in * c + ch) * h + ih) * w;
                    float *d1 = d0 + h * w, *d2 = d1 + h * w, *d3 = d2 + h * w;
                    for (int64_t iw = 0; iw < w; ++iw) {
                        d0[iw] = src[4 * iw + 0];
                        d1[iw] = src[4 * iw + 1];
                        d2[iw] = src[4 * iw + 2];
                        d3[iw] = src[4 * iw + 3];
                    }
                    continue;
                }
                for (int64_t k = 0; k < 4; ++k) {
                    const int64_t chk = ch + k;
                    if (chk < c0 || chk >= c1)
                        continue;
                    float *dst = x + ((in * c + chk) * h + ih) * w;
                    for (int64_t iw = 0; iw < w; ++iw)
                        dst[iw] = src[4 * iw + k];
                }
            }
    return CF_OK;
}

int cf_filter_to_image(const float *w, int64_t w_len, float *out, int64_t out_len,
                       int64_t oc, int64_t ic, int64_t kh, int64_t kw)
{
    if (!w || !out)
        return CF_ENULL;
    if (oc < 1 || ic < 1 || kh < 1 || kw < 1)
        return CF_ESHAPE;
    const int64_t ocb = (oc + 3) / 4;
    if (w_len < oc * ic * kh * kw || out_len < ocb * kh * kw * ic * 4)
        return CF_ESIZE;
    for (int64_t b = 0; b < ocb; ++b)
        for (int64_t y = 0; y < kh; ++y)
            for (int64_t x = 0; x < kw; ++x)
                for (int64_t i = 0; i < ic; ++i) {
                    float *dst = out + (((b * kh + y) * kw + x) * ic + i) * 4;
                    for (int64_t k = 0; k < 4; ++k) {
                        const int64_t o = b * 4 + k;
                        dst[k] = (o < oc) ? w[((o * ic + i) * kh + y) * kw + x] : 0.0f;
                    }
                }
    return CF_OK;
}

int cf_depthwise_to_image(const float *w, int64_t w_len, float *out, int64_t out_len,
                          int64_t c, int64_t kh, int64_t kw)
{
    if (!w || !out)
        return CF_ENULL;
    if (c < 1 || kh < 1 || kw < 1)
        return CF_ESHAPE;
    const int64_t cb = (c + 3) / 4;
    if (w_len < c * kh * kw || out_len < cb * kh * kw * 4)
        return CF_ESIZE;
    for (int64_t b = 0; b < cb; ++b)
        for (int64_t y = 0; y < kh; ++y)
            for (int64_t x = 0; x < kw; ++x) {
                float *dst = out + ((b * kh + y) * kw + x) * 4;
                for (int64_t k = 0; k < 4; ++k) {
                    const int64_t ch = b * 4 + k;
                    dst[k] = (ch < c) ? w[(ch * kh + y) * kw + x] : 0.0f;
                }
            }
    return CF_OK;
}

int cf_fc_to_image(const float *w, int64_t w_len, float *out, int64_t out_len,
                   int64_t m, int64_t k)
{
    if (!w || !out)
        return CF_ENULL;
    if (m < 1 || k < 1)
        return CF_ESHAPE;
    const int64_t mb = (m + 3) / 4;
    if (w_len < m * k || out_len < mb * k * 4)
        return CF_ESIZE;
    for (int64_t b = 0; b < mb; ++b)
        for (int64_t i = 0; i < k; ++i) {
            float *dst = out + (b * k + i) * 4;
            for (int64_t l = 0; l < 4; ++l) {
                const int64_t o = b * 4 + l;
                dst[l] = (o < m) ? w[o * k + i] : 0.0f;
            }
        }
    return CF_OK;
}

/* The transforms as entries of a native program (csrc/dispatch.c): iargs = {src, src_len, dst,
 * dst_len, n, c, h, w, r0, r1, c0, c1}, addresses and element counts as int64. */
int32_t cf_to_image_entry(const int64_t *a, const double *f)
{
    (void)f;
    if (!a)
        return CF_ENULL;
    return cf_to_image((const float *)(intptr_t)a[0], a[1], (float *)(intptr_t)a[2], a[3],
                       a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]);
}

int32_t cf_to_buffer_entry(const int64_t *a, const double *f)
{
    (void)f;
    if (!a)
        return CF_ENULL;
    return cf_to_buffer((const float *)(intptr_t)a[0], a[1], (float *)(intptr_t)a[2], a[3],
                        a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]);
}
