//! `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: the body travels as aws-chunked frames
//! `hex(len);chunk-signature=SIG\r\nDATA\r\n`, each signature chaining the previous one,
//! ending with a zero-length chunk. No installed client sends this mode, so Coffer's tests
//! produce it with this signer.

use crate::{ALGORITHM, Scope, SigningKey, sha256_hex};

/// SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Signs successive chunks of one streaming upload, starting from the seed signature of
/// the request's `Authorization` header.
pub struct ChunkSigner {
    key: SigningKey,
    amz_date: String,
    scope: String,
    previous: String,
}

impl ChunkSigner {
    /// From the parts a received request names: its `X-Amz-Date`, its credential scope
    /// (`DATE/REGION/SERVICE/aws4_request`), the key for that scope and its seed signature.
    pub fn resume(key: SigningKey, amz_date: &str, scope: &str, seed_signature: &str) -> Self {
        Self {
            key,
            amz_date: amz_date.to_owned(),
            scope: scope.to_owned(),
            previous: seed_signature.to_owned(),
        }
    }

    /// The signature of the trailing headers after the final chunk, over their canonical
    /// form (`name:value\n` lines, lower-case names, sorted, values trimmed).
    pub fn sign_trailer(&mut self, canonical_trailers: &str) -> String {
        let sts = format!(
            "{ALGORITHM}-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            sha256_hex(canonical_trailers.as_bytes())
        );
        let sig = self.key.sign(&sts);
        self.previous.clone_from(&sig);
        sig
    }

    pub fn new(scope: &Scope<'_>, seed_signature: &str) -> Self {
        Self {
            key: scope.signing_key(),
            amz_date: scope.amz_date(),
            scope: scope.credential_scope(),
            previous: seed_signature.to_owned(),
        }
    }

    /// The signature of the next chunk (`data` empty for the final chunk).
    pub fn sign_chunk(&mut self, data: &[u8]) -> String {
        let sts = format!(
            "{ALGORITHM}-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            sha256_hex(data)
        );
        let sig = self.key.sign(&sts);
        self.previous.clone_from(&sig);
        sig
    }

    /// One complete aws-chunked frame for `data`.
    pub fn frame(&mut self, data: &[u8]) -> Vec<u8> {
        let sig = self.sign_chunk(data);
        let mut out = format!("{:x};chunk-signature={sig}\r\n", data.len()).into_bytes();
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        out
    }
}

impl ChunkSigner {
    /// The end of a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` body: the final (empty)
    /// chunk, the trailer line (`name:value`) and the trailer's signature, which chains
    /// from the final chunk's.
    pub fn finish_with_trailer(&mut self, trailer: &str) -> Vec<u8> {
        let last = self.sign_chunk(&[]);
        let sts = format!(
            "{ALGORITHM}-TRAILER\n{}\n{}\n{last}\n{}",
            self.amz_date,
            self.scope,
            sha256_hex(format!("{trailer}\n").as_bytes())
        );
        let sig = self.key.sign(&sts);
        format!("0;chunk-signature={last}\r\n{trailer}\r\nx-amz-trailer-signature:{sig}\r\n\r\n")
            .into_bytes()
    }
}

/// Length of the encoded body for `payload_len` bytes sent in chunks of `chunk_size`,
/// as needed for `Content-Length` alongside `x-amz-decoded-content-length`.
pub fn encoded_length(payload_len: usize, chunk_size: usize) -> usize {
    let frame = |n: usize| format!("{n:x}").len() + ";chunk-signature=".len() + 64 + 2 + n + 2;
    let full = payload_len / chunk_size.max(1);
    let rest = payload_len % chunk_size.max(1);
    let mut total = full * frame(chunk_size) + frame(0);
    if rest > 0 {
        total += frame(rest);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    // The worked example of the S3 documentation, "Signature Calculations for the
    // Authorization Header: Transferring Payload in Multiple Chunks".
    #[test]
    fn aws_docs_streaming_example() {
        let scope = Scope {
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            service: "s3",
            time: datetime!(2013-05-24 00:00:00 UTC),
        };
        let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
        let mut signer = ChunkSigner::new(&scope, seed);
        let first = vec![b'a'; 65536];
        let second = vec![b'a'; 1024];
        assert_eq!(
            signer.sign_chunk(&first),
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        );
        assert_eq!(
            signer.sign_chunk(&second),
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
        );
        assert_eq!(
            signer.sign_chunk(&[]),
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
        );
        assert_eq!(encoded_length(66560, 65536), 66824);
    }
}
