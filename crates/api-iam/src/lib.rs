//! The IAM and STS Query APIs (`POST /`, form-encoded `Action=...&Version=...`, SigV4
//! service `iam` or `sts`, XML replies in AWS's shapes) over the identity [`Directory`]:
//! users, access keys and inline user policies, and STS GetCallerIdentity. Each call is
//! authorized by the one policy engine (`iam:ACTION` on the user's ARN); policy documents
//! are validated by its grammar before they are stored. API boundary: this crate only
//! translates; identities live in `coffer-iam`, decisions in `coffer-policy`.

mod entities;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod operation;
mod simulate;
mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;

use coffer_api::Reply;
use coffer_audit::RequestContext;
use coffer_authz::Authorizer;
use coffer_iam::auth::{ApiRequest, Authenticator, Failure};
use coffer_iam::{Directory, Principal};
use coffer_policy::Decision;
use coffer_policy::document::{Document, Kind};

use error::{Fail, fail, refusal};
use operation::{Account, Entities, Operation, Simulate, Sts, Users};
use wire::{Xml, error_body, iso, member_list, response};

pub const CONTENT_TYPE: &str = "text/xml";

#[async_trait::async_trait]
impl coffer_api::ApiHandler for IamApi {
    fn accepts(&self, req: &http::Request<coffer_api::Body>) -> bool {
        is_query_api(
            req.method().as_str(),
            req.uri().path(),
            coffer_api::header(req, "authorization"),
        )
    }

    async fn handle(
        &self,
        req: http::Request<coffer_api::Body>,
        cx: &Arc<RequestContext>,
    ) -> Reply {
        match coffer_api::read_small(req).await {
            Ok((parts, body)) => {
                self.answer(&coffer_api::api_request(&parts, body), cx)
                    .await
            }
            Err(_) => failed(
                fail(
                    "MalformedInput",
                    400,
                    "The request body is too large or could not be read",
                ),
                "iam",
                &cx.request_id,
            ),
        }
    }

    /// AWS's common retryable error of the Query APIs.
    fn unavailable(&self, request_id: &str) -> Reply {
        failed(
            fail(
                "ServiceUnavailable",
                503,
                "The request has failed due to a temporary failure of the server.",
            ),
            "iam",
            request_id,
        )
    }

    fn internal_error(&self, request_id: &str) -> Reply {
        failed(
            fail("ServiceFailure", 500, "An internal error occurred."),
            "iam",
            request_id,
        )
    }
}

/// A failure as the Query APIs answer it (`service`'s error document: iam or sts).
fn failed(f: Fail, service: &str, request_id: &str) -> Reply {
    Reply::document(
        f.status,
        CONTENT_TYPE,
        error_body(service, f.code, &f.message, request_id),
        request_id,
        Some(f.code.to_owned()),
    )
}
/// Whether a request is for this API: a POST to `/` signed for `iam` or `sts`.
pub fn is_query_api(method: &str, path: &str, authorization: Option<&str>) -> bool {
    method == "POST"
        && path == "/"
        && authorization
            .is_some_and(|a| a.contains("/iam/aws4_request") || a.contains("/sts/aws4_request"))
}

/// What the IAM API needs to know about the rest of the server: whether an account still
/// owns resources (an account with buckets cannot be deleted).
#[async_trait::async_trait]
pub trait Tenancy: Send + Sync {
    async fn owns_buckets(&self, account_id: &str) -> Result<bool, String>;

