/* Strided region copies, cache maintenance for map/unmap, and mmap'd arena memory. */
int cf_copy_region(const float *src, int64_t src_len, const int64_t *src_strides,
                   float *dst, int64_t dst_len, const int64_t *dst_strides,
                   const int64_t *shape, int ndim);
int cf_cache_clean(void *p, int64_t nbytes);
int cf_cache_flush(void *p, int64_t nbytes);
void *cf_arena_alloc(int64_t nbytes);
int cf_arena_free(void *p, int64_t nbytes);
