//! S3 operations s3s 0.14.1 has no model for, served as an s3s custom route (after s3s
//! has verified the signature, before its operation table):
//!
//! - `PUT /BUCKET?encryption` and `GET /BUCKET?encryption`: bucket default encryption with
//!   `BlockedEncryptionTypes` (s3s's model predates it and rejects the element).
//! - `PUT /BUCKET/KEY?encryption`: UpdateObjectEncryption.
//! - `PUT|GET|DELETE /v20180820/configuration/publicAccessBlock` with `x-amz-account-id`:
//!   S3 Control's account-level Block Public Access (botocore sends it to
//!   `ACCOUNT.HOST`, or to the endpoint itself with `--region snow`; the path decides,
//!   whatever the host).
//!
//! - `POST /BUCKET/KEY?uploadId=`: CompleteMultipartUpload, whose body may name part
//!   checksums of the algorithms S3 added in 2025, which s3s's XML parser refuses
//!   (`wide_checksum.rs`); the body is read here, after s3s verified its signature and
//!   hash, and the operation is the same `ops::multipart::complete`.
//!
//! Access goes through the same [`Access::authorize`] as every other operation.

use std::sync::Arc;

use bytes::Bytes;
use http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use s3s::host::S3Host;
use s3s::path::S3Path;
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result, s3_error};

use coffer_objects::{BucketEncryption, Objects, Rekey};

use crate::access::{Access, Domain};
use crate::error::to_s3_error;
use crate::xml::{self, Element};

use crate::operation::Operation;

/// Largest body read for these configuration requests.
const MAX_BODY: usize = 64 * 1024;

/// The operations served here; variants are named as AWS names the operations.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone)]
enum Extra {
    PutBucketEncryption {
        bucket: String,
    },
    GetBucketEncryption {
        bucket: String,
    },
    UpdateObjectEncryption {
        bucket: String,
        key: String,
        version_id: Option<String>,
    },
    PutAccountPublicAccessBlock,
    GetAccountPublicAccessBlock,
    DeleteAccountPublicAccessBlock,
    CompleteMultipartUpload {
        bucket: String,
        key: String,
        upload_id: String,
    },
}

/// Largest CompleteMultipartUpload body (s3s's limit for XML bodies: 10,000 parts with
/// every checksum fit well inside it).
const MAX_COMPLETE_BODY: usize = 20 * 1024 * 1024;

/// S3 Control's path of the account's Block Public Access.
const ACCOUNT_PAB_PATH: &str = "/v20180820/configuration/publicAccessBlock";

/// The namespace of S3 Control's documents.
const S3_CONTROL_NS: &str = "http://awss3control.amazonaws.com/doc/2018-08-20/";

impl Extra {
    fn operation(&self) -> Operation {
        match self {
            Extra::PutBucketEncryption { .. } => Operation::PutBucketEncryption,
            Extra::GetBucketEncryption { .. } => Operation::GetBucketEncryption,
            Extra::UpdateObjectEncryption { .. } => Operation::UpdateObjectEncryption,
            Extra::PutAccountPublicAccessBlock => Operation::PutAccountPublicAccessBlock,
            Extra::GetAccountPublicAccessBlock => Operation::GetAccountPublicAccessBlock,
            Extra::DeleteAccountPublicAccessBlock => Operation::DeleteAccountPublicAccessBlock,
            Extra::CompleteMultipartUpload { .. } => Operation::CompleteMultipartUpload,
        }
    }
}

