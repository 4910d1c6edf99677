//! Coffer's cryptographic building blocks, with no I/O beyond reading a root key file:
//! [`Secret`] buffers that zeroize and never print, AES-256-GCM sealing ([`seal`],
//! [`open`]), randomness ([`random`]), and the [`RootKey`] that wraps every piece of key
//! material Coffer stores.
//!
//! Invariants: a nonce is drawn fresh from the system CSPRNG for every seal (never a
//! counter, never fixed); every open failure is one opaque [`Error::Decrypt`], whatever
//! went wrong; no key or plaintext type here implements `Display` or `Serialize`, and
//! their `Debug` prints `[redacted]`. The root key sits behind a trait so that a PKCS#11
//! HSM can replace the local key without touching callers.

mod aead;
mod error;
mod root;
mod secret;
pub mod stream;

pub use aead::{KEY_LEN, NONCE_LEN, TAG_LEN, open, seal};
pub use error::Error;
pub use root::{LocalRootKey, RootKey, RootKeySource};
pub use secret::Secret;

/// Fills `buf` from the system CSPRNG.
pub fn random(buf: &mut [u8]) -> Result<(), Error> {
    use aws_lc_rs::rand::SecureRandom;
    aws_lc_rs::rand::SystemRandom::new()
        .fill(buf)
        .map_err(|_| Error::Random)
}

/// `n` fresh random bytes, as a secret.
pub fn random_secret(n: usize) -> Result<Secret, Error> {
    let mut s = Secret::zeroed(n);
    random(s.as_mut())?;
    Ok(s)
}
