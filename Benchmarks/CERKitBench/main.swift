// cerkit-bench FILE SECONDS: verification and canonicalization throughput of one bundle, single
// threaded, printed as one JSON line in the same shape as ops/bench/node-reference.js.
import CERKit
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 3, let seconds = Double(arguments[2]), seconds > 0 else {
    FileHandle.standardError.write(Data("usage: cerkit-bench FILE SECONDS\n".utf8))
    exit(2)
}
let path = arguments[1]
guard let data = FileManager.default.contents(atPath: path) else {
    FileHandle.standardError.write(Data("cerkit-bench: cannot read \(path)\n".utf8))
    exit(2)
}
let bytes = [UInt8](data)

/// Runs `body` repeatedly for `duration` seconds and returns iterations per second.
func measure(seconds duration: Double, _ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    let warmup = clock.now.advanced(by: .milliseconds(500))
    while clock.now < warmup { body() }
    var iterations = 0
    let start = clock.now
    let end = start.advanced(by: .nanoseconds(Int64(duration * 1e9)))
    while clock.now < end {
        body()
        iterations += 1
    }
    let elapsed = clock.now - start
    return Double(iterations) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

// The full SDK verification of the raw bytes: parse, input/output hashes, certificate hash.
do {
    let result = CerVerifier.verify(try JSONParser.parse(bytes))
    guard result.ok else {
        FileHandle.standardError.write(Data("cerkit-bench: \(path) does not verify: \(result.errors)\n".utf8))
        exit(1)
    }
} catch {
    FileHandle.standardError.write(Data("cerkit-bench: \(path) is not JSON: \(error)\n".utf8))
    exit(1)
}
var sink = 0
let verifyPerSec = measure(seconds: seconds) {
    let value = try! JSONParser.parse(bytes)
    if CerVerifier.verify(value).ok { sink &+= 1 }
}
let parsed = try! JSONParser.parse(bytes)
let canonicalPerSec = measure(seconds: seconds) {
    sink &+= try! CanonicalJSON.encode(parsed).count
}
let canonicalMBps = canonicalPerSec * Double(bytes.count) / 1e6
func rounded(_ v: Double, _ places: Double) -> Double { (v * places).rounded() / places }
let line: JSONValue = [
    "impl": "swift", "file": .string(JSONString(path)), "bytes": .number(Double(bytes.count)),
    "verifyPerSec": .number(rounded(verifyPerSec, 100)), "canonicalMBps": .number(rounded(canonicalMBps, 1000)),
]
print(line.compactText())
if sink == 42 { print("") }  // keep the work observable to the optimizer
