#ifndef CGDCM_H
#define CGDCM_H
#ifdef __cplusplus
extern "C" {
#endif
/// GDCM's version string, e.g. "3.0.21".
const char *axial_gdcm_version(void);
#ifdef __cplusplus
}
#endif
#endif
