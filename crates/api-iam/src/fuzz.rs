//! Entry points for `coffer-fuzz` (not an API): one IAM or STS call run exactly as
//! [`crate::IamApi`] runs it after authentication, so a fuzzer reaches the form decoder
//! and every action's parameter checks without signing requests.

use coffer_audit::RequestContext;
use coffer_iam::Principal;

use crate::IamApi;

/// Runs the form-encoded `body` as `caller`, signed for STS if `sts`. Returns the HTTP
/// status and, for a failure, AWS's error code.
pub async fn call(
    api: &IamApi,
    caller: &Principal,
    sts: bool,
    body: &[u8],
) -> (u16, Option<&'static str>) {
    let cx = RequestContext::new("FUZZ".into(), None, None, false);
    let mut service = if sts { "sts" } else { "iam" };
    match api.run_as(caller, body, &cx, &mut service).await {
        Ok(_) => (200, None),
        Err(f) => (f.status, Some(f.code)),
    }
}
