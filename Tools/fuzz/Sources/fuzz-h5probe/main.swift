import AxialStore

// The fuzz build's own copy of Axial's axial-h5probe (the same `FeatureProbe.serve`), built with
// ASan beside the fuzz targets: FuzzFeatureStore reads each input through it, as crossval does.
// (Named fuzz-h5probe: SwiftPM refuses two targets named axial-h5probe in one package graph;
// FuzzFeatureStore points AXIAL_H5PROBE at it.)
FeatureProbe.serve(arguments: Array(CommandLine.arguments.dropFirst()))
