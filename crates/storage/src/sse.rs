//! How an object's bytes are encrypted at rest ([`SseRecord`]), as stored inside the
//! object's metadata. A closed sum type with bytes as bytes; on disk it is JSON with an
//! explicit format version (`"v": 2`), its bytes in base64 or hex. A record written
//! before versions existed (the flat "version 1" object of optional strings) is read and
//! converted. Changing what `Stored` writes breaks every stored object: the golden files
//! in `golden/` pin both versions, and must decode forever.
//!
//! A record holds no secret: a data key only as the KMS's ciphertext, a customer key only
//! as a salted HMAC.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which key protects an object's data key: the account's hidden SSE-S3 key or a KMS key
/// the customer chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SseKind {
    #[serde(rename = "aws:kms")]
    Kms,
    #[serde(rename = "AES256")]
    S3,
    #[serde(rename = "SSE-C")]
    Customer,
}

/// An object's encryption at rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Stored", into = "Stored")]
pub enum SseRecord {
    /// SSE-S3 or SSE-KMS with a key of the object's own: `encrypted_key` is the KMS
    /// ciphertext of the object key (a data key generated under `context`, or, after
    /// UpdateObjectEncryption, the object key encrypted under it).
    DataKey {
        /// [`SseKind::S3`] or [`SseKind::Kms`].
        kind: SseKind,
        key_arn: String,
        encrypted_key: Vec<u8>,
        context: BTreeMap<String, String>,
        /// The context the client asked for, as sent (base64 JSON), echoed back.
        client_context: Option<String>,
        object_id: [u8; 16],
    },
    /// SSE-KMS with an S3 Bucket Key: the object key is derived from the bucket key with
    /// `salt`, or (objects moved onto a bucket key by UpdateObjectEncryption) sealed under
    /// that derived key in `wrapped_object_key`.
    BucketKey {
        key_arn: String,
        encrypted_bucket_key: Vec<u8>,
        /// `{"aws:s3:arn": "arn:aws:s3:::BUCKET"}`: the bucket key's context.
        context: BTreeMap<String, String>,
        client_context: Option<String>,
        salt: [u8; 16],
        object_id: [u8; 16],
        wrapped_object_key: Option<Vec<u8>>,
    },
    /// SSE-C: the object key is derived from the customer's key with `salt`; the key
    /// itself is never stored, only `key_hmac` to check it and its MD5 as sent.
    Customer {
        salt: [u8; 16],
        key_hmac: [u8; 32],
        key_md5: String,
        object_id: [u8; 16],
    },
}

impl SseRecord {
    pub fn kind(&self) -> SseKind {
        match self {
            SseRecord::DataKey { kind, .. } => *kind,
            SseRecord::BucketKey { .. } => SseKind::Kms,
            SseRecord::Customer { .. } => SseKind::Customer,
        }
    }

    /// The identity bound into every segment's AAD.
    pub fn object_id(&self) -> [u8; 16] {
        match self {
            SseRecord::DataKey { object_id, .. }
            | SseRecord::BucketKey { object_id, .. }
            | SseRecord::Customer { object_id, .. } => *object_id,
        }
    }

    /// The KMS key's ARN (SSE-S3 and SSE-KMS).
    pub fn key_arn(&self) -> Option<&str> {
        match self {
            SseRecord::DataKey { key_arn, .. } | SseRecord::BucketKey { key_arn, .. } => {
                Some(key_arn)
            }
            SseRecord::Customer { .. } => None,
        }
    }

    /// The encryption context the client asked for, base64 JSON, as sent.
    pub fn client_context(&self) -> Option<&str> {
        match self {
            SseRecord::DataKey { client_context, .. }
            | SseRecord::BucketKey { client_context, .. } => client_context.as_deref(),
            SseRecord::Customer { .. } => None,
        }
    }

    pub fn bucket_key(&self) -> bool {
        matches!(self, SseRecord::BucketKey { .. })
    }
}

/// What is stored: every version a reader accepts. Writers write the newest only.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Stored {
    V2(V2),
    V1(V1),
}

/// Version 2, explicit: `{"v": 2, "type": "data-key" | "bucket-key" | "customer", ...}`.
#[derive(Serialize, Deserialize)]
struct V2 {
    v: Two,
    #[serde(flatten)]
    body: V2Body,
}

/// The version number 2, and nothing else.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
struct Two;

impl TryFrom<u8> for Two {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        if v == 2 {
            Ok(Two)
        } else {
            Err(format!("unknown encryption record version {v}"))
        }
    }
}

