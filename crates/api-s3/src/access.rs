//! Authentication (secret lookup for s3s's SigV4 check), authorization (the one policy
//! decision point) and virtual-host parsing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::HeaderMap;

use coffer_audit::RequestContext;
use coffer_authz::{Ask, Authorizer};
use coffer_iam::{Credentials, Principal};
use coffer_objects::{Caller, Objects};
use coffer_policy::Decision;
use coffer_policy::document::{Document, Kind};

use crate::operation::Operation;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::host::{S3Host, VirtualHost};
use s3s::{S3Result, s3_error};

pub struct Auth {
    pub credentials: Arc<dyn Credentials>,
}

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.credentials.lookup(access_key) {
            Some((secret, _)) => Ok(SecretKey::from(secret.expose())),
            // Development mode: `dev::resign` signed the request again with this.
            None if self.credentials.unverified(access_key).is_some() => {
                Ok(SecretKey::from(crate::dev::SECRET))
            }
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

#[derive(Clone)]
pub struct Access {
    pub objects: Arc<Objects>,
    pub credentials: Arc<dyn Credentials>,
    pub authorizer: Arc<Authorizer>,
    /// Parsed bucket policies, by bucket, with the text they were parsed from (the
    /// object service hands out the same `Arc` until the policy changes).
    pub policies: Arc<Mutex<PolicyCache>>,
}

/// Bucket → (the policy text, parsed).
pub type PolicyCache = HashMap<String, (Arc<str>, Arc<Document>)>;

/// What the access step resolved for an allowed request, once, kept in the request's
/// extensions for the operation: the principal, and the KMS caller every key use of the
/// request goes through — the principal calling the KMS through S3 (`kms:ViaService` is
/// `s3.REGION.amazonaws.com`), with the request's global condition keys as the access
/// check built them and the request's audit context (for `invokedBy` records), so that its
/// key uses are decided by the key policy and its own IAM policies, as on AWS.
#[derive(Clone)]
pub struct Resolved {
    pub principal: Principal,
    pub caller: Caller,
    /// For DeleteObjects, whose keys and versions are named in the body: whether the
    /// caller may also delete named versions (`s3:DeleteObjectVersion`, asked on the
    /// bucket's objects as `s3:DeleteObject` is).
    pub may_delete_versions: bool,
    /// For reads of an object (GetObject, HeadObject, GetObjectAttributes): whether the
    /// caller may list the bucket, which decides between 404 and 403 for a missing key.
    pub may_list: bool,
}

/// What the access step tells the front about a request, beyond its decision: shared
/// through the request's extensions (the front puts it there, the access check fills it).
#[derive(Debug, Default)]
pub(crate) struct Notes {
    /// A missing key must answer 403 AccessDenied rather than 404 NoSuchKey: the caller
    /// may not list the bucket (AWS's GetObject/HeadObject: "If you don't have the
    /// s3:ListBucket permission, Amazon S3 will return an HTTP status code 403").
    pub hide_missing: std::sync::atomic::AtomicBool,
}

/// What the access check reads from one request.
pub struct AccessRequest<'a> {
    pub access_key: Option<&'a str>,
    pub operation: Operation,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let operation = Operation::from_name(cx.s3_op().name());
        // A POST form names its key in the form, which is read after this step: the
        // operation asks (`S3Api::access`) once it has the key, so that a policy on a
        // prefix applies to it as to a PUT.
        if operation == Operation::PostObject {
            return Ok(());
        }
        let rc = cx.extensions_mut().get::<Arc<RequestContext>>().cloned();
        let p = {
            let r = AccessRequest {
                access_key: cx.credentials().map(|c| c.access_key.as_str()),
                operation,
                bucket: cx.s3_path().get_bucket_name().map(str::to_owned),
                key: cx.s3_path().get_object_key().map(str::to_owned),
                headers: cx.headers(),
                query: cx.uri().query(),
            };
            self.decide(&r, rc.as_ref()).await?
        };
        if let Some(notes) = cx.extensions_mut().get::<Arc<Notes>>() {
            notes
                .hide_missing
                .store(!p.may_list, std::sync::atomic::Ordering::Relaxed);
        }
        cx.extensions_mut().insert(p);
        Ok(())
    }
}

