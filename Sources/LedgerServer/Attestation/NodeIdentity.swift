import Foundation
import CERKit
import Synchronization

/// The base URL clients reach this node at; set once the listening port is known.
public final class PublicAddress: Sendable {
    private let value: Mutex<String>
    public init(_ url: String) { value = Mutex(url) }
    public var url: String { value.withLock { $0 } }
    public func set(_ url: String) { value.withLock { $0 = url } }
}

/// Who this node is: its id, its build, its replica, and the fingerprint of all three.
public struct NodeIdentity: Sendable {
    /// Version of this server (in `/version` and the runtime fingerprint).
    public static let serviceVersion = "0.4.0"
    /// The NexArt protocol version assumed when a request names none.
    public static let defaultProtocolVersion = "1.2.0"
    /// The `node` member of the runtime fingerprint.
    public static let nodeName = "evidence-ledger"

    public var nodeId: String
    public var instanceId: String
    public let address: PublicAddress
    /// Base URL for links (no trailing slash).
    public var publicURL: String { address.url }
    /// `sha256(canonical({instance_id, node, sdk_version, version}))` (PROTOCOL.md §2.8).
    public var nodeRuntimeHash: String

    public init(nodeId: String, instanceId: String, publicURL: String) {
        self.nodeId = nodeId
        self.instanceId = instanceId
        address = PublicAddress(publicURL)
        nodeRuntimeHash = AttestationReceipt.nodeRuntimeHash(
            instanceId: instanceId, node: Self.nodeName, sdkVersion: CERBuilder.defaultSDKVersion, version: Self.serviceVersion)
    }

    /// `https://…/v1/resolve/cer/sha256%3A…`: where anyone can fetch the public record.
    public func resolveURL(certificateHash: String) -> String {
        publicURL + "/v1/resolve/cer/" + Self.percentEncodeHash(certificateHash)
    }

    /// The colon of `sha256:` as `%3A`, as NexArt's links spell it.
    public static func percentEncodeHash(_ hash: String) -> String { hash.replacingOccurrences(of: ":", with: "%3A") }
}
