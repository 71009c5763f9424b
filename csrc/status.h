/* Status codes shared by every C function. */
enum cf_status {
    CF_OK = 0,
    CF_ENULL = -1,
    CF_ESHAPE = -2,
    CF_ERANGE = -3,
    CF_ESIZE = -4,
    CF_ENOMEM = -5,
    CF_EALIGN = -6,
    CF_EKERNEL = -7,
    CF_ETIMEOUT = -8,
    CF_EABORT = -9,
    CF_EKIND = -10
};
