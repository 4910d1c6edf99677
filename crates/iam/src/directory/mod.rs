//! The directory of identities: accounts, IAM users, their access keys and their inline
//! policies. Everything is held in memory (credential lookup is on every request's path
//! and synchronous) and written through to the [`IamStore`] before a change is visible, so
//! an acknowledged change survives a crash.
//!
//! Secret access keys are wrapped under the root key (AAD binds the access key id) in the
//! store; in memory they are [`SecretKey`]s. Policies are kept as the text the caller sent;
//! `coffer-policy` parses and evaluates them, and [`Directory::generation`] tells its cache
//! when anything changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use coffer_crypto::{RootKey, Secret};
use coffer_storage::{IamRecord, IamStore};

use crate::{Account, Credentials, Principal, PrincipalKind, SecretKey};

/// AWS allows two access keys per user.
const MAX_KEYS_PER_USER: usize = 2;
const KIND_USER: &str = "user";
const KIND_KEY: &str = "access-key";
const KIND_ACCOUNT: &str = "account";
const SECRET_AAD: &str = "coffer-iam-secret-v1:";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NoSuchEntity(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    Invalid(String),
    #[error("internal error: {0}")]
    Internal(String),
}

type Result<T> = std::result::Result<T, Error>;

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// The stored form of one entity.
fn record(account: &str, kind: &str, name: &str, doc: &impl Serialize) -> Result<IamRecord> {
    Ok(IamRecord {
        account_id: account.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        doc: serde_json::to_string(doc).map_err(internal)?,
    })
}

/// A secret key wrapped under the root key (AAD binds the key id), base64: how secrets
/// are stored.
fn wrap_secret(root: &dyn RootKey, id: &str, secret: &str) -> Result<String> {
    let wrapped = root
        .wrap(
            format!("{SECRET_AAD}{id}").as_bytes(),
            &Secret::from_slice(secret.as_bytes()),
        )
        .map_err(internal)?;
    Ok(base64_simd::STANDARD.encode_to_string(&wrapped))
}

