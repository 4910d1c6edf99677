//! The one mapping from domain errors to S3 errors (code, HTTP status via the code, and
//! message). Exhaustive on purpose: a new domain error does not compile until it has a
//! wire form here.

use coffer_objects::Error;
use s3s::{S3Error, S3ErrorCode};

/// The headers that tell a client it met a delete marker.
fn marker_headers(version_id: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "x-amz-delete-marker",
        http::HeaderValue::from_static("true"),
    );
    if let Ok(v) = http::HeaderValue::from_str(version_id) {
        headers.insert("x-amz-version-id", v);
    }
    headers
}

pub fn to_s3_error(e: Error) -> S3Error {
    use S3ErrorCode as C;
    let msg = e.to_string();
    let (code, message): (S3ErrorCode, String) = match e {
        Error::InvalidBucketName(_) => (C::InvalidBucketName, "The specified bucket is not valid.".into()),
        Error::NoSuchBucket(_) => (C::NoSuchBucket, "The specified bucket does not exist".into()),
        Error::BucketAlreadyOwnedByYou(_) => (
            C::BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it.".into(),
        ),
        Error::BucketAlreadyExists(_) => (
            C::BucketAlreadyExists,
            "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.".into(),
        ),
        Error::BucketNotEmpty(_) => (
            C::BucketNotEmpty,
            "The bucket you tried to delete is not empty".into(),
        ),
        Error::InvalidBucketState(m) => {
            let mut e = S3Error::with_message(C::InvalidBucketState, m);
            e.set_status_code(http::StatusCode::CONFLICT);
            return e;
        }
        Error::ObjectLocked { .. } => (
            C::AccessDenied,
            "Access Denied because object protected by object lock.".into(),
        ),
        Error::InvalidObjectState(m) => {
            let mut e = S3Error::with_message(C::InvalidObjectState, m);
            e.set_status_code(http::StatusCode::FORBIDDEN);
            return e;
        }
        Error::ObjectAlreadyInActiveTier => {
            let mut e = S3Error::with_message(
                C::Custom("ObjectAlreadyInActiveTierError".into()),
                "This operation is not allowed against this storage tier.",
            );
            e.set_status_code(http::StatusCode::FORBIDDEN);
            return e;
        }
        Error::RestoreAlreadyInProgress => {
            let mut e = S3Error::with_message(
                C::RestoreAlreadyInProgress,
                "Object restore is already in progress",
            );
            e.set_status_code(http::StatusCode::CONFLICT);
            return e;
        }
        Error::InvalidTargetBucketForLogging(m) => (C::InvalidTargetBucketForLogging, m),
        Error::AccessControlListNotSupported => {
            let mut e = S3Error::with_message(
                C::Custom("AccessControlListNotSupported".into()),
                "The bucket does not allow ACLs",
            );
            e.set_status_code(http::StatusCode::BAD_REQUEST);
            return e;
        }
        Error::InvalidBucketAclWithObjectOwnership => {
            let mut e = S3Error::with_message(
                C::Custom("InvalidBucketAclWithObjectOwnership".into()),
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
            );
            e.set_status_code(http::StatusCode::BAD_REQUEST);
            return e;
        }
        Error::NoSuchObjectLockConfiguration => {
            let mut e = S3Error::with_message(
                C::NoSuchObjectLockConfiguration,
                "The specified object does not have a ObjectLock configuration",
            );
            e.set_status_code(http::StatusCode::NOT_FOUND);
            return e;
        }
        Error::InvalidLocationConstraint(_) => (
            C::InvalidLocationConstraint,
            "The specified location-constraint is not valid".into(),
        ),
        Error::NoSuchKey(_) => (C::NoSuchKey, "The specified key does not exist.".into()),
        Error::NoSuchVersion { .. } => (
            C::NoSuchVersion,
            "The specified version does not exist.".into(),
        ),
        Error::IsDeleteMarker {
            version_id,
            last_modified,
            ..
        } => {
            // A delete marker named by its version: 405, saying what it is (and that it
            // can only be deleted), as S3 does.
            let mut e = S3Error::with_message(
                C::MethodNotAllowed,
                "The specified method is not allowed against this resource.",
            );
            let mut headers = marker_headers(&version_id);
            headers.insert(http::header::ALLOW, http::HeaderValue::from_static("DELETE"));
            if let Some(v) = last_modified
                .and_then(|t| crate::convert::http_date(&crate::convert::timestamp(t)))
                .and_then(|d| http::HeaderValue::from_str(&d).ok())
            {
                headers.insert(http::header::LAST_MODIFIED, v);
            }
            e.set_headers(headers);
            return e;
        }
        Error::DeletedKey { version_id, .. } => {
            // The key's latest version is a delete marker: missing, and saying why.
            let mut e = S3Error::with_message(C::NoSuchKey, "The specified key does not exist.");
            e.set_headers(marker_headers(&version_id));
            return e;
        }
        Error::KeyTooLong => (C::KeyTooLongError, "Your key is too long".into()),
        Error::NoSuchUpload(_) => (
            C::NoSuchUpload,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.".into(),
        ),
        Error::InvalidRange { .. } => (C::InvalidRange, "The requested range is not satisfiable".into()),
        Error::InvalidPartNumber => {
            let mut e = S3Error::with_message(
                C::Custom("InvalidPartNumber".into()),
                "The requested partnumber is not satisfiable",
            );
            e.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
            return e;
        }
        Error::PreconditionFailed => (
            C::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold".into(),
        ),
        Error::NotModified {
            etag,
            last_modified,
        } => {
            // A 304 carries the validators the client should cache, and no body.
            let mut e = S3Error::new(C::NotModified);
            let mut headers = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&format!("\"{etag}\"")) {
                headers.insert(http::header::ETAG, v);
            }
            if let Some(v) = crate::convert::http_date(&crate::convert::timestamp(last_modified))
                .and_then(|d| http::HeaderValue::from_str(&d).ok())
            {
                headers.insert(http::header::LAST_MODIFIED, v);
            }
            e.set_headers(headers);
            return e;
        }
        Error::ConditionalRequestConflict => (
            C::ConditionalRequestConflict,
            "A conflicting conditional operation is currently in progress against this resource.".into(),
        ),
        Error::BadDigest => (
            C::BadDigest,
            "The Content-MD5 you specified did not match what we received.".into(),
        ),
        Error::InvalidDigest => (C::InvalidDigest, "The Content-MD5 you specified is not valid.".into()),
        Error::ChecksumMismatch(_) => (C::BadDigest, msg),
        Error::InvalidChecksum(_) => (C::InvalidRequest, msg),
        Error::IncompleteBody => (
            C::IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header.".into(),
        ),
        Error::BodyTooLong => (
            C::InvalidRequest,
            "The request body is longer than the Content-Length HTTP header.".into(),
        ),
        Error::Body(source) => return body_error(source),
        Error::EntityTooLarge => (
            C::EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed size".into(),
        ),
        Error::EntityTooSmall => (
            C::EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed object size.".into(),
        ),
        Error::InvalidPart(_) => (
            C::InvalidPart,
            "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.".into(),
        ),
        Error::InvalidPartOrder => (
            C::InvalidPartOrder,
            "The list of parts was not in ascending order. Parts must be ordered by part number.".into(),
        ),
        Error::InvalidStorageClass(_) => (
            C::InvalidStorageClass,
            "The storage class you specified is not valid".into(),
        ),
        Error::InvalidTag(m) => (C::InvalidTag, m),
        Error::InvalidArgument(m) => (C::InvalidArgument, m),
        Error::InvalidRequest(m) => (C::InvalidRequest, m),
        Error::MalformedXml(_) => (
            C::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema".into(),
        ),
        Error::Kms(k) => return kms_error(k),
        Error::SseCustomerKeyMissing => (
            C::InvalidRequest,
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.".into(),
        ),
        Error::EncryptionTypeBlocked => (
            C::AccessDenied,
            "Access Denied: server-side encryption with customer-provided keys (SSE-C) is blocked for this bucket".into(),
        ),
        Error::SseCustomerKeyMismatch => (
            C::AccessDenied,
            "Requests specifying Server Side Encryption with Customer provided keys must provide the correct secret key.".into(),
        ),
        Error::MetadataTooLarge(size) => (
            C::MetadataTooLarge,
            format!(
                "Your metadata headers exceed the maximum allowed metadata size ({size} bytes; at most 2048)."
            ),
        ),
        Error::NoSpace(detail) => {
            tracing::error!(error = %detail, "out of space");
            (
                C::ServiceUnavailable,
                "The server is out of storage space; nothing of this request was kept. Writes succeed again once space is freed.".into(),
            )
        }
        Error::Internal(detail) => {
            // Opaque to the client; the detail goes to the log (with the request id, added
            // by the dispatcher's span).
            tracing::error!(error = %detail, "internal error");
            (C::InternalError, "We encountered an internal error. Please try again.".into())
        }
    };
    S3Error::with_message(code, message)
}