    /// `coffer root-key rotate`: what the rotation did, as named values.
    async fn rotate_root_key(&self) -> Result<Vec<(&'static str, String)>, String>;

    /// `coffer root-key destroy-retired`: what was destroyed.
    async fn destroy_retired_root_keys(&self) -> Result<Vec<String>, String>;

    /// `coffer clock show` (`advance` is `None`) and `coffer clock advance SPAN`: the
    /// server's business clock, after moving it forward by `SPAN` (`90d`, `36h`) and
    /// running the work that made due; as named values.
    async fn clock(
        &self,
        advance: Option<&str>,
    ) -> Result<Vec<(&'static str, String)>, ClockRefusal>;
}

/// Why a `coffer clock` call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockRefusal {
    /// The server was not started with `--test-clock`.
    Off,
    /// The span is not one the clock can move by.
    BadSpan(String),
}

pub struct IamApi {
    directory: Arc<Directory>,
    authorizer: Arc<Authorizer>,
    auth: Authenticator,
    tenancy: Arc<dyn Tenancy>,
}

/// Decodes `application/x-www-form-urlencoded`.
fn form(body: &[u8]) -> Result<BTreeMap<String, String>, Fail> {
    let text = std::str::from_utf8(body)
        .map_err(|_| fail("MalformedInput", 400, "The request body is not UTF-8"))?;
    let mut out = BTreeMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| {
                    fail(
                        "MalformedInput",
                        400,
                        "The request body is not valid form encoding",
                    )
                })
        };
        out.insert(dec(k)?, dec(v)?);
    }
    Ok(out)
}

/// The request fields the audit record shows (CloudTrail's camelCase names). Secrets
/// never arrive in IAM requests; none of these is one.
const AUDITED: &[(&str, &str)] = &[
    ("UserName", "userName"),
    ("GroupName", "groupName"),
    ("RoleName", "roleName"),
    ("PolicyName", "policyName"),
    ("PolicyArn", "policyArn"),
    ("PolicyDocument", "policyDocument"),
    ("AssumeRolePolicyDocument", "assumeRolePolicyDocument"),
    ("AccessKeyId", "accessKeyId"),
    ("Status", "status"),
    ("Path", "path"),
    ("Description", "description"),
    ("VersionId", "versionId"),
    ("SetAsDefault", "setAsDefault"),
    ("Scope", "scope"),
    ("RoleArn", "roleArn"),
    ("RoleSessionName", "roleSessionName"),
    ("DurationSeconds", "durationSeconds"),
    ("PolicySourceArn", "policySourceArn"),
    ("AccountName", "accountName"),
    ("AccountId", "accountId"),
    ("MaxSessionDuration", "maxSessionDuration"),
    ("By", "by"),
];

fn audit_parameters(params: &BTreeMap<String, String>) -> Option<serde_json::Value> {
    coffer_audit::record::params(AUDITED.iter().map(|(form, json)| {
        (
            *json,
            params
                .get(*form)
                .map(|v| serde_json::Value::String(v.clone())),
        )
    }))
}

struct Call<'a> {
    params: BTreeMap<String, String>,
    caller: &'a Principal,
    request_id: &'a str,
}