impl Access {
    /// The one S3 access decision, for s3s's operations and Coffer's own routes alike:
    /// records the principal and operation in the request context, asks the policy
    /// engine (identity policies, and the bucket policy), and on Allow attaches the
    /// [`Principal`] to the request.
    pub async fn authorize(
        &self,
        r: &AccessRequest<'_>,
        extensions: &mut http::Extensions,
    ) -> S3Result<()> {
        let rc = extensions.get::<Arc<RequestContext>>().cloned();
        let p = self.decide(r, rc.as_ref()).await?;
        extensions.insert(p);
        Ok(())
    }

    /// [`Access::authorize`] without the request's extensions: what it resolved, on Allow.
    async fn decide(
        &self,
        r: &AccessRequest<'_>,
        rc: Option<&Arc<RequestContext>>,
    ) -> S3Result<Resolved> {
        let (operation, bucket, key) = (r.operation, &r.bucket, &r.key);
        // An unsigned request is anonymous: it gets what the bucket policy grants everyone.
        let principal: Option<Principal> = match r.access_key {
            Some(k) => self
                .credentials
                .lookup(k)
                .map(|(_, p)| p)
                .or_else(|| self.credentials.unverified(k)),
            None => Some(Principal::anonymous()),
        };
        if let Some(rc) = rc {
            rc.fill(|f| {
                f.service = Some("s3.amazonaws.com");
                f.operation = Some(operation.name());
                f.read_only = Some(operation.read_only());
                f.bucket.clone_from(bucket);
                f.key.clone_from(key);
                f.version_id = form_urlencoded(r.query.unwrap_or(""))
                    .into_iter()
                    .find(|(k, _)| k == "versionId")
                    .map(|(_, v)| v);
                f.data_event = key.is_some() || operation.bucket_data_event();
                f.host = r
                    .headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned);
                if let Some(p) = &principal {
                    f.identity = Some(p.audit_identity());
                }
            });
        }
        let Some(p) = principal else {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        };
        // Anonymous callers own nothing: they cannot create or list buckets.
        if p.is_anonymous() && (bucket.is_none() || operation == Operation::CreateBucket) {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        let token = r
            .headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                form_urlencoded(r.query.unwrap_or(""))
                    .into_iter()
                    .find(|(k, _)| k == "X-Amz-Security-Token")
                    .map(|(_, v)| v)
            });
        if !p.session_token_matches(token.as_deref()) {
            return Err(s3_error!(
                InvalidToken,
                "The provided token is malformed or otherwise invalid."
            ));
        }
        let owner = match bucket {
            // CreateBucket asks to create a bucket of the caller's own account; if the name
            // is taken, the operation says so (BucketAlreadyExists), as on AWS.
            Some(_) if operation == Operation::CreateBucket => Some(p.account.id.clone()),
            // A bucket that does not exist is NoSuchBucket to every signed caller, before
            // any decision that needs the bucket (its owner, its policy), as on AWS.
            Some(b) => match self.objects.bucket(b).await {
                Ok(r) => Some(r.owner),
                Err(e @ coffer_objects::Error::NoSuchBucket(_)) => {
                    return Err(crate::error::to_s3_error(e));
                }
                Err(_) => None,
            },
            None => None,
        };
        // An anonymous call is recorded in the trail of the bucket's owner.
        if p.is_anonymous()
            && let Some(rc) = rc
        {
            rc.fill(|f| f.recipient_account.clone_from(&owner));
        }
        let policy = match (bucket, &owner) {
            (Some(_), Some(_)) if operation == Operation::CreateBucket => None,
            (Some(b), Some(o)) => self.bucket_policy_for(b, o, &p).await,
            _ => None,
        };
        let resource = match (bucket, key) {
            (Some(b), Some(k)) => format!("arn:aws:s3:::{b}/{k}"),
            // DeleteObjects names its keys in the body: asked as any object of the bucket.
            (Some(b), None) if operation == Operation::DeleteObjects => {
                format!("arn:aws:s3:::{b}/*")
            }
            (Some(b), None) => format!("arn:aws:s3:::{b}"),
            _ => "*".to_owned(),
        };
        let (tls, source) = rc
            .map(|rc| (rc.tls, rc.source.map(|s| s.ip())))
            .unwrap_or((false, None));
        let base_context = self.authorizer.base_context(&p, tls, source);
        let mut context = base_context.clone();
        request_keys(&mut context, r, owner.as_deref());
        let owner_root = p.is_root() && owner.as_deref() == Some(p.account.id.as_str());
        let ask = |action: &str, context| {
            self.authorizer.check(&Ask {
                principal: &p,
                action,
                resource: &resource,
                resource_account: owner.as_deref(),
                resource_policy: policy.as_deref(),
                context,
            })
        };
        let may_delete_versions = operation == Operation::DeleteObjects
            && matches!(
                ask("s3:DeleteObjectVersion", context.clone()),
                Decision::Allow
            );
        // What the request's headers ask for besides the operation needs its own
        // permission too, as on AWS.
        let extra = header_actions(operation, r.headers);
        let names_a_version = names_version(r.query);
        let action = if names_a_version {
            operation.iam_action_for_version()
        } else {
            operation.iam_action()
        };
        // The decision, and the action it is about (the first one refused).
        let (decision, asked) = if owner_root && operation.owner_root_always() {
            (Decision::Allow, action)
        } else {
            extra
                .iter()
                .map(|a| (ask(a, context.clone()), *a))
                .find(|(d, _)| !matches!(d, Decision::Allow))
                .unwrap_or_else(|| (ask(action, context), action))
        };
        // Where the bucket's ACLs are enabled, a grant in the bucket's or the object's ACL
        // is one more way to be allowed: only for the operation's own action (never for
        // what its headers or a named version ask besides, which policies must allow),
        // and never over an explicit deny.
        let decision = match decision {
            Decision::Deny(why)
                if !coffer_policy::eval::is_explicit_deny(why)
                    && extra.is_empty()
                    && !names_a_version =>
            {
                match (bucket, &owner) {
                    (Some(b), Some(o)) => {
                        let context = context_for_list(&base_context, r, Some(o));
                        self.acl_decision(&p, r, b, why, context).await
                    }
                    _ => Decision::Deny(why),
                }
            }
            d => d,
        };
        // Whether a missing key may be reported as such (404) or must look forbidden (403).
        let may_list = match (operation, bucket) {
            (
                Operation::GetObject | Operation::HeadObject | Operation::GetObjectAttributes,
                Some(b),
            ) if matches!(decision, Decision::Allow) => {
                (owner_root && policy.is_none())
                    || matches!(
                        self.authorizer.check(&Ask {
                            principal: &p,
                            action: "s3:ListBucket",
                            resource: &format!("arn:aws:s3:::{b}"),
                            resource_account: owner.as_deref(),
                            resource_policy: policy.as_deref(),
                            context: context_for_list(&base_context, r, owner.as_deref()),
                        }),
                        Decision::Allow
                    )
            }
            _ => true,
        };
        let decision = match decision {
            // A copy also reads its source: s3:GetObject on it, under its bucket's owner
            // and policy, as on AWS.
            Decision::Allow
                if matches!(operation, Operation::CopyObject | Operation::UploadPartCopy) =>
            {
                self.copy_source(&p, r, tls, source).await
            }
            d => d,
        };
        match decision {
            Decision::Allow => {
                let gate = Arc::new(coffer_authz::PrincipalGate {
                    authorizer: self.authorizer.clone(),
                    principal: p.clone(),
                    context: base_context,
                    via_service: Some(format!("s3.{}.amazonaws.com", self.objects.config().region)),
                });
                let request_id = rc.map(|c| c.request_id.clone()).unwrap_or_default();
                let mut caller = Caller::client(p.account.id.clone(), request_id, gate);
                caller.trail = rc.cloned();
                Ok(Resolved {
                    principal: p,
                    caller,
                    may_delete_versions,
                    may_list,
                })
            }
            Decision::Deny(why) => {
                if let Some(rc) = rc {
                    rc.fill(|f| f.error_message = Some(format!("Access Denied: {why}")));
                }
                // Callers outside the bucket's account learn no reason (AWS: "a generic
                // Access Denied message"); the trail keeps it. Callers of its own account
                // are told who was refused what, and by which kind of policy, in AWS's
                // words.
                // (A bucket whose owner could not be read is not taken for the caller's.)
                let same_account = match bucket {
                    None => true,
                    Some(_) => owner.as_deref() == Some(p.account.id.as_str()),
                };
                if p.is_anonymous() || !same_account {
                    return Err(s3_error!(AccessDenied, "Access Denied"));
                }
                Err(s3_error!(
                    AccessDenied,
                    "{}",
                    denied_message(&p.arn(), asked, &resource, why)
                ))
            }
        }
    }

    /// What the ACLs say where policies did not allow: the bucket's ACL for operations on
    /// the bucket and writes into it, the object's for reads of it and of its ACL (AWS's
    /// "ACL permission to IAM action" table). A grant reaches anonymous callers only
    /// through AllUsers; an IAM user or role named through its account needs its own
    /// identity policies too, as for a bucket-policy grant to its account.
    async fn acl_decision(
        &self,
        p: &Principal,
        r: &AccessRequest<'_>,
        bucket: &str,
        why: &'static str,
        context: coffer_policy::eval::Context,
    ) -> Decision {
        use Operation as O;
        use coffer_objects::Permission as P;
        let (on_object, permission) = match r.operation {
            O::ListObjects
            | O::ListObjectsV2
            | O::HeadBucket
            | O::ListObjectVersions
            | O::ListMultipartUploads => (false, P::Read),
            O::PutObject
            | O::PostObject
            | O::CopyObject
            | O::CreateMultipartUpload
            | O::UploadPart
            | O::UploadPartCopy
            | O::CompleteMultipartUpload
            | O::AbortMultipartUpload
            | O::DeleteObject
            | O::DeleteObjects => (false, P::Write),
            O::GetBucketAcl => (false, P::ReadAcp),
            O::PutBucketAcl => (false, P::WriteAcp),
            O::GetObject | O::HeadObject => (true, P::Read),
            O::GetObjectAcl => (true, P::ReadAcp),
            O::PutObjectAcl => (true, P::WriteAcp),
            _ => return Decision::Deny(why),
        };
        let acl = if on_object {
            let Some(key) = &r.key else {
                return Decision::Deny(why);
            };
            let version = form_urlencoded(r.query.unwrap_or(""))
                .into_iter()
                .find(|(k, _)| k == "versionId")
                .map(|(_, v)| v);
            self.objects
                .object_acl_in_force(bucket, key, version.as_deref())
                .await
        } else {
            self.objects.bucket_acl_in_force(bucket).await
        };
        let Ok(Some(acl)) = acl else {
            return Decision::Deny(why);
        };
        let owner = match self.objects.bucket(bucket).await {
            Ok(b) => b.owner,
            Err(_) => return Decision::Deny(why),
        };
        let ignore_public = self
            .objects
            .public_access_block_in_force(bucket, &owner)
            .await
            .map_or(true, |b| b.ignore_public_acls);
        let caller = (!p.is_anonymous()).then_some(p.account.canonical_id.as_str());
        if !acl.allows(caller, permission, ignore_public) {
            return Decision::Deny(why);
        }
        if p.is_anonymous() || p.is_root() {
            return Decision::Allow;
        }
        // Users and roles: their own account's policies must allow too.
        let action = r.operation.iam_action();
        let resource = match &r.key {
            Some(k) => format!("arn:aws:s3:::{bucket}/{k}"),
            None => format!("arn:aws:s3:::{bucket}"),
        };
        self.authorizer.check(&Ask {
            principal: p,
            action,
            resource: &resource,
            resource_account: Some(&p.account.id),
            resource_policy: None,
            context,
        })
    }

    /// The decision on a copy's source (`x-amz-copy-source: [/]BUCKET/KEY[?versionId=..]`,
    /// URL-encoded). A source that does not parse is left to the operation to reject.
    async fn copy_source(
        &self,
        p: &Principal,
        r: &AccessRequest<'_>,
        tls: bool,
        source: Option<std::net::IpAddr>,
    ) -> Decision {
        let Some(raw) = r
            .headers
            .get("x-amz-copy-source")
            .and_then(|v| v.to_str().ok())
        else {
            return Decision::Allow;
        };
        let (path, source_query) = raw.split_once('?').unwrap_or((raw, ""));
        let Ok(path) = percent_encoding::percent_decode_str(path).decode_utf8() else {
            return Decision::Allow;
        };
        let Some((bucket, key)) = path.trim_start_matches('/').split_once('/') else {
            return Decision::Allow;
        };
        let owner = self.objects.bucket(bucket).await.ok().map(|b| b.owner);
        let policy = match &owner {
            Some(o) => self.bucket_policy_for(bucket, o, p).await,
            None => None,
        };
        let mut context = self.authorizer.base_context(p, tls, source);
        request_keys(&mut context, r, owner.as_deref());
        self.authorizer.check(&Ask {
            principal: p,
            action: if names_version(Some(source_query)) {
                "s3:GetObjectVersion"
            } else {
                "s3:GetObject"
            },
            resource: &format!("arn:aws:s3:::{bucket}/{key}"),
            resource_account: owner.as_deref(),
            resource_policy: policy.as_deref(),
            context,
        })
    }

    /// The bucket's policy as it applies to `principal`: a public policy of a bucket whose
    /// Block Public Access in force (its own or its account's) says
    /// `RestrictPublicBuckets` grants nothing to other accounts or anonymous callers (AWS:
    /// access is restricted to authorized users of the bucket owner's account).
    async fn bucket_policy_for(
        &self,
        bucket: &str,
        owner: &str,
        principal: &Principal,
    ) -> Option<Arc<Document>> {
        let policy = self.bucket_policy(bucket).await?;
        if principal.account.id != owner
            && crate::ops::policy::is_public(&policy)
            && self
                .objects
                .public_access_block_in_force(bucket, owner)
                .await
                .map_or(true, |b| b.restrict_public_buckets)
        {
            // Only the public grants go: the rest of the policy, its denies above all,
            // still applies.
            let mut restricted = (*policy).clone();
            restricted
                .statements
                .retain(|st| !crate::ops::policy::statement_is_public(st));
            return Some(Arc::new(restricted));
        }
        Some(policy)
    }

    /// The bucket's policy, parsed (a stored policy that no longer parses is ignored and
    /// logged: it was validated when stored).
    pub(crate) async fn bucket_policy(&self, bucket: &str) -> Option<Arc<Document>> {
        let text = self.objects.get_bucket_policy(bucket).await.ok()??;
        {
            let cache = self.policies.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((t, d)) = cache.get(bucket)
                && Arc::ptr_eq(t, &text)
            {
                return Some(d.clone());
            }
        }
        match Document::parse(&text, Kind::Resource) {
            Ok(d) => {
                let d = Arc::new(d);
                let mut cache = self.policies.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(bucket.to_owned(), (text, d.clone()));
                Some(d)
            }
            Err(e) => {
                tracing::warn!(bucket, error = %e.0, "ignoring an unparsable stored bucket policy");
                None
            }
        }
    }
}

