#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging
import NIOConcurrencyHelpers
import TokenCrypto

/// Writes each log event as one line, in `StreamLogHandler`'s format but with UTC timestamps, through a
/// ``LogWriter``: no stdio lock, no time-zone lookup per line; a value set on the logger is formatted once, when
/// set, and an event's own metadata only when its line is written.
///
/// Every authentication decision is logged at `info`, so on the verification path this handler runs once per
/// request; `StreamLogHandler`, with a `write(2)` per line, cost about a fifth of the verify throughput there
/// (docs/performance.md).
public struct LineLogHandler: LogHandler {
    /// Where lines go: a writer, or a closure (tests).
    public enum Destination: Sendable {
        case writer(LogWriter)
        case lines(@Sendable (String) -> Void)
    }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let destination: Destination

    /// A handler writing lines labelled `label` to `destination` (standard error unless given).
    public init(label: String, destination: Destination = .writer(.standardError), metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.destination = destination
        self.metadataProvider = metadataProvider
    }

    /// A value set here is kept as text: Hummingbird sets each request's id once and every line of the request, and
    /// its `X-Request-Id`, would otherwise format it again.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set {
            if case .stringConvertible(let value)? = newValue {
                metadata[key] = .string(value.description)
            } else {
                metadata[key] = newValue
            }
        }
    }

    public func log(event: LogEvent) {
        // A handful of fields: a list is cheaper than merging dictionaries.
        var fields: [(key: String, value: Logger.MetadataValue)] = []
        fields.reserveCapacity(metadata.count + (event.metadata?.count ?? 0) + 2)
        for (key, value) in metadata { fields.append((key, value)) }
        func set(_ key: String, _ value: Logger.MetadataValue) {
            if let index = fields.firstIndex(where: { $0.key == key }) {
                fields[index].value = value
            } else {
                fields.append((key, value))
            }
        }
        if let provided = metadataProvider?.get() { for (key, value) in provided { set(key, value) } }
        if let explicit = event.metadata { for (key, value) in explicit { set(key, value) } }
        if let error = event.error {
            set("error.message", "\(error)")
            set("error.type", "\(String(reflecting: type(of: error)))")
        }
        fields.sort { $0.key < $1.key }
        let timestamp = Self.clock.timestamp()
        // Most lines fit a stack buffer; a longer one is assembled on the heap.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1_024) { storage in
            var line = LineBuffer(storage: storage)
            line.append(timestamp)
            line.append(literal: " ")
            line.append(event.level.rawValue)
            if !label.isEmpty {
                line.append(literal: " ")
                line.append(label)
            }
            line.append(literal: ":")
            for (key, value) in fields {
                line.append(literal: " ")
                line.append(key)
                line.append(literal: "=")
                line.append(value.description)
            }
            line.append(literal: " [")
            line.append(event.source)
            line.append(literal: "] ")
            line.append(event.message.description)
            line.append(literal: "\n")
            line.withBytes { bytes in
                switch destination {
                case .writer(let writer): writer.append(bytes, immediately: event.level >= .warning)
                case .lines(let receive): receive(String(decoding: bytes, as: UTF8.self))
                }
            }
        }
    }

    /// The timestamp of the current second, formatted once per second for every handler.
    private static let clock = SecondClock()
}

/// `2026-11-29T08:13:02+0000` for the current second, cached until the second changes.
private final class SecondClock: Sendable {
    private let cache = NIOLockedValueBox<(second: Int, text: String)>((-1, ""))

    func timestamp() -> String {
        let now = time(nil)
        if let text = cache.withLockedValue({ $0.second == now ? $0.text : nil }) { return text }
        var seconds = now
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S+0000", &parts)
        let text = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        cache.withLockedValue { $0 = (now, text) }
        return text
    }
}

/// A log line assembled in caller-provided storage, moving to the heap only if it outgrows it.
private struct LineBuffer {
    let storage: UnsafeMutableBufferPointer<UInt8>
    var count = 0
    var overflow: [UInt8]?

