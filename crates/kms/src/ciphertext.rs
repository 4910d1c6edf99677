//! The ciphertext blob Encrypt and GenerateDataKey return, version 1.
//!
//! ```text
//! offset  len  field
//! 0       1    format version, 0x01
//! 1       16   key id (the UUID's 16 bytes)
//! 17      4    material version, big-endian u32
//! 21      12   AES-256-GCM nonce (random per blob)
//! 33      n    ciphertext (n = plaintext length)
//! 33+n    16   GCM tag
//! ```
//!
//! The associated data is the 21-byte header followed by the canonical encryption context
//! (see [`context_aad`]), so changing the key id, the version or the context makes the
//! blob fail to open. Changing this layout breaks every ciphertext ever issued: add a new
//! version byte instead. Golden vectors in the tests must decode forever.

use std::collections::BTreeMap;

use coffer_crypto::{NONCE_LEN, Secret, TAG_LEN};

use crate::{Error, Result};

pub const VERSION_1: u8 = 0x01;
pub const HEADER_LEN: usize = 1 + 16 + 4;
/// Bytes a blob adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// What a blob says about itself before it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub key_id: uuid::Uuid,
    pub version: u32,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = VERSION_1;
        h[1..17].copy_from_slice(self.key_id.as_bytes());
        h[17..21].copy_from_slice(&self.version.to_be_bytes());
        h
    }

    /// Reads the header; any blob that is not a well-formed version-1 blob is
    /// `InvalidCiphertext`.
    pub fn decode(blob: &[u8]) -> Result<Self> {
        if blob.len() < OVERHEAD || blob[0] != VERSION_1 {
            return Err(Error::InvalidCiphertext);
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&blob[1..17]);
        let mut v = [0u8; 4];
        v.copy_from_slice(&blob[17..21]);
        Ok(Self {
            key_id: uuid::Uuid::from_bytes(id),
            version: u32::from_be_bytes(v),
        })
    }
}

/// The canonical encoding of an encryption context: pairs sorted by key (bytewise), each
/// as `u32 BE key length || key || u32 BE value length || value`, after the label
/// `coffer-ec-v1`. An empty context encodes as nothing, so AAD is the header alone.
pub fn context_aad(context: &BTreeMap<String, String>) -> Vec<u8> {
    if context.is_empty() {
        return Vec::new();
    }
    let mut out = b"coffer-ec-v1".to_vec();
    for (k, v) in context {
        for part in [k.as_bytes(), v.as_bytes()] {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

fn aad(header: &[u8; HEADER_LEN], context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut a = header.to_vec();
    a.extend(context_aad(context));
    a
}

/// Seals `plaintext` under `material` into a blob naming `header`.
pub fn seal(
    header: Header,
    material: &Secret,
    context: &BTreeMap<String, String>,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let h = header.encode();
    let sealed = coffer_crypto::seal(material, &aad(&h, context), plaintext)?;
    let mut blob = Vec::with_capacity(HEADER_LEN + sealed.len());
    blob.extend_from_slice(&h);
    blob.extend_from_slice(&sealed);
    Ok(blob)
}

/// Opens a blob whose header was already decoded and whose material was found.
pub fn open(blob: &[u8], material: &Secret, context: &BTreeMap<String, String>) -> Result<Secret> {
    let header = Header::decode(blob)?;
    coffer_crypto::open(
        material,
        &aad(&header.encode(), context),
        &blob[HEADER_LEN..],
    )
    .map_err(|_| Error::InvalidCiphertext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn material() -> Secret {
        Secret::new((0u8..32).collect())
    }

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn header() -> Header {
        Header {
            key_id: uuid::Uuid::parse_str("1234abcd-12ab-34cd-56ef-1234567890ab").expect("uuid"),
            version: 2,
        }
    }

    /// Produced once by `seal` with the material 00..1f; must open forever.
    const GOLDEN_EMPTY_CONTEXT: &str = "011234abcd12ab34cd56ef1234567890ab000000021fd0fa74005858ccfb94d1716e5d2bb848beece9b4d4aa5380ce7e44226ff32832d82f30f63c21857a";
    const GOLDEN_WITH_CONTEXT: &str = "011234abcd12ab34cd56ef1234567890ab000000028cc920de023279ffca81dab796f72986180e530c0e17fa3d1ef79363d3dc2f4e3fa013321b977226d9";

    #[test]
    fn header_round_trips() {
        let h = header();
        assert_eq!(
            Header::decode(&[h.encode().as_slice(), &[0; 28]].concat()),
            Ok(h)
        );
        assert_eq!(Header::decode(&[0x02; 60]), Err(Error::InvalidCiphertext));
        assert_eq!(Header::decode(&[0x01; 20]), Err(Error::InvalidCiphertext));
    }

    #[test]
    fn seal_open_binds_context() {
        let c = ctx(&[("aws:s3:arn", "arn:aws:s3:::b/k"), ("a", "b")]);
        let blob = seal(header(), &material(), &c, b"secret data").expect("seal");
        assert_eq!(blob.len(), 11 + OVERHEAD);
        assert_eq!(
            open(&blob, &material(), &c).expect("open").expose(),
            b"secret data"
        );
        assert_eq!(
            open(&blob, &material(), &ctx(&[("a", "b")])),
            Err(Error::InvalidCiphertext)
        );
        assert_eq!(
            open(&blob, &material(), &BTreeMap::new()),
            Err(Error::InvalidCiphertext)
        );
    }

    #[test]
    fn context_encoding_is_unambiguous() {
        // ("ab","c") and ("a","bc") must not encode alike.
        assert_ne!(
            context_aad(&ctx(&[("ab", "c")])),
            context_aad(&ctx(&[("a", "bc")]))
        );
        assert!(context_aad(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn golden_vectors_still_open() {
        for (hex, context) in [
            (GOLDEN_EMPTY_CONTEXT, ctx(&[])),
            (GOLDEN_WITH_CONTEXT, ctx(&[("purpose", "golden")])),
        ] {
            let blob = hex_simd::decode_to_vec(hex.as_bytes()).expect("hex");
            assert_eq!(Header::decode(&blob), Ok(header()));
            let plain = open(&blob, &material(), &context).expect("golden vector opens");
            assert_eq!(plain.expose(), b"coffer golden");
        }
    }

    proptest! {
        #[test]
        fn any_flipped_byte_is_invalid_ciphertext(pos in any::<usize>(), bit in 0u8..8, ctx_flip in any::<bool>()) {
            let c = ctx(&[("k", "value")]);
            let blob = seal(header(), &material(), &c, b"some plaintext").expect("seal");
            if ctx_flip {
                let bad = ctx(&[("k", "valuf")]);
                prop_assert_eq!(open(&blob, &material(), &bad), Err(Error::InvalidCiphertext));
            } else {
                let mut bad = blob.clone();
                let i = pos % bad.len();
                bad[i] ^= 1 << bit;
                prop_assert_eq!(open(&bad, &material(), &c), Err(Error::InvalidCiphertext));
            }
        }
    }
}
