//! Roles (a trust policy, inline and attached permission policies) and the temporary
//! credentials STS AssumeRole issues for them: an access key id (`ASIA...`), a secret
//! (wrapped under the root key at rest, like every secret) and a session token, of which
//! only a SHA-256 digest is kept. Sessions are stored, so that they survive a restart
//! until they expire; expired ones are dropped when the directory loads and whenever a new
//! session is issued.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::{
    Directory, Error, Result, SECRET_ALPHABET, State, UPPER_DIGITS, check_name, hex, internal,
    random_string, record, unix_ms, unwrap_secret, wrap_secret,
};
use crate::SecretKey;

pub(super) const KIND_ROLE: &str = "role";
pub(super) const KIND_SESSION: &str = "session";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RoleDoc {
    role_id: String,
    path: String,
    #[serde(with = "unix_ms")]
    created: OffsetDateTime,
    /// The trust policy (who may assume the role), as sent.
    trust: String,
    #[serde(default)]
    description: Option<String>,
    max_session_secs: i64,
    #[serde(default)]
    pub(super) policies: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) attached: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SessionDoc {
    role: String,
    session: String,
    #[serde(with = "unix_ms")]
    pub(super) expires: OffsetDateTime,
    /// The secret, wrapped under the root key, base64.
    secret: String,
    /// Hex SHA-256 of the session token.
    token_sha256: String,
}

impl SessionDoc {
    /// The stored form of a session in memory, its secret wrapped under `root` now.
    pub(super) fn of(
        e: &SessionEntry,
        id: &str,
        root: &dyn coffer_crypto::RootKey,
    ) -> Result<Self> {
        Ok(Self {
            role: e.role.clone(),
            session: e.session.clone(),
            expires: e.expires,
            secret: wrap_secret(root, id, e.secret.expose())?,
            token_sha256: e.token_sha256.clone(),
        })
    }
}

/// A session in memory.
pub(super) struct SessionEntry {
    pub(super) account: String,
    pub(super) role: String,
    pub(super) session: String,
    pub(super) expires: OffsetDateTime,
    pub(super) secret: SecretKey,
    pub(super) token_sha256: String,
}

/// A role as IAM describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    pub account_id: String,
    pub name: String,
    pub role_id: String,
    pub arn: String,
    pub path: String,
    pub trust_policy: String,
    pub description: Option<String>,
    pub max_session_secs: i64,
    pub created: OffsetDateTime,
}

