import AxialStore
import FuzzSupport

// Per-patient HDF5 feature files, as crossval / deploy / statistics open them.
func fuzzFeatureStore(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzz(data, size) { bytes in
        let url = FuzzScratch.file("P0001.h5", bytes)
        _ = FeatureStore.readProvenance(url)
        _ = FeatureStore.isComplete(url)
        _ = try FeatureStore.read(url)
    }
}

fuzzMain { data, size in fuzzFeatureStore(data, size) }
