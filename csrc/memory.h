/* Cache maintenance for map/unmap, and mmap'd arena memory (the hardware model's C layer). */
int cf_cache_clean(void *p, int64_t nbytes);
int cf_cache_flush(void *p, int64_t nbytes);
void *cf_arena_alloc(int64_t nbytes);
int cf_arena_free(void *p, int64_t nbytes);
int32_t cf_cache_clean_entry(const int64_t *a, const double *f);
int32_t cf_cache_flush_entry(const int64_t *a, const double *f);
