/* A sync between the two processors' threads is a wait on the other's task.
 * Blocking on a condition variable costs an OS wake-up (tens of microseconds
 * in a VM) on every sync; each worker owns a core, so it may instead watch the
 * task's done flag for a short while, called through cffi with the
 * interpreter lock released.  Returns 1 once the flag is non-zero, 0 if
 * max_ns passed first (the caller then blocks as usual). */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <time.h>
#include "status.h"
#include "sync.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int cf_spin_wait(const int32_t *flag, int64_t max_ns)
{
    if (!flag)
        return CF_ENULL;
    const int64_t end = now_ns() + (max_ns > 0 ? max_ns : 0);
    for (;;) {
        for (int i = 0; i < 64; ++i) {
            if (__atomic_load_n(flag, __ATOMIC_ACQUIRE))
                return 1;
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
        if (now_ns() >= end)
            return __atomic_load_n(flag, __ATOMIC_ACQUIRE) ? 1 : 0;
    }
}
