import Engine
import Foundation
import Synchronization
import Testing

/// The bounded buffer in front of standard output, on a real pipe whose reader the test controls.
@Suite(.timeLimit(.minutes(1))) struct StandardOutputTests {
    @Test func write_whenTheReaderStops_neverBlocks_dropsWholeWrites_andWarnsOncePerInterval() async throws {
        // Given: a full pipe nobody reads yet, behind a 4 KiB buffer, and a clock the test moves.
        let pipe = Pipe()
        Self.fill(pipe.fileHandleForWriting.fileDescriptor)
        let now = Mutex(0.0)
        let (logger, log) = RecordingLogHandler.make()
        var configuration = StandardOutput.Configuration()
        configuration.capacity = 4096
        let output = StandardOutput(
            descriptor: pipe.fileHandleForWriting.fileDescriptor, configuration: configuration, logger: logger,
            now: { now.withLock { $0 } })
        let line = String(repeating: "x", count: 1023) + "\n"

        // When: more is written than the buffer holds.
        for _ in 0..<14 { output.write(line) }

        // Then: the writes returned; four filled the buffer, the rest were dropped, and one warning said so.
        #expect(output.droppedLines == 10)
        #expect(log.all == ["warning: stdout is blocked: 1 line dropped"])

        // When: more are dropped within the interval, then one after it.
        for _ in 0..<5 { output.write(line) }
        #expect(log.all.count == 1)
        now.withLock { $0 += 10 }
        output.write(line + line)

        // Then: the next warning counts everything dropped since the first.
        #expect(log.all.last == "warning: stdout is blocked: 16 lines dropped")

        // When: the reader reads again, output flows again: what was buffered, then a new line.
        let reader = pipe.fileHandleForReading
        let reading = Task.detached {
            var seen = Data()
            while !seen.suffix(6).elementsEqual("after\n".utf8) {
                let data = reader.availableData
                if data.isEmpty { break }
                seen.append(data)
            }
            return String(decoding: seen.suffix(4 * 1024 + 6), as: UTF8.self)
        }
        output.drain()
        output.write("after\n")
        #expect(await reading.value == String(repeating: line, count: 4) + "after\n")
        #expect(output.droppedLines == 17)

        // When: the reader goes away, the next write closes the output and wakes whoever waits for it.
        try reader.close()
        output.write("into nothing\n")
        await output.waitUntilClosed()
        #expect(output.isClosed)
    }

    /// Writes into the pipe until it is full.
    static func fill(_ descriptor: Int32) {
        let flags = fcntl(descriptor, F_GETFL)
        _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
        let block = [UInt8](repeating: UInt8(ascii: "-"), count: 4096)
        while write(descriptor, block, block.count) > 0 {}
        _ = fcntl(descriptor, F_SETFL, flags)
    }
}
