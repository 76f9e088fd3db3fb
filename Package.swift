// swift-tools-version:6.0
// swift-npid: non-parametric instance discrimination (Wu et al., CVPR 2018) on libtorch.
import PackageDescription

// scripts/bootstrap links .deps/libtorch to libtorch 2.11.0 (include/ and lib/).
let libtorch = Context.packageDirectory + "/.deps/libtorch"

let package = Package(
    name: "swift-npid",
    products: [
        .executable(name: "npid", targets: ["npid"]),
        .library(name: "NPID", targets: ["NPID"]),
        .library(name: "Torch", targets: ["Torch"]),
    ],
    targets: [
        .target(
            name: "CTorch",
            cxxSettings: [
                .unsafeFlags([
                    "-I", libtorch + "/include",
                    "-I", libtorch + "/include/torch/csrc/api/include",
                    "-O2", "-Wno-deprecated-declarations",
                ]),
            ],
            linkerSettings: [
                // CPU only: libtorch_cuda.so is opened with dlopen when --device cuda requests it.
                .unsafeFlags([
                    "-L", libtorch + "/lib",
                    "-Xlinker", "-rpath", "-Xlinker", libtorch + "/lib",
                    "-Xlinker", "-rpath", "-Xlinker", libtorch + "/../nvidia/cu13/lib",
                ]),
                .linkedLibrary("torch_cpu"),
                .linkedLibrary("c10"),
                .linkedLibrary("dl"),
            ]
        ),
        .target(name: "Torch", dependencies: ["CTorch"]),
        .systemLibrary(name: "CImageCodecs"),
        .target(name: "CPNGRead", linkerSettings: [.linkedLibrary("png")]),
        .target(name: "NPID", dependencies: ["Torch", "CImageCodecs", "CPNGRead"]),
        .executableTarget(name: "npid", dependencies: ["NPID", "Torch"]),
        .testTarget(name: "TorchTests", dependencies: ["Torch"]),
        .testTarget(name: "NPIDTests", dependencies: ["NPID", "Torch"], exclude: ["Formats/Fixtures", "Fixtures"]),
    ],
    cxxLanguageStandard: .cxx17
)
