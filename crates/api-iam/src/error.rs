//! The one mapping from IAM/STS failures to AWS's Query-protocol error (`<ErrorResponse>`
//! with `Type`, `Code`, `Message` and the request id): directory errors and SigV4 refusals
//! here, each with its code and status, pinned by the table test below; the handlers'
//! own validation failures name their code where they arise.

use coffer_iam::IamError;
use coffer_sigv4::{Refusal, RefusalKind};

/// A failed call: AWS's error code, HTTP status and message.
#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) code: &'static str,
    pub(crate) status: u16,
    pub(crate) message: String,
}

pub(crate) fn fail(code: &'static str, status: u16, message: impl Into<String>) -> Fail {
    Fail {
        code,
        status,
        message: message.into(),
    }
}

impl From<IamError> for Fail {
    fn from(e: IamError) -> Self {
        match e {
            IamError::NoSuchEntity(m) => fail("NoSuchEntity", 404, m),
            IamError::AlreadyExists(m) => fail("EntityAlreadyExists", 409, m),
            IamError::DeleteConflict(m) => fail("DeleteConflict", 409, m),
            IamError::LimitExceeded(m) => fail("LimitExceeded", 409, m),
            IamError::Invalid(m) => fail("ValidationError", 400, m),
            IamError::Internal(m) => {
                tracing::error!(error = %m, "IAM directory failed");
                fail("ServiceFailure", 500, "An internal error occurred.")
            }
        }
    }
}

pub(crate) fn refusal(r: Refusal) -> Fail {
    let (code, status) = match r.kind() {
        RefusalKind::Missing => ("MissingAuthenticationToken", 403),
        RefusalKind::Incomplete => ("IncompleteSignature", 400),
        RefusalKind::Invalid => ("SignatureDoesNotMatch", 403),
    };
    fail(code, status, r.message("iam"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_table() {
        let m = || "m".to_owned();
        let table: Vec<(Fail, &str, u16)> = vec![
            (IamError::NoSuchEntity(m()).into(), "NoSuchEntity", 404),
            (
                IamError::AlreadyExists(m()).into(),
                "EntityAlreadyExists",
                409,
            ),
            (IamError::DeleteConflict(m()).into(), "DeleteConflict", 409),
            (IamError::LimitExceeded(m()).into(), "LimitExceeded", 409),
            (IamError::Invalid(m()).into(), "ValidationError", 400),
            (IamError::Internal(m()).into(), "ServiceFailure", 500),
            (refusal(Refusal::Missing), "MissingAuthenticationToken", 403),
            (refusal(Refusal::Malformed("x")), "IncompleteSignature", 400),
            (refusal(Refusal::Mismatch), "SignatureDoesNotMatch", 403),
            (
                refusal(Refusal::Skewed {
                    request: "t".into(),
                }),
                "SignatureDoesNotMatch",
                403,
            ),
            (
                refusal(Refusal::WrongService("s3".into())),
                "SignatureDoesNotMatch",
                403,
            ),
        ];
        for (f, code, status) in table {
            assert_eq!((f.code, f.status), (code, status), "{f:?}");
        }
        // Internal details never reach the client.
        assert_eq!(
            Fail::from(IamError::Internal("disk on fire".into())).message,
            "An internal error occurred."
        );
    }
}