/// Temporary credentials, shown once.
pub struct IssuedSession {
    pub access_key_id: String,
    pub secret: SecretKey,
    pub token: SecretKey,
    pub expires: OffsetDateTime,
    /// `AROA...:SESSION`
    pub assumed_role_id: String,
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`
    pub arn: String,
}

fn no_such_role(name: &str) -> Error {
    Error::NoSuchEntity(format!("The role with name {name} cannot be found."))
}

fn role_info(account: &str, name: &str, r: &RoleDoc) -> RoleInfo {
    RoleInfo {
        account_id: account.to_owned(),
        name: name.to_owned(),
        role_id: r.role_id.clone(),
        arn: format!("arn:aws:iam::{account}:role{}{name}", r.path),
        path: r.path.clone(),
        trust_policy: r.trust.clone(),
        description: r.description.clone(),
        max_session_secs: r.max_session_secs,
        created: r.created,
    }
}

/// Loads a stored session; `None` if it has expired.
pub(super) fn load_session(
    root: &dyn coffer_crypto::RootKey,
    account: &str,
    id: &str,
    doc: &str,
    now: OffsetDateTime,
) -> Result<Option<SessionEntry>> {
    let d: SessionDoc = serde_json::from_str(doc).map_err(internal)?;
    if d.expires <= now {
        return Ok(None);
    }
    let secret = unwrap_secret(root, id, &d.secret)?;
    Ok(Some(SessionEntry {
        account: account.to_owned(),
        role: d.role,
        session: d.session,
        expires: d.expires,
        secret,
        token_sha256: d.token_sha256,
    }))
}

/// RoleSessionName: 2-64 of `[\w+=,.@-]`.
fn check_session_name(name: &str) -> Result<()> {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )))
    }
}

impl Directory {
    pub async fn create_role(
        &self,
        account: &str,
        name: &str,
        path: Option<&str>,
        trust: &str,
        description: Option<&str>,
        max_session_secs: Option<i64>,
    ) -> Result<RoleInfo> {
        check_name("roleName", name)?;
        let path = path.unwrap_or("/");
        if !path.starts_with('/') || !path.ends_with('/') || path.len() > 512 {
            return Err(Error::Invalid(
                "The specified value for path is invalid.".into(),
            ));
        }
        let max = max_session_secs.unwrap_or(3600);
        if !(3600..=43_200).contains(&max) {
            return Err(Error::Invalid(format!(
                "1 validation error detected: Value '{max}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200"
            )));
        }
        let _w = self.writing.lock().await;
        if self
            .read()
            .roles
            .keys()
            .any(|(a, n)| a == account && n.eq_ignore_ascii_case(name))
        {
            return Err(Error::AlreadyExists(format!(
                "Role with name {name} already exists."
            )));
        }
        let doc = RoleDoc {
            role_id: format!("AROA{}", random_string(UPPER_DIGITS, 17)?),
            path: path.to_owned(),
            created: OffsetDateTime::now_utc(),
            trust: trust.to_owned(),
            description: description.map(str::to_owned),
            max_session_secs: max,
            policies: BTreeMap::new(),
            attached: BTreeSet::new(),
        };
        self.store
            .iam_create(&record(account, KIND_ROLE, name, &doc)?)
            .await
            .map_err(internal)?;
        let info = role_info(account, name, &doc);
        self.write()
            .roles
            .insert((account.to_owned(), name.to_owned()), doc);
        Ok(info)
    }

    pub(super) fn role_doc(&self, account: &str, name: &str) -> Result<RoleDoc> {
        self.read()
            .roles
            .get(&(account.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| no_such_role(name))
    }

    pub(super) async fn save_role(&self, account: &str, name: &str, r: RoleDoc) -> Result<()> {
        self.store
            .iam_update(&record(account, KIND_ROLE, name, &r)?)
            .await
            .map_err(internal)?;
        self.write()
            .roles
            .insert((account.to_owned(), name.to_owned()), r);
        Ok(())
    }

    pub fn get_role(&self, account: &str, name: &str) -> Result<RoleInfo> {
        Ok(role_info(account, name, &self.role_doc(account, name)?))
    }

    /// The role an ARN names, in any account (AssumeRole may cross accounts).
    pub fn role_by_arn(&self, arn: &str) -> Option<RoleInfo> {
        let rest = arn.strip_prefix("arn:aws:iam::")?;
        let (account, res) = rest.split_once(':')?;
        let name = res.strip_prefix("role/")?.rsplit('/').next()?;
        let info = self.get_role(account, name).ok()?;
        (info.arn == arn).then_some(info)
    }

    pub fn list_roles(&self, account: &str) -> Vec<RoleInfo> {
        self.read()
            .roles
            .iter()
            .filter(|((a, _), _)| a == account)
            .map(|((a, n), r)| role_info(a, n, r))
            .collect()
    }

    pub async fn update_trust_policy(&self, account: &str, name: &str, trust: &str) -> Result<()> {
        let _w = self.writing.lock().await;
        let mut r = self.role_doc(account, name)?;
        r.trust = trust.to_owned();
        self.save_role(account, name, r).await
    }

    /// As on AWS, a role with policies cannot be deleted (`DeleteConflict`). Its live
    /// sessions end with it.
    pub async fn delete_role(&self, account: &str, name: &str) -> Result<()> {
        let _w = self.writing.lock().await;
        let r = self.role_doc(account, name)?;
        if !r.policies.is_empty() || !r.attached.is_empty() {
            return Err(Error::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        let mut doomed = vec![(account.to_owned(), KIND_ROLE.to_owned(), name.to_owned())];
        doomed.extend(
            self.read()
                .sessions
                .iter()
                .filter(|(_, s)| s.account == account && s.role == name)
                .map(|(id, _)| (account.to_owned(), KIND_SESSION.to_owned(), id.clone())),
        );
        self.store.iam_delete(&doomed).await.map_err(internal)?;
        let mut st = self.write();
        st.roles.remove(&(account.to_owned(), name.to_owned()));
        let gone: Vec<String> = st
            .sessions
            .iter()
            .filter(|(_, s)| s.account == account && s.role == name)
            .map(|(k, _)| k.clone())
            .collect();
        st.forgotten.extend(gone);
        st.sessions
            .retain(|_, s| !(s.account == account && s.role == name));
        Ok(())
    }

    /// Issues temporary credentials for a role (the caller has checked the trust policy).
    /// `duration_secs` defaults to one hour and may not exceed the role's maximum.
    pub async fn assume_role(
        &self,
        role: &RoleInfo,
        session: &str,
        duration_secs: Option<i64>,
    ) -> Result<IssuedSession> {
        check_session_name(session)?;
        let duration = duration_secs.unwrap_or(3600);
        if duration < 900 || duration > role.max_session_secs {
            return Err(Error::Invalid(format!(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role, or is below 900: {duration}"
            )));
        }
        let now = OffsetDateTime::now_utc();
        let expires = (now + Duration::seconds(duration))
            .replace_millisecond(0)
            .unwrap_or(now + Duration::seconds(duration));
        let id = format!("ASIA{}", random_string(UPPER_DIGITS, 16)?);
        let secret = random_string(SECRET_ALPHABET, 40)?;
        let token = random_string(SECRET_ALPHABET, 192)?;
        let token_sha256 = hex(&coffer_crypto::sha256(token.as_bytes()));
        let doc = SessionDoc {
            role: role.name.clone(),
            session: session.to_owned(),
            expires,
            secret: wrap_secret(self.root.as_ref(), &id, &secret)?,
            token_sha256: token_sha256.clone(),
        };
        let _w = self.writing.lock().await;
        self.purge_expired(now).await?;
        self.store
            .iam_create(&record(&role.account_id, KIND_SESSION, &id, &doc)?)
            .await
            .map_err(internal)?;
        let secret = SecretKey::new(secret);
        self.write().sessions.insert(
            id.clone(),
            SessionEntry {
                account: role.account_id.clone(),
                role: role.name.clone(),
                session: session.to_owned(),
                expires,
                secret: secret.clone(),
                token_sha256,
            },
        );
        Ok(IssuedSession {
            access_key_id: id,
            secret,
            token: SecretKey::new(token),
            expires,
            assumed_role_id: format!("{}:{session}", role.role_id),
            arn: format!(
                "arn:aws:sts::{}:assumed-role/{}/{session}",
                role.account_id, role.name
            ),
        })
    }

    /// Forgets expired sessions. Call under `writing`.
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<()> {
        let expired: Vec<(String, String, String)> = self
            .read()
            .sessions
            .iter()
            .filter(|(_, s)| s.expires <= now)
            .map(|(id, s)| (s.account.clone(), KIND_SESSION.to_owned(), id.clone()))
            .collect();
        if expired.is_empty() {
            return Ok(());
        }
        self.store.iam_delete(&expired).await.map_err(internal)?;
        let mut st = self.write();
        for (_, _, id) in &expired {
            st.sessions.remove(id);
            st.forgotten.insert(id.clone());
        }
        Ok(())
    }
}

pub(super) fn role_id(r: &RoleDoc) -> &str {
    &r.role_id
}

/// The role's permission policies: inline, then attached.
pub(super) fn role_policies(st: &State, account: &str, role: &str) -> Vec<String> {
    let Some(r) = st.roles.get(&(account.to_owned(), role.to_owned())) else {
        return Vec::new();
    };
    let mut out: Vec<String> = r.policies.values().cloned().collect();
    out.extend(super::managed::documents(st, account, &r.attached));
    out
}