pub struct Routes {
    pub objects: Arc<Objects>,
    pub access: Access,
    pub domain: Option<Domain>,
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    crate::access::form_urlencoded(uri.query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn has_param(uri: &Uri, name: &str) -> bool {
    uri.query()
        .unwrap_or("")
        .split('&')
        .any(|p| p.split('=').next() == Some(name))
}

impl Routes {
    fn path(&self, uri: &Uri, headers: &HeaderMap) -> Option<S3Path> {
        let vh_bucket = match (&self.domain, headers.get(http::header::HOST)) {
            (Some(d), Some(h)) => {
                let host = h.to_str().ok()?;
                d.parse_host_header(host)
                    .ok()
                    .and_then(|v| v.bucket().map(str::to_owned))
            }
            _ => None,
        };
        // The path as s3s reads it: percent-decoded (a key `a b` arrives as `a%20b`). A
        // path that is not UTF-8 once decoded is left to s3s, which refuses it.
        let path = percent_encoding::percent_decode_str(uri.path())
            .decode_utf8()
            .ok()?;
        match vh_bucket {
            Some(b) => s3s::path::parse_virtual_hosted_style(Some(&b), &path).ok(),
            None => s3s::path::parse_path_style(&path).ok(),
        }
    }

    fn classify(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Extra> {
        if uri.path() == ACCOUNT_PAB_PATH && headers.contains_key("x-amz-account-id") {
            return match *method {
                Method::PUT => Some(Extra::PutAccountPublicAccessBlock),
                Method::GET => Some(Extra::GetAccountPublicAccessBlock),
                Method::DELETE => Some(Extra::DeleteAccountPublicAccessBlock),
                _ => None,
            };
        }
        if *method == Method::POST
            && let Some(upload_id) = query_param(uri, "uploadId")
        {
            return match self.path(uri, headers)? {
                S3Path::Object { bucket, key } => Some(Extra::CompleteMultipartUpload {
                    bucket: bucket.into(),
                    key: key.into(),
                    upload_id,
                }),
                _ => None,
            };
        }
        if !has_param(uri, "encryption") {
            return None;
        }
        match (method, self.path(uri, headers)?) {
            (&Method::PUT, S3Path::Bucket { bucket }) => Some(Extra::PutBucketEncryption {
                bucket: bucket.into(),
            }),
            (&Method::GET, S3Path::Bucket { bucket }) => Some(Extra::GetBucketEncryption {
                bucket: bucket.into(),
            }),
            (&Method::PUT, S3Path::Object { bucket, key }) => Some(Extra::UpdateObjectEncryption {
                bucket: bucket.into(),
                key: key.into(),
                version_id: query_param(uri, "versionId"),
            }),
            _ => None,
        }
    }
}

#[async_trait::async_trait]
impl S3Route for Routes {
    fn is_match(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &mut Extensions,
    ) -> bool {
        match self.classify(method, uri, headers) {
            Some(extra) => {
                extensions.insert(extra);
                true
            }
            None => false,
        }
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        let extra = req
            .extensions
            .get::<Extra>()
            .cloned()
            .ok_or_else(|| s3_error!(InternalError))?;
        let (bucket, key) = match &extra {
            Extra::PutBucketEncryption { bucket } | Extra::GetBucketEncryption { bucket } => {
                (Some(bucket.clone()), None)
            }
            Extra::UpdateObjectEncryption { bucket, key, .. }
            | Extra::CompleteMultipartUpload { bucket, key, .. } => {
                (Some(bucket.clone()), Some(key.clone()))
            }
            Extra::PutAccountPublicAccessBlock
            | Extra::GetAccountPublicAccessBlock
            | Extra::DeleteAccountPublicAccessBlock => (None, None),
        };
        let access_key = req.credentials.as_ref().map(|c| c.access_key.clone());
        let request = crate::access::AccessRequest {
            access_key: access_key.as_deref(),
            operation: extra.operation(),
            bucket,
            key,
            headers: &req.headers,
            query: req.uri.query(),
        };
        self.access.authorize(&request, &mut req.extensions).await
    }

    async fn call(&self, mut req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let extra = req
            .extensions
            .get::<Extra>()
            .cloned()
            .ok_or_else(|| s3_error!(InternalError))?;
        match extra {
            Extra::GetBucketEncryption { bucket } => self.get_encryption(&bucket).await,
            Extra::PutBucketEncryption { bucket } => {
                let doc = read_document(&mut req).await?;
                let cfg = bucket_encryption(&doc)?;
                self.objects
                    .put_bucket_encryption(&bucket, &cfg)
                    .await
                    .map_err(to_s3_error)?;
                Ok(S3Response::new(Body::empty()))
            }
            Extra::UpdateObjectEncryption {
                bucket,
                key,
                version_id,
            } => {
                let doc = read_document(&mut req).await?;
                let to = rekey(&doc)?;
                let caller = crate::ops::caller(&req)?;
                self.objects
                    .update_object_encryption(
                        &caller,
                        &bucket,
                        &key,
                        version_id.as_deref(),
                        &to,
                        self.objects.now(),
                    )
                    .await
                    .map_err(to_s3_error)?;
                Ok(S3Response::new(Body::empty()))
            }
            Extra::PutAccountPublicAccessBlock => {
                let account = own_account(&req)?;
                let doc = read_document(&mut req).await?;
                let cfg = account_public_access_block(&doc)?;
                self.objects
                    .set_account_public_access_block(&account, Some(&cfg))
                    .await
                    .map_err(to_s3_error)?;
                Ok(S3Response::new(Body::empty()))
            }
            Extra::GetAccountPublicAccessBlock => {
                let account = own_account(&req)?;
                let Some(c) = self
                    .objects
                    .get_account_public_access_block(&account)
                    .await
                    .map_err(to_s3_error)?
                else {
                    return Err(crate::ops::policy::no_such_pab());
                };
                let mut r = S3Response::new(Body::from(Bytes::from(format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PublicAccessBlockConfiguration xmlns=\"{S3_CONTROL_NS}\"><BlockPublicAcls>{}</BlockPublicAcls><IgnorePublicAcls>{}</IgnorePublicAcls><BlockPublicPolicy>{}</BlockPublicPolicy><RestrictPublicBuckets>{}</RestrictPublicBuckets></PublicAccessBlockConfiguration>",
                    c.block_public_acls,
                    c.ignore_public_acls,
                    c.block_public_policy,
                    c.restrict_public_buckets
                ))));
                r.headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/xml"),
                );
                Ok(r)
            }
            Extra::CompleteMultipartUpload {
                bucket,
                key,
                upload_id,
            } => self.complete(req, bucket, key, upload_id).await,
            Extra::DeleteAccountPublicAccessBlock => {
                let account = own_account(&req)?;
                self.objects
                    .set_account_public_access_block(&account, None)
                    .await
                    .map_err(to_s3_error)?;
                let mut r = S3Response::new(Body::empty());
                r.status = Some(StatusCode::NO_CONTENT);
                Ok(r)
            }
        }
    }
}

/// The account an S3 Control request names (`x-amz-account-id`), which must be the
/// caller's own: an account's settings are its own business.
fn own_account(req: &S3Request<Body>) -> S3Result<String> {
    let named = req
        .headers
        .get("x-amz-account-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let p = req
        .extensions
        .get::<crate::access::Resolved>()
        .map(|r| &r.principal)
        .ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))?;
    if named != p.account.id {
        return Err(s3_error!(AccessDenied, "Access Denied"));
    }
    Ok(named.to_owned())
}

