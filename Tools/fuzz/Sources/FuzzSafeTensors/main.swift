import AxialTensor
import FuzzSupport

// Weight files: header JSON, dtypes, shapes and offsets of every tensor.
func fuzzSafeTensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzz(data, size) { bytes in
        let url = FuzzScratch.file("weights.safetensors", bytes)
        _ = try SafeTensors.read(url)
    }
}

fuzzMain { data, size in fuzzSafeTensors(data, size) }