/// S3 reports KMS failures of server-side encryption as `KMS.<Exception>` (400), with the
/// KMS's message.
fn kms_error(e: coffer_objects::KmsError) -> S3Error {
    use coffer_objects::KmsError as K;
    let name = match &e {
        // The caller may not use the key: S3 answers AccessDenied with the KMS's reason.
        K::AccessDenied(m) => return S3Error::with_message(S3ErrorCode::AccessDenied, m.clone()),
        K::NotFound(_) => "KMS.NotFoundException",
        K::InvalidArn(_) => "KMS.InvalidArnException",
        K::Disabled(_) => "KMS.DisabledException",
        K::InvalidState { .. } => "KMS.KMSInvalidStateException",
        K::InvalidCiphertext => "KMS.InvalidCiphertextException",
        K::IncorrectKey => "KMS.IncorrectKeyException",
        K::InvalidKeyUsage(_) => "KMS.InvalidKeyUsageException",
        K::AlreadyExists(_) => "KMS.AlreadyExistsException",
        K::InvalidAliasName(_) => "KMS.InvalidAliasNameException",
        K::NotAuthorized(_) => "KMS.NotAuthorizedException",
        K::InvalidGrantToken => "KMS.InvalidGrantTokenException",
        K::InvalidImportToken => "KMS.InvalidImportTokenException",
        K::ExpiredImportToken => "KMS.ExpiredImportTokenException",
        K::IncorrectKeyMaterial(_) => "KMS.IncorrectKeyMaterialException",
        K::InvalidMac => "KMS.KMSInvalidMacException",
        K::InvalidSignature => "KMS.KMSInvalidSignatureException",
        K::LimitExceeded(_) => "KMS.LimitExceededException",
        K::MalformedPolicyDocument(_) => "KMS.MalformedPolicyDocumentException",
        K::Tag(_) => "KMS.TagException",
        K::InvalidMarker => "KMS.InvalidMarkerException",
        K::Validation(_) => "KMS.ValidationException",
        K::UnsupportedOperation(_) => "KMS.UnsupportedOperationException",
        K::Internal(detail) => {
            tracing::error!(error = %detail, "KMS internal error during server-side encryption");
            return S3Error::with_message(
                S3ErrorCode::InternalError,
                "We encountered an internal error. Please try again.",
            );
        }
    };
    let mut out = S3Error::with_message(S3ErrorCode::Custom(name.into()), e.to_string());
    out.set_status_code(http::StatusCode::BAD_REQUEST);
    out
}

