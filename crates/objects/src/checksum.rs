//! S3 checksums: computing them while a body streams in, checking them against what the
//! client declared (header or trailer), and combining part checksums for multipart objects
//! (`COMPOSITE`: a checksum of the part checksums, `-N`; `FULL_OBJECT`: CRCs combined
//! arithmetically into the CRC of the whole object).

use base64_simd::STANDARD as B64;
use coffer_storage::{Checksum, ChecksumAlgorithm};
use crc_fast::CrcAlgorithm;
use md5::Digest as _;
use std::hash::Hasher as _;

use crate::{Error, Result};

/// The checksum S3 computes for a new object when the client asks for none (since 2025:
/// "Amazon S3 ... automatically calculates a CRC64NVME checksum").
pub const DEFAULT_ALGORITHM: ChecksumAlgorithm = ChecksumAlgorithm::Crc64Nvme;

/// What the client told us about the body's integrity.
#[derive(Default)]
pub struct ChecksumRequest {
    /// The algorithm to compute and store (from `x-amz-checksum-*`,
    /// `x-amz-sdk-checksum-algorithm`, `x-amz-trailer` or the upload's algorithm).
    pub algorithm: Option<ChecksumAlgorithm>,
    /// A value sent as a header, known before the body.
    pub expected: Option<String>,
    /// A value sent as a trailer, known only after the body: called once the body ended.
    pub trailer: Option<Box<dyn FnOnce() -> Option<String> + Send>>,
    /// `Content-MD5`, base64.
    pub content_md5: Option<String>,
}

impl std::fmt::Debug for ChecksumRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChecksumRequest")
            .field("algorithm", &self.algorithm)
            .field("expected", &self.expected)
            .field("trailer", &self.trailer.is_some())
            .field("content_md5", &self.content_md5)
            .finish()
    }
}

fn crc_algorithm(a: ChecksumAlgorithm) -> Option<CrcAlgorithm> {
    match a {
        ChecksumAlgorithm::Crc32 => Some(CrcAlgorithm::Crc32IsoHdlc),
        ChecksumAlgorithm::Crc32c => Some(CrcAlgorithm::Crc32Iscsi),
        ChecksumAlgorithm::Crc64Nvme => Some(CrcAlgorithm::Crc64Nvme),
        ChecksumAlgorithm::Sha1
        | ChecksumAlgorithm::Sha256
        | ChecksumAlgorithm::Sha512
        | ChecksumAlgorithm::Md5
        | ChecksumAlgorithm::Xxhash64
        | ChecksumAlgorithm::Xxhash3
        | ChecksumAlgorithm::Xxhash128 => None,
    }
}

/// Whether a multipart object may carry a `FULL_OBJECT` checksum of this algorithm: only
/// the CRCs combine arithmetically; the others are `COMPOSITE` only, as on S3.
pub fn full_object_capable(a: ChecksumAlgorithm) -> bool {
    crc_algorithm(a).is_some()
}

/// Digest length in bytes.
pub fn digest_len(a: ChecksumAlgorithm) -> usize {
    match a {
        ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
        ChecksumAlgorithm::Crc64Nvme => 8,
        ChecksumAlgorithm::Sha1 => 20,
        ChecksumAlgorithm::Sha256 => 32,
        ChecksumAlgorithm::Sha512 => 64,
        ChecksumAlgorithm::Md5 => 16,
        ChecksumAlgorithm::Xxhash64 | ChecksumAlgorithm::Xxhash3 => 8,
        ChecksumAlgorithm::Xxhash128 => 16,
    }
}

/// An incremental checksum of one algorithm.
pub enum Hasher {
    Crc(ChecksumAlgorithm, crc_fast::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
    Md5(md5::Md5),
    Xxhash64(twox_hash::XxHash64),
    /// The XXH3 states hold a block buffer: boxed, so that every other hasher stays small.
    Xxhash3(Box<twox_hash::XxHash3_64>),
    Xxhash128(Box<twox_hash::XxHash3_128>),
}

impl Hasher {
    pub fn new(a: ChecksumAlgorithm) -> Self {
        if let Some(crc) = crc_algorithm(a) {
            return Hasher::Crc(a, crc_fast::Digest::new(crc));
        }
        match a {
            ChecksumAlgorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            ChecksumAlgorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            // The seed is 0, as in the AWS CRT that botocore uses for these.
            ChecksumAlgorithm::Xxhash64 => Hasher::Xxhash64(twox_hash::XxHash64::with_seed(0)),
            ChecksumAlgorithm::Xxhash3 => {
                Hasher::Xxhash3(Box::new(twox_hash::XxHash3_64::with_seed(0)))
            }
            ChecksumAlgorithm::Xxhash128 => {
                Hasher::Xxhash128(Box::new(twox_hash::XxHash3_128::with_seed(0)))
            }
            _ => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc(_, d) => d.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Md5(h) => h.update(data),
            Hasher::Xxhash64(h) => h.write(data),
            Hasher::Xxhash3(h) => h.write(data),
            Hasher::Xxhash128(h) => h.write(data),
        }
    }

