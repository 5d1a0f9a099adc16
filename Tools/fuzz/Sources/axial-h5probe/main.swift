import AxialStore

// The fuzz build's own copy of Axial's axial-h5probe (the same `FeatureProbe.serve`), built with
// ASan beside the fuzz targets: FuzzFeatureStore reads each input through it, as crossval does.
FeatureProbe.serve(arguments: Array(CommandLine.arguments.dropFirst()))