impl Call<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    fn need(&self, name: &str) -> Result<&str, Fail> {
        self.get(name).ok_or_else(|| {
            fail(
                "ValidationError",
                400,
                format!("1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null", lower_first(name)),
            )
        })
    }

    fn account(&self) -> &str {
        &self.caller.account.id
    }

    /// The user a call is about: the named one, else the caller itself (None for root).
    fn user_or_self(&self) -> Option<String> {
        self.get("UserName")
            .map(str::to_owned)
            .or_else(|| self.caller.user_name().map(str::to_owned))
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

impl IamApi {
    /// `credentials` authenticate callers: the directory itself, or a development
    /// server's wrapper of it.
    pub fn new(
        directory: Arc<Directory>,
        credentials: Arc<dyn coffer_iam::Credentials>,
        authorizer: Arc<Authorizer>,
        tenancy: Arc<dyn Tenancy>,
    ) -> Self {
        Self {
            auth: Authenticator::new(credentials),
            directory,
            authorizer,
            tenancy,
        }
    }

    /// Runs one call; the reply's body is the XML document.
    async fn answer(&self, req: &ApiRequest<'_>, cx: &RequestContext) -> Reply {
        let now = OffsetDateTime::now_utc();
        let mut service = "iam";
        match self.run(req, cx, now, &mut service).await {
            Ok(body) => Reply::document(200, CONTENT_TYPE, body, &cx.request_id, None),
            Err(f) => failed(f, service, &cx.request_id),
        }
    }

    async fn run(
        &self,
        req: &ApiRequest<'_>,
        cx: &RequestContext,
        now: OffsetDateTime,
        service: &mut &'static str,
    ) -> Result<String, Fail> {
        let received = req.received();
        let (caller, signed_for) = match self.auth.authenticate(&received, &["iam", "sts"], now) {
            Ok(x) => x,
            Err(Failure::UnknownKey | Failure::BadToken) => {
                return Err(fail(
                    "InvalidClientTokenId",
                    403,
                    "The security token included in the request is invalid.",
                ));
            }
            Err(Failure::Signature(r)) => return Err(refusal(r)),
        };
        if signed_for == "sts" {
            *service = "sts";
        }
        self.run_as(&caller, &req.body, cx, service).await
    }

    /// The call after authentication: `caller` signed `body` for `service`.
    async fn run_as(
        &self,
        caller: &Principal,
        body: &[u8],
        cx: &RequestContext,
        service: &mut &'static str,
    ) -> Result<String, Fail> {
        let params = form(body)?;
        let action = params.get("Action").cloned().unwrap_or_default();
        let operation = Operation::from_action(&action);
        cx.fill(|f| {
            f.service = Some(if *service == "sts" {
                "sts.amazonaws.com"
            } else {
                "iam.amazonaws.com"
            });
            f.operation = Some(operation.name());
            f.read_only = Some(operation.read_only());
            f.identity = Some(caller.audit_identity());
            f.request_parameters = audit_parameters(&params);
        });
        let call = Call {
            params,
            caller,
            request_id: &cx.request_id,
        };
        if *service == "sts" {
            return match operation {
                Operation::Sts(Sts::AssumeRole) => self.assume_role(&call, cx).await,
                // GetCallerIdentity needs no permission, as on AWS.
                Operation::Sts(Sts::GetCallerIdentity) => Ok(response(
                    "sts",
                    "GetCallerIdentity",
                    &Xml::new()
                        .text("Arn", &caller.arn())
                        .text("UserId", &caller.user_id())
                        .text("Account", &caller.account.id)
                        .done(),
                    call.request_id,
                )),
                _ => Err(fail(
                    "InvalidAction",
                    400,
                    format!("Could not find operation {action} for version 2011-06-15"),
                )),
            };
        }
        let result = match operation {
            Operation::Sts(_) | Operation::Unknown => {
                return Err(fail(
                    "InvalidAction",
                    400,
                    format!("Could not find operation {action} for version 2010-05-08"),
                ));
            }
            Operation::Account(op) => self.accounts(&call, op).await?,
            Operation::Users(op) => {
                self.check(&call, operation)?;
                self.users(&call, op).await?
            }
            Operation::Simulate(op) => {
                self.check(&call, operation)?;
                simulate::run(&self.directory, &call, op)?
            }
            Operation::Entities(op) => {
                self.check(&call, operation)?;
                entities::dispatch(&self.directory, &call, op).await?
            }
        };
        Ok(response("iam", operation.name(), &result, call.request_id))
    }

    /// Coffer's tenant administration (`coffer account ...`): the operator alone may call
    /// these, whatever any policy says.
    async fn accounts(&self, call: &Call<'_>, op: Account) -> Result<String, Fail> {
        let operation = op.name();
        if !self.directory.is_operator(call.caller) {
            return Err(fail(
                "AccessDenied",
                403,
                format!(
                    "User: {} is not authorized to perform: coffer:{operation}: only the instance operator manages accounts, the root key and the test clock",
                    call.caller.arn()
                ),
            ));
        }
        let d = &self.directory;
        Ok(match op {
            Account::CreateAccount => {
                let (a, key, secret) = d.create_account(call.need("AccountName")?).await?;
                Xml::new()
                    .raw(
                        "Account",
                        &Xml::new()
                            .text("AccountId", &a.id)
                            .text("Name", &a.name)
                            .text("CanonicalUserId", &a.canonical_id)
                            .text("CreateDate", &iso(a.created))
                            .done(),
                    )
                    .raw(
                        "AccessKey",
                        &Xml::new()
                            .text("AccessKeyId", &key.access_key_id)
                            .text("Status", &key.status)
                            .text("SecretAccessKey", secret.expose())
                            .text("CreateDate", &iso(key.created))
                            .done(),
                    )
                    .done()
            }
            Account::RotateRootKey => {
                let done = self.tenancy.rotate_root_key().await.map_err(|e| {
                    tracing::error!(error = %e, "root-key rotation failed");
                    fail(
                        "ServiceFailure",
                        500,
                        format!("Root-key rotation failed: {e}"),
                    )
                })?;
                done.iter()
                    .fold(Xml::new(), |x, (k, v)| x.text(k, v))
                    .done()
            }
            Account::DestroyRetiredRootKeys => {
                let gone = self
                    .tenancy
                    .destroy_retired_root_keys()
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "destroying retired root keys failed");
                        fail(
                            "ServiceFailure",
                            500,
                            format!("Destroying retired root keys failed: {e}"),
                        )
                    })?;
                let items: Vec<String> = gone
                    .iter()
                    .map(|g| Xml::new().text("Key", g).done())
                    .collect();
                Xml::new().raw("Destroyed", &member_list(&items)).done()
            }
            Account::GetClock | Account::AdvanceClock => {
                let span = match op {
                    Account::AdvanceClock => Some(call.need("By")?),
                    _ => None,
                };
                let now = self.tenancy.clock(span).await.map_err(|e| match e {
                    ClockRefusal::Off => fail(
                        "InvalidAction",
                        400,
                        "The test clock is off: start the server with --test-clock to move it",
                    ),
                    ClockRefusal::BadSpan(why) => fail("ValidationError", 400, why),
                })?;
                now.iter().fold(Xml::new(), |x, (k, v)| x.text(k, v)).done()
            }
            Account::ListAccounts => {
                let items: Vec<String> = d
                    .list_accounts()
                    .iter()
                    .map(|a| {
                        Xml::new()
                            .text("AccountId", &a.id)
                            .text("Name", &a.name)
                            .text("CanonicalUserId", &a.canonical_id)
                            .text("CreateDate", &iso(a.created))
                            .done()
                    })
                    .collect();
                Xml::new().raw("Accounts", &member_list(&items)).done()
            }
            Account::DeleteAccount => {
                let id = call.need("AccountId")?;
                if d.account(id).is_some()
                    && self.tenancy.owns_buckets(id).await.map_err(|e| {
                        tracing::error!(error = %e, "cannot list an account's buckets");
                        fail("ServiceFailure", 500, "An internal error occurred.")
                    })?
                {
                    return Err(fail(
                        "DeleteConflict",
                        409,
                        "Cannot delete an account that owns buckets; delete them first.",
                    ));
                }
                d.delete_account(id).await?;
                String::new()
            }
        })
    }

    /// `iam:ACTION` on the entity the call is about: the named policy, group or role, else
    /// the user (or the caller's account); `*` for the account-wide listings.
    fn check(&self, call: &Call<'_>, operation: Operation) -> Result<(), Fail> {
        use Entities as E;
        let acct = call.account();
        let resource = match operation {
            Operation::Entities(
                E::GetPolicy
                | E::GetPolicyVersion
                | E::DeletePolicy
                | E::CreatePolicyVersion
                | E::ListPolicyVersions,
            ) => call.need("PolicyArn")?.to_owned(),
            Operation::Entities(E::CreatePolicy) => format!(
                "arn:aws:iam::{acct}:policy{}{}",
                call.get("Path").unwrap_or("/"),
                call.need("PolicyName")?
            ),
            Operation::Simulate(Simulate::SimulatePrincipalPolicy) => {
                call.need("PolicySourceArn")?.to_owned()
            }
            Operation::Entities(E::ListPolicies | E::ListGroups | E::ListRoles)
            | Operation::Simulate(Simulate::SimulateCustomPolicy) => "*".to_owned(),
            op if op != Operation::Entities(E::ListGroupsForUser)
                && call.get("GroupName").is_some() =>
            {
                format!(
                    "arn:aws:iam::{acct}:group/{}",
                    call.get("GroupName").unwrap_or_default()
                )
            }
            _ if call.get("RoleName").is_some() => format!(
                "arn:aws:iam::{acct}:role/{}",
                call.get("RoleName").unwrap_or_default()
            ),
            _ => match call.user_or_self() {
                Some(u) => format!("arn:aws:iam::{acct}:user/{u}"),
                None => format!("arn:aws:iam::{acct}:root"),
            },
        };
        let action = format!("iam:{}", operation.name());
        match self.authorizer.check(&coffer_authz::Ask {
            principal: call.caller,
            action: &action,
            resource: &resource,
            resource_account: Some(call.account()),
            resource_policy: None,
            context: self.authorizer.base_context(call.caller, false, None),
        }) {
            Decision::Allow => Ok(()),
            Decision::Deny(_) => Err(fail(
                "AccessDenied",
                403,
                format!(
                    "User: {} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action",
                    call.caller.arn()
                ),
            )),
        }
    }

    async fn users(&self, call: &Call<'_>, op: Users) -> Result<String, Fail> {
        let d = &self.directory;
        let acct = call.account();
        Ok(match op {
            Users::CreateUser => {
                let u = d
                    .create_user(acct, call.need("UserName")?, call.get("Path"))
                    .await?;
                Xml::new().raw("User", &wire::user(&u)).done()
            }
            Users::GetUser => match call.user_or_self() {
                Some(name) => Xml::new()
                    .raw("User", &wire::user(&d.get_user(acct, &name)?))
                    .done(),
                None => Xml::new()
                    .raw(
                        "User",
                        &Xml::new()
                            .text("UserId", acct)
                            .text("Arn", &call.caller.arn())
                            .text("CreateDate", &iso(OffsetDateTime::UNIX_EPOCH))
                            .done(),
                    )
                    .done(),
            },
            Users::ListUsers => {
                let users: Vec<String> = d
                    .list_users(acct, call.get("PathPrefix"))
                    .iter()
                    .map(wire::user)
                    .collect();
                Xml::new()
                    .raw("Users", &member_list(&users))
                    .text("IsTruncated", "false")
                    .done()
            }
            Users::DeleteUser => {
                d.delete_user(acct, call.need("UserName")?).await?;
                String::new()
            }
            Users::CreateAccessKey => {
                let user = call.user_or_self();
                let (k, secret) = d.create_access_key(acct, user.as_deref()).await?;
                let mut x = Xml::new();
                if let Some(u) = &k.user_name {
                    x = x.text("UserName", u);
                }
                let key = x
                    .text("AccessKeyId", &k.access_key_id)
                    .text("Status", &k.status)
                    .text("SecretAccessKey", secret.expose())
                    .text("CreateDate", &iso(k.created))
                    .done();
                Xml::new().raw("AccessKey", &key).done()
            }
            Users::ListAccessKeys => {
                let user = call.user_or_self();
                let keys = d.list_access_keys(acct, user.as_deref())?;
                let items: Vec<String> = keys.iter().map(wire::access_key).collect();
                let mut x = Xml::new();
                if let Some(u) = &user {
                    x = x.text("UserName", u);
                }
                x.raw("AccessKeyMetadata", &member_list(&items))
                    .text("IsTruncated", "false")
                    .done()
            }
            Users::UpdateAccessKey => {
                let user = call.user_or_self();
                d.update_access_key(
                    acct,
                    user.as_deref(),
                    call.need("AccessKeyId")?,
                    call.need("Status")?,
                )
                .await?;
                String::new()
            }
            Users::DeleteAccessKey => {
                let user = call.user_or_self();
                d.delete_access_key(acct, user.as_deref(), call.need("AccessKeyId")?)
                    .await?;
                String::new()
            }
        })
    }

    /// STS AssumeRole: the caller needs `sts:AssumeRole` on the role from the trust policy
    /// (and, across accounts or where the trust policy names only the account, from its
    /// own identity policies too), decided by the one engine.
    async fn assume_role(&self, call: &Call<'_>, cx: &RequestContext) -> Result<String, Fail> {
        let arn = call.need("RoleArn")?;
        let session = call.need("RoleSessionName")?;
        let denied = || {
            fail(
                "AccessDenied",
                403,
                format!(
                    "User: {} is not authorized to perform: sts:AssumeRole on resource: {arn}",
                    call.caller.arn()
                ),
            )
        };
        let role = self.directory.role_by_arn(arn).ok_or_else(denied)?;
        let trust = Document::parse(&role.trust_policy, Kind::Resource).map_err(|e| {
            tracing::error!(role = %arn, error = %e.0, "a stored trust policy does not parse");
            denied()
        })?;
        let mut context =
            self.authorizer
                .base_context(call.caller, cx.tls, cx.source.map(|s| s.ip()));
        context.set_one("sts:RoleSessionName", session);
        if let Some(x) = call.get("ExternalId") {
            context.set_one("sts:ExternalId", x);
        }
        let decision = self.authorizer.check(&coffer_authz::Ask {
            principal: call.caller,
            action: "sts:AssumeRole",
            resource: arn,
            resource_account: Some(&role.account_id),
            resource_policy: Some(&trust),
            context,
        });
        if decision != Decision::Allow {
            return Err(denied());
        }
        let duration =
            match call.get("DurationSeconds") {
                Some(v) => Some(v.parse::<i64>().map_err(|_| {
                    fail("ValidationError", 400, "DurationSeconds must be a number")
                })?),
                None => None,
            };
        let s = self.directory.assume_role(&role, session, duration).await?;
        Ok(response(
            "sts",
            "AssumeRole",
            &Xml::new()
                .raw(
                    "Credentials",
                    &Xml::new()
                        .text("AccessKeyId", &s.access_key_id)
                        .text("SecretAccessKey", s.secret.expose())
                        .text("SessionToken", s.token.expose())
                        .text("Expiration", &iso(s.expires))
                        .done(),
                )
                .raw(
                    "AssumedRoleUser",
                    &Xml::new()
                        .text("AssumedRoleId", &s.assumed_role_id)
                        .text("Arn", &s.arn)
                        .done(),
                )
                .done(),
            call.request_id,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent() {
        let f = form(b"Action=PutUserPolicy&PolicyDocument=%7B%22a%22%3A+1%7D&Empty=")
            .map_err(|f| f.message);
        let f = f.expect("valid");
        assert_eq!(f["Action"], "PutUserPolicy");
        assert_eq!(f["PolicyDocument"], "{\"a\": 1}");
        assert_eq!(f["Empty"], "");
        assert!(form(b"A=%ff").is_err());
    }

    #[test]
    fn query_api_requests_are_recognised_by_their_scope() {
        let iam = "AWS4-HMAC-SHA256 Credential=AK/20261127/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=x";
        let s3 = "AWS4-HMAC-SHA256 Credential=AK/20261127/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x";
        assert!(is_query_api("POST", "/", Some(iam)));
        assert!(!is_query_api("POST", "/", Some(s3)));
        assert!(!is_query_api("GET", "/", Some(iam)));
        assert!(!is_query_api("POST", "/bucket", Some(iam)));
    }
}
