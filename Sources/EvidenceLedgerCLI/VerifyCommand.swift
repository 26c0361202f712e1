import ArgumentParser
import CERKit
import LedgerCore

/// `evidence-ledger verify`: offline verification of CERs, packages, project bundles and runs.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify CER bundles, CER packages, project bundles and runs offline.",
        discussion: """
            Detects each file's kind: an AI CER (cer.ai.execution.v1), a governed CER
            (cer.governed.execution.v1), a CER package ({"cer": …}), a project bundle
            (cer.project.bundle.v1), or a run (a JSON array of step bundles, or {"summary", "bundles"}).
            Without --keys (a key manifest) or --key-history with --pinned-key (the node's key events,
            of which only those the pinned keys authorise count) the signature and envelope layers are
            SKIPPED. Nothing is fetched.
            Exit codes: 0 verified, 1 not verified, 2 unreadable input or usage error.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json, aief
    }

    @Argument(help: "Files to verify (- reads standard input).")
    var files: [String]

    @Option(name: .long, help: "A node key manifest (/.well-known/nexart-node.json) to check signatures with.")
    var keys: String?

    @Option(
        name: .customLong("key-history"),
        help: "The node's key events (GET /v1/log/keys; repeatable for its pages): the keys are derived from the events the pinned keys authorise (needs --pinned-key).")
    var keyHistory: [String] = []

    @OptionGroup var trust: TrustOptions

    @Option(
        name: .customLong("tsa-roots"),
        help: "PEM trust anchors of timestamp authorities (e.g. /etc/ssl/certs/ca-certificates.crt): RFC 3161 tokens are then verified in full, and decisively.")
    var tsaRoots: String?

    @Option(name: .long, help: "Output format: text, json or aief.")
    var format: Format = .text

    @Flag(name: .customLong("run"), help: "Verify the files together as the steps of one run.")
    var asRun = false

    @Flag(name: .customLong("require-receipt"), help: "Fail when an artifact has no signed receipt.")
    var requireReceipt = false

    @Option(name: .customLong("max-bytes"), help: "Largest input accepted, in bytes.")
    var maxBytes: Int = 50 * 1024 * 1024

    func validate() throws {
        if files.isEmpty { throw ValidationError("name at least one file to verify (or - for standard input)") }
        if files.filter({ $0 == "-" }).count > 1 { throw ValidationError("standard input (-) can be named only once") }
        if maxBytes <= 0 { throw ValidationError("--max-bytes must be positive") }
        if keys != nil, !keyHistory.isEmpty { throw ValidationError("give --keys or --key-history, not both") }
    }

    func run() async throws {
        var options = VerificationOptions(requireAttestation: requireReceipt)
        var timestampRoots: RFC3161Verifier.Roots?
        if let tsaRoots {
            do {
                let roots = try RFC3161Verifier.Roots(pem: String(decoding: try FileOutput.read(tsaRoots, limit: 16 << 20), as: UTF8.self))
                guard !roots.certificates.isEmpty else { throw ValidationError("\(tsaRoots) holds no PEM certificate") }
                timestampRoots = roots
            } catch let error as ValidationError {
                throw error
            } catch {
                FileOutput.standardError("evidence-ledger: cannot use the TSA roots \(tsaRoots): \(error)")
                throw ExitCode(2)
            }
        }
        if let keys {
            do {
                let bytes = try FileOutput.read(keys, limit: 1 << 20)
                options.keys = try NodeKeyManifest(try JSONParser.parse(bytes))
            } catch {
                FileOutput.standardError("evidence-ledger: cannot use the key manifest \(keys): \(error)")
                throw ExitCode(2)
            }
        }
        if !keyHistory.isEmpty {
            let anchors = try trust.anchors()
            guard !anchors.isEmpty else { throw ValidationError("--key-history needs the pinned fingerprints (--pinned-key, --root-key)") }
            var events: [LedgerEntry] = []
            var nodeId: String?
            for file in keyHistory {
                do {
                    let document = try JSONParser.parse(try FileOutput.read(file, limit: 64 << 20))
                    events += try KeyHistoryDocument.events(document)
                    nodeId = nodeId ?? document["nodeId"]?.stringValue
                } catch {
                    FileOutput.standardError("evidence-ledger: cannot use the key history \(file): \(error)")
                    throw ExitCode(2)
                }
            }
            let history = NodeKeyHistory.history(events: events, anchors: anchors, nodeId: nodeId ?? "")
            for event in history.ignored { FileOutput.standardError("evidence-ledger: \(event)") }
            options.keys = history.manifest(nodeId: nodeId ?? "")
        }
        let limits = JSONParseLimits(maxBytes: maxBytes)
        var outcomes: [Outcome] = []
        var parsed: [(String, JSONValue)] = []
        for file in files {
            let name = file == "-" ? "standard input" : file
            do {
                let bytes = try FileOutput.read(file, limit: maxBytes)
                parsed.append((file, try JSONParser.parse(bytes, limits: limits)))
            } catch let error as FileOutput.ReadError {
                outcomes.append(.unreadable(file, "cannot read \(name): \(error)"))
            } catch {
                outcomes.append(.unreadable(file, "\(name) is not valid JSON: \(error)"))
            }
        }
        if asRun && outcomes.isEmpty {
            let report = ArtifactVerifier.verifyRun(bundles: parsed.map(\.1), summary: nil, options: options)
            var labelled = report
            labelled.label = "run of \(parsed.count) files"
            outcomes.append(.report(labelled))
        } else {
            for (file, value) in parsed {
                var report = ArtifactVerifier.verify(value, options: options, label: file == "-" ? "stdin" : file)
                if let timestampRoots { await ArtifactVerifier.verifyTimestamp(&report, artifact: value, roots: timestampRoots) }
                outcomes.append(.report(report))
            }
        }
        print(outcomes)
        if outcomes.contains(where: { if case .unreadable = $0 { return true } else { return false } }) { throw ExitCode(2) }
        if outcomes.contains(where: { if case .report(let r) = $0 { return !r.isVerified } else { return false } }) {
            throw ExitCode(1)
        }
    }

    enum Outcome {
        case report(VerificationReport)
        case unreadable(String, String)
    }

    func print(_ outcomes: [Outcome]) {
        switch format {
        case .text:
            for outcome in outcomes {
                switch outcome {
                case .report(let r): FileOutput.standardOutput(TextReport.render(r))
                case .unreadable(_, let why):
                    FileOutput.standardError("evidence-ledger: \(why)")
                }
            }
        case .json, .aief:
            let values: [JSONValue] = outcomes.map { outcome in
                switch outcome {
                case .report(let r):
                    if format == .json { return r.json() }
                    var o = r.aiefJSON().objectValue!
                    if let label = r.label { o["artifact"] = .string(JSONString(label)) }
                    return .object(o)
                case .unreadable(let file, let why):
                    FileOutput.standardError("evidence-ledger: \(why)")
                    return ["artifact": .string(JSONString(file)), "status": "UNREADABLE", "error": .string(JSONString(why))]
                }
            }
            let doc: JSONValue = values.count == 1 ? values[0] : .array(values)
            FileOutput.standardOutput(doc.prettyPrinted() + "\n")
        }
    }
}
