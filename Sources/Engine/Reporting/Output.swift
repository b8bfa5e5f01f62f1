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

    /// Writes straight to file descriptor 1, so lines interleave correctly with Lua's `print`, which
    /// flushes C's stdout after every line.
    public static let standardOutput = Output { Self.write($0, to: 1) }

    /// Writes straight to file descriptor 2.
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