/// The context of the ListBucket question a read of a missing key raises.
fn context_for_list(
    base: &coffer_policy::eval::Context,
    r: &AccessRequest<'_>,
    owner: Option<&str>,
) -> coffer_policy::eval::Context {
    let mut c = base.clone();
    request_keys(&mut c, r, owner);
    c
}

/// S3's request condition keys ("Actions, resources, and condition keys for Amazon S3"):
/// the SSE, storage-class, ACL and copy headers, the listing parameters, and how the
/// request was authenticated.
fn request_keys(c: &mut coffer_policy::eval::Context, r: &AccessRequest<'_>, owner: Option<&str>) {
    const HEADER_KEYS: &[&str] = &[
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-server-side-encryption-customer-algorithm",
        "x-amz-storage-class",
        "x-amz-acl",
        "x-amz-copy-source",
        "x-amz-metadata-directive",
        "x-amz-content-sha256",
        "x-amz-website-redirect-location",
    ];
    for h in HEADER_KEYS {
        if let Some(v) = r.headers.get(*h).and_then(|v| v.to_str().ok()) {
            c.set_one(&format!("s3:{h}"), v.to_owned());
        }
    }
    let mut auth_type = "REST-HEADER";
    for (k, v) in form_urlencoded(r.query.unwrap_or("")) {
        match k.as_str() {
            "prefix" | "delimiter" | "max-keys" => c.set_one(&format!("s3:{k}"), v),
            "X-Amz-Signature" => auth_type = "REST-QUERY-STRING",
            _ => {}
        }
    }
    c.set_one("s3:authType", auth_type);
    c.set_one("s3:signatureversion", "AWS4-HMAC-SHA256");
    if let Some(o) = owner {
        c.set_one("s3:ResourceAccount", o);
    }
}

