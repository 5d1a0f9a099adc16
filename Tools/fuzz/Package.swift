// swift-tools-version:6.2
// Fuzz targets for Axial's readers (libFuzzer + AddressSanitizer). Not part of the product build:
// `Tools/fuzz/run` builds this package with `-sanitize=fuzzer,address`, which
// instruments every Swift module of Axial it links, and runs each target on its seed corpus.
import PackageDescription

let fuzzTargets = ["FuzzDICOM", "FuzzNIfTI", "FuzzSafeTensors", "FuzzFeatureStore", "FuzzPNG", "FuzzCSV", "FuzzYAML"]

let package = Package(
    name: "AxialFuzz",
    dependencies: [.package(name: "Axial", path: "../..")],
    targets: [
        .target(name: "FuzzDriver", path: "Sources/FuzzDriver"),
        .target(name: "FuzzSupport", dependencies: ["FuzzDriver"], path: "Sources/FuzzSupport"),
    ] + fuzzTargets.map { name in
        .executableTarget(
            name: name,
            dependencies: [
                "FuzzSupport",
                .product(name: "AxialCore", package: "Axial"),
                .product(name: "AxialImaging", package: "Axial"),
                .product(name: "AxialStore", package: "Axial"),
                .product(name: "AxialEval", package: "Axial"),
                .product(name: "AxialPipeline", package: "Axial"),
            ],
            path: "Sources/\(name)")
    } + [
        .executableTarget(name: "fuzz-h5probe", dependencies: [.product(name: "AxialStore", package: "Axial")],
                          path: "Sources/fuzz-h5probe"),
    ]
)