    /// The digest in the byte order S3 and the SDKs encode: big-endian for the CRCs and
    /// the xxHashes (XXH3-128 as its high half, then its low half).
    pub fn finalize(self) -> Vec<u8> {
        match self {
            Hasher::Crc(a, d) => crc_bytes(a, d.finalize()),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Xxhash64(h) => h.finish().to_be_bytes().to_vec(),
            Hasher::Xxhash3(h) => h.finish().to_be_bytes().to_vec(),
            Hasher::Xxhash128(h) => h.finish_128().to_be_bytes().to_vec(),
        }
    }
}

fn crc_bytes(a: ChecksumAlgorithm, v: u64) -> Vec<u8> {
    if digest_len(a) == 4 {
        (v as u32).to_be_bytes().to_vec()
    } else {
        v.to_be_bytes().to_vec()
    }
}

pub fn encode(bytes: &[u8]) -> String {
    B64.encode_to_string(bytes)
}

/// Decodes a declared checksum, checking its length for the algorithm.
pub fn decode(a: ChecksumAlgorithm, value: &str) -> Result<Vec<u8>> {
    match B64.decode_to_vec(value.as_bytes()) {
        Ok(v) if v.len() == digest_len(a) => Ok(v),
        _ => Err(Error::InvalidChecksum(a)),
    }
}

/// Compares a computed digest with a declared base64 value.
pub fn verify(a: ChecksumAlgorithm, computed: &[u8], declared: &str) -> Result<()> {
    if decode(a, declared)? == computed {
        Ok(())
    } else {
        Err(Error::ChecksumMismatch(a.as_str()))
    }
}

/// Checks a `Content-MD5` header against the body's MD5.
pub fn verify_content_md5(declared: &str, md5: &[u8; 16]) -> Result<()> {
    match B64.decode_to_vec(declared.trim().as_bytes()) {
        Ok(v) if v.len() == 16 => {
            if v == md5 {
                Ok(())
            } else {
                Err(Error::BadDigest)
            }
        }
        _ => Err(Error::InvalidDigest),
    }
}

/// The checksum of a multipart object from its parts' checksums (in part order, with each
/// part's size). `full_object` asks for a CRC of the whole object (CRC algorithms only).
pub fn combine_parts(
    a: ChecksumAlgorithm,
    parts: &[(Vec<u8>, u64)],
    full_object: bool,
) -> Result<Checksum> {
    if full_object {
        let crc = crc_algorithm(a).ok_or_else(|| {
            Error::InvalidRequest(format!(
                "the FULL_OBJECT checksum type cannot be used with {}",
                a.as_str()
            ))
        })?;
        let mut acc: Option<u64> = None;
        for (digest, len) in parts {
            let v = digest
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            acc = Some(match acc {
                None => v,
                Some(prev) => crc_fast::checksum_combine(crc, prev, v, *len),
            });
        }
        let value = acc.unwrap_or(0);
        return Ok(Checksum {
            algorithm: a,
            value: encode(&crc_bytes(a, value)),
            composite: false,
        });
    }
    let mut h = Hasher::new(a);
    for (digest, _) in parts {
        h.update(digest);
    }
    Ok(Checksum {
        algorithm: a,
        value: format!("{}-{}", encode(&h.finalize()), parts.len()),
        composite: true,
    })
}

/// MD5 of a whole body, for ETags and Content-MD5.
pub struct Md5(md5::Md5);

impl Md5 {
    pub fn new() -> Self {
        Self(md5::Md5::new())
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finalize(self) -> [u8; 16] {
        self.0.finalize().into()
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    hex_simd::encode_to_string(bytes, hex_simd::AsciiCase::Lower)
}

/// The ETag of a multipart object: MD5 of the concatenated binary part MD5s, then `-N`.
pub fn multipart_etag(part_etags: &[String]) -> Result<String> {
    let mut h = Md5::new();
    for e in part_etags {
        let bin = hex_simd::decode_to_vec(e.as_bytes())
            .map_err(|_| Error::Internal(format!("stored part ETag {e:?} is not hex")))?;
        h.update(&bin);
    }
    Ok(format!("{}-{}", hex(&h.finalize()), part_etags.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(a: ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
        let mut h = Hasher::new(a);
        h.update(data);
        h.finalize()
    }

    #[test]
    fn known_values() {
        // "hello world", as the S3 documentation and botocore compute them.
        let d = b"hello world";
        assert_eq!(encode(&digest(ChecksumAlgorithm::Crc32, d)), "DUoRhQ==");
        assert_eq!(encode(&digest(ChecksumAlgorithm::Crc32c, d)), "yZRlqg==");
        assert_eq!(
            encode(&digest(ChecksumAlgorithm::Sha256, d)),
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        );
        assert_eq!(
            encode(&digest(ChecksumAlgorithm::Sha1, d)),
            "Kq5sNclPz7QV2+lfQIuc6R7oRu0="
        );
        // `printf 'hello world' | md5sum`, `| sha512sum`, as big-endian bytes.
        assert_eq!(
            hex(&digest(ChecksumAlgorithm::Md5, d)),
            "5eb63bbbe01eeed093cb22bb8f5acdc3"
        );
        assert_eq!(
            hex(&digest(ChecksumAlgorithm::Sha512, d))[..32],
            *"309ecc489c12d6eb4cc40f50c902f2b4"
        );
        // The vector in the AWS CRT's own tests: XXH64("Hello world", seed 0).
        assert_eq!(
            hex(&digest(ChecksumAlgorithm::Xxhash64, b"Hello world")),
            "c500b0c912b376d8"
        );
        // xxHash's reference values for the empty input (seed 0).
        assert_eq!(
            hex(&digest(ChecksumAlgorithm::Xxhash3, b"")),
            "2d06800538d394c2"
        );
        assert_eq!(
            hex(&digest(ChecksumAlgorithm::Xxhash128, b"")),
            "99aa06d3014798d86001c324468d497f"
        );
        for a in ChecksumAlgorithm::ALL {
            assert_eq!(digest(a, d).len(), digest_len(a), "{a:?}");
        }
    }

    #[test]
    fn full_object_crc_equals_crc_of_concatenation() {
        for a in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let parts: [&[u8]; 3] = [b"first part ", b"second, longer part ", b"end"];
            let whole: Vec<u8> = parts.concat();
            let per_part: Vec<(Vec<u8>, u64)> = parts
                .iter()
                .map(|p| (digest(a, p), p.len() as u64))
                .collect();
            let combined = combine_parts(a, &per_part, true).expect("combine");
            assert_eq!(combined.value, encode(&digest(a, &whole)), "{a:?}");
        }
    }

    #[test]
    fn composite_checksum_has_part_count() {
        let parts = vec![(vec![1, 2, 3, 4], 5), (vec![5, 6, 7, 8], 5)];
        let c = combine_parts(ChecksumAlgorithm::Crc32, &parts, false).expect("combine");
        assert!(c.value.ends_with("-2"));
        assert!(c.composite);
    }

    #[test]
    fn multipart_etag_matches_aws_formula() {
        let e1 = hex(&{
            let mut m = Md5::new();
            m.update(b"a");
            m.finalize()
        });
        let etag = multipart_etag(&[e1.clone(), e1]).expect("etag");
        assert!(etag.ends_with("-2"));
        assert_eq!(etag.len(), 32 + 2);
    }

    #[test]
    fn bad_declared_values() {
        assert!(matches!(
            decode(ChecksumAlgorithm::Crc32, "not base64!"),
            Err(Error::InvalidChecksum(_))
        ));
        assert!(matches!(
            verify(ChecksumAlgorithm::Crc32, &[0, 0, 0, 1], "AAAAAA=="),
            Err(Error::ChecksumMismatch("CRC32"))
        ));
        assert!(matches!(
            verify_content_md5("xx", &[0; 16]),
            Err(Error::InvalidDigest)
        ));
    }
}
