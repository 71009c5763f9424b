/* A sequence of entries as one entry of a native program (csrc/dispatch.c): a kernel whose
 * Python wrapper makes several compiled calls (e.g. pad the input rows, run the tiles, zero the
 * padding lanes) is one step.  iargs = {n, then n records (entry address, iargs address, fargs
 * address)}; the entries run in order and the first nonzero status is returned. */
#include <stdint.h>
#include "status.h"
#include "sequence.h"

typedef int32_t (*cf_entry)(const int64_t *, const double *);

int32_t cf_sequence_entry(const int64_t *a, const double *f)
{
    (void)f;
    if (!a)
        return CF_ENULL;
    if (a[0] < 0)
        return CF_ERANGE;
    for (int64_t i = 0; i < a[0]; ++i) {
        const int64_t *r = a + 1 + 3 * i;
        if (!r[0] || !r[1] || !r[2])
            return CF_ENULL;
        const int32_t st = ((cf_entry)(intptr_t)r[0])((const int64_t *)(intptr_t)r[1],
                                                      (const double *)(intptr_t)r[2]);
        if (st)
            return st;
    }
    return CF_OK;
}
