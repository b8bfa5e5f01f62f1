import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Output is where reports go: standard output for the program, a buffer in tests.
public struct Output: Sendable {
    private let write: @Sendable (String) -> Void

    public init(_ write: @escaping @Sendable (String) -> Void) {
        self.write = write
    }

    public func callAsFunction(_ text: String) {
        self.write(text)
    }

    /// Standard output, through ``StandardOutput/shared``: queued and returns at once, never blocked by the
    /// reader (Lua's `print` goes the same way, so lines keep their order).
    public static let standardOutput = Output { StandardOutput.shared.write($0) }

    /// Writes straight to file descriptor 2 (for messages before exiting; the logger writes there too).
    public static let standardError = Output { Self.write($0, to: 2) }

    private static func write(_ text: String, to descriptor: Int32) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }
}
