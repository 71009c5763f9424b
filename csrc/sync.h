/* Waiting, without the interpreter lock, for a flag another thread sets. */
int cf_spin_wait(const int32_t *flag, int64_t max_ns);
