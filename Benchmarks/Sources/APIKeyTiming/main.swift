// Dudect-style leakage check of the API key comparison: times `APIKeyRing.caller(presenting:)` for a fixed wrong
// key against fresh random wrong keys, interleaved at random, and prints Welch's t statistic. |t| below 4.5 means
// no timing difference was detected. A naive early-exit comparison is measured the same way as a control, to show
// the method does detect a leak. Run it through scripts/timing-apikey.
import Foundation
import Tessera
import TokenCrypto

let samplesPerClass = max(100_000, Int(CommandLine.arguments.dropFirst().first ?? "") ?? 200_000)

/// Running mean and variance (Welford) of one class of timings.
struct Moments {
    var count = 0.0
    var mean = 0.0
    var m2 = 0.0

    mutating func add(_ value: Double) {
        count += 1
        let delta = value - mean
        mean += delta / count
        m2 += delta * (value - mean)
    }

    var variance: Double { count > 1 ? m2 / (count - 1) : 0 }
}

/// Welch's t statistic between two classes.
func welch(_ a: Moments, _ b: Moments) -> Double {
    let denominator = (a.variance / a.count + b.variance / b.count).squareRoot()
    return denominator == 0 ? 0 : (a.mean - b.mean) / denominator
}

/// Times `check` on inputs of two classes, interleaved at random; returns |t| over all samples and over the fastest 90 %.
///
/// The fixed class is given as separate copies of one value, so both classes read memory the same way and only
/// the values differ.
func measure(fixed: [String], random: [String], _ check: (String) -> Bool) -> (all: Double, cropped: Double) {
    var order = [Bool](repeating: false, count: samplesPerClass) + [Bool](repeating: true, count: samplesPerClass)
    order.shuffle()
    var timings: [(isRandom: Bool, nanoseconds: Double)] = []
    timings.reserveCapacity(order.count)
    var randomIndex = 0
    var fixedIndex = 0
    var sink = false
    let clock = ContinuousClock()
    for isRandom in order {
        let input: String
        if isRandom {
            input = random[randomIndex]
            randomIndex += 1
        } else {
            input = fixed[fixedIndex]
            fixedIndex += 1
        }
        let start = clock.now
        sink = check(input) != sink
        let elapsed = clock.now - start
        timings.append((isRandom, Double(elapsed.components.attoseconds) / 1e9 + Double(elapsed.components.seconds) * 1e9))
    }
    if sink { print("", terminator: "") }  // keep the calls from being optimised away
    let threshold = timings.map(\.nanoseconds).sorted()[timings.count * 9 / 10]
    var all = (Moments(), Moments())
    var cropped = (Moments(), Moments())
    for timing in timings {
        if timing.isRandom { all.1.add(timing.nanoseconds) } else { all.0.add(timing.nanoseconds) }
        guard timing.nanoseconds <= threshold else { continue }
        if timing.isRandom { cropped.1.add(timing.nanoseconds) } else { cropped.0.add(timing.nanoseconds) }
    }
    return (abs(welch(all.0, all.1)), abs(welch(cropped.0, cropped.1)))
}

func randomKey() -> String { "tsk_" + SecureRandom.base62Secret() }

let configured = (0..<5).map { _ in randomKey() }
let ring = APIKeyRing(configured.enumerated().map { APIKeyCredential(name: "key\($0.offset)", role: .admin, secret: $0.element) })
let randomKeys = (0..<samplesPerClass).map { _ in randomKey() }

// The leak dudect looks for: the fixed input shares all but its last character with a configured key.
let nearMiss = String(configured[0].dropLast()) + (configured[0].last == "A" ? "B" : "A")

let nearMisses = (0..<samplesPerClass).map { _ in String(decoding: Array(nearMiss.utf8), as: UTF8.self) }

let tessera = measure(fixed: nearMisses, random: randomKeys) { ring.caller(presenting: $0) != nil }
let control = measure(fixed: nearMisses, random: randomKeys) { key in configured.contains { Array($0.utf8) == Array(key.utf8) } }

print("samples per class: \(samplesPerClass)")
print(String(format: "APIKeyRing.caller(presenting:)      |t| = %.2f (fastest 90 %%: %.2f)", tessera.all, tessera.cropped))
print(String(format: "control: early-exit byte comparison |t| = %.2f (fastest 90 %%: %.2f)", control.all, control.cropped))
let worst = max(tessera.all, tessera.cropped)
print(worst < 4.5 ? "no timing leak detected (|t| < 4.5)" : "TIMING DIFFERENCE DETECTED (|t| >= 4.5)")
exit(worst < 4.5 ? 0 : 1)