impl From<Two> for u8 {
    fn from(_: Two) -> u8 {
        2
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum V2Body {
    DataKey {
        kind: SseKind,
        key_arn: String,
        /// base64
        encrypted_key: String,
        context: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_context: Option<String>,
        /// hex
        object_id: String,
    },
    BucketKey {
        key_arn: String,
        /// base64
        encrypted_bucket_key: String,
        context: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_context: Option<String>,
        /// hex
        salt: String,
        /// hex
        object_id: String,
        /// base64
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wrapped_object_key: Option<String>,
    },
    Customer {
        /// hex
        salt: String,
        /// hex
        key_hmac: String,
        /// base64, as the client sent it
        key_md5: String,
        /// hex
        object_id: String,
    },
}

/// Version 1, as written before records had versions: one flat object of optional
/// strings, the kind in `kind`.
#[derive(Serialize, Deserialize)]
struct V1 {
    kind: SseKind,
    #[serde(default)]
    kms_key_arn: Option<String>,
    #[serde(default)]
    encrypted_key: Option<String>,
    #[serde(default)]
    context: BTreeMap<String, String>,
    #[serde(default)]
    client_context: Option<String>,
    #[serde(default)]
    bucket_key: bool,
    #[serde(default)]
    key_salt: Option<String>,
    object_id: String,
    #[serde(default)]
    customer_key_hmac: Option<String>,
    #[serde(default)]
    customer_key_md5: Option<String>,
    #[serde(default)]
    key_wrap: Option<String>,
}

fn b64(b: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(b)
}

fn unb64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    base64_simd::STANDARD
        .decode_to_vec(s.as_bytes())
        .map_err(|_| format!("encryption record: {what} is not base64"))
}

fn hex(b: &[u8]) -> String {
    hex_simd::encode_to_string(b, hex_simd::AsciiCase::Lower)
}

fn unhex<const N: usize>(s: &str, what: &str) -> Result<[u8; N], String> {
    hex_simd::decode_to_vec(s.as_bytes())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| format!("encryption record: {what} is not {N} bytes of hex"))
}

fn required<'a>(v: &'a Option<String>, what: &str) -> Result<&'a str, String> {
    v.as_deref()
        .ok_or_else(|| format!("encryption record: {what} is missing"))
}

impl TryFrom<Stored> for SseRecord {
    type Error = String;

    fn try_from(stored: Stored) -> Result<Self, String> {
        match stored {
            Stored::V2(V2 { body, .. }) => body.try_into(),
            Stored::V1(v1) => v1.try_into(),
        }
    }
}

impl TryFrom<V2Body> for SseRecord {
    type Error = String;

    fn try_from(body: V2Body) -> Result<Self, String> {
        Ok(match body {
            V2Body::DataKey {
                kind,
                key_arn,
                encrypted_key,
                context,
                client_context,
                object_id,
            } => {
                if kind == SseKind::Customer {
                    return Err("encryption record: a data key record of kind SSE-C".into());
                }
                SseRecord::DataKey {
                    kind,
                    key_arn,
                    encrypted_key: unb64(&encrypted_key, "encrypted_key")?,
                    context,
                    client_context,
                    object_id: unhex(&object_id, "object_id")?,
                }
            }
            V2Body::BucketKey {
                key_arn,
                encrypted_bucket_key,
                context,
                client_context,
                salt,
                object_id,
                wrapped_object_key,
            } => SseRecord::BucketKey {
                key_arn,
                encrypted_bucket_key: unb64(&encrypted_bucket_key, "encrypted_bucket_key")?,
                context,
                client_context,
                salt: unhex(&salt, "salt")?,
                object_id: unhex(&object_id, "object_id")?,
                wrapped_object_key: wrapped_object_key
                    .map(|w| unb64(&w, "wrapped_object_key"))
                    .transpose()?,
            },
            V2Body::Customer {
                salt,
                key_hmac,
                key_md5,
                object_id,
            } => SseRecord::Customer {
                salt: unhex(&salt, "salt")?,
                key_hmac: unhex(&key_hmac, "key_hmac")?,
                key_md5,
                object_id: unhex(&object_id, "object_id")?,
            },
        })
    }
}

impl TryFrom<V1> for SseRecord {
    type Error = String;

    fn try_from(v1: V1) -> Result<Self, String> {
        let object_id = unhex(&v1.object_id, "object_id")?;
        Ok(match v1.kind {
            SseKind::Customer => SseRecord::Customer {
                salt: unhex(required(&v1.key_salt, "key_salt")?, "key_salt")?,
                key_hmac: unhex(
                    required(&v1.customer_key_hmac, "customer_key_hmac")?,
                    "customer_key_hmac",
                )?,
                key_md5: required(&v1.customer_key_md5, "customer_key_md5")?.to_owned(),
                object_id,
            },
            SseKind::Kms if v1.bucket_key => SseRecord::BucketKey {
                key_arn: required(&v1.kms_key_arn, "kms_key_arn")?.to_owned(),
                encrypted_bucket_key: unb64(
                    required(&v1.encrypted_key, "encrypted_key")?,
                    "encrypted_key",
                )?,
                context: v1.context,
                client_context: v1.client_context,
                salt: unhex(required(&v1.key_salt, "key_salt")?, "key_salt")?,
                object_id,
                wrapped_object_key: v1
                    .key_wrap
                    .as_deref()
                    .map(|w| unb64(w, "key_wrap"))
                    .transpose()?,
            },
            kind => SseRecord::DataKey {
                kind,
                key_arn: required(&v1.kms_key_arn, "kms_key_arn")?.to_owned(),
                encrypted_key: unb64(
                    required(&v1.encrypted_key, "encrypted_key")?,
                    "encrypted_key",
                )?,
                context: v1.context,
                client_context: v1.client_context,
                object_id,
            },
        })
    }
}