/// S3 Control's `PublicAccessBlockConfiguration`: absent settings are off, and at least
/// one must be given.
fn account_public_access_block(doc: &Element) -> S3Result<coffer_objects::PublicAccessBlock> {
    const FIELDS: [&str; 4] = [
        "BlockPublicAcls",
        "IgnorePublicAcls",
        "BlockPublicPolicy",
        "RestrictPublicBuckets",
    ];
    if doc.name != "PublicAccessBlockConfiguration" || !doc.only(&FIELDS) {
        return Err(malformed());
    }
    if doc.children.is_empty() {
        return Err(s3_error!(
            InvalidRequest,
            "Must specify at least one configuration."
        ));
    }
    let flag = |name: &str| doc.text_of(name).map_or(Ok(false), parse_bool);
    Ok(coffer_objects::PublicAccessBlock {
        block_public_acls: flag("BlockPublicAcls")?,
        ignore_public_acls: flag("IgnorePublicAcls")?,
        block_public_policy: flag("BlockPublicPolicy")?,
        restrict_public_buckets: flag("RestrictPublicBuckets")?,
    })
}

impl Routes {
    async fn complete(
        &self,
        mut req: S3Request<Body>,
        bucket: String,
        key: String,
        upload_id: String,
    ) -> S3Result<S3Response<Body>> {
        let declared = req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_COMPLETE_BODY as u64) {
            return Err(s3_error!(
                MaxMessageLengthExceeded,
                "Your request was too big."
            ));
        }
        // Reading the body checks it against its signed hash (s3s's stream).
        let body = req
            .input
            .store_all_limited(MAX_COMPLETE_BODY)
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    s3_error!(MaxMessageLengthExceeded, "Your request was too big.")
                } else {
                    crate::error::sigv4_stream_error(&e.to_string())
                }
            })?;
        let body = crate::wide_checksum::carry_xml(&body).map_or(body, Bytes::from);
        let upload = parse_completed(&body)?;
        let if_match = etag_condition(&req.headers, http::header::IF_MATCH)?;
        let if_none_match = etag_condition(&req.headers, http::header::IF_NONE_MATCH)?;
        let req = req.map_input(|_| s3s::dto::CompleteMultipartUploadInput {
            bucket,
            key,
            upload_id,
            multipart_upload: Some(upload),
            if_match,
            if_none_match,
            ..Default::default()
        });
        let out = crate::ops::multipart::complete(&self.objects, req).await?;
        complete_response(out)
    }

    async fn get_encryption(&self, bucket: &str) -> S3Result<S3Response<Body>> {
        let Some(c) = self
            .objects
            .get_bucket_encryption(bucket)
            .await
            .map_err(to_s3_error)?
        else {
            let mut e = s3_error!(
                ServerSideEncryptionConfigurationNotFoundError,
                "The server side encryption configuration was not found"
            );
            e.set_status_code(StatusCode::NOT_FOUND);
            return Err(e);
        };
        let mut r = S3Response::new(Body::from(Bytes::from(encryption_xml(&c))));
        r.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        Ok(r)
    }
}

