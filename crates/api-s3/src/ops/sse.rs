//! Server-side encryption on the wire: reading the `x-amz-server-side-encryption*` request
//! headers into domain requests, and writing them back on responses.

use std::sync::Arc;

use md5::Digest as _;
use s3s::dto::*;
use s3s::{S3Request, S3Result, s3_error};

use coffer_audit::RequestContext;
use coffer_objects::Secret;
use coffer_objects::{CustomerKey, SseRequest};
use coffer_objects::{SseKind, SseRecord};

use crate::S3Api;

fn tls<T>(req: &S3Request<T>) -> bool {
    req.extensions
        .get::<Arc<RequestContext>>()
        .is_some_and(|c| c.tls)
}

/// Parses SSE-C headers (the object's own, or the copy source's). `None` when absent.
pub fn parse_customer_key<T>(
    api: &S3Api,
    req: &S3Request<T>,
    algorithm: Option<&str>,
    key: Option<&str>,
    md5: Option<&str>,
) -> S3Result<Option<CustomerKey>> {
    if algorithm.is_none() && key.is_none() && md5.is_none() {
        return Ok(None);
    }
    if !tls(req) && !api.config.allow_insecure_sse_c {
        return Err(s3_error!(
            InvalidRequest,
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection."
        ));
    }
    match algorithm {
        Some("AES256") => {}
        Some(_) => {
            return Err(s3_error!(
                InvalidEncryptionAlgorithmError,
                "The encryption request you specified is not valid. The valid value is AES256."
            ));
        }
        None => {
            return Err(s3_error!(
                InvalidArgument,
                "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm."
            ));
        }
    }
    let key = key.ok_or_else(|| {
        s3_error!(
            InvalidArgument,
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key."
        )
    })?;
    let md5 = md5.ok_or_else(|| {
        s3_error!(
            InvalidArgument,
            "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key."
        )
    })?;
    let raw = base64_simd::STANDARD
        .decode_to_vec(key.as_bytes())
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The secret key was invalid for the specified algorithm."
            )
        })?;
    let secret = Secret::new(raw);
    let digest = md5::Md5::digest(secret.expose());
    let expected = base64_simd::STANDARD.encode_to_string(digest.as_slice());
    if expected != md5 {
        return Err(s3_error!(
            InvalidArgument,
            "The calculated MD5 hash of the key did not match the hash that was provided."
        ));
    }
    Ok(Some(CustomerKey {
        key: secret,
        md5: md5.to_owned(),
    }))
}

/// The SSE-C key of a request, from its `x-amz-server-side-encryption-customer-*` headers,
/// or with `copy_source` from the `x-amz-copy-source-server-side-encryption-customer-*`
/// ones.
macro_rules! customer_key {
    ($api:expr, $req:expr) => {
        $crate::ops::sse::parse_customer_key(
            $api,
            &$req,
            $req.input.sse_customer_algorithm.as_deref(),
            $req.input.sse_customer_key.as_deref(),
            $req.input.sse_customer_key_md5.as_deref(),
        )
    };
    ($api:expr, $req:expr, copy_source) => {
        $crate::ops::sse::parse_customer_key(
            $api,
            &$req,
            $req.input.copy_source_sse_customer_algorithm.as_deref(),
            $req.input.copy_source_sse_customer_key.as_deref(),
            $req.input.copy_source_sse_customer_key_md5.as_deref(),
        )
    };
}
pub(crate) use customer_key;

/// [`write_request`] from a write input DTO's SSE fields (the DTOs share field names but
/// no trait).
macro_rules! sse_request {
    ($i:expr, $customer:expr) => {
        $crate::ops::sse::write_request(
            $i.server_side_encryption.as_ref(),
            $i.ssekms_key_id.as_deref(),
            $i.ssekms_encryption_context.as_deref(),
            $i.bucket_key_enabled,
            $customer,
        )
    };
}
pub(crate) use sse_request;