impl From<SseRecord> for Stored {
    fn from(r: SseRecord) -> Stored {
        let body = match r {
            SseRecord::DataKey {
                kind,
                key_arn,
                encrypted_key,
                context,
                client_context,
                object_id,
            } => V2Body::DataKey {
                kind,
                key_arn,
                encrypted_key: b64(&encrypted_key),
                context,
                client_context,
                object_id: hex(&object_id),
            },
            SseRecord::BucketKey {
                key_arn,
                encrypted_bucket_key,
                context,
                client_context,
                salt,
                object_id,
                wrapped_object_key,
            } => V2Body::BucketKey {
                key_arn,
                encrypted_bucket_key: b64(&encrypted_bucket_key),
                context,
                client_context,
                salt: hex(&salt),
                object_id: hex(&object_id),
                wrapped_object_key: wrapped_object_key.as_deref().map(b64),
            },
            SseRecord::Customer {
                salt,
                key_hmac,
                key_md5,
                object_id,
            } => V2Body::Customer {
                salt: hex(&salt),
                key_hmac: hex(&key_hmac),
                key_md5,
                object_id: hex(&object_id),
            },
        };
        Stored::V2(V2 { v: Two, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records `golden/sse-record-v2.json` holds, in order.
    fn examples() -> Vec<SseRecord> {
        let ctx = |arn: &str| -> BTreeMap<String, String> {
            [("aws:s3:arn".to_owned(), arn.to_owned())].into()
        };
        vec![
            SseRecord::DataKey {
                kind: SseKind::Kms,
                key_arn:
                    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                        .into(),
                encrypted_key: vec![1, 2, 3, 4, 5],
                context: ctx("arn:aws:s3:::b/k"),
                client_context: Some("eyJhIjoiYiJ9".into()),
                object_id: [0x11; 16],
            },
            SseRecord::DataKey {
                kind: SseKind::S3,
                key_arn:
                    "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000001"
                        .into(),
                encrypted_key: vec![9; 8],
                context: ctx("arn:aws:s3:::b/k"),
                client_context: None,
                object_id: [0x22; 16],
            },
            SseRecord::BucketKey {
                key_arn:
                    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                        .into(),
                encrypted_bucket_key: vec![7; 6],
                context: ctx("arn:aws:s3:::b"),
                client_context: None,
                salt: [0x33; 16],
                object_id: [0x44; 16],
                wrapped_object_key: None,
            },
            SseRecord::BucketKey {
                key_arn:
                    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                        .into(),
                encrypted_bucket_key: vec![7; 6],
                context: ctx("arn:aws:s3:::b"),
                client_context: None,
                salt: [0x55; 16],
                object_id: [0x66; 16],
                wrapped_object_key: Some(vec![8; 60]),
            },
            SseRecord::Customer {
                salt: [0x77; 16],
                key_hmac: [0x88; 32],
                key_md5: "zL8bDUCqV7J5jgk6Gvaujw==".into(),
                object_id: [0x99; 16],
            },
        ]
    }

    fn golden(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("golden")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    #[test]
    fn version_2_is_written_exactly_as_the_golden_file() {
        let written = serde_json::to_string_pretty(&examples()).expect("serialize");
        assert_eq!(written.trim_end(), golden("sse-record-v2.json").trim_end());
        let read: Vec<SseRecord> =
            serde_json::from_str(&golden("sse-record-v2.json")).expect("decode v2");
        assert_eq!(read, examples());
    }

    #[test]
    fn version_1_records_from_before_versions_still_decode() {
        // The same records, as the release before version 2 wrote them.
        let read: Vec<SseRecord> =
            serde_json::from_str(&golden("sse-record-v1.json")).expect("decode v1");
        assert_eq!(read, examples());
    }

    #[test]
    fn damaged_records_are_refused() {
        for bad in [
            r#"{"v":3,"type":"customer","salt":"","key_hmac":"","key_md5":"","object_id":""}"#,
            r#"{"v":2,"type":"customer","salt":"00","key_hmac":"00","key_md5":"x","object_id":"00"}"#,
            r#"{"v":2,"type":"data-key","kind":"SSE-C","key_arn":"a","encrypted_key":"","context":{},"object_id":"11111111111111111111111111111111"}"#,
            r#"{"kind":"aws:kms","object_id":"11111111111111111111111111111111"}"#,
            r#"{"kind":"SSE-C","object_id":"11111111111111111111111111111111","key_salt":"00"}"#,
        ] {
            assert!(serde_json::from_str::<SseRecord>(bad).is_err(), "{bad}");
        }
    }
}
