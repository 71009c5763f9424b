/* Several native-program entries run as one (csrc/dispatch.c's entry signature). */
int32_t cf_sequence_entry(const int64_t *a, const double *f);