/// Decodes a query string into (name, value) pairs (undecodable pairs are skipped).
/// Whether a query string names a version (`versionId`).
/// The permissions a request's headers need beyond its operation's action: setting a new
/// bucket's ownership or ACL, bypassing
/// GOVERNANCE retention (`x-amz-bypass-governance-retention: true`), and setting a
/// version's retention or legal hold as it is written (`x-amz-object-lock-*`).
fn header_actions(operation: Operation, headers: &http::HeaderMap) -> Vec<&'static str> {
    let mut extra = Vec::new();
    // CreateBucket that also sets ownership or an ACL needs those permissions, as on AWS.
    if operation == Operation::CreateBucket {
        if headers.contains_key("x-amz-object-ownership") {
            extra.push("s3:PutBucketOwnershipControls");
        }
        let acl = headers
            .get("x-amz-acl")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v != "private");
        if acl
            || headers
                .keys()
                .any(|k| k.as_str().starts_with("x-amz-grant-"))
        {
            extra.push("s3:PutBucketAcl");
        }
    }
    if headers
        .get("x-amz-bypass-governance-retention")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        extra.push("s3:BypassGovernanceRetention");
    }
    if matches!(
        operation,
        Operation::PutObject | Operation::CopyObject | Operation::CreateMultipartUpload
    ) {
        if headers.contains_key("x-amz-object-lock-mode")
            || headers.contains_key("x-amz-object-lock-retain-until-date")
        {
            extra.push("s3:PutObjectRetention");
        }
        if headers.contains_key("x-amz-object-lock-legal-hold") {
            extra.push("s3:PutObjectLegalHold");
        }
    }
    extra
}

