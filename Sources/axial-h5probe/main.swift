import AxialStore

// axial-h5probe: reads HDF5 feature files in a process of its own, so that a file which crashes
// the HDF5 library (Debian's libhdf5 1.10.8 has a heap-use-after-free on a damaged attribute
// message, found by FuzzFeatureStore) kills this child and not Axial. `FeatureProbe.check`
// starts it and restarts it after the file it died on; the protocol is `FeatureProbe.serve`'s.
FeatureProbe.serve(arguments: Array(CommandLine.arguments.dropFirst()))