/// A write's encryption from its headers.
pub fn write_request(
    sse: Option<&ServerSideEncryption>,
    kms_key_id: Option<&str>,
    context: Option<&str>,
    bucket_key: Option<bool>,
    customer: Option<CustomerKey>,
) -> S3Result<SseRequest> {
    if let Some(ck) = customer {
        if sse.is_some() {
            return Err(s3_error!(
                InvalidArgument,
                "Server Side Encryption with Customer provided key is incompatible with the encryption method specified"
            ));
        }
        return Ok(SseRequest::Customer(ck));
    }
    match sse.map(ServerSideEncryption::as_str) {
        None => {
            if kms_key_id.is_some() || context.is_some() {
                return Err(s3_error!(
                    InvalidArgument,
                    "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms"
                ));
            }
            Ok(SseRequest::Default)
        }
        Some("AES256") => {
            if kms_key_id.is_some() {
                return Err(s3_error!(
                    InvalidArgument,
                    "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms"
                ));
            }
            Ok(SseRequest::S3)
        }
        Some("aws:kms") => Ok(SseRequest::Kms {
            key_id: kms_key_id.map(str::to_owned),
            context: context.map(str::to_owned),
            bucket_key,
        }),
        Some(other) => Err(s3_error!(
            InvalidArgument,
            "The encryption method specified is not supported: {}",
            other
        )),
    }
}

/// The SSE response headers of an object.
pub struct Headers {
    pub server_side_encryption: Option<ServerSideEncryption>,
    pub ssekms_key_id: Option<String>,
    pub bucket_key_enabled: Option<bool>,
    pub sse_customer_algorithm: Option<String>,
    pub sse_customer_key_md5: Option<String>,
    pub ssekms_encryption_context: Option<String>,
}

impl Headers {
    /// Adds these as raw response headers, for responses s3s builds without them.
    pub fn insert_into(&self, map: &mut http::HeaderMap) {
        let pairs = [
            (
                "x-amz-server-side-encryption",
                self.server_side_encryption.as_ref().map(|s| s.as_str()),
            ),
            (
                "x-amz-server-side-encryption-aws-kms-key-id",
                self.ssekms_key_id.as_deref(),
            ),
            (
                "x-amz-server-side-encryption-bucket-key-enabled",
                self.bucket_key_enabled.map(|_| "true"),
            ),
            (
                "x-amz-server-side-encryption-customer-algorithm",
                self.sse_customer_algorithm.as_deref(),
            ),
            (
                "x-amz-server-side-encryption-customer-key-md5",
                self.sse_customer_key_md5.as_deref(),
            ),
            (
                "x-amz-server-side-encryption-context",
                self.ssekms_encryption_context.as_deref(),
            ),
        ];
        for (name, value) in pairs {
            if let Some(v) = value.and_then(|v| http::HeaderValue::from_str(v).ok()) {
                map.insert(name, v);
            }
        }
    }
}

pub fn headers(r: Option<&SseRecord>) -> Headers {
    let none = Headers {
        server_side_encryption: None,
        ssekms_key_id: None,
        bucket_key_enabled: None,
        sse_customer_algorithm: None,
        sse_customer_key_md5: None,
        ssekms_encryption_context: None,
    };
    let Some(r) = r else { return none };
    match r.kind() {
        SseKind::Customer => Headers {
            sse_customer_algorithm: Some("AES256".into()),
            sse_customer_key_md5: match r {
                SseRecord::Customer { key_md5, .. } => Some(key_md5.clone()),
                _ => None,
            },
            ..none
        },
        SseKind::S3 => Headers {
            server_side_encryption: Some(ServerSideEncryption::from_static(
                ServerSideEncryption::AES256,
            )),
            ..none
        },
        SseKind::Kms => Headers {
            server_side_encryption: Some(ServerSideEncryption::from_static(
                ServerSideEncryption::AWS_KMS,
            )),
            ssekms_key_id: r.key_arn().map(str::to_owned),
            bucket_key_enabled: r.bucket_key().then_some(true),
            ssekms_encryption_context: r.client_context().map(str::to_owned),
            ..none
        },
    }
}

/// Sets the SSE fields every output DTO shares.
macro_rules! fill_sse {
    ($out:expr, $record:expr) => {{
        let h = $crate::ops::sse::headers($record);
        $out.server_side_encryption = h.server_side_encryption;
        $out.ssekms_key_id = h.ssekms_key_id;
        $out.bucket_key_enabled = h.bucket_key_enabled;
        $out.sse_customer_algorithm = h.sse_customer_algorithm;
        $out.sse_customer_key_md5 = h.sse_customer_key_md5;
        h.ssekms_encryption_context
    }};
}
pub(crate) use fill_sse;

/// The SSE fields of outputs that carry no SSE-C fields (CompleteMultipartUpload).
macro_rules! fill_sse_kms {
    ($out:expr, $record:expr) => {{
        let h = $crate::ops::sse::headers($record);
        $out.server_side_encryption = h.server_side_encryption;
        $out.ssekms_key_id = h.ssekms_key_id;
        $out.bucket_key_enabled = h.bucket_key_enabled;
    }};
}
pub(crate) use fill_sse_kms;
