#include "cgdcm.h"
#include <gdcm-3.0/gdcmVersion.h>

extern "C" const char *axial_gdcm_version(void) { return gdcm::Version::GetVersion(); }
