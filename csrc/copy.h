/* Strided region copies (the kernels' C layer). */
int cf_copy_region(const float *src, int64_t src_len, const int64_t *src_strides,
                   float *dst, int64_t dst_len, const int64_t *dst_strides,
                   const int64_t *shape, int ndim);
