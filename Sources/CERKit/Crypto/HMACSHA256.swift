import CSodium

/// HMAC-SHA-256 (RFC 2104) through libsodium.
public enum HMACSHA256 {
    /// The 32-byte tag of `message` under `key` (any length).
    public static func authenticate(_ message: [UInt8], key: [UInt8]) -> [UInt8] {
        var state = crypto_auth_hmacsha256_state()
        var tag = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        _ = crypto_auth_hmacsha256_init(&state, key, key.count)
        _ = crypto_auth_hmacsha256_update(&state, message, UInt64(message.count))
        _ = crypto_auth_hmacsha256_final(&state, &tag)
        return tag
    }
}
