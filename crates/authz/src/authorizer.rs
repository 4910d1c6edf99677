//! The decision point every API calls: gathers what bears on a request (the caller's
//! identity policies from the [`Directory`], parsed once per directory generation; the
//! resource's policy; the global condition keys) and asks [`coffer_policy::eval`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use coffer_iam::{Directory, Principal};

use coffer_policy::Decision;
use coffer_policy::document::{Document, Kind};
use coffer_policy::eval::{Context, PolicySet, Query, decide, decide_kms};

/// One question: may `principal` do `action` on `resource`?
pub struct Ask<'a> {
    pub principal: &'a Principal,
    pub action: &'a str,
    /// An ARN, or `*` for actions on no resource.
    pub resource: &'a str,
    /// The account owning the resource; `None` for actions on no resource.
    pub resource_account: Option<&'a str>,
    /// A bucket policy, if the resource has one.
    pub resource_policy: Option<&'a Document>,
    pub context: Context,
}

type Parsed = (u64, Arc<Vec<Document>>);

pub struct Authorizer {
    directory: Arc<Directory>,
    cache: Mutex<HashMap<String, Parsed>>,
    /// Parsed key policies, by their text.
    key_policies: Mutex<HashMap<String, Arc<Document>>>,
}

impl Authorizer {
    pub fn new(directory: Arc<Directory>) -> Self {
        Self {
            directory,
            cache: Mutex::new(HashMap::new()),
            key_policies: Mutex::new(HashMap::new()),
        }
    }

    /// A key policy, parsed once per distinct text. `None` if it does not parse (it was
    /// validated when stored, so this means a damaged record; it grants nothing).
    pub fn key_policy(&self, text: &str) -> Option<Arc<Document>> {
        if let Some(d) = self
            .key_policies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(text)
        {
            return Some(d.clone());
        }
        let d = match Document::parse(text, Kind::Resource) {
            Ok(d) => Arc::new(d),
            Err(e) => {
                tracing::warn!(error = %e.0, "a stored key policy does not parse");
                return None;
            }
        };
        let mut cache = self.key_policies.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(text.to_owned(), d.clone());
        Some(d)
    }

    /// The global condition keys of a request: `aws:username`, `aws:userid`,
    /// `aws:PrincipalAccount`, `aws:PrincipalArn`, `aws:SecureTransport`, `aws:SourceIp`,
    /// `aws:CurrentTime`, `aws:EpochTime`.
    pub fn base_context(&self, p: &Principal, secure: bool, source_ip: Option<IpAddr>) -> Context {
        let mut c = Context::new();
        if let Some(u) = p.user_name() {
            c.set_one("aws:username", u);
        }
        c.set_one("aws:userid", p.user_id());
        c.set_one("aws:PrincipalAccount", p.account.id.clone());
        // For a role session, aws:PrincipalArn is the role's ARN (as on AWS); an anonymous
        // caller has none.
        if !p.is_anonymous() {
            c.set_one("aws:PrincipalArn", p.role_arn().unwrap_or_else(|| p.arn()));
        }
        c.set_one(
            "aws:PrincipalType",
            match p.kind {
                coffer_iam::PrincipalKind::Root => "Account",
                coffer_iam::PrincipalKind::User { .. } => "User",
                coffer_iam::PrincipalKind::AssumedRole { .. } => "AssumedRole",
                coffer_iam::PrincipalKind::Anonymous => "Anonymous",
            },
        );
        c.set_one("aws:SecureTransport", secure.to_string());
        if let Some(ip) = source_ip {
            c.set_one("aws:SourceIp", ip.to_string());
        }
        let now = OffsetDateTime::now_utc();
        if let Ok(t) = now.replace_nanosecond(0).unwrap_or(now).format(&Rfc3339) {
            c.set_one("aws:CurrentTime", t);
        }
        c.set_one("aws:EpochTime", now.unix_timestamp().to_string());
        c
    }

    /// The caller's identity policies, parsed (a stored policy that no longer parses is
    /// skipped and logged: it was validated when stored).
    fn identity(&self, p: &Principal) -> Arc<Vec<Document>> {
        if p.is_root() || p.is_anonymous() {
            return Arc::new(Vec::new());
        }
        let generation = self.directory.generation();
        let arn = p.arn();
        if let Some((g, docs)) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&arn)
            && *g == generation
        {
            return docs.clone();
        }
        let docs: Vec<Document> = self
            .directory
            .identity_policies(p)
            .iter()
            .filter_map(|text| match Document::parse(text, Kind::Identity) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(principal = %arn, error = %e.0, "ignoring an unparsable stored identity policy");
                    None
                }
            })
            .collect();
        let docs = Arc::new(docs);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(arn, (generation, docs.clone()));
        docs
    }

    /// S3- and IAM-style resources: identity policies and the resource policy together.
    pub fn check(&self, ask: &Ask<'_>) -> Decision {
        let identity = self.identity(ask.principal);
        let arn = ask.principal.arn();
        decide(
            &PolicySet {
                identity: &identity,
                caller_is_root: ask.principal.is_root(),
                anonymous: ask.principal.is_anonymous(),
                resource_policy: ask.resource_policy,
                resource_account: ask.resource_account,
            },
            &query(ask, &arn),
        )
    }

    /// KMS: the key policy is primary.
    pub fn check_kms(&self, key_policy: &Document, ask: &Ask<'_>) -> Decision {
        let identity = self.identity(ask.principal);
        let arn = ask.principal.arn();
        decide_kms(
            key_policy,
            &identity,
            ask.principal.is_root(),
            &query(ask, &arn),
        )
    }
}

/// The evaluator's view of a question (`arn` is the principal's ARN).
fn query<'a>(ask: &'a Ask<'_>, arn: &'a str) -> Query<'a> {
    Query {
        action: ask.action,
        resource: ask.resource,
        principal_arn: arn,
        principal_account: &ask.principal.account.id,
        context: &ask.context,
    }
}