fn malformed() -> s3s::S3Error {
    s3_error!(
        MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema"
    )
}

/// Reads the (small) body, checks `Content-MD5` if sent, and parses it.
async fn read_document(req: &mut S3Request<Body>) -> S3Result<Element> {
    let body = req
        .input
        .store_all_limited(MAX_BODY)
        .await
        .map_err(|_| s3_error!(MaxMessageLengthExceeded, "Your request was too big."))?;
    if let Some(md5) = req.headers.get("content-md5") {
        use md5::Digest;
        let want = md5
            .to_str()
            .ok()
            .and_then(|s| base64_simd::STANDARD.decode_to_vec(s).ok())
            .ok_or_else(|| {
                s3_error!(InvalidDigest, "The Content-MD5 you specified is not valid.")
            })?;
        if want.as_slice() != md5::Md5::digest(&body).as_slice() {
            return Err(s3_error!(
                BadDigest,
                "The Content-MD5 you specified did not match what we received."
            ));
        }
    }
    xml::parse(&body).ok_or_else(malformed)
}

fn parse_bool(s: &str) -> S3Result<bool> {
    match s {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(malformed()),
    }
}

/// `ServerSideEncryptionConfiguration` with exactly one `Rule`, as S3 requires.
fn bucket_encryption(doc: &Element) -> S3Result<BucketEncryption> {
    if doc.name != "ServerSideEncryptionConfiguration" || !doc.only(&["Rule"]) {
        return Err(malformed());
    }
    let [rule] = doc.children.as_slice() else {
        return Err(malformed());
    };
    if !rule.only(&[
        "ApplyServerSideEncryptionByDefault",
        "BucketKeyEnabled",
        "BlockedEncryptionTypes",
    ]) {
        return Err(malformed());
    }
    // Every AWS bucket encrypts with SSE-S3 when nothing else is said, so a rule that only
    // blocks encryption types keeps (or sets) that default.
    let (algorithm, kms_key_id) = match rule.child("ApplyServerSideEncryptionByDefault") {
        Some(d) => {
            if !d.only(&["SSEAlgorithm", "KMSMasterKeyID"]) {
                return Err(malformed());
            }
            let alg = d.text_of("SSEAlgorithm").ok_or_else(malformed)?;
            (
                alg.to_owned(),
                d.text_of("KMSMasterKeyID")
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned),
            )
        }
        None => ("AES256".to_owned(), None),
    };
    let bucket_key_enabled = match rule.text_of("BucketKeyEnabled") {
        Some(b) => parse_bool(b)?,
        None => false,
    };
    let mut blocked = Vec::new();
    if let Some(b) = rule.child("BlockedEncryptionTypes") {
        if !b.only(&["EncryptionType"]) {
            return Err(malformed());
        }
        blocked = b
            .all("EncryptionType")
            .map(|t| t.text.trim().to_owned())
            .collect();
    }
    Ok(BucketEncryption {
        algorithm,
        kms_key_id,
        bucket_key_enabled,
        blocked_encryption_types: blocked,
    })
}

