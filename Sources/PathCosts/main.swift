// Measures, in one run, three costs on the verification path that docs/performance.md cites: reading a verify
// request's header fields through HTTPTypes' name subscript against `HTTPFields.value(of:)`; adding the answer's
// four fields through the name subscript against `append`; and one authentication log line through swift-log's
// `StreamLogHandler` against `LineLogHandler`. The two sides of each pair alternate over rounds, and the report gives
// each side's median and the median of the per-round ratios. Run it through scripts/bench-path.
import Foundation
import HTTPTypes
import Logging
import Tessera

let rounds = 9
let iterations: Int = {
    guard let argument = CommandLine.arguments.dropFirst().first else { return 200_000 }
    guard let count = Int(argument), count >= 10_000 else {
        FileHandle.standardError.write(Data("usage: path-costs [calls-per-round], at least 10000\n".utf8))
        exit(64)
    }
    return count
}()

/// Keeps results alive, so that the measured work is not optimised away.
nonisolated(unsafe) var sink = 0

/// Nanoseconds per call of `work`, over `iterations` calls.
func nanoseconds(_ work: () -> Int) -> Double {
    let start = ContinuousClock.now
    for _ in 0..<iterations { sink &+= work() }
    return (ContinuousClock.now - start) / .nanoseconds(1) / Double(iterations)
}

/// Runs `old` and `new` in turn, `rounds` times, and prints their medians and the median ratio of old to new.
func compare(_ title: String, old: (label: String, work: () -> Int), new: (label: String, work: () -> Int)) {
    var olds: [Double] = [], news: [Double] = [], ratios: [Double] = []
    for round in 0..<rounds {
        let oldCost: Double, newCost: Double
        if round % 2 == 0 {
            oldCost = nanoseconds(old.work)
            newCost = nanoseconds(new.work)
        } else {
            newCost = nanoseconds(new.work)
            oldCost = nanoseconds(old.work)
        }
        olds.append(oldCost)
        news.append(newCost)
        ratios.append(oldCost / newCost)
    }
    let median = { (values: [Double]) in values.sorted()[values.count / 2] }
    print(title)
    for (label, values) in [(old.label, olds), (new.label, news)] {
        print("  " + label.padding(toLength: 42, withPad: " ", startingAt: 0) + String(format: "%8.0f ns", median(values)))
    }
    let each = ratios.map { String(format: "%.2f", $0) }.joined(separator: " ")
    print(String(format: "  ratio (median of %d rounds): %.2f", rounds, median(ratios)) + "  [\(each)]")
}

// A verify request's fields, as Hummingbird hands them over (the authority is not among them).
let apiKey = HTTPField.Name("X-API-Key")!
var request = HTTPFields()
request[.contentType] = "application/json"
request[apiKey] = "tsk_" + String(repeating: "0123456789abcdef", count: 3)  // an API key's length, not a key
request[.contentLength] = "67"
let fields = request

let names: [HTTPField.Name] = [.contentType, apiKey, .authorization]

/// The lengths of the values of `names` (the last absent), read through `read`.
func readThree(_ read: (HTTPField.Name) -> String?) -> Int {
    var total = 0
    for name in names { total += read(name)?.utf8.count ?? 0 }
    return total
}

compare(
    "Reading Content-Type, X-API-Key and (absent) Authorization",
    old: ("headers[name]", { readThree { fields[$0] } }),
    new: ("headers.value(of: name)", { readThree { fields.value(of: $0) } })
)

// Both sides build all four fields from their values on every call.
let answer: [(HTTPField.Name, String)] = [
    (.contentType, "application/json; charset=utf-8"), (.contentLength, "176"),
    (HTTPField.Name("RateLimit-Policy")!, #""verify";q=10000000;w=1"#), (HTTPField.Name("RateLimit")!, #""verify";r=9999999;t=1"#),
]
compare(
    "Adding the answer's four fields to empty HTTPFields",
    old: ("headers[name] = value", {
        var headers = HTTPFields()
        headers.reserveCapacity(12)
        for (name, value) in answer { headers[name] = value }
        return headers.count
    }),
    new: ("headers.append(HTTPField(name:value:))", {
        var headers = HTTPFields()
        headers.reserveCapacity(12)
        for (name, value) in answer { headers.append(HTTPField(name: name, value: value)) }
        return headers.count
    })
)

// Both handlers write to /dev/null: StreamLogHandler to standard error, pointed there now (the results above are on
// standard output), and LineLogHandler through a LogWriter on a descriptor of its own.
let devNull = open("/dev/null", O_WRONLY)
precondition(devNull >= 0 && dup2(devNull, STDERR_FILENO) >= 0, "cannot send standard error to /dev/null")
let lineWriter = LogWriter(descriptor: devNull)
var streamLogger = Logger(label: "tessera") { label in StreamLogHandler.standardError(label: label) }
var lineLogger = Logger(label: "tessera") { label in LineLogHandler(label: label, destination: .writer(lineWriter)) }
streamLogger[metadataKey: "hb.request.id"] = "49bf7b8d624dbe436f43a1ada3253693"
lineLogger[metadataKey: "hb.request.id"] = "49bf7b8d624dbe436f43a1ada3253693"
let caller = "admin", client = "127.0.0.1"

/// Logs what `APIKeyAuthenticator` logs for an admitted caller.
func authenticated(_ logger: Logger) -> Int {
    logger.info("authenticated", metadata: ["caller": .string(caller), "client": .string(client)])
    return 1
}

compare(
    "One authentication line at info (caller, client and request id)",
    old: ("StreamLogHandler", { authenticated(streamLogger) }),
    new: ("LineLogHandler (and its writer thread)", { authenticated(lineLogger) })
)
lineWriter.flush()
print("(\(iterations) calls per side per round; checksum \(sink))")
