#include <hdf5.h>
// HDF5's type and property-list identifiers are macros that call H5open(); Swift cannot import
// them, so they are wrapped here as inline functions.
static inline hid_t axial_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t axial_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t axial_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t axial_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t axial_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t axial_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t axial_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t axial_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t axial_h5s_all(void) { return H5S_ALL; }
static inline unsigned axial_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned axial_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned axial_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
static inline hid_t axial_h5t_native_uint16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t axial_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t axial_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hid_t axial_h5t_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t axial_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t axial_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t axial_h5e_default(void) { return H5E_DEFAULT; }
static inline unsigned axial_h5f_acc_excl(void) { return H5F_ACC_EXCL; }

/// A new IEEE 754 binary16 (half) little-endian type, as h5py/numpy's float16 (HDF5 1.10 has no
/// predefined one): sign bit 15, exponent bits 10-14 (bias 15), mantissa bits 0-9.
/// The caller closes it with H5Tclose. Returns a negative id on failure.
static inline hid_t axial_h5t_ieee_f16le_create(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0) return t;
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 ||
        H5Tset_precision(t, 16) < 0 || H5Tset_ebias(t, 15) < 0) { H5Tclose(t); return -1; }
    return t;
}

/// Silences HDF5's automatic printing of its error stack (errors are reported by Axial instead).
static inline void axial_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static herr_t axial_h5_walk_collect_(unsigned n, const H5E_error2_t *err, void *data) {
    char *buf = (char *)data + (n == 0 ? 0 : 256);   /* innermost first, then the outermost seen */
    if (err && err->desc && err->desc[0]) {
        size_t i = 0;
        for (; i < 255 && err->desc[i]; i++) buf[i] = err->desc[i];
        buf[i] = 0;
    }
    return 0;
}
/// Copies the descriptions of the innermost (most specific) error on HDF5's current error stack
/// into `buf[0..<256]` and of the outermost into `buf[256..<512]` (empty strings when absent),
/// then clears the stack. `buf` must hold 512 bytes.
static inline void axial_h5_last_error(char *buf) {
    buf[0] = 0; buf[256] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, axial_h5_walk_collect_, buf);
    H5Eclear2(H5E_DEFAULT);
}
