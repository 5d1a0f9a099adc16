#ifndef CGDCM_H
#define CGDCM_H
/* A thin extern "C" API over GDCM (C++). Opaque handles; every function catches all C++
   exceptions. Functions that can fail return 0 on success and write a message into `err`
   (nul-terminated, at most `errlen` bytes) otherwise. Handles are not shared between threads;
   different handles may be used on different threads at the same time (call
   axial_gdcm_init() once first). */
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/// GDCM's version string, e.g. "3.0.21".
const char *axial_gdcm_version(void);

/// Loads GDCM's global dictionaries. Call once before using handles on several threads.
void axial_gdcm_init(void);

typedef struct AxialDcm AxialDcm;

/// Parses `path`. with_pixels == 0: reads the data set up to (not including) Pixel Data, fast;
/// with_pixels != 0: reads the whole file as an image (pixels decoded by axial_dcm_decode).
/// Returns NULL and an error message on failure.
AxialDcm *axial_dcm_open(const char *path, int with_pixels, char *err, size_t errlen);
void axial_dcm_free(AxialDcm *h);

/// Value of the top-level (or file meta) element (group,element) as text, GDCM's StringFilter
/// (numbers in binary VRs as decimal text, multiple values separated by '\\'), trailing spaces and
/// NULs removed. Returns the full length of the value (may exceed buflen - 1; the copy is
/// truncated and nul-terminated), or -1 if the element is absent.
long axial_dcm_tag(const AxialDcm *h, uint16_t group, uint16_t element, char *buf, size_t buflen);

/// Byte offset in the file where header-only parsing stopped: just after the Pixel Data
/// element's header (tag, VR, length) when the file has Pixel Data, i.e. where its value starts. Meaningful for handles opened with with_pixels == 0.
long long axial_dcm_header_end(const AxialDcm *h);

/// 1 if the transfer syntax is encapsulated (compressed), 0 otherwise.
int axial_dcm_is_encapsulated(const AxialDcm *h);

typedef struct {
    int rows, columns, frames;
    int samples_per_pixel, bits_allocated, bits_stored, pixel_representation;
    /// "MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", ...
    char photometric[32];
    /// Bytes axial_dcm_decode writes.
    long long buffer_length;
} AxialDcmPixelInfo;

/// Pixel layout of a handle opened with with_pixels != 0.
int axial_dcm_pixel_info(const AxialDcm *h, AxialDcmPixelInfo *info, char *err, size_t errlen);

/// Decodes the stored pixel values (no rescale, no photometric change) into dst, which must hold
/// info.buffer_length bytes. Handles the transfer syntaxes GDCM supports (JPEG, JPEG-LS,
/// JPEG 2000, RLE, deflate, ...).
int axial_dcm_decode(const AxialDcm *h, void *dst, long long dstlen, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
