// libsodium, for Ed25519 signing and verification (RFC 8032, strict encoding checks).
// SHA-256 comes from swift-crypto instead: it is 4-5x faster on this hardware.
#include <sodium.h>
