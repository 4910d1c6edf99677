//! The AWS KMS JSON API (`POST /`, `X-Amz-Target: TrentService.<Operation>`,
//! `application/x-amz-json-1.1`) over [`coffer_kms::Kms`].
//!
//! [`KmsApi`] is the KMS's [`coffer_api::ApiHandler`]: it authenticates the request with SigV4 for service `kms` (against the
//! same [`coffer_iam::Credentials`] as S3), asks the one authorization point, parses the
//! operation's JSON, calls the domain and renders the reply; failures become AWS's JSON
//! errors in one place (`error.rs`). Plaintexts and data keys are decoded into and
//! encoded from zeroizing buffers, never ordinary strings. API boundary: this crate knows
//! the wire, not the keys; it never touches key material except to base64 it.

mod asym;
mod audit;
mod auth;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod grants;
mod import;
mod operation;
mod ops;
mod request;
mod wire;

use std::sync::Arc;

use bytes::Bytes;
use time::OffsetDateTime;

use coffer_api::{Reply, Unreadable};
use coffer_audit::RequestContext;
use coffer_iam::Credentials;
use coffer_iam::auth::ApiRequest;
use coffer_kms::{Caller, Kms};

use crate::operation::Operation;
use crate::request::Request;

pub use error::{WireError, to_wire};

/// The JSON content type of KMS requests and replies.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Whether a request is for the KMS (`X-Amz-Target: TrentService.*`).
pub fn is_kms(target: Option<&str>) -> bool {
    target.is_some_and(|t| t.starts_with("TrentService."))
}

#[async_trait::async_trait]
impl coffer_api::ApiHandler for KmsApi {
    fn accepts(&self, req: &http::Request<coffer_api::Body>) -> bool {
        is_kms(coffer_api::header(req, "x-amz-target"))
    }

    async fn handle(
        &self,
        req: http::Request<coffer_api::Body>,
        cx: &Arc<RequestContext>,
    ) -> Reply {
        let (parts, body) = match coffer_api::read_small(req).await {
            Ok(x) => x,
            Err(why) => {
                return reply(
                    WireError::serialization(match why {
                        Unreadable::TooLarge => "The request body is too large",
                        Unreadable::Broken => "The request body could not be read",
                    }),
                    &cx.request_id,
                );
            }
        };
        let req = coffer_api::api_request(&parts, body);
        match self.answer(&req, cx, OffsetDateTime::now_utc()).await {
            Ok(body) => Reply::document(200, CONTENT_TYPE, body, &cx.request_id, None),
            Err(e) => reply(e, &cx.request_id),
        }
    }

    fn internal_error(&self, request_id: &str) -> Reply {
        reply(
            WireError {
                status: 500,
                code: "KMSInternalException",
                message: Some("An internal error occurred.".into()),
            },
            request_id,
        )
    }

    fn unavailable(&self, request_id: &str) -> Reply {
        // AWS's retryable 503: "The system timed out while trying to fulfill the request."
        reply(
            WireError {
                status: 503,
                code: "DependencyTimeoutException",
                message: Some(
                    "The system timed out while trying to fulfill the request. You can retry the request.".into(),
                ),
            },
            request_id,
        )
    }
}

/// A failed call's reply.
fn reply(e: WireError, request_id: &str) -> Reply {
    Reply::document(
        e.status,
        CONTENT_TYPE,
        e.body(),
        request_id,
        Some(e.code.to_owned()),
    )
}

pub struct KmsApi {
    kms: Arc<Kms>,
    auth: auth::Authenticator,
    authorizer: Arc<coffer_authz::Authorizer>,
}

impl KmsApi {
    pub fn new(
        kms: Arc<Kms>,
        credentials: Arc<dyn Credentials>,
        authorizer: Arc<coffer_authz::Authorizer>,
    ) -> Self {
        Self {
            kms,
            auth: auth::Authenticator::new(credentials),
            authorizer,
        }
    }

    async fn answer(
        &self,
        req: &ApiRequest<'_>,
        cx: &RequestContext,
        now: OffsetDateTime,
    ) -> Result<Bytes, WireError> {
        let target = req
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-target"))
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let operation = Operation::from_target(target);
        cx.fill(|f| {
            f.service = Some("kms.amazonaws.com");
            f.operation = Some(operation.name());
            f.read_only = Some(operation.read_only());
        });
        if req.method != "POST" {
            return Err(WireError::new(
                "UnknownOperationException",
                "KMS operations must be POST requests",
            ));
        }
        let principal = self.auth.authenticate(req, now)?;
        cx.fill(|f| {
            f.identity = Some(principal.audit_identity());
        });
        let context = self
            .authorizer
            .base_context(&principal, cx.tls, cx.source.map(|s| s.ip()));
        // Operations on no particular key are decided here by the caller's IAM policies
        // (the account root always may); every operation on a key is decided in the KMS,
        // key by key, through the gate (the key policy first, as AWS does).
        if operation.account_level() {
            let action = format!("kms:{}", operation.name());
            let resource = format!(
                "arn:aws:kms:{}:{}:key/*",
                self.kms.config().region,
                principal.account.id
            );
            if let coffer_policy::Decision::Deny(_) = self.authorizer.check(&coffer_authz::Ask {
                principal: &principal,
                action: &action,
                resource: &resource,
                resource_account: Some(&principal.account.id),
                resource_policy: None,
                context: context.clone(),
            }) {
                return Err(WireError::new(
                    "AccessDeniedException",
                    format!(
                        "User: {} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action",
                        principal.arn()
                    ),
                ));
            }
        }
        let account = principal.account.id.clone();
        let gate = Arc::new(coffer_authz::PrincipalGate {
            authorizer: self.authorizer.clone(),
            principal,
            context,
            via_service: None,
        });
        let caller = Caller::client(account, cx.request_id.clone(), gate);
        let request = Request::read(operation, &req.body);
        let audited = request.audited();
        // The signature was checked against the real clock; keys live on the business one.
        let result = ops::run(&self.kms, &request, &caller, self.kms.now()).await;
        cx.fill(|f| {
            f.request_parameters = audited.parameters;
            if let Err(e) = &result {
                f.error_message = e.message.clone();
            }
        });
        let mut answer = result?;
        // A key named by its bare id is the caller's (another account's key is found only
        // by ARN), so the call succeeding names its ARN.
        let named = audited.named_key.map(|k| {
            if k.starts_with("arn:") || k.starts_with("alias/") {
                k
            } else {
                format!(
                    "arn:aws:kms:{}:{}:key/{k}",
                    self.kms.config().region,
                    caller.account_id
                )
            }
        });
        cx.fill(|f| audit::outcome(f, &mut answer, named.as_deref()));
        Ok(Bytes::from_owner(answer.body))
    }
}
