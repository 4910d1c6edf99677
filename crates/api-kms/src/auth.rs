//! SigV4 for the KMS: the shared [`coffer_iam::auth::Authenticator`], with its refusals
//! mapped to the KMS's error codes.

use std::sync::Arc;

use time::OffsetDateTime;

use coffer_iam::auth::{ApiRequest, Failure};
use coffer_iam::{Credentials, Principal};
use coffer_sigv4::Refusal;

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
    match r {
        Refusal::Missing => WireError::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ),
        Refusal::Malformed(why) => WireError::new("IncompleteSignatureException", why),
        Refusal::Skewed { request } => WireError::new(
            "InvalidSignatureException",
            format!(
                "Signature expired: {request} is now earlier or later than the allowed 15 minutes of server time."
            ),
        ),
        Refusal::WrongService(s) => WireError::new(
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: 'kms', not '{s}'."),
        ),
        Refusal::Mismatch => WireError::new(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        ),
    }
}
