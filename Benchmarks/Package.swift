// swift-tools-version:6.2
import PackageDescription

// Measurement programs, kept out of the shipped products: they depend on Tessera by path.
let package = Package(
    name: "tessera-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "tessera", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "APIKeyTiming",
            dependencies: [
                .product(name: "Tessera", package: "tessera"),
                .product(name: "TokenCrypto", package: "tessera"),
            ]
        ),
    ]
)
