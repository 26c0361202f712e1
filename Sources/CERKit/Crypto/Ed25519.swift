import CSodium

/// Ed25519 (RFC 8032, pure) through libsodium.
public enum Ed25519 {
    /// Public keys are 32 bytes.
    public static let publicKeyLength = 32
    /// Signatures are 64 bytes.
    public static let signatureLength = 64
    /// Seeds (private keys) are 32 bytes.
    public static let seedLength = 32

    private static let initialized: Bool = sodium_init() >= 0

    /// True when `signature` is a valid signature of `message` by `publicKey`. Wrong lengths are
    /// invalid, not errors.
    public static func isValidSignature(_ signature: [UInt8], of message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard initialized, signature.count == signatureLength, publicKey.count == publicKeyLength else { return false }
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey) == 0
    }

    /// The 64-byte signature of `message` under the key pair derived from `seed`.
    public static func sign(_ message: [UInt8], seed: [UInt8]) -> [UInt8] {
        sign(message, secretKey: KeyPair(seed: seed).secretKey)
    }

    /// The signature of `message` under libsodium's 64-byte expanded secret key.
    static func sign(_ message: [UInt8], secretKey: [UInt8]) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: signatureLength)
        var length: UInt64 = 0
        _ = crypto_sign_detached(&signature, &length, message, UInt64(message.count), secretKey)
        return signature
    }

    /// The public key of the key pair derived from `seed`.
    public static func publicKey(seed: [UInt8]) -> [UInt8] { KeyPair(seed: seed).publicKey }

    struct KeyPair {
        var publicKey = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        var secretKey = [UInt8](repeating: 0, count: Int(crypto_sign_SECRETKEYBYTES))

        init(seed: [UInt8]) {
            precondition(Ed25519.initialized, "libsodium failed to initialise")
            precondition(seed.count == Ed25519.seedLength, "an Ed25519 seed is 32 bytes")
            _ = crypto_sign_seed_keypair(&publicKey, &secretKey, seed)
        }
    }
}

/// An Ed25519 signing key held in memory.
public struct Ed25519SigningKey: Sendable {
    /// The 32-byte seed.
    public let seed: [UInt8]
    /// The 32-byte public key.
    public let publicKey: [UInt8]
    /// The expanded secret key, derived once (deriving it costs as much as a signature).
    private let secretKey: [UInt8]

    /// A key from its 32-byte seed; nil when the length is wrong.
    public init?(seed: [UInt8]) {
        guard seed.count == Ed25519.seedLength else { return nil }
        let pair = Ed25519.KeyPair(seed: seed)
        self.seed = seed
        self.publicKey = pair.publicKey
        self.secretKey = pair.secretKey
    }

    /// The signature of `message`.
    public func sign(_ message: [UInt8]) -> [UInt8] { Ed25519.sign(message, secretKey: secretKey) }
}

/// Comparison whose time does not depend on where two secrets differ (libsodium `sodium_memcmp`).
public enum ConstantTime {
    /// True when `a` and `b` are equal; lengths are not secret.
    public static func isEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return sodium_memcmp(a, b, a.count) == 0
    }
}