fn names_version(query: Option<&str>) -> bool {
    form_urlencoded(query.unwrap_or(""))
        .iter()
        .any(|(k, _)| k == "versionId")
}

pub(crate) fn form_urlencoded(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .ok()
                    .map(|c| c.into_owned())
            };
            Some((dec(k)?, dec(v)?))
        })
        .collect()
}

/// Virtual-hosted-style addressing: `bucket.DOMAIN[:port]`. Any other host is path-style.
pub struct Domain {
    domain: String,
}

impl Domain {
    pub fn new(domain: &str) -> Self {
        Self {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
        }
    }
}

impl S3Host for Domain {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        if let Some(bucket) = name
            .strip_suffix(self.domain.as_str())
            .and_then(|b| b.strip_suffix('.'))
            .filter(|b| !b.is_empty())
        {
            return Ok(
                VirtualHost::new(self.domain.as_str()).with_bucket(bucket.to_ascii_lowercase())
            );
        }
        Ok(VirtualHost::new(name))
    }
}

/// AWS's access denied message for a caller of the resource's own account: "User: ARN is
/// not authorized to perform: ACTION on resource: "RESOURCE" because no identity-based
/// policy allows the ACTION action" (or "with an explicit deny in a/an ... policy").
fn denied_message(arn: &str, action: &str, resource: &str, why: &str) -> String {
    let reason = if why == coffer_policy::eval::EXPLICIT_DENY_RESOURCE {
        "with an explicit deny in a resource-based policy".to_owned()
    } else if coffer_policy::eval::is_explicit_deny(why) {
        "with an explicit deny in an identity-based policy".to_owned()
    } else {
        format!("because no identity-based policy allows the {action} action")
    };
    format!(
        "User: {arn} is not authorized to perform: {action} on resource: \"{resource}\" {reason}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_account_refusals_say_who_what_and_which_policy_as_aws() {
        let arn = "arn:aws:iam::111122223333:user/ann";
        assert_eq!(
            denied_message(arn, "s3:ListBucket", "arn:aws:s3:::b", "no policy allows"),
            "User: arn:aws:iam::111122223333:user/ann is not authorized to perform: s3:ListBucket \
             on resource: \"arn:aws:s3:::b\" because no identity-based policy allows the \
             s3:ListBucket action"
        );
        assert!(
            denied_message(
                arn,
                "s3:GetObject",
                "arn:aws:s3:::b/k",
                coffer_policy::eval::EXPLICIT_DENY
            )
            .ends_with("with an explicit deny in an identity-based policy")
        );
        assert!(
            denied_message(
                arn,
                "s3:GetObject",
                "arn:aws:s3:::b/k",
                coffer_policy::eval::EXPLICIT_DENY_RESOURCE
            )
            .ends_with("with an explicit deny in a resource-based policy")
        );
    }
}
