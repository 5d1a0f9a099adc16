// swift-tools-version:6.2
import PackageDescription

// Release builds drop libm's errno so sqrt/exp vectorise (see shared PERFORMANCE notes).
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-fno-math-errno"]),
    .unsafeFlags(["-Ounchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "Axial",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "axial", targets: ["axial"]),
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
        .target(
            name: "CGDCM", path: "Sources/CGDCM",
            cxxSettings: [.headerSearchPath("."), .unsafeFlags(["-std=c++17"])],
            linkerSettings: [
                .linkedLibrary("gdcmMSFF"), .linkedLibrary("gdcmDSED"), .linkedLibrary("gdcmCommon"),
                .linkedLibrary("gdcmIOD"), .linkedLibrary("gdcmDICT"),
            ]),

        // Engine.
        .target(name: "AxialTensor", dependencies: ["CBLAS"], swiftSettings: fastMath),
        .target(name: "AxialNN", dependencies: ["AxialTensor"], swiftSettings: fastMath),
        .target(name: "AxialModels", dependencies: ["AxialNN", "CZlib"], resources: [.copy("Resources")], swiftSettings: fastMath),

        // Imaging and storage.
        .target(name: "AxialImaging", dependencies: ["CGDCM", "CNIfTI", "CPNG", "CZlib", "AxialTensor"], swiftSettings: fastMath),
        .target(name: "AxialStore", dependencies: ["CHDF5"], swiftSettings: fastMath),

        // Evaluation: metrics, splits, tasks, statistics, SVG plots, synthetic cohorts.
        .target(name: "AxialEval", dependencies: ["AxialStore", .product(name: "Yams", package: "Yams")]),

        // Stages and CLI.
        .target(
            name: "AxialPipeline",
            dependencies: ["AxialImaging", "AxialStore", "AxialModels", "AxialEval", .product(name: "Yams", package: "Yams")],
            swiftSettings: fastMath),
        .executableTarget(
            name: "axial",
            dependencies: ["AxialPipeline", "AxialEval", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fastMath),

        .testTarget(name: "AxialTensorTests", dependencies: ["AxialTensor"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AxialNNTests", dependencies: ["AxialNN"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AxialModelsTests", dependencies: ["AxialModels"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AxialImagingTests", dependencies: ["AxialImaging"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AxialStoreTests", dependencies: ["AxialStore"]),
        .testTarget(name: "AxialEvalTests", dependencies: ["AxialEval"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AxialPipelineTests", dependencies: ["AxialPipeline", .product(name: "Yams", package: "Yams")]),
        // The CLI itself (config merge through swift-argument-parser, flag table vs AxialConfig.schema).
        .testTarget(name: "axialTests", dependencies: ["axial"]),
    ],
    cxxLanguageStandard: .cxx17
)
