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
pub mod asym;
mod error;
pub mod import;
mod root;
mod secret;
pub mod stream;

pub use aead::{KEY_LEN, NONCE_LEN, TAG_LEN, open, seal};
pub use error::Error;
pub use root::{LocalRootKey, RootKey, RootKeyRing, RootKeySource, write_new_key_file};
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

/// HKDF-SHA256: a 32-byte key from `ikm`, `salt` and `info`.
pub fn derive_key(ikm: &Secret, salt: &[u8], info: &[u8]) -> Result<Secret, Error> {
    use aws_lc_rs::hkdf;
    struct Len32;
    impl hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm.expose());
    let info = [info];
    let okm = prk.expand(&info, Len32).map_err(|_| Error::Decrypt)?;
    let mut out = Secret::zeroed(32);
    okm.fill(out.as_mut()).map_err(|_| Error::Decrypt)?;
    Ok(out)
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use aws_lc_rs::hmac;
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// HMAC of `data` under `key` with SHA-224/256/384/512 (`bits`); `None` for other sizes.
pub fn hmac(bits: u16, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::hmac;
    let alg = match bits {
        224 => hmac::HMAC_SHA224,
        256 => hmac::HMAC_SHA256,
        384 => hmac::HMAC_SHA384,
        512 => hmac::HMAC_SHA512,
        _ => return None,
    };
    Some(
        hmac::sign(&hmac::Key::new(alg, key), data)
            .as_ref()
            .to_vec(),
    )
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Constant-time equality of two byte strings.
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}
