import AxialImaging
import FuzzSupport

// A NIfTI file through the same scan + read as ingest; inputs that start with the gzip magic are
// named .nii.gz so the compressed path is fuzzed too.
func fuzzNIfTI(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzz(data, size) { bytes in
        let gz = bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
        let url = FuzzScratch.file(gz ? "volume.nii.gz" : "volume.nii", bytes)
        let source = VolumeSource()
        let (series, _) = try source.scan(url.deletingLastPathComponent())
        for s in series { _ = try source.read(s) }
    }
}

fuzzMain { data, size in fuzzNIfTI(data, size) }
