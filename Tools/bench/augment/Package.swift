// swift-tools-version:6.2
// Augmentation throughput benchmark (release only):
//   swift run -c release -Xswiftc -target-cpu -Xswiftc haswell --package-path Tools/bench/augment
import PackageDescription

let package = Package(
    name: "AugmentBench",
    dependencies: [.package(name: "Axial", path: "../../..")],
    targets: [.executableTarget(name: "AugmentBench", dependencies: [.product(name: "AxialImaging", package: "Axial")])]
)
