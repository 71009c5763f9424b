/* Strided region copies between float32 arrays.  Every offset is checked
 * against the array lengths before anything is read or written. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "status.h"
#include "copy.h"

#define CF_MAX_DIMS 8

int cf_copy_region(const float *src, int64_t src_len, const int64_t *src_strides,
                   float *dst, int64_t dst_len, const int64_t *dst_strides,
                   const int64_t *shape, int ndim)
{
    if (!src || !dst || !src_strides || !dst_strides || !shape)
        return CF_ENULL;
    if (ndim < 1 || ndim > CF_MAX_DIMS)
        return CF_ESHAPE;
    int64_t smax = 0, dmax = 0, total = 1;
    for (int d = 0; d < ndim; ++d) {
        if (shape[d] < 0 || src_strides[d] < 0 || dst_strides[d] < 0)
            return CF_ESHAPE;
        total *= shape[d];
        if (shape[d] > 0) {
            smax += (shape[d] - 1) * src_strides[d];
            dmax += (shape[d] - 1) * dst_strides[d];
        }
    }
    if (total == 0)
        return CF_OK;
    if (smax >= src_len || dmax >= dst_len)
        return CF_ESIZE;
    int64_t idx[CF_MAX_DIMS] = {0};
    const int last = ndim - 1;
    const int64_t inner = shape[last], ss = src_strides[last], ds = dst_strides[last];
    for (;;) {
        int64_t so = 0, dof = 0;
        for (int d = 0; d < last; ++d) {
            so += idx[d] * src_strides[d];
            dof += idx[d] * dst_strides[d];
        }
        if (ss == 1 && ds == 1)
            memmove(dst + dof, src + so, (size_t)inner * sizeof(float));
        else
            for (int64_t i = 0; i < inner; ++i)
                dst[dof + i * ds] = src[so + i * ss];
        int d = last - 1;
        while (d >= 0) {
            if (++idx[d] < shape[d])
                break;
            idx[d] = 0;
            --d;
        }
        if (d < 0)
            break;
    }
    return CF_OK;
}
