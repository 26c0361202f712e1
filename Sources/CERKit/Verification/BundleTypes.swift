/// Bundle type and schema identifiers of the protocol.
public enum BundleType {
    /// An AI execution CER.
    public static let aiExecution = "cer.ai.execution.v1"
    /// A governed-execution CER (live node v0.29+).
    public static let governedExecution = "cer.governed.execution.v1"
    /// A project bundle.
    public static let projectBundle = "cer.project.bundle.v1"
    /// The snapshot type of an AI CER.
    public static let aiSnapshot = "ai.execution.v1"
    /// The only bundle `version` the SDK accepts.
    public static let cerVersion = "0.1"
    /// Protocol versions this verifier knows (unknown ones fail closed).
    public static let knownProtocolVersions: Set<String> = ["1.2.0", "1.3.0", "1.3.1"]
}
