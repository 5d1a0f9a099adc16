import AxialImaging
import FuzzSupport

// The whole input path a DICOM file takes in `axial inspect` / `ingest`: scan (Swift header walk,
// then GDCM on files that passed), assemble, read (decode + HU).
func fuzzDICOM(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzz(data, size) { bytes in
        let url = FuzzScratch.file("slice.dcm", bytes)
        let source = VolumeSource()
        let (series, _) = try source.scan(url.deletingLastPathComponent())
        for s in series { _ = try source.read(s) }
    }
}

fuzzMain { data, size in fuzzDICOM(data, size) }
