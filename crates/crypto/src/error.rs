//! Cryptographic failures. Deliberately coarse: a failed decryption says nothing about why.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Authentication failed: wrong key, wrong associated data, or tampered bytes.
    #[error("decryption failed")]
    Decrypt,
    #[error("a key must be {expected} bytes")]
    KeyLength { expected: usize },
    #[error("the system random number generator failed")]
    Random,
    #[error("root key: {0}")]
    RootKey(String),
}
