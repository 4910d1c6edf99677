//! Entry points for `coffer-fuzz` (not an API): one KMS call read and run exactly as
//! [`crate::KmsApi`] does after authentication, so a fuzzer reaches every operation's input
//! parsing, validation and domain code without signing requests.

use coffer_kms::{Caller, Kms};
use time::OffsetDateTime;

use crate::operation::Operation;
use crate::request::Request;

/// What a call answered: the HTTP status and, for a failure, AWS's error code.
pub struct Outcome {
    pub status: u16,
    pub code: Option<&'static str>,
    /// The reply's JSON, for a success.
    pub body: Option<Vec<u8>>,
}

/// Runs `TrentService.<operation>` with `body` for `caller` at `now`.
pub async fn call(
    kms: &Kms,
    operation: &str,
    body: &[u8],
    caller: &Caller,
    now: OffsetDateTime,
) -> Outcome {
    let operation = Operation::from_target(&format!("TrentService.{operation}"));
    let request = Request::read(operation, body);
    let _ = request.audited();
    match crate::ops::run(kms, &request, caller, now).await {
        Ok(answer) => Outcome {
            status: 200,
            code: None,
            body: Some(answer.body.to_vec()),
        },
        Err(e) => Outcome {
            status: e.status,
            code: Some(e.code),
            body: None,
        },
    }
}
