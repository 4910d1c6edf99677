//! JSON 1.1 encoding details: base64 blobs, secrets that never pass through an ordinary
//! `String`, epoch-second timestamps, and response rendering into a buffer that is wiped
//! when dropped.

use std::collections::BTreeMap;

use base64_simd::STANDARD as B64;
use serde::de::{self, Deserializer, Visitor};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use coffer_crypto::Secret;

/// A base64 blob (ciphertexts): decoded on parse.
#[derive(Debug, Clone, Default)]
pub struct Blob(pub Vec<u8>);

impl<'de> serde::Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Blob, E> {
                B64.decode_to_vec(s.as_bytes())
                    .map(Blob)
                    .map_err(|_| E::custom("not valid base64"))
            }
        }
        d.deserialize_str(V)
    }
}

/// A base64 secret (plaintexts): decoded straight into a zeroizing buffer.
pub struct SecretBlob(pub Secret);

impl<'de> serde::Deserialize<'de> for SecretBlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SecretBlob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<SecretBlob, E> {
                let mut out = Secret::zeroed(s.len());
                let n = B64
                    .decode(s.as_bytes(), base64_simd::Out::from_slice(out.as_mut()))
                    .map_err(|_| E::custom("not valid base64"))?
                    .len();
                Ok(SecretBlob(Secret::from_slice(&out.expose()[..n])))
            }
        }
        d.deserialize_str(V)
    }
}

impl std::fmt::Debug for SecretBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBlob([redacted])")
    }
}

pub type Context = BTreeMap<String, String>;

pub fn b64(bytes: &[u8]) -> String {
    B64.encode_to_string(bytes)
}

/// JSON protocol timestamps: seconds since the epoch, with milliseconds.
pub fn epoch(t: OffsetDateTime) -> serde_json::Value {
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    serde_json::json!((ms as f64) / 1000.0)
}

/// Renders a response: `value` (an object) plus, optionally, one secret field encoded
/// straight into the output buffer, which is wiped when dropped.
pub fn render(value: &serde_json::Value, secret: Option<(&str, &Secret)>) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(value.to_string().into_bytes());
    if let Some((name, s)) = secret
        && out.last() == Some(&b'}')
    {
        out.pop();
        if out.len() > 1 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":\"");
        let start = out.len();
        let enc_len = B64.encoded_length(s.len());
        out.resize(start + enc_len, 0);
        let _ = B64.encode(s.expose(), base64_simd::Out::from_slice(&mut out[start..]));
        out.extend_from_slice(b"\"}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_fields_are_spliced_in() {
        let v = serde_json::json!({"KeyId": "k"});
        let s = Secret::from_slice(b"hi");
        let out = render(&v, Some(("Plaintext", &s)));
        let parsed: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(parsed["Plaintext"], "aGk=");
        assert_eq!(parsed["KeyId"], "k");
        let out = render(&serde_json::json!({}), Some(("Plaintext", &s)));
        assert_eq!(&out[..], br#"{"Plaintext":"aGk="}"#);
    }

    #[test]
    fn secrets_decode_without_strings() {
        #[derive(serde::Deserialize)]
        struct R {
            #[serde(rename = "Plaintext")]
            p: SecretBlob,
        }
        let r: R = serde_json::from_str(r#"{"Plaintext":"aGVsbG8="}"#).expect("parse");
        assert_eq!(r.p.0.expose(), b"hello");
        assert!(serde_json::from_str::<R>(r#"{"Plaintext":"!!"}"#).is_err());
    }
}
