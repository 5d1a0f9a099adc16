// swift-tools-version:6.2
import PackageDescription

// libm's errno is dropped so sqrt/exp vectorise (see shared PERFORMANCE notes). Release builds keep
// Swift's preconditions and bounds checks (-O, not -Ounchecked): shape checks stay on in tests and
// in the product.
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-fno-math-errno"]),
]

let package = Package(
    name: "Axial",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "axial", targets: ["axial"]),
        .executable(name: "axial-h5probe", targets: ["axial-h5probe"]),
        .library(name: "AxialCore", targets: ["AxialCore"]),
        .library(name: "AxialTensor", targets: ["AxialTensor"]),
        .library(name: "AxialNN", targets: ["AxialNN"]),
        .library(name: "AxialModels", targets: ["AxialModels"]),
        .library(name: "AxialImaging", targets: ["AxialImaging"]),
        .library(name: "AxialStore", targets: ["AxialStore"]),
        .library(name: "AxialEval", targets: ["AxialEval"]),
        .library(name: "AxialPipeline", targets: ["AxialPipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // System libraries (Debian -dev packages; Tools/setup installs them).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "CNIfTI", path: "Sources/CNIfTI"),
        // Open MPI's C API through a shim that dlopens libmpi.so.40 at run time: builds without MPI,
        // uses it under mpirun / srun (Sources/README.md, "Data-parallel pretraining").
        .target(name: "CMPI", path: "Sources/CMPI"),
        .target(
            name: "CGDCM", path: "Sources/CGDCM",
            cxxSettings: [.headerSearchPath("."), .unsafeFlags(["-std=c++17"])],
            linkerSettings: [
                .linkedLibrary("gdcmMSFF"), .linkedLibrary("gdcmDSED"), .linkedLibrary("gdcmCommon"),
                .linkedLibrary("gdcmIOD"), .linkedLibrary("gdcmDICT"),
            ]),

        // Foundation-only pieces every floor shares, each once: atomic writer, CSV, SHA-256,
        // seeded generators, prefetcher, sendable pointer.
        .target(name: "AxialCore"),

        // Engine.
        .target(name: "AxialTensor", dependencies: ["CBLAS", "AxialCore"], swiftSettings: fastMath),
        .target(name: "AxialNN", dependencies: ["AxialTensor"], swiftSettings: fastMath),
        .target(name: "AxialModels", dependencies: ["AxialNN", "CZlib"], resources: [.copy("Resources")], swiftSettings: fastMath),

        // Imaging and storage.
        .target(name: "AxialImaging", dependencies: ["CGDCM", "CNIfTI", "CPNG", "CZlib", "AxialTensor"], swiftSettings: fastMath),
        .target(name: "AxialStore", dependencies: ["CHDF5", "AxialCore"], swiftSettings: fastMath),

        // Evaluation: metrics, splits, tasks, statistics, SVG plots.
        .target(name: "AxialEval", dependencies: ["AxialCore", "AxialStore", .product(name: "Yams", package: "Yams")]),

        // Stages and CLI.
        .target(
            name: "AxialPipeline",
            dependencies: ["AxialImaging", "AxialStore", "AxialModels", "AxialEval", "CMPI", .product(name: "Yams", package: "Yams")],
            swiftSettings: fastMath),
        .executableTarget(
            name: "axial",
            dependencies: ["AxialCore", "AxialPipeline", "AxialEval", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fastMath),

        // Development (not in the product): bench workloads, encoder checks, experiments; called by Tools/.
        // Reads untrusted HDF5 feature files in a child process (FeatureProbe), so that a crash of
        // the HDF5 library on a damaged file cannot take the calling stage down.
        .executableTarget(name: "axial-h5probe", dependencies: ["AxialStore"], path: "Sources/axial-h5probe",
                          swiftSettings: fastMath),
        .executableTarget(
            name: "axial-dev",
            dependencies: ["AxialCore", "AxialPipeline", "AxialTestSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/axial-dev",
            swiftSettings: fastMath),
        // Shared by the test targets (and axial-dev's workloads): one GradCheck, NaN-aware
        // comparisons, synthetic cohorts.
        .target(name: "AxialTestSupport", dependencies: ["AxialPipeline", "AxialEval", "AxialTensor"], path: "Tests/AxialTestSupport",
                swiftSettings: fastMath),

        .testTarget(name: "AxialTensorTests", dependencies: ["AxialTestSupport", "AxialTensor"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AxialNNTests", dependencies: ["AxialTestSupport", "AxialNN"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AxialModelsTests", dependencies: ["AxialTestSupport", "AxialModels"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AxialImagingTests", dependencies: ["AxialTestSupport", "AxialImaging"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AxialStoreTests", dependencies: ["AxialStore", "AxialTestSupport"]),
        .testTarget(name: "AxialCoreTests", dependencies: ["AxialCore", "AxialTestSupport"]),
        .testTarget(name: "AxialEvalTests", dependencies: ["AxialTestSupport", "AxialEval", "AxialPipeline"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AxialPipelineTests", dependencies: ["AxialTestSupport", "AxialPipeline", .product(name: "Yams", package: "Yams")],
                    resources: [.copy("Fixtures")]),
        // The CLI itself (config merge through swift-argument-parser, flag table vs AxialConfig.schema).
        .testTarget(name: "axialTests", dependencies: ["axial"]),
    ],
    cxxLanguageStandard: .cxx17
)