/// A body stream failure: the SigV4 layer's own error (bad chunk signature, malformed
/// chunk) passes through; anything else means the body was cut short.
fn body_error(source: coffer_objects::BodyError) -> S3Error {
    let source = match source.downcast::<S3Error>() {
        Ok(e) => return *e,
        Err(other) => other,
    };
    match source.downcast::<Error>() {
        Ok(e) => to_s3_error(*e),
        Err(other) => sigv4_stream_error(&other.to_string()),
    }
}

/// s3s reports SigV4 payload failures with private error types; their messages are the
/// only stable handle (pinned by `sigv4_stream_errors_map_to_aws_codes`).
pub(crate) fn sigv4_stream_error(message: &str) -> S3Error {
    let custom = |code: &str, status: http::StatusCode, msg: &str| {
        let mut e =
            S3Error::with_message(S3ErrorCode::Custom(code.to_owned().into()), msg.to_owned());
        e.set_status_code(status);
        e
    };
    if message.contains("Sha256Mismatch") {
        return custom(
            "XAmzContentSHA256Mismatch",
            http::StatusCode::BAD_REQUEST,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
    }
    if message.contains("SignatureMismatch") {
        return S3Error::with_message(
            S3ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        );
    }
    if message.contains("RequestTimeout") {
        return S3Error::with_message(
            S3ErrorCode::RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.",
        );
    }
    if message.contains("FormatError")
        || message.contains("TooLarge")
        || message.contains("TooManyTrailerHeaders")
    {
        return S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The aws-chunked request body is malformed.",
        );
    }
    tracing::info!(error = %message, "request body ended early");
    S3Error::with_message(
        S3ErrorCode::IncompleteBody,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    /// The wire form of every domain error: code and status, pinned.
    #[test]
    fn error_table() {
        let cases: Vec<(Error, &str, u16)> = vec![
            (
                Error::InvalidBucketName("x".into()),
                "InvalidBucketName",
                400,
            ),
            (Error::NoSuchBucket("b".into()), "NoSuchBucket", 404),
            (
                Error::BucketAlreadyOwnedByYou("b".into()),
                "BucketAlreadyOwnedByYou",
                409,
            ),
            (
                Error::BucketAlreadyExists("b".into()),
                "BucketAlreadyExists",
                409,
            ),
            (Error::BucketNotEmpty("b".into()), "BucketNotEmpty", 409),
            (
                Error::InvalidBucketState("s".into()),
                "InvalidBucketState",
                409,
            ),
            (
                Error::ObjectLocked {
                    key: "k".into(),
                    version_id: "v".into(),
                },
                "AccessDenied",
                403,
            ),
            (
                Error::InvalidObjectState("s".into()),
                "InvalidObjectState",
                403,
            ),
            (
                Error::RestoreAlreadyInProgress,
                "RestoreAlreadyInProgress",
                409,
            ),
            (
                Error::ObjectAlreadyInActiveTier,
                "ObjectAlreadyInActiveTierError",
                403,
            ),
            (
                Error::NoSuchObjectLockConfiguration,
                "NoSuchObjectLockConfiguration",
                404,
            ),
            (
                Error::AccessControlListNotSupported,
                "AccessControlListNotSupported",
                400,
            ),
            (
                Error::InvalidTargetBucketForLogging("t".into()),
                "InvalidTargetBucketForLogging",
                400,
            ),
            (
                Error::InvalidBucketAclWithObjectOwnership,
                "InvalidBucketAclWithObjectOwnership",
                400,
            ),
            (
                Error::InvalidLocationConstraint("x".into()),
                "InvalidLocationConstraint",
                400,
            ),
            (Error::NoSuchKey("k".into()), "NoSuchKey", 404),
            (
                Error::NoSuchVersion {
                    key: "k".into(),
                    version_id: "v".into(),
                },
                "NoSuchVersion",
                404,
            ),
            (
                Error::IsDeleteMarker {
                    key: "k".into(),
                    version_id: "v".into(),
                    last_modified: None,
                },
                "MethodNotAllowed",
                405,
            ),
            (
                Error::DeletedKey {
                    key: "k".into(),
                    version_id: "v".into(),
                },
                "NoSuchKey",
                404,
            ),
            (Error::KeyTooLong, "KeyTooLongError", 400),
            (Error::NoSuchUpload("u".into()), "NoSuchUpload", 404),
            (Error::InvalidRange { size: 1 }, "InvalidRange", 416),
            (Error::InvalidPartNumber, "InvalidPartNumber", 416),
            (Error::PreconditionFailed, "PreconditionFailed", 412),
            (
                Error::NotModified {
                    etag: "e".into(),
                    last_modified: time::OffsetDateTime::UNIX_EPOCH,
                },
                "NotModified",
                304,
            ),
            (
                Error::ConditionalRequestConflict,
                "ConditionalRequestConflict",
                409,
            ),
            (Error::BadDigest, "BadDigest", 400),
            (Error::InvalidDigest, "InvalidDigest", 400),
            (Error::ChecksumMismatch("CRC32"), "BadDigest", 400),
            (
                Error::InvalidChecksum(coffer_objects::ChecksumAlgorithm::Crc32),
                "InvalidRequest",
                400,
            ),
            (Error::IncompleteBody, "IncompleteBody", 400),
            (Error::BodyTooLong, "InvalidRequest", 400),
            (Error::Body("cut".into()), "IncompleteBody", 400),
            (Error::EntityTooLarge, "EntityTooLarge", 400),
            (Error::EntityTooSmall, "EntityTooSmall", 400),
            (Error::InvalidPart(1), "InvalidPart", 400),
            (Error::InvalidPartOrder, "InvalidPartOrder", 400),
            (
                Error::InvalidStorageClass("X".into()),
                "InvalidStorageClass",
                400,
            ),
            (Error::InvalidTag("t".into()), "InvalidTag", 400),
            (Error::InvalidArgument("a".into()), "InvalidArgument", 400),
            (Error::InvalidRequest("r".into()), "InvalidRequest", 400),
            (Error::MalformedXml("m".into()), "MalformedXML", 400),
            (
                Error::Internal("secret detail".into()),
                "InternalError",
                500,
            ),
            (Error::MetadataTooLarge(2100), "MetadataTooLarge", 400),
            (
                Error::NoSpace("No space left on device".into()),
                "ServiceUnavailable",
                503,
            ),
            (
                Error::Kms(coffer_objects::KmsError::Disabled("arn".into())),
                "KMS.DisabledException",
                400,
            ),
            (
                Error::Kms(coffer_objects::KmsError::InvalidState {
                    arn: "arn".into(),
                    state: "pending deletion",
                }),
                "KMS.KMSInvalidStateException",
                400,
            ),
            (
                Error::Kms(coffer_objects::KmsError::NotFound("k".into())),
                "KMS.NotFoundException",
                400,
            ),
            (Error::SseCustomerKeyMissing, "InvalidRequest", 400),
            (Error::SseCustomerKeyMismatch, "AccessDenied", 403),
            (Error::EncryptionTypeBlocked, "AccessDenied", 403),
        ];
        for (err, code, status) in cases {
            let e = to_s3_error(err);
            assert_eq!(e.code().as_str(), code);
            assert_eq!(
                e.status_code().or_else(|| e.code().status_code()),
                Some(StatusCode::from_u16(status).expect("valid status")),
                "{code}"
            );
            assert!(!e.message().unwrap_or("").contains("secret detail"));
        }
    }

    #[test]
    fn sigv4_stream_errors_map_to_aws_codes() {
        for (msg, code) in [
            (
                "UploadStreamError: Sha256Mismatch",
                "XAmzContentSHA256Mismatch",
            ),
            (
                "AwsChunkedStreamError: SignatureMismatch",
                "SignatureDoesNotMatch",
            ),
            ("AwsChunkedStreamError: FormatError", "InvalidRequest"),
            ("AwsChunkedStreamError: Incomplete", "IncompleteBody"),
            (
                "RequestTimeout: no request body bytes arrived within the client timeout",
                "RequestTimeout",
            ),
            ("connection reset", "IncompleteBody"),
        ] {
            let e = to_s3_error(Error::Body(msg.into()));
            assert_eq!(e.code().as_str(), code, "{msg}");
        }
    }

    #[test]
    fn sigv4_errors_in_the_body_pass_through() {
        let inner = S3Error::new(S3ErrorCode::SignatureDoesNotMatch);
        let e = to_s3_error(Error::Body(Box::new(inner)));
        assert_eq!(e.code(), &S3ErrorCode::SignatureDoesNotMatch);
    }
}
