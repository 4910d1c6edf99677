//! AES-256-GCM with a random 96-bit nonce per message. Sealed layout:
//! `nonce (12) || ciphertext || tag (16)`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::{Error, Secret};

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

fn key(k: &Secret) -> Result<LessSafeKey, Error> {
    if k.len() != KEY_LEN {
        return Err(Error::KeyLength { expected: KEY_LEN });
    }
    let unbound = UnboundKey::new(&AES_256_GCM, k.expose())
        .map_err(|_| Error::KeyLength { expected: KEY_LEN })?;
    Ok(LessSafeKey::new(unbound))
}

/// Encrypts `plaintext` under `k`, binding `aad`.
pub fn seal(k: &Secret, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    let key = key(k)?;
    let mut nonce = [0u8; NONCE_LEN];
    crate::random(&mut nonce)?;
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[NONCE_LEN..],
        )
        .map_err(|_| Error::Decrypt)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Decrypts what [`seal`] produced. Any failure is [`Error::Decrypt`].
pub fn open(k: &Secret, aad: &[u8], sealed: &[u8]) -> Result<Secret, Error> {
    let key = key(k)?;
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::Decrypt);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::Decrypt)?;
    let mut buf = Secret::from_slice(rest);
    let plain_len = key
        .open_in_place(nonce, Aad::from(aad), buf.as_mut())
        .map_err(|_| Error::Decrypt)?
        .len();
    Ok(Secret::from_slice(&buf.expose()[..plain_len]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn k(b: u8) -> Secret {
        Secret::new(vec![b; KEY_LEN])
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let a = seal(&k(1), b"aad", b"hello").expect("seal");
        let b = seal(&k(1), b"aad", b"hello").expect("seal");
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN], "nonces must differ");
        assert_eq!(open(&k(1), b"aad", &a).expect("open").expose(), b"hello");
        assert_eq!(open(&k(2), b"aad", &a), Err(Error::Decrypt));
        assert_eq!(open(&k(1), b"other", &a), Err(Error::Decrypt));
        assert_eq!(open(&k(1), b"aad", &a[..10]), Err(Error::Decrypt));
        assert!(seal(&Secret::new(vec![0; 16]), b"", b"").is_err());
    }

    proptest! {
        #[test]
        fn any_flipped_bit_fails(plain in proptest::collection::vec(any::<u8>(), 0..200), pos in any::<usize>(), bit in 0u8..8) {
            let sealed = seal(&k(7), b"ctx", &plain).expect("seal");
            let mut bad = sealed.clone();
            let i = pos % bad.len();
            bad[i] ^= 1 << bit;
            prop_assert_eq!(open(&k(7), b"ctx", &bad), Err(Error::Decrypt));
        }
    }
}
