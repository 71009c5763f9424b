/* Layout transforms between NCHW buffers and MACE-style images.
 * Every function returns 0 on success or a negative status (see status codes
 * in coinfer.kernels.args.check_status); lengths are element counts of the arrays. */
int cf_to_image(const float *x, int64_t x_len, float *img, int64_t img_len,
                int64_t n, int64_t c, int64_t h, int64_t w,
                int64_t r0, int64_t r1, int64_t c0, int64_t c1);
int cf_to_buffer(const float *img, int64_t img_len, float *x, int64_t x_len,
                 int64_t n, int64_t c, int64_t h, int64_t w,
                 int64_t r0, int64_t r1, int64_t c0, int64_t c1);
int cf_filter_to_image(const float *w, int64_t w_len, float *out, int64_t out_len,
                       int64_t oc, int64_t ic, int64_t kh, int64_t kw);
int cf_depthwise_to_image(const float *w, int64_t w_len, float *out, int64_t out_len,
                          int64_t c, int64_t kh, int64_t kw);
int cf_fc_to_image(const float *w, int64_t w_len, float *out, int64_t out_len,
                   int64_t m, int64_t k);
int32_t cf_to_image_entry(const int64_t *a, const double *f);
int32_t cf_to_buffer_entry(const int64_t *a, const double *f);
