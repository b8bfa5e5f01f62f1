// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "urlpoll",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "urlpoll", targets: ["urlpoll"]),
        .library(name: "Engine", targets: ["Engine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.25.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.0", traits: []),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.0.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.0"),
    ],
    targets: [
        // Debian's liblua5.4-dev, plus a header of static inline helpers (macros, protected calls, the error
        // trampoline, the instruction budget and the memory cap). Its module map also declares CResolv, glibc's
        // libresolv (RFC 1035 messages for the DNS probe), which needs no package of its own.
        .systemLibrary(name: "CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),
        .target(
            name: "Engine",
            dependencies: [
                "CLua",
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            // The Lua modules scripts `require` (urlpoll.alerting, urlpoll.alerts.*), compiled into the binary.
            resources: [
                .embedInCode("Scripting/Modules/alerting.lua"),
                .embedInCode("Scripting/Modules/alerts/event.lua"),
                .embedInCode("Scripting/Modules/alerts/slack.lua"),
                .embedInCode("Scripting/Modules/alerts/discord.lua"),
                .embedInCode("Scripting/Modules/alerts/teams.lua"),
                .embedInCode("Scripting/Modules/alerts/pagerduty.lua"),
                .embedInCode("Scripting/Modules/alerts/opsgenie.lua"),
                .embedInCode("Scripting/Modules/alerts/telegram.lua"),
                .embedInCode("Scripting/Modules/alerts/ntfy.lua"),
                .embedInCode("Scripting/Modules/alerts/gotify.lua"),
                .embedInCode("Scripting/Modules/alerts/webhook.lua"),
                .embedInCode("Scripting/Modules/alerts/email.lua"),
                // The status page's template (swift-mustache).
                .embedInCode("Serving/StatusPage.mustache"),
            ],
            swiftSettings: strict
        ),
        // The loopback site `urlpoll demo` polls, and the script it runs.
        .target(
            name: "DemoSite",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird")
            ],
            resources: [.embedInCode("demo.lua")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "urlpoll",
            dependencies: [
                "Engine",
                "DemoSite",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The Lua microbenchmarks of bench/run, built in release mode.
        .executableTarget(
            name: "urlpoll-bench",
            dependencies: ["Engine", .product(name: "Logging", package: "swift-log")],
            path: "bench/LuaBench",
            swiftSettings: strict
        ),
        // glibc's heap statistics (mallinfo2), which the Glibc module does not export: what tests measure
        // memory by.
        .target(name: "CHeapStats", path: "Tests/CHeapStats"),
        .testTarget(
            name: "EngineTests",
            dependencies: [
                "Engine",
                "CHeapStats",
                "DemoSite",
                "urlpoll",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)