    init(storage: UnsafeMutableBufferPointer<UInt8>) {
        self.storage = storage
    }

    /// Appends `text`'s UTF-8, read in place (a string not stored as UTF-8 is copied first).
    mutating func append(_ text: String) {
        text.withUTF8Bytes { append($0) }
    }

    /// Appends a literal, with none of a `String`'s reference counting.
    mutating func append(literal text: StaticString) {
        text.withUTF8Buffer { append($0) }
    }

    private mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        if overflow == nil, count + bytes.count <= storage.count {
            UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(storage)[count...]).copyMemory(from: UnsafeRawBufferPointer(bytes))
            count += bytes.count
        } else {
            if overflow == nil { overflow = Array(storage[..<count]) }
            overflow!.append(contentsOf: bytes)
        }
    }

    func withBytes(_ body: (UnsafeRawBufferPointer) -> Void) {
        if let overflow {
            overflow.withUnsafeBytes(body)
        } else {
            body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(storage)[..<count]))
        }
    }
}

/// Log lines on their way to a file descriptor, gathered so that a busy server makes one `write(2)` for many.
///
/// A line at `warning` or above is written at once, with every line before it; other lines are written within
/// ``interval`` by a background thread, or at once by the logging thread when ``limit`` bytes are waiting (so a
/// blocked descriptor slows logging down instead of filling memory). ``flush()`` writes everything now: the CLI
/// calls it on exit. A process that crashes may lose the last `interval` of lines below `warning`.
public final class LogWriter: @unchecked Sendable {
    /// Standard error, where `tessera serve` logs.
    public static let standardError = LogWriter(descriptor: 2)
    /// Longest a line below `warning` waits.
    public static let interval: Duration = .milliseconds(5)
    /// Bytes waiting beyond which the logging thread writes them itself.
    public static let limit = 64 * 1_024

    private let descriptor: Int32
    /// Guards `pending` and `flusherStarted`; signalled when `pending` stops being empty.
    private let condition = NSCondition()
    private var pending: [UInt8] = []
    /// The last batch written, emptied but keeping its capacity, to become `pending` next (guarded by `writing`).
    private var spare: [UInt8] = []
    private var flusherStarted = false
    /// Held while writing, so batches reach the descriptor in the order they were taken.
    private let writing = NIOLock()

    /// A writer for `descriptor`, which it does not close.
    public init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// Queues `bytes` (whole lines), writing them and everything before them at once if `immediately`.
    func append(_ bytes: UnsafeRawBufferPointer, immediately: Bool) {
        condition.lock()
        let wasEmpty = pending.isEmpty
        pending.append(contentsOf: bytes)
        let full = pending.count >= Self.limit
        if !flusherStarted {
            flusherStarted = true
            startFlusher()
        }
        if wasEmpty { condition.signal() }
        condition.unlock()
        if immediately || full { flush() }
    }

    /// Writes every queued line now.
    public func flush() {
        writing.withLock {
            condition.lock()
            swap(&spare, &pending)
            condition.unlock()
            spare.withUnsafeBytes { Self.writeAll($0, to: descriptor) }
            spare.removeAll(keepingCapacity: true)
        }
    }

    private func startFlusher() {
        let (seconds, attoseconds) = Self.interval.components
        let pause = Double(seconds) + Double(attoseconds) / 1e18
        let thread = Thread { [self] in
            // Named from inside: on Linux, Foundation applies a name only to the thread that sets it.
            Thread.current.name = "tessera-log"
            while true {
                condition.lock()
                while pending.isEmpty { condition.wait() }
                condition.unlock()
                Thread.sleep(forTimeInterval: pause)
                flush()
            }
        }
        thread.start()
    }

    /// Writes all of `bytes`, retrying short writes and interruptions; what cannot be written is dropped.
    private static func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32) {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, base + offset, bytes.count - offset)
            if written > 0 {
                offset += written
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                return
            }
        }
    }
}
