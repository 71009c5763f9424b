/* The native dispatch loop: one processor's part of a compiled program, run with no interpreter.
 * A step is CF_STEP_WORDS int64 words (see dispatch.c); every entry it calls has the signature
 * int32_t entry(const int64_t *iargs, const double *fargs) and returns 0 or a negative status. */
int cf_dispatch(const int64_t *steps, int64_t nsteps, const int64_t *waits, int64_t nwaits,
                int64_t *done, int64_t nproc, int64_t self, int32_t *abort_flag,
                int64_t *times, int64_t *fail);
int64_t cf_now_ns(void);
int cf_realise(int64_t ns);