/// The secret [`wrap_secret`] stored for `id`.
fn unwrap_secret(root: &dyn RootKey, id: &str, stored: &str) -> Result<SecretKey> {
    let wrapped = base64_simd::STANDARD
        .decode_to_vec(stored.as_bytes())
        .map_err(internal)?;
    let secret = root
        .unwrap(format!("{SECRET_AAD}{id}").as_bytes(), &wrapped)
        .map_err(internal)?;
    let secret = String::from_utf8(secret.expose().to_vec()).map_err(internal)?;
    Ok(SecretKey::new(secret))
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Times in stored documents: Unix milliseconds.
mod accounts;
mod inline;
mod keys;
mod managed;
mod rewrap;
mod roles;

pub use accounts::AccountInfo;
pub use managed::{Attached, Entity, GroupInfo, PolicyInfo, PolicyVersion};
pub use roles::{IssuedSession, RoleInfo};

pub(crate) mod unix_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        s.serialize_i64(ms)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let ms = i64::deserialize(d)?;
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccountDoc {
    name: String,
    canonical_id: String,
    #[serde(with = "unix_ms")]
    created: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserDoc {
    user_id: String,
    path: String,
    #[serde(with = "unix_ms")]
    created: OffsetDateTime,
    /// Inline policies: name → document text.
    #[serde(default)]
    policies: BTreeMap<String, String>,
    /// Attached managed policies, by ARN.
    #[serde(default)]
    attached: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyDoc {
    /// `None` for an account root's key.
    user: Option<String>,
    status: String,
    #[serde(with = "unix_ms")]
    created: OffsetDateTime,
    /// The secret, wrapped under the root key, base64.
    secret: String,
}

struct KeyEntry {
    account: String,
    user: Option<String>,
    status: String,
    created: OffsetDateTime,
    secret: SecretKey,
    /// The stored (wrapped, base64) form of `secret`, kept to rewrite the document.
    wrapped: String,
}

#[derive(Default)]
struct State {
    accounts: BTreeMap<String, AccountDoc>,
    users: BTreeMap<(String, String), UserDoc>,
    keys: HashMap<String, KeyEntry>,
    /// Customer managed policies by (account, name).
    policies: BTreeMap<(String, String), managed::PolicyDoc>,
    groups: BTreeMap<(String, String), managed::GroupDoc>,
    roles: BTreeMap<(String, String), roles::RoleDoc>,
    /// Temporary credentials by access key id.
    sessions: HashMap<String, roles::SessionEntry>,
    /// Access key ids (keys, sessions) this process deleted or let expire: a development
    /// server never takes them unchecked (`knows_key`).
    forgotten: std::collections::HashSet<String>,
}

/// A user as IAM describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub account_id: String,
    pub name: String,
    pub user_id: String,
    pub path: String,
    pub arn: String,
    pub created: OffsetDateTime,
}

/// An access key as IAM lists it (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyInfo {
    pub access_key_id: String,
    pub user_name: Option<String>,
    pub status: String,
    pub created: OffsetDateTime,
}

pub struct Directory {
    store: Arc<dyn IamStore>,
    root: Arc<dyn RootKey>,
    state: RwLock<State>,
    /// Serializes changes, so the check-then-write of each one is atomic.
    writing: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    /// The operator's credentials (the instance's root credentials), root of `default`.
    operator: (SecretKey, Principal),
}

fn random_string(alphabet: &[u8], len: usize) -> Result<String> {
    let mut out = String::with_capacity(len);
    let limit = 256 - (256 % alphabet.len());
    while out.len() < len {
        let mut b = [0u8; 32];
        coffer_crypto::random(&mut b).map_err(internal)?;
        for x in b {
            if (x as usize) < limit && out.len() < len {
                out.push(alphabet[x as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// IAM names: 1-64 of `[A-Za-z0-9+=,.@_-]`.
fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "1 validation error detected: Value '{name}' at '{what}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        )))
    }
}

/// Every identity in the store, and the operator's account. With `prune`, expired role
/// sessions found are deleted from the store.
async fn read_state(
    store: &dyn IamStore,
    root: &dyn RootKey,
    operator: &Principal,
    prune: bool,
) -> Result<State> {
    let mut state = State::default();
    let now = OffsetDateTime::now_utc();
    let mut expired = Vec::new();
    for r in store.iam_all().await.map_err(internal)? {
        match r.kind.as_str() {
            KIND_ACCOUNT => {
                state.accounts.insert(
                    r.name.clone(),
                    serde_json::from_str(&r.doc).map_err(internal)?,
                );
            }
            KIND_USER => {
                state.users.insert(
                    (r.account_id.clone(), r.name.clone()),
                    serde_json::from_str(&r.doc).map_err(internal)?,
                );
            }
            managed::KIND_POLICY => {
                state.policies.insert(
                    (r.account_id.clone(), r.name.clone()),
                    serde_json::from_str(&r.doc).map_err(internal)?,
                );
            }
            roles::KIND_ROLE => {
                state.roles.insert(
                    (r.account_id.clone(), r.name.clone()),
                    serde_json::from_str(&r.doc).map_err(internal)?,
                );
            }
            roles::KIND_SESSION => {
                match roles::load_session(root, &r.account_id, &r.name, &r.doc, now)? {
                    Some(e) => {
                        state.sessions.insert(r.name.clone(), e);
                    }
                    None => {
                        state.forgotten.insert(r.name.clone());
                        expired.push((r.account_id.clone(), r.kind.clone(), r.name.clone()));
                    }
                }
            }
            managed::KIND_GROUP => {
                state.groups.insert(
                    (r.account_id.clone(), r.name.clone()),
                    serde_json::from_str(&r.doc).map_err(internal)?,
                );
            }
            KIND_KEY => {
                let d: KeyDoc = serde_json::from_str(&r.doc).map_err(internal)?;
                let secret = unwrap_secret(root, &r.name, &d.secret)?;
                state.keys.insert(
                    r.name.clone(),
                    KeyEntry {
                        account: r.account_id.clone(),
                        user: d.user,
                        status: d.status,
                        created: d.created,
                        secret,
                        wrapped: d.secret,
                    },
                );
            }
            _ => {}
        }
    }
    if prune && !expired.is_empty() {
        store.iam_delete(&expired).await.map_err(internal)?;
    }
    state.accounts.insert(
        operator.account.id.clone(),
        AccountDoc {
            name: operator.account.name.clone(),
            canonical_id: operator.account.canonical_id.clone(),
            created: OffsetDateTime::UNIX_EPOCH,
        },
    );
    Ok(state)
}

impl Directory {
    /// Loads every identity from the store. `default` is the instance's own account, whose
    /// root the operator credentials are.
    pub async fn load(
        store: Arc<dyn IamStore>,
        root: Arc<dyn RootKey>,
        operator_secret: SecretKey,
        operator: Principal,
    ) -> Result<Self> {
        let state = read_state(store.as_ref(), root.as_ref(), &operator, true).await?;
        Ok(Self {
            store,
            root,
            state: RwLock::new(state),
            writing: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            operator: (operator_secret, operator),
        })
    }

    /// Reloads every identity from the store after another node changed one (a change
    /// notice): what this node serves from memory is then what the store holds.
    pub async fn reload(&self) -> Result<()> {
        // Ordered with this node's own writes: the store's state is the newest.
        let _one = self.writing.lock().await;
        let state = read_state(
            self.store.as_ref(),
            self.root.as_ref(),
            &self.operator.1,
            false,
        )
        .await?;
        let mut st = self.write();
        // What this process removed stays removed (`knows_key`).
        let forgotten = std::mem::take(&mut st.forgotten);
        *st = state;
        st.forgotten.extend(forgotten);
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        let guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        // Bumped while the state is held: a reader that sees the new generation reads
        // the state only once this change is done, so it never caches the old state
        // under the new generation.
        self.generation.fetch_add(1, Ordering::SeqCst);
        guard
    }

    /// Changes whenever any identity or policy changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn account(&self, id: &str) -> Option<Account> {
        self.read().accounts.get(id).map(|a| Account {
            id: id.to_owned(),
            name: a.name.clone(),
            canonical_id: a.canonical_id.clone(),
        })
    }

    fn user_info(account: &str, name: &str, u: &UserDoc) -> UserInfo {
        UserInfo {
            account_id: account.to_owned(),
            name: name.to_owned(),
            user_id: u.user_id.clone(),
            path: u.path.clone(),
            arn: format!("arn:aws:iam::{account}:user{}{name}", u.path),
            created: u.created,
        }
    }

    // --- users ---

    pub async fn create_user(
        &self,
        account: &str,
        name: &str,
        path: Option<&str>,
    ) -> Result<UserInfo> {
        check_name("userName", name)?;
        let path = path.unwrap_or("/").to_owned();
        if !path.starts_with('/') || !path.ends_with('/') || path.len() > 512 {
            return Err(Error::Invalid(
                "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.".into(),
            ));
        }
        let _w = self.writing.lock().await;
        if self.user_exists(account, name) {
            return Err(Error::AlreadyExists(format!(
                "User with name {name} already exists."
            )));
        }
        let doc = UserDoc {
            user_id: format!("AIDA{}", random_string(UPPER_DIGITS, 17)?),
            path,
            created: OffsetDateTime::now_utc(),
            policies: BTreeMap::new(),
            attached: BTreeSet::new(),
        };
        self.store
            .iam_create(&record(account, KIND_USER, name, &doc)?)
            .await
            .map_err(internal)?;
        let info = Self::user_info(account, name, &doc);
        self.write()
            .users
            .insert((account.to_owned(), name.to_owned()), doc);
        Ok(info)
    }

    /// IAM compares user names case-insensitively for uniqueness.
    fn user_exists(&self, account: &str, name: &str) -> bool {
        self.read()
            .users
            .keys()
            .any(|(a, n)| a == account && n.eq_ignore_ascii_case(name))
    }

    fn no_such_user(name: &str) -> Error {
        Error::NoSuchEntity(format!("The user with name {name} cannot be found."))
    }

    pub fn get_user(&self, account: &str, name: &str) -> Result<UserInfo> {
        self.read()
            .users
            .get(&(account.to_owned(), name.to_owned()))
            .map(|u| Self::user_info(account, name, u))
            .ok_or_else(|| Self::no_such_user(name))
    }

    pub fn list_users(&self, account: &str, path_prefix: Option<&str>) -> Vec<UserInfo> {
        self.read()
            .users
            .iter()
            .filter(|((a, _), u)| a == account && u.path.starts_with(path_prefix.unwrap_or("/")))
            .map(|((a, n), u)| Self::user_info(a, n, u))
            .collect()
    }

    /// As on AWS, a user with access keys or policies cannot be deleted (`DeleteConflict`).
    pub async fn delete_user(&self, account: &str, name: &str) -> Result<()> {
        let _w = self.writing.lock().await;
        {
            let st = self.read();
            let u = st
                .users
                .get(&(account.to_owned(), name.to_owned()))
                .ok_or_else(|| Self::no_such_user(name))?;
            if !u.policies.is_empty() {
                return Err(Error::DeleteConflict(
                    "Cannot delete entity, must delete policies first.".into(),
                ));
            }
            if !u.attached.is_empty() {
                return Err(Error::DeleteConflict(
                    "Cannot delete entity, must detach all policies first.".into(),
                ));
            }
            if st
                .groups
                .iter()
                .any(|((a, _), g)| a == account && g.members.contains(name))
            {
                return Err(Error::DeleteConflict(
                    "Cannot delete entity, must remove users from group first.".into(),
                ));
            }
            if st
                .keys
                .values()
                .any(|k| k.account == account && k.user.as_deref() == Some(name))
            {
                return Err(Error::DeleteConflict(
                    "Cannot delete entity, must delete access keys first.".into(),
                ));
            }
        }
        self.store
            .iam_delete(&[(account.to_owned(), KIND_USER.into(), name.to_owned())])
            .await
            .map_err(internal)?;
        self.write()
            .users
            .remove(&(account.to_owned(), name.to_owned()));
        Ok(())
    }

    async fn save_user(&self, account: &str, name: &str, doc: UserDoc) -> Result<()> {
        self.store
            .iam_update(&record(account, KIND_USER, name, &doc)?)
            .await
            .map_err(internal)?;
        self.write()
            .users
            .insert((account.to_owned(), name.to_owned()), doc);
        Ok(())
    }

    fn user_doc(&self, account: &str, name: &str) -> Result<UserDoc> {
        self.read()
            .users
            .get(&(account.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| Self::no_such_user(name))
    }

    /// The identity policies (text) that apply to a principal: none for root; for a user
    /// its inline and attached policies and those of its groups.
    pub fn identity_policies(&self, p: &Principal) -> Vec<String> {
        let st = self.read();
        let acct = &p.account.id;
        match &p.kind {
            PrincipalKind::Root | PrincipalKind::Anonymous => Vec::new(),
            PrincipalKind::User { name, .. } => {
                let Some(u) = st.users.get(&(acct.clone(), name.clone())) else {
                    return Vec::new();
                };
                let mut out: Vec<String> = u.policies.values().cloned().collect();
                out.extend(managed::documents(&st, acct, &u.attached));
                for ((a, _), g) in &st.groups {
                    if a == acct && g.members.contains(name) {
                        out.extend(g.policies.values().cloned());
                        out.extend(managed::documents(&st, acct, &g.attached));
                    }
                }
                out
            }
            PrincipalKind::AssumedRole { role, .. } => roles::role_policies(&st, acct, role),
        }
    }

    /// The identity policies of the user, group or role an ARN of `account` names (what
    /// the policy simulator evaluates); `None` if there is no such entity.
    pub fn policies_of(&self, account: &str, arn: &str) -> Option<Vec<String>> {
        let rest = arn.strip_prefix(&format!("arn:aws:iam::{account}:"))?;
        let (kind, path_name) = rest.split_once('/')?;
        let name = path_name.rsplit('/').next()?;
        let st = self.read();
        match kind {
            "user" => {
                st.users.get(&(account.to_owned(), name.to_owned()))?;
                drop(st);
                let p = Principal {
                    account: self.account(account)?,
                    kind: PrincipalKind::User {
                        name: name.to_owned(),
                        id: String::new(),
                    },
                    access_key_id: String::new(),
                };
                Some(self.identity_policies(&p))
            }
            "group" => {
                let g = st.groups.get(&(account.to_owned(), name.to_owned()))?;
                let mut out: Vec<String> = g.policies.values().cloned().collect();
                out.extend(managed::documents(&st, account, &g.attached));
                Some(out)
            }
            "role" => {
                st.roles.get(&(account.to_owned(), name.to_owned()))?;
                Some(roles::role_policies(&st, account, name))
            }
            _ => None,
        }
    }
}

impl Credentials for Directory {
    fn account_by_canonical_id(&self, canonical_id: &str) -> Option<Account> {
        if self.operator.1.account.canonical_id == canonical_id {
            return Some(self.operator.1.account.clone());
        }
        let st = self.read();
        let (id, a) = st
            .accounts
            .iter()
            .find(|(_, a)| a.canonical_id == canonical_id)?;
        Some(Account {
            id: id.clone(),
            name: a.name.clone(),
            canonical_id: a.canonical_id.clone(),
        })
    }

    fn find_account(&self, id: &str) -> Option<Account> {
        if self.operator.1.account.id == id {
            return Some(self.operator.1.account.clone());
        }
        self.account(id)
    }

    fn lookup(&self, access_key_id: &str) -> Option<(SecretKey, Principal)> {
        if access_key_id == self.operator.1.access_key_id {
            return Some(self.operator.clone());
        }
        let st = self.read();
        if let Some(s) = st.sessions.get(access_key_id) {
            if s.expires <= OffsetDateTime::now_utc() {
                return None;
            }
            let a = st.accounts.get(&s.account)?;
            let r = st.roles.get(&(s.account.clone(), s.role.clone()))?;
            return Some((
                s.secret.clone(),
                Principal {
                    account: Account {
                        id: s.account.clone(),
                        name: a.name.clone(),
                        canonical_id: a.canonical_id.clone(),
                    },
                    kind: PrincipalKind::AssumedRole {
                        role: s.role.clone(),
                        role_id: roles::role_id(r).to_owned(),
                        session: s.session.clone(),
                        token_sha256: s.token_sha256.clone(),
                    },
                    access_key_id: access_key_id.to_owned(),
                },
            ));
        }
        let k = st.keys.get(access_key_id)?;
        if k.status != "Active" {
            return None;
        }
        let a = st.accounts.get(&k.account)?;
        let account = Account {
            id: k.account.clone(),
            name: a.name.clone(),
            canonical_id: a.canonical_id.clone(),
        };
        let kind = match &k.user {
            None => PrincipalKind::Root,
            Some(name) => {
                let u = st.users.get(&(k.account.clone(), name.clone()))?;
                PrincipalKind::User {
                    name: name.clone(),
                    id: u.user_id.clone(),
                }
            }
        };
        Some((
            k.secret.clone(),
            Principal {
                account,
                kind,
                access_key_id: access_key_id.to_owned(),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_crypto::LocalRootKey;
    use coffer_storage::memory::MemoryIam;

    fn operator() -> (SecretKey, Principal) {
        (
            SecretKey::new("operator-secret".into()),
            Principal {
                account: Account {
                    id: "111111111111".into(),
                    name: "default".into(),
                    canonical_id: "ab".repeat(32),
                },
                kind: PrincipalKind::Root,
                access_key_id: "AKIAOPERATOR".into(),
            },
        )
    }

    fn root_key() -> Arc<dyn RootKey> {
        Arc::new(LocalRootKey::from_secret(Secret::new(vec![7u8; 32])).expect("root key"))
    }

    async fn open(store: &MemoryIam) -> Directory {
        let (s, p) = operator();
        Directory::load(Arc::new(store.clone()), root_key(), s, p)
            .await
            .expect("load")
    }

    #[tokio::test]
    async fn users_keys_and_policies_survive_a_reload_with_secrets_wrapped() {
        let store = MemoryIam::new();
        let d = open(&store).await;
        let acct = "111111111111";
        let u = d.create_user(acct, "alice", None).await.expect("user");
        assert_eq!(u.arn, "arn:aws:iam::111111111111:user/alice");
        assert!(matches!(
            d.create_user(acct, "ALICE", None).await,
            Err(Error::AlreadyExists(_))
        ));
        let (key, secret) = d.create_access_key(acct, Some("alice")).await.expect("key");
        d.put_inline_policy(
            acct,
            Entity::User("alice"),
            "p",
            "{\"Version\":\"2012-10-17\"}",
        )
        .await
        .expect("policy");
        // The secret is stored only wrapped.
        for r in store.iam_all().await.expect("all") {
            assert!(!r.doc.contains(secret.expose()), "{}", r.doc);
        }
        let d2 = open(&store).await;
        let (s2, p2) = d2.lookup(&key.access_key_id).expect("found after reload");
        assert_eq!(s2, secret);
        assert_eq!(p2.arn(), "arn:aws:iam::111111111111:user/alice");
        assert_eq!(d2.identity_policies(&p2).len(), 1);
        // Inactive keys do not authenticate; deleting needs keys and policies gone first.
        d2.update_access_key(acct, Some("alice"), &key.access_key_id, "Inactive")
            .await
            .expect("deactivate");
        assert!(d2.lookup(&key.access_key_id).is_none());
        assert!(matches!(
            d2.delete_user(acct, "alice").await,
            Err(Error::DeleteConflict(_))
        ));
        d2.delete_inline_policy(acct, Entity::User("alice"), "p")
            .await
            .expect("del policy");
        d2.delete_access_key(acct, Some("alice"), &key.access_key_id)
            .await
            .expect("del key");
        d2.delete_user(acct, "alice").await.expect("del user");
        assert!(open(&store).await.list_users(acct, None).is_empty());
    }

    #[tokio::test]
    async fn at_most_two_keys_per_user_and_names_are_checked() {
        let store = MemoryIam::new();
        let d = open(&store).await;
        let acct = "111111111111";
        d.create_user(acct, "bob", None).await.expect("user");
        d.create_access_key(acct, Some("bob")).await.expect("1");
        d.create_access_key(acct, Some("bob")).await.expect("2");
        assert!(matches!(
            d.create_access_key(acct, Some("bob")).await,
            Err(Error::LimitExceeded(_))
        ));
        assert!(matches!(
            d.create_user(acct, "no spaces", None).await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            d.create_access_key(acct, Some("nobody")).await,
            Err(Error::NoSuchEntity(_))
        ));
    }

    #[tokio::test]
    async fn role_sessions_survive_a_reload_and_carry_a_token_check() {
        let store = MemoryIam::new();
        let d = open(&store).await;
        let acct = "111111111111";
        let role = d
            .create_role(acct, "r", None, "{}", None, None)
            .await
            .expect("role");
        let s = d
            .assume_role(&role, "sess", Some(900))
            .await
            .expect("assume");
        for r in store.iam_all().await.expect("all") {
            assert!(!r.doc.contains(s.secret.expose()), "{}", r.doc);
            assert!(!r.doc.contains(s.token.expose()), "{}", r.doc);
        }
        let d2 = open(&store).await;
        let (secret, p) = d2.lookup(&s.access_key_id).expect("session after reload");
        assert_eq!(secret, s.secret);
        assert_eq!(p.arn(), "arn:aws:sts::111111111111:assumed-role/r/sess");
        assert!(p.session_token_matches(Some(s.token.expose())));
        assert!(!p.session_token_matches(None));
        assert!(!p.session_token_matches(Some("wrong")));
        assert!(matches!(
            d2.assume_role(&role, "sess", Some(899)).await,
            Err(Error::Invalid(_))
        ));
        d2.delete_role(acct, "r").await.expect("delete");
        assert!(d2.lookup(&s.access_key_id).is_none());
        assert!(open(&store).await.lookup(&s.access_key_id).is_none());
    }
}