fn encryption_xml(c: &BucketEncryption) -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ApplyServerSideEncryptionByDefault>",
    );
    x += &format!("<SSEAlgorithm>{}</SSEAlgorithm>", xml::escape(&c.algorithm));
    if let Some(k) = &c.kms_key_id {
        x += &format!("<KMSMasterKeyID>{}</KMSMasterKeyID>", xml::escape(k));
    }
    x += "</ApplyServerSideEncryptionByDefault>";
    x += &format!(
        "<BucketKeyEnabled>{}</BucketKeyEnabled>",
        c.bucket_key_enabled
    );
    if !c.blocked_encryption_types.is_empty() {
        x += "<BlockedEncryptionTypes>";
        for t in &c.blocked_encryption_types {
            x += &format!("<EncryptionType>{}</EncryptionType>", xml::escape(t));
        }
        x += "</BlockedEncryptionTypes>";
    }
    x += "</Rule></ServerSideEncryptionConfiguration>";
    x
}

/// `ObjectEncryption` of UpdateObjectEncryption: only `SSE-KMS` exists as a target.
fn rekey(doc: &Element) -> S3Result<Rekey> {
    if doc.name != "ObjectEncryption" || doc.children.len() != 1 {
        return Err(malformed());
    }
    let Some(kms) = doc.child("SSE-KMS") else {
        return Err(s3_error!(
            InvalidRequest,
            "Requests that modify an object encryption configuration require a valid new encryption type. Valid values are SSEKMS. Modify the request to specify SSE-KMS for the updated encryption type, and then try again."
        ));
    };
    if !kms.only(&["KMSKeyArn", "BucketKeyEnabled"]) {
        return Err(malformed());
    }
    let Some(arn) = kms.text_of("KMSKeyArn").filter(|a| !a.is_empty()) else {
        return Err(s3_error!(
            InvalidRequest,
            "Requests that modify an object's encryption type to SSE-KMS require an AWS KMS key Amazon Resource Name (ARN). Modify the request to specify a KMS key ARN, and then try again."
        ));
    };
    let bucket_key = match kms.text_of("BucketKeyEnabled") {
        None => false,
        Some(b) => parse_bool(b).map_err(|_| {
            s3_error!(
                InvalidRequest,
                "The BucketKeyEnabled value isn't valid. Valid values are true or false. Modify the request to specify a valid value, and then try again."
            )
        })?,
    };
    Ok(Rekey {
        kms_key_arn: arn.to_owned(),
        bucket_key,
    })
}

/// CompleteMultipartUpload's body, as s3s parses it (an empty body is `MalformedXML`, as
/// on S3).
fn parse_completed(body: &[u8]) -> S3Result<s3s::dto::CompletedMultipartUpload> {
    use s3s::xml::Deserialize as _;
    let mut d = s3s::xml::Deserializer::new(body);
    let parsed = s3s::dto::CompletedMultipartUpload::deserialize(&mut d)
        .ok()
        .filter(|_| d.expect_eof().is_ok());
    parsed.ok_or_else(malformed)
}

fn etag_condition(
    headers: &HeaderMap,
    name: http::header::HeaderName,
) -> S3Result<Option<s3s::dto::ETagCondition>> {
    let Some(v) = headers.get(&name) else {
        return Ok(None);
    };
    s3s::dto::ETagCondition::parse_http_header(v.as_bytes())
        .map(Some)
        .map_err(|_| s3_error!(InvalidArgument, "Invalid {} header", name.as_str()))
}

