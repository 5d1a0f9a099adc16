// extern "C" shim over GDCM; see include/cgdcm.h for the contract.
#include "cgdcm.h"
#include <gdcm-3.0/gdcmVersion.h>
#include <gdcm-3.0/gdcmGlobal.h>
#include <gdcm-3.0/gdcmDicts.h>
#include <gdcm-3.0/gdcmReader.h>
#include <gdcm-3.0/gdcmImageReader.h>
#include <gdcm-3.0/gdcmImage.h>
#include <gdcm-3.0/gdcmStringFilter.h>
#include <gdcm-3.0/gdcmFileMetaInformation.h>
#include <gdcm-3.0/gdcmTransferSyntax.h>
#include <cstring>
#include <exception>
#include <memory>
#include <set>
#include <string>

struct AxialDcm {
    std::unique_ptr<gdcm::Reader> reader;   // gdcm::ImageReader when pixels were requested
    bool withPixels = false;
    long long headerEnd = 0;
};

static void setError(char *err, size_t errlen, const std::string &msg) {
    if (!err || errlen == 0) return;
    size_t n = msg.size() < errlen - 1 ? msg.size() : errlen - 1;
    std::memcpy(err, msg.data(), n);
    err[n] = 0;
}

extern "C" const char *axial_gdcm_version(void) { return gdcm::Version::GetVersion(); }

extern "C" void axial_gdcm_init(void) {
    try { (void)gdcm::Global::GetInstance().GetDicts().GetPublicDict(); } catch (...) {}
}

extern "C" AxialDcm *axial_dcm_open(const char *path, int with_pixels, char *err, size_t errlen) {
    try {
        auto h = std::make_unique<AxialDcm>();
        h->withPixels = with_pixels != 0;
        if (h->withPixels) {
            auto r = std::make_unique<gdcm::ImageReader>();
            r->SetFileName(path);
            if (!r->Read()) { setError(err, errlen, "GDCM could not read the file as an image (corrupt, truncated or not an image)"); return nullptr; }
            h->reader = std::move(r);
        } else {
            auto r = std::make_unique<gdcm::Reader>();
            r->SetFileName(path);
            std::set<gdcm::Tag> skip;
            skip.insert(gdcm::Tag(0x7fe0, 0x0010));          // stop at Pixel Data without reading it
            if (!r->ReadUpToTag(gdcm::Tag(0x7fe0, 0x0010), skip)) { setError(err, errlen, "GDCM could not parse the DICOM header (corrupt or truncated)"); return nullptr; }
            h->headerEnd = (long long)r->GetStreamCurrentPosition();
            h->reader = std::move(r);
        }
        return h.release();
    } catch (const std::exception &e) {
        setError(err, errlen, std::string("GDCM: ") + e.what());
    } catch (...) {
        setError(err, errlen, "GDCM: unknown exception");
    }
    return nullptr;
}

extern "C" void axial_dcm_free(AxialDcm *h) {
    try { delete h; } catch (...) {}
}

extern "C" long axial_dcm_tag(const AxialDcm *h, uint16_t group, uint16_t element, char *buf, size_t buflen) {
    try {
        if (buflen > 0) buf[0] = 0;
        const gdcm::File &f = h->reader->GetFile();
        gdcm::Tag t(group, element);
        const gdcm::DataSet &ds = group == 0x0002 ? f.GetHeader() : f.GetDataSet();
        if (!ds.FindDataElement(t)) return -1;
        const gdcm::DataElement &de = ds.GetDataElement(t);
        if (de.IsEmpty()) return 0;
        std::string v;
        if (group == 0x0002) {
            const gdcm::ByteValue *bv = de.GetByteValue();
            if (bv) v.assign(bv->GetPointer(), bv->GetLength());
        } else {
            gdcm::StringFilter sf;
            sf.SetFile(f);
            v = sf.ToString(t);
        }
        while (!v.empty() && (v.back() == ' ' || v.back() == '\0')) v.pop_back();
        size_t start = 0;
        while (start < v.size() && v[start] == ' ') start++;
        v = v.substr(start);
        if (buflen > 0) {
            size_t n = v.size() < buflen - 1 ? v.size() : buflen - 1;
            std::memcpy(buf, v.data(), n);
            buf[n] = 0;
        }
        return (long)v.size();
    } catch (...) {
        return -1;
    }
}

extern "C" long long axial_dcm_header_end(const AxialDcm *h) { return h->headerEnd; }

extern "C" int axial_dcm_is_encapsulated(const AxialDcm *h) {
    try {
        return h->reader->GetFile().GetHeader().GetDataSetTransferSyntax().IsEncapsulated() ? 1 : 0;
    } catch (...) { return 0; }
}

extern "C" int axial_dcm_pixel_info(const AxialDcm *h, AxialDcmPixelInfo *info, char *err, size_t errlen) {
    try {
        if (!h->withPixels) { setError(err, errlen, "handle opened without pixels"); return 1; }
        const gdcm::Image &img = static_cast<gdcm::ImageReader *>(h->reader.get())->GetImage();
        const gdcm::PixelFormat &pf = img.GetPixelFormat();
        std::memset(info, 0, sizeof(*info));
        info->columns = (int)img.GetDimension(0);
        info->rows = (int)img.GetDimension(1);
        info->frames = img.GetNumberOfDimensions() > 2 ? (int)img.GetDimension(2) : 1;
        info->samples_per_pixel = pf.GetSamplesPerPixel();
        info->bits_allocated = pf.GetBitsAllocated();
        info->bits_stored = pf.GetBitsStored();
        info->pixel_representation = pf.GetPixelRepresentation();
        const char *pi = gdcm::PhotometricInterpretation::GetPIString(img.GetPhotometricInterpretation());
        std::string ps = pi ? pi : "";
        while (!ps.empty() && ps.back() == ' ') ps.pop_back();
        std::strncpy(info->photometric, ps.c_str(), sizeof(info->photometric) - 1);
        info->buffer_length = (long long)img.GetBufferLength();
        return 0;
    } catch (const std::exception &e) {
        setError(err, errlen, std::string("GDCM: ") + e.what());
    } catch (...) {
        setError(err, errlen, "GDCM: unknown exception");
    }
    return 1;
}

extern "C" int axial_dcm_decode(const AxialDcm *h, void *dst, long long dstlen, char *err, size_t errlen) {
    try {
        if (!h->withPixels) { setError(err, errlen, "handle opened without pixels"); return 1; }
        const gdcm::Image &img = static_cast<gdcm::ImageReader *>(h->reader.get())->GetImage();
        if ((long long)img.GetBufferLength() > dstlen) { setError(err, errlen, "destination buffer too small"); return 1; }
        if (!img.GetBuffer((char *)dst)) {
            setError(err, errlen, std::string("GDCM could not decode the pixel data (transfer syntax ") +
                     gdcm::TransferSyntax::GetTSString(img.GetTransferSyntax()) + ", data may be truncated or corrupt)");
            return 1;
        }
        return 0;
    } catch (const std::exception &e) {
        setError(err, errlen, std::string("GDCM: ") + e.what());
    } catch (...) {
        setError(err, errlen, "GDCM: unknown exception");
    }
    return 1;
}
