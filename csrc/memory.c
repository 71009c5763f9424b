/* Strided region copies, cache maintenance and arena memory.
 * map/unmap in coinfer model the cache maintenance a unified-memory SoC does
 * when ownership of a buffer moves between processors: write back dirty lines
 * (clean) before another agent reads, and drop lines (flush) so the next read
 * sees the other agent's writes.  Both walk the region line by line, so their
 * cost is real and grows with bytes. */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include "status.h"
#include "memory.h"

#define CF_LINE 64
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

static int cache_walk(void *p, int64_t nbytes, int flush)
{
    if (!p)
        return CF_ENULL;
    if (nbytes < 0)
        return CF_ESIZE;
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(CF_LINE - 1);
    const uintptr_t end = (uintptr_t)p + (uintptr_t)nbytes;
#if defined(__x86_64__) || defined(__i386__)
    for (; a < end; a += CF_LINE) {
        if (flush)
            __asm__ volatile("clflushopt (%0)" ::"r"(a) : "memory");
        else
            __asm__ volatile("clwb (%0)" ::"r"(a) : "memory");
    }
    __asm__ volatile("sfence" ::: "memory");
#else
    (void)flush;
    for (; a < end; a += CF_LINE)
        __asm__ volatile("" ::"r"(a) : "memory");
    __sync_synchronize();
#endif
    return CF_OK;
}

int cf_cache_clean(void *p, int64_t nbytes) { return cache_walk(p, nbytes, 0); }

int cf_cache_flush(void *p, int64_t nbytes) { return cache_walk(p, nbytes, 1); }

void *cf_arena_alloc(int64_t nbytes)
{
    if (nbytes <= 0)
        return NULL;
    void *p = mmap(NULL, (size_t)nbytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int cf_arena_free(void *p, int64_t nbytes)
{
    if (!p)
        return CF_ENULL;
    if (nbytes <= 0)
        return CF_ESIZE;
    return munmap(p, (size_t)nbytes) == 0 ? CF_OK : CF_ENOMEM;
}
