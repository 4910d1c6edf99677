//! Coffer identities: the accounts (tenants) resources belong to, the principals that act,
//! and the access keys that prove who a caller is.
//!
//! Main types: [`Account`], [`Principal`], [`SecretKey`] and the [`Credentials`] lookup
//! seam that request authentication calls. Invariant: a secret access key is held only in
//! a [`SecretKey`], which zeroizes on drop, compares in constant time and has no `Display`
//! or `Serialize`, so it cannot reach a log line or an audit record. The [`Directory`]
//! holds accounts, IAM users, their access keys (secrets wrapped under the root key at
//! rest) and their policies (as text; `coffer-policy` parses and evaluates them), loaded
//! whole at start and written through to the store.

pub mod auth;
mod directory;

use std::collections::HashMap;
use std::fmt;

pub use directory::{
    AccessKeyInfo, AccountInfo, Attached, Directory, Entity, Error as IamError, GroupInfo,
    IssuedSession, PolicyInfo, PolicyVersion, RoleInfo, UserInfo,
};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A tenant. Buckets (and later keys, users, policies) belong to exactly one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// 12 decimal digits, as in ARNs.
    pub id: String,
    pub name: String,
    /// S3's canonical user id: 64 hex characters, stable for the account's life.
    pub canonical_id: String,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account's root user.
    Root,
    /// An IAM user of the account.
    User { name: String, id: String },
    /// A role session (temporary credentials from STS AssumeRole).
    AssumedRole {
        role: String,
        role_id: String,
        session: String,
        /// Hex SHA-256 of the session token the request must carry.
        token_sha256: String,
    },
    /// An unsigned request (S3 only): no account, no identity policies; only what a
    /// resource policy grants to everyone (`"Principal": "*"`) reaches it.
    Anonymous,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account: Account,
    pub kind: PrincipalKind,
    pub access_key_id: String,
}

/// What AWS puts in `aws:userid` and `aws:PrincipalAccount` for an anonymous caller.
pub const ANONYMOUS: &str = "anonymous";

impl Principal {
    /// The caller of an unsigned request. Its "account" is AWS's `anonymous`; it belongs to
    /// no tenant. Its canonical id is the one AWS shows for anonymous requesters.
    pub fn anonymous() -> Self {
        Self {
            account: Account {
                id: ANONYMOUS.to_owned(),
                name: ANONYMOUS.to_owned(),
                canonical_id: "65a011a29cdf8ec533ec3d1ccaae921c".to_owned(),
            },
            kind: PrincipalKind::Anonymous,
            access_key_id: String::new(),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.kind == PrincipalKind::Anonymous
    }

    /// `arn:aws:iam::ACCOUNT:root` for the root user, `...:user/NAME` for a user; empty for
    /// an anonymous caller (AWS gives it no `aws:PrincipalArn`).
    pub fn arn(&self) -> String {
        match &self.kind {
            PrincipalKind::Anonymous => String::new(),
            PrincipalKind::Root => format!("arn:aws:iam::{}:root", self.account.id),
            PrincipalKind::User { name, .. } => {
                format!("arn:aws:iam::{}:user/{name}", self.account.id)
            }
            PrincipalKind::AssumedRole { role, session, .. } => {
                format!(
                    "arn:aws:sts::{}:assumed-role/{role}/{session}",
                    self.account.id
                )
            }
        }
    }

    /// Whether a request's session token (`X-Amz-Security-Token`) fits these credentials:
    /// role sessions need theirs; long-term keys ignore one, as AWS does not require it.
    pub fn session_token_matches(&self, token: Option<&str>) -> bool {
        match &self.kind {
            PrincipalKind::AssumedRole { token_sha256, .. } => token.is_some_and(|t| {
                let digest: String = coffer_crypto::sha256(t.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                coffer_crypto::equal(digest.as_bytes(), token_sha256.as_bytes())
            }),
            _ => true,
        }
    }

    /// How the audit trail names this caller.
    pub fn audit_identity(&self) -> coffer_audit::Identity {
        if self.is_anonymous() {
            // As CloudTrail records an unsigned S3 request.
            return coffer_audit::Identity {
                kind: "AWSAccount",
                arn: String::new(),
                account_id: "ANONYMOUS_PRINCIPAL".to_owned(),
                principal_id: String::new(),
                access_key_id: String::new(),
                user_name: None,
                session_issuer: None,
            };
        }
        coffer_audit::Identity {
            kind: match self.kind {
                PrincipalKind::Root => "Root",
                PrincipalKind::User { .. } => "IAMUser",
                PrincipalKind::AssumedRole { .. } => "AssumedRole",
                PrincipalKind::Anonymous => "AWSAccount",
            },
            arn: self.arn(),
            account_id: self.account.id.clone(),
            principal_id: self.user_id(),
            access_key_id: self.access_key_id.clone(),
            user_name: self.user_name().map(str::to_owned),
            session_issuer: self.role_arn(),
        }
    }

    /// The role behind a role session: `arn:aws:iam::ACCOUNT:role/NAME` (path omitted).
    pub fn role_arn(&self) -> Option<String> {
        match &self.kind {
            PrincipalKind::AssumedRole { role, .. } => {
                Some(format!("arn:aws:iam::{}:role/{role}", self.account.id))
            }
            _ => None,
        }
    }

    pub fn is_root(&self) -> bool {
        self.kind == PrincipalKind::Root
    }

    /// The user name (`aws:username`), for users.
    pub fn user_name(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::User { name, .. } => Some(name),
            PrincipalKind::Root | PrincipalKind::AssumedRole { .. } | PrincipalKind::Anonymous => {
                None
            }
        }
    }

    /// `aws:userid`: the account id for root, the user's unique id for users,
    /// `ROLEID:SESSION` for role sessions.
    pub fn user_id(&self) -> String {
        match &self.kind {
            PrincipalKind::User { id, .. } => id.clone(),
            PrincipalKind::Root => self.account.id.clone(),
            PrincipalKind::Anonymous => ANONYMOUS.to_owned(),
            PrincipalKind::AssumedRole {
                role_id, session, ..
            } => format!("{role_id}:{session}"),
        }
    }
}

/// A secret access key. Never printed, never serialized, wiped from memory on drop.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<String>);

impl SecretKey {
    pub fn new(secret: String) -> Self {
        Self(Zeroizing::new(secret))
    }

