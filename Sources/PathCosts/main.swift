// Measures, in one run, three costs on the verification path that docs/performance.md cites: reading a verify
// request's header fields through HTTPTypes' name subscript against `HTTPFields.value(of:)`; adding the answer's
// four fields with the name subscript against `append`; and one authentication log line through swift-log's
// `StreamLogHandler` against `LineLogHandler`. The two sides of each pair alternate over rounds, and the report gives
// each side's median and the median of the per-round ratios. Run it through scripts/bench-path.
import Foundation
import HTTPTypes
import Logging
import Tessera

let iterations = max(10_000, Int(CommandLine.arguments.dropFirst().first ?? "") ?? 200_000)
let rounds = 9

/// Keeps results alive, so that the measured work is not optimised away.
nonisolated(unsafe) var sink = 0

/// Nanoseconds per call of `work`, over `iterations` calls.
func nanoseconds(_ work: () -> Int) -> Double {
    let start = ContinuousClock.now
    for _ in 0..<iterations { sink &+= work() }
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) * 1e9 / Double(iterations) + Double(elapsed.components.attoseconds) / 1e9 / Double(iterations)
}

/// Runs `old` and `new` in turn, `rounds` times, and prints their medians and the median ratio of old to new.
func compare(_ title: String, old: (label: String, work: () -> Int), new: (label: String, work: () -> Int)) {
    var olds: [Double] = [], news: [Double] = [], ratios: [Double] = []
    for round in 0..<rounds {
        let (a, b) = round % 2 == 0 ? (nanoseconds(old.work), nanoseconds(new.work)) : ({ let b = nanoseconds(new.work); return (nanoseconds(old.work), b) })()
        olds.append(a)
        news.append(b)
        ratios.append(a / b)
    }
    let median = { (values: [Double]) in values.sorted()[values.count / 2] }
    print(title)
    for (label, values) in [(old.label, olds), (new.label, news)] {
        print("  " + label.padding(toLength: 36, withPad: " ", startingAt: 0) + String(format: "%8.0f ns", median(values)))
    }
    print(String(format: "  ratio (median of %d rounds): %.2f  [%@]", rounds, median(ratios), ratios.map { String(format: "%.2f", $0) }.joined(separator: " ")))
}

// A verify request's fields, as Hummingbird hands them over (the authority is not among them).
let apiKey = HTTPField.Name("X-API-Key")!
var request = HTTPFields()
request[.contentType] = "application/json"
request[apiKey] = "tsk_bdbd7b714d0f2d161addc18b6c0e58a2132a566de2f66bf2"
request[.contentLength] = "67"
let requestFields = request

compare(
    "Reading Content-Type, X-API-Key and (absent) Authorization",
    old: ("headers[name]", { (requestFields[.contentType]?.utf8.count ?? 0) + (requestFields[apiKey]?.utf8.count ?? 0) + (requestFields[.authorization]?.utf8.count ?? 0) }),
    new: ("headers.value(of: name)", {
        (requestFields.value(of: .contentType)?.utf8.count ?? 0) + (requestFields.value(of: apiKey)?.utf8.count ?? 0)
            + (requestFields.value(of: .authorization)?.utf8.count ?? 0)
    })
)

let policy = HTTPField.Name("RateLimit-Policy")!, remaining = HTTPField.Name("RateLimit")!
let policyValue = #""verify";q=10000000;w=1"#, policyField = HTTPField(name: policy, value: policyValue)
compare(
    "Adding the answer's four fields to empty HTTPFields",
    old: ("headers[name] = value", {
        var fields = HTTPFields()
        fields.reserveCapacity(12)
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.contentLength] = String(176)
        fields[policy] = policyValue
        fields[remaining] = #""verify";r=9999999;t=1"#
        return fields.count
    }),
    new: ("headers.append(HTTPField(...))", {
        var fields = HTTPFields()
        fields.reserveCapacity(12)
        fields.append(HTTPField(name: .contentType, value: "application/json; charset=utf-8"))
        fields.append(HTTPField(name: .contentLength, value: String(176)))
        fields.append(policyField)
        fields.append(HTTPField(name: remaining, value: #""verify";r=9999999;t=1"#))
        return fields.count
    })
)

// Both handlers write to /dev/null: StreamLogHandler to standard error (scripts/bench-path discards it), LineLogHandler
// through a LogWriter on a descriptor of its own.
let devNull = open("/dev/null", O_WRONLY)
precondition(devNull >= 0, "cannot open /dev/null")
let lineWriter = LogWriter(descriptor: devNull)
var streamLogger = Logger(label: "tessera") { label in StreamLogHandler.standardError(label: label) }
var lineLogger = Logger(label: "tessera") { label in LineLogHandler(label: label, destination: .writer(lineWriter)) }
streamLogger[metadataKey: "hb.request.id"] = "49bf7b8d624dbe436f43a1ada3253693"
lineLogger[metadataKey: "hb.request.id"] = "49bf7b8d624dbe436f43a1ada3253693"
let caller = "admin", client = "127.0.0.1"
compare(
    "One authentication line at info (caller, client and request id)",
    old: ("StreamLogHandler", {
        streamLogger.info("authenticated", metadata: ["caller": .string(caller), "client": .string(client)] as Logger.Metadata)
        return 1
    }),
    new: ("LineLogHandler", {
        lineLogger.info("authenticated", metadata: ["caller": .string(caller), "client": .string(client)] as Logger.Metadata)
        return 1
    })
)
lineWriter.flush()
print("(\(iterations) calls per side per round; checksum \(sink))")
