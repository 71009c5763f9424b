/* The native dispatch loop: a worker thread walks its processor's steps of a compiled program
 * with no interpreter in the loop (called through cffi, which releases the interpreter lock).
 *
 * A step is CF_STEP_WORDS int64 words:
 *   [0] kind: CF_STEP_CALL or CF_STEP_SYNC
 *   [1] call: address of int32_t entry(const int64_t *iargs, const double *fargs)
 *   [2] call: address of the int64 argument block, [3] of the double block
 *   [4] sync: first wait, [5] number of waits (pairs (processor, count) in waits[])
 *   [6] modelled cost in ns, realised by waiting after the work (the cost profile's charge)
 *   [7] sync: timeout in ns (<= 0: none)
 * A sync waits until done[processor] >= count for each of its waits: the other processor has
 * finished that many steps.  After each step the worker publishes done[self] = steps finished
 * (release), so the data its steps wrote is visible to a waiter that sees the count (acquire).
 *
 * times[2i], times[2i+1] get step i's start and end (CLOCK_MONOTONIC ns, the clock of
 * Python's time.perf_counter on Linux); a sync starts once its waits are over, as the
 * interpreted path records it.  A failing step (a negative status from its entry, a timeout)
 * sets *abort_flag, which every other wait and step checks, so no processor waits on one that
 * stopped; fail[0] = the step, fail[1] = the status, fail[2] = the wait that timed out. */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <sched.h>
#include <time.h>
#include "status.h"
#include "dispatch.h"

#define CF_STEP_WORDS 8
#define CF_STEP_CALL 1
#define CF_STEP_SYNC 2

typedef int32_t (*cf_entry)(const int64_t *, const double *);

int64_t cf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    nanosleep(&ts, NULL);
}

/* Wait until CLOCK_MONOTONIC reaches `until`: sleep while far from it, then spin. */
static void wait_until(int64_t until)
{
    for (;;) {
        const int64_t left = until - cf_now_ns();
        if (left <= 0)
            return;
        if (left > 200000)
            sleep_ns(left - 100000);
        else
            cpu_relax();
    }
}

int cf_realise(int64_t ns)
{
    if (ns < 0)
        return CF_ERANGE;
    wait_until(cf_now_ns() + ns);
    return CF_OK;
}

/* Wait until *count >= want.  Each worker owns a core, so it first watches the counter with
 * pause; past 100 us it yields the core between looks, past 10 ms it naps 20 us. */
static int wait_count(const int64_t *count, int64_t want, const int32_t *abort_flag, int64_t deadline)
{
    const int64_t begin = cf_now_ns();
    for (uint64_t spins = 1;; ++spins) {
        if (__atomic_load_n(count, __ATOMIC_ACQUIRE) >= want)
            return CF_OK;
        if (__atomic_load_n(abort_flag, __ATOMIC_ACQUIRE))
            return CF_EABORT;
        cpu_relax();
        if (spins % 64 == 0) {
            const int64_t now = cf_now_ns();
            if (deadline > 0 && now >= deadline)
                return __atomic_load_n(count, __ATOMIC_ACQUIRE) >= want ? CF_OK : CF_ETIMEOUT;
            if (now - begin > 10000000LL)
                sleep_ns(20000);
            else if (now - begin > 100000LL)
                sched_yield();
        }
    }
}

static int check_program(const int64_t *steps, int64_t nsteps, const int64_t *waits, int64_t nwaits,
                         int64_t nproc)
{
    for (int64_t i = 0; i < nsteps; ++i) {
        const int64_t *s = steps + i * CF_STEP_WORDS;
        if (s[6] < 0)
            return CF_ERANGE;
        if (s[0] == CF_STEP_CALL) {
            if (!s[1])
                return CF_ENULL;
        } else if (s[0] == CF_STEP_SYNC) {
            if (s[4] < 0 || s[5] < 0 || s[4] > nwaits || s[5] > nwaits - s[4])
                return CF_ERANGE;
            for (int64_t k = s[4]; k < s[4] + s[5]; ++k)
                if (waits[2 * k] < 0 || waits[2 * k] >= nproc || waits[2 * k + 1] < 0)
                    return CF_ERANGE;
        } else {
            return CF_EKIND;
        }
    }
    return CF_OK;
}

static int fail_at(int32_t *abort_flag, int64_t *fail, int64_t step, int status, int64_t wait)
{
    fail[0] = step;
    fail[1] = status;
    fail[2] = wait;
    if (status != CF_EABORT)
        __atomic_store_n(abort_flag, 1, __ATOMIC_RELEASE);
    return status;
}

int cf_dispatch(const int64_t *steps, int64_t nsteps, const int64_t *waits, int64_t nwaits,
                int64_t *done, int64_t nproc, int64_t self, int32_t *abort_flag,
                int64_t *times, int64_t *fail)
{
    if (!steps || !waits || !done || !abort_flag || !times || !fail)
        return CF_ENULL;
    if (nsteps < 0 || nwaits < 0 || nproc < 1 || self < 0 || self >= nproc)
        return CF_ESHAPE;
    fail[0] = -1;
    fail[1] = CF_OK;
    fail[2] = -1;
    int st = check_program(steps, nsteps, waits, nwaits, nproc);
    if (st)
        return fail_at(abort_flag, fail, -1, st, -1);
    for (int64_t i = 0; i < nsteps; ++i) {
        const int64_t *s = steps + i * CF_STEP_WORDS;
        if (__atomic_load_n(abort_flag, __ATOMIC_ACQUIRE))
            return fail_at(abort_flag, fail, i, CF_EABORT, -1);
        int64_t start = cf_now_ns();
        if (s[0] == CF_STEP_SYNC) {
            const int64_t deadline = s[7] > 0 ? start + s[7] : 0;
            for (int64_t k = s[4]; k < s[4] + s[5]; ++k) {
                st = wait_count(done + waits[2 * k], waits[2 * k + 1], abort_flag, deadline);
                if (st) {
                    times[2 * i] = start;
                    times[2 * i + 1] = cf_now_ns();
                    return fail_at(abort_flag, fail, i, st, k);
                }
            }
            start = cf_now_ns();
        } else {
            st = ((cf_entry)(intptr_t)s[1])((const int64_t *)(intptr_t)s[2], (const double *)(intptr_t)s[3]);
        }
        if (st == CF_OK && s[6] > 0)
            wait_until(cf_now_ns() + s[6]);
        times[2 * i] = start;
        times[2 * i + 1] = cf_now_ns();
        if (st)
            return fail_at(abort_flag, fail, i, st < 0 ? st : CF_EKERNEL, -1);
        __atomic_store_n(done + self, i + 1, __ATOMIC_RELEASE);
    }
    return CF_OK;
}