/// The reply s3s would write for CompleteMultipartUpload: its XML result and headers.
fn complete_response(
    resp: S3Response<s3s::dto::CompleteMultipartUploadOutput>,
) -> S3Result<S3Response<Body>> {
    use s3s::xml::Serialize as _;
    let out = resp.output;
    let mut buf = Vec::with_capacity(512);
    {
        let mut ser = s3s::xml::Serializer::new(&mut buf);
        ser.decl()
            .and_then(|()| out.serialize(&mut ser))
            .map_err(s3s::S3Error::internal_error)?;
    }
    let mut r = S3Response::new(Body::from(Bytes::from(buf)));
    r.headers = resp.headers;
    r.extensions = resp.extensions;
    r.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    let headers = [
        (
            "x-amz-server-side-encryption-bucket-key-enabled",
            out.bucket_key_enabled.map(|b| b.to_string()),
        ),
        ("x-amz-expiration", out.expiration),
        (
            "x-amz-server-side-encryption-aws-kms-key-id",
            out.ssekms_key_id,
        ),
        (
            "x-amz-server-side-encryption",
            out.server_side_encryption.map(|s| s.as_str().to_owned()),
        ),
        ("x-amz-version-id", out.version_id),
    ];
    for (name, value) in headers {
        if let Some(v) = value {
            let v = HeaderValue::from_str(&v).map_err(s3s::S3Error::internal_error)?;
            r.headers.insert(name, v);
        }
    }
    Ok(r)
}

/// For `crate::fuzz`: each document reader of this module over one parsed document.
pub(crate) fn fuzz_documents(doc: &Element) -> (bool, bool, bool) {
    (
        bucket_encryption(doc).is_ok(),
        rekey(doc).is_ok(),
        account_public_access_block(doc).is_ok(),
    )
}

/// For `crate::fuzz`: CompleteMultipartUpload's body reader.
pub(crate) fn fuzz_completed(body: &[u8]) -> bool {
    parse_completed(body).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> Element {
        xml::parse(s.as_bytes()).expect("well-formed")
    }

    #[test]
    fn bucket_encryption_reads_blocked_types_and_round_trips() {
        let c = bucket_encryption(&doc(
            "<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>alias/x</KMSMasterKeyID></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled><BlockedEncryptionTypes><EncryptionType>SSE-C</EncryptionType></BlockedEncryptionTypes></Rule></ServerSideEncryptionConfiguration>",
        ))
        .expect("valid");
        assert_eq!(c.algorithm, "aws:kms");
        assert_eq!(c.kms_key_id.as_deref(), Some("alias/x"));
        assert!(c.bucket_key_enabled && c.blocks_sse_c());
        let again = bucket_encryption(&doc(&encryption_xml(&c))).expect("own output parses");
        assert_eq!(again, c);
    }

    #[test]
    fn bucket_encryption_rejects_unknown_or_repeated_elements() {
        for bad in [
            "<ServerSideEncryptionConfiguration><Rule><Bogus/></Rule></ServerSideEncryptionConfiguration>",
            "<ServerSideEncryptionConfiguration><Rule/><Rule/></ServerSideEncryptionConfiguration>",
            "<ServerSideEncryptionConfiguration/>",
            "<Other><Rule/></Other>",
            "<ServerSideEncryptionConfiguration><Rule><BucketKeyEnabled>yes</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>",
        ] {
            assert!(bucket_encryption(&doc(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn rekey_needs_sse_kms_and_an_arn() {
        let r = rekey(&doc(
            "<ObjectEncryption><SSE-KMS><KMSKeyArn>arn:aws:kms:us-east-1:1:key/k</KMSKeyArn><BucketKeyEnabled>true</BucketKeyEnabled></SSE-KMS></ObjectEncryption>",
        ))
        .expect("valid");
        assert!(r.bucket_key);
        assert!(rekey(&doc("<ObjectEncryption><SSE-KMS/></ObjectEncryption>")).is_err());
        assert!(rekey(&doc("<ObjectEncryption><SSE-C/></ObjectEncryption>")).is_err());
    }

    #[test]
    fn only_encryption_subresources_are_claimed() {
        let uri: Uri = "/b?encryption".parse().expect("uri");
        assert!(has_param(&uri, "encryption"));
        let uri: Uri = "/b?encryptionx=1&list-type=2".parse().expect("uri");
        assert!(!has_param(&uri, "encryption"));
    }
}
