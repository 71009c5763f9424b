/* Cache maintenance and arena memory.
 * map/unmap in coinfer model the cache maintenance a unified-memory SoC does
 * when ownership of a buffer moves between processors: write back dirty lines
 * (clean) before another agent reads, and drop lines (flush) so the next read
 * sees the other agent's writes.  Both walk the region line by line, so their
 * cost is real and grows with bytes. */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stddef.h>
#include <sys/mman.h>
#include "status.h"
#include "memory.h"

#define CF_LINE 64

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

/* Cache maintenance as entries of a native program (csrc/dispatch.c): iargs = {address, bytes}. */
int32_t cf_cache_clean_entry(const int64_t *a, const double *f)
{
    (void)f;
    return a ? cache_walk((void *)(intptr_t)a[0], a[1], 0) : CF_ENULL;
}

int32_t cf_cache_flush_entry(const int64_t *a, const double *f)
{
    (void)f;
    return a ? cache_walk((void *)(intptr_t)a[0], a[1], 1) : CF_ENULL;
}
