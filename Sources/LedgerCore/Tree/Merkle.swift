import CERKit

/// RFC 6962 / RFC 9162 hashing: leaves are `SHA-256(0x00 || data)`, interior nodes `SHA-256(0x01 || l || r)`.
public enum Merkle {
    /// The leaf hash of `data`.
    public static func leafHash(_ data: [UInt8]) -> [UInt8] { ProtocolHash.sha256([0x00] + data) }

    /// The interior node hash of two children.
    public static func nodeHash(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] { ProtocolHash.sha256([0x01] + left + right) }
}
