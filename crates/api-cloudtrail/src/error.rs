//! The one mapping from CloudTrail API failures to AWS's awsJson1.1 error shape:
//! `{"__type": "InvalidLookupAttributesException", "message": "..."}`, with status 400 for
//! every client error and 500 for an internal one.

use coffer_api::Reply;
use coffer_sigv4::{Refusal, RefusalKind};

/// Why a CloudTrail call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Error {
    /// The access key is unknown, or a session token does not match.
    UnrecognizedClient(String),
    /// The SigV4 signature is missing or does not hold.
    Refused(Refusal),
    UnknownOperation(String),
    Serialization(String),
    AccessDenied(String),
    InvalidLookupAttributes(String),
    InvalidTimeRange(String),
    InvalidEventCategory(String),
    InvalidMaxResults(String),
    InvalidNextToken(String),
    /// The trail could not be read (logged; the client sees no detail).
    Internal(String),
}

impl Error {
    /// The AWS error code and HTTP status.
    pub(crate) fn wire(&self) -> (&'static str, u16) {
        match self {
            Error::UnrecognizedClient(_) => ("UnrecognizedClientException", 400),
            Error::Refused(r) => match r.kind() {
                RefusalKind::Missing => ("MissingAuthenticationTokenException", 400),
                RefusalKind::Incomplete => ("IncompleteSignatureException", 400),
                RefusalKind::Invalid => ("InvalidSignatureException", 400),
            },
            Error::UnknownOperation(_) => ("UnknownOperationException", 400),
            Error::Serialization(_) => ("SerializationException", 400),
            Error::AccessDenied(_) => ("AccessDeniedException", 400),
            Error::InvalidLookupAttributes(_) => ("InvalidLookupAttributesException", 400),
            Error::InvalidTimeRange(_) => ("InvalidTimeRangeException", 400),
            Error::InvalidEventCategory(_) => ("InvalidEventCategoryException", 400),
            Error::InvalidMaxResults(_) => ("InvalidMaxResultsException", 400),
            Error::InvalidNextToken(_) => ("InvalidNextTokenException", 400),
            Error::Internal(_) => ("InternalServerException", 500),
        }
    }

    fn message(&self) -> String {
        match self {
            Error::Refused(r) => r.message("cloudtrail"),
            Error::UnrecognizedClient(m)
            | Error::UnknownOperation(m)
            | Error::Serialization(m)
            | Error::AccessDenied(m)
            | Error::InvalidLookupAttributes(m)
            | Error::InvalidTimeRange(m)
            | Error::InvalidEventCategory(m)
            | Error::InvalidMaxResults(m)
            | Error::InvalidNextToken(m)
            | Error::Internal(m) => m.clone(),
        }
    }

    pub(crate) fn reply(&self, request_id: &str) -> Reply {
        let (code, status) = self.wire();
        let body = serde_json::json!({ "__type": code, "message": self.message() });
        Reply::document(
            status,
            crate::CONTENT_TYPE,
            body.to_string(),
            request_id,
            Some(code.to_owned()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_table() {
        let m = || "m".to_owned();
        let table = [
            (
                Error::UnrecognizedClient(m()),
                "UnrecognizedClientException",
                400,
            ),
            (
                Error::Refused(Refusal::Missing),
                "MissingAuthenticationTokenException",
                400,
            ),
            (
                Error::Refused(Refusal::Malformed("x")),
                "IncompleteSignatureException",
                400,
            ),
            (
                Error::Refused(Refusal::Mismatch),
                "InvalidSignatureException",
                400,
            ),
            (
                Error::Refused(Refusal::WrongService("s3".into())),
                "InvalidSignatureException",
                400,
            ),
            (
                Error::UnknownOperation(m()),
                "UnknownOperationException",
                400,
            ),
            (Error::Serialization(m()), "SerializationException", 400),
            (Error::AccessDenied(m()), "AccessDeniedException", 400),
            (
                Error::InvalidLookupAttributes(m()),
                "InvalidLookupAttributesException",
                400,
            ),
            (
                Error::InvalidTimeRange(m()),
                "InvalidTimeRangeException",
                400,
            ),
            (
                Error::InvalidEventCategory(m()),
                "InvalidEventCategoryException",
                400,
            ),
            (
                Error::InvalidMaxResults(m()),
                "InvalidMaxResultsException",
                400,
            ),
            (
                Error::InvalidNextToken(m()),
                "InvalidNextTokenException",
                400,
            ),
            (Error::Internal(m()), "InternalServerException", 500),
        ];
        for (e, code, status) in table {
            assert_eq!(e.wire(), (code, status), "{e:?}");
            let r = e.reply("REQ");
            assert_eq!(r.response.status().as_u16(), status);
            assert_eq!(r.error_code.as_deref(), Some(code));
        }
        assert_eq!(
            Error::Refused(Refusal::WrongService("s3".into())).message(),
            "Credential should be scoped to correct service: 'cloudtrail', not 's3'."
        );
    }
}