    /// The secret itself, for the signature check only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && bool::from(self.0.as_bytes().ct_eq(other.0.as_bytes()))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// The authentication seam: find the secret and principal behind an access key id.
pub trait Credentials: Send + Sync + 'static {
    fn lookup(&self, access_key_id: &str) -> Option<(SecretKey, Principal)>;

    /// The account whose S3 canonical user id this is (ACL grants name accounts by it).
    fn account_by_canonical_id(&self, _canonical_id: &str) -> Option<Account> {
        None
    }

    /// The account with this id.
    fn find_account(&self, _id: &str) -> Option<Account> {
        None
    }

    /// On a development server (`coffer serve --dev`), the principal a request signed with
    /// `access_key_id` is served as when [`Self::lookup`] does not know the key, whatever
    /// secret signed it; `None` everywhere else, where an unknown key is refused.
    fn unverified(&self, _access_key_id: &str) -> Option<Principal> {
        None
    }
}

/// A fixed set of keys, loaded at start-up.
#[derive(Default)]
pub struct StaticCredentials {
    keys: HashMap<String, (SecretKey, Principal)>,
}

impl StaticCredentials {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, secret: SecretKey, principal: Principal) {
        self.keys
            .insert(principal.access_key_id.clone(), (secret, principal));
    }
}

impl Credentials for StaticCredentials {
    fn lookup(&self, access_key_id: &str) -> Option<(SecretKey, Principal)> {
        self.keys.get(access_key_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Principal {
        Principal {
            account: Account {
                id: "123456789012".into(),
                name: "default".into(),
                canonical_id: "ab".repeat(32),
            },
            kind: PrincipalKind::Root,
            access_key_id: "AKIDEXAMPLE".into(),
        }
    }

    #[test]
    fn secrets_never_print() {
        let s = SecretKey::new("super-secret-value".into());
        assert!(!format!("{s:?}").contains("super-secret"));
        assert_eq!(s, SecretKey::new("super-secret-value".into()));
        assert_ne!(s, SecretKey::new("other".into()));
    }

    #[test]
    fn lookup_by_access_key() {
        let mut c = StaticCredentials::new();
        c.insert(SecretKey::new("s".into()), root());
        assert_eq!(
            c.lookup("AKIDEXAMPLE").map(|(_, p)| p.arn()).as_deref(),
            Some("arn:aws:iam::123456789012:root")
        );
        assert!(c.lookup("nope").is_none());
    }
}
