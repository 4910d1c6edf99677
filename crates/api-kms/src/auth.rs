//! SigV4 for the KMS: the shared [`coffer_iam::auth::Authenticator`], with its refusals
//! mapped to the KMS's error codes.

use std::sync::Arc;

use time::OffsetDateTime;

use coffer_iam::auth::{ApiRequest, Failure};
use coffer_iam::{Credentials, Principal};
use coffer_sigv4::{Refusal, RefusalKind};

use crate::WireError;

pub struct Authenticator {
    inner: coffer_iam::auth::Authenticator,
}

impl Authenticator {
    pub fn new(credentials: Arc<dyn Credentials>) -> Self {
        Self {
            inner: coffer_iam::auth::Authenticator::new(credentials),
        }
    }

    pub fn authenticate(
        &self,
        req: &ApiRequest<'_>,
        now: OffsetDateTime,
    ) -> Result<Principal, WireError> {
        let received = req.received();
        match self.inner.authenticate(&received, &["kms"], now) {
            Ok((p, _)) => Ok(p),
            Err(Failure::UnknownKey | Failure::BadToken) => Err(WireError::new(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )),
            Err(Failure::Signature(r)) => Err(refusal(r)),
        }
    }
}

fn refusal(r: Refusal) -> WireError {
    let code = match r.kind() {
        RefusalKind::Missing => "MissingAuthenticationTokenException",
        RefusalKind::Incomplete => "IncompleteSignatureException",
        RefusalKind::Invalid => "InvalidSignatureException",
    };
    WireError::new(code, r.message("kms"))
}
