import AxialImaging
import FuzzSupport

// Slice PNGs as extract / pretrain / segment read them: gray, RGB and the file's own colour.
func fuzzPNG(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzz(data, size) { bytes in
        let url = FuzzScratch.file("slice.png", bytes)
        _ = try? PNG.read(url, channels: 1)
        _ = try? PNG.read(url, channels: 3)
        _ = try PNG.read(url)
    }
}

fuzzMain { data, size in fuzzPNG(data, size) }
