//! Accounts (tenants): created, listed and deleted by the operator alone.

use time::OffsetDateTime;

use super::{
    AccountDoc, Directory, Error, KIND_ACCOUNT, KIND_KEY, KIND_USER, Result, check_name, hex,
    internal, managed, random_string, record, roles,
};
use crate::{AccessKeyInfo, Account, Principal, SecretKey};

/// An account as `coffer account list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub id: String,
    pub name: String,
    pub canonical_id: String,
    pub created: OffsetDateTime,
}

impl Directory {
    // --- accounts (tenants); the operator alone manages them ---

    /// Whether `p` is the instance operator (the root of the default account).
    pub fn is_operator(&self, p: &Principal) -> bool {
        p.is_root() && p.account.id == self.operator.1.account.id
    }

    /// Creates an account and an access key for its root user; returns both (the secret
    /// is shown this once). Account names are unique, compared case-insensitively.
    pub async fn create_account(
        &self,
        name: &str,
    ) -> Result<(AccountInfo, AccessKeyInfo, SecretKey)> {
        check_name("accountName", name)?;
        let info = {
            let _w = self.writing.lock().await;
            if self
                .read()
                .accounts
                .values()
                .any(|a| a.name.eq_ignore_ascii_case(name))
            {
                return Err(Error::AlreadyExists(format!(
                    "An account named {name} already exists."
                )));
            }
            let id = loop {
                let digits = random_string(b"0123456789", 12)?;
                if !digits.starts_with('0') && !self.read().accounts.contains_key(&digits) {
                    break digits;
                }
            };
            let mut canonical = [0u8; 32];
            coffer_crypto::random(&mut canonical).map_err(internal)?;
            let doc = AccountDoc {
                name: name.to_owned(),
                canonical_id: hex(&canonical),
                created: OffsetDateTime::now_utc(),
            };
            self.store
                .iam_create(&record(&id, KIND_ACCOUNT, &id, &doc)?)
                .await
                .map_err(internal)?;
            let info = AccountInfo {
                id: id.clone(),
                name: doc.name.clone(),
                canonical_id: doc.canonical_id.clone(),
                created: doc.created,
            };
            self.write().accounts.insert(id, doc);
            info
        };
        let (key, secret) = self.create_access_key(&info.id, None).await?;
        Ok((info, key, secret))
    }

    /// Creates the account with this 12-digit id (named by it) unless it exists: how a
    /// development server (`coffer serve --dev`) makes the account a numeric access key id
    /// names, so that users created in it can sign in. Returns the account.
    pub async fn adopt_account(&self, id: &str) -> Result<Account> {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Invalid(format!("{id} is not a 12-digit account id")));
        }
        let _w = self.writing.lock().await;
        if let Some(a) = self.account(id) {
            return Ok(a);
        }
        let mut canonical = [0u8; 32];
        coffer_crypto::random(&mut canonical).map_err(internal)?;
        let doc = AccountDoc {
            name: id.to_owned(),
            canonical_id: hex(&canonical),
            created: OffsetDateTime::now_utc(),
        };
        self.store
            .iam_create(&record(id, KIND_ACCOUNT, id, &doc)?)
            .await
            .map_err(internal)?;
        let account = Account {
            id: id.to_owned(),
            name: doc.name.clone(),
            canonical_id: doc.canonical_id.clone(),
        };
        self.write().accounts.insert(id.to_owned(), doc);
        Ok(account)
    }

    /// Whether this access key id is one the directory holds, whatever its state (an
    /// inactive key, a session): a development server never takes such a key unchecked.
    pub fn knows_key(&self, access_key_id: &str) -> bool {
        access_key_id == self.operator.1.access_key_id || {
            let st = self.read();
            st.keys.contains_key(access_key_id)
                || st.sessions.contains_key(access_key_id)
                || st.forgotten.contains(access_key_id)
        }
    }

    pub fn list_accounts(&self) -> Vec<AccountInfo> {
        self.read()
            .accounts
            .iter()
            .map(|(id, a)| AccountInfo {
                id: id.clone(),
                name: a.name.clone(),
                canonical_id: a.canonical_id.clone(),
                created: a.created,
            })
            .collect()
    }

    /// Deletes an account with its users, access keys and policies. The default account
    /// cannot be deleted; the caller checks that the account owns no buckets.
    pub async fn delete_account(&self, id: &str) -> Result<()> {
        if id == self.operator.1.account.id {
            return Err(Error::DeleteConflict(
                "The operator's own account cannot be deleted.".into(),
            ));
        }
        let _w = self.writing.lock().await;
        let mut doomed = {
            let st = self.read();
            if !st.accounts.contains_key(id) {
                return Err(Error::NoSuchEntity(format!(
                    "The account {id} cannot be found."
                )));
            }
            let mut d: Vec<(String, String, String)> = st
                .users
                .keys()
                .filter(|(a, _)| a == id)
                .map(|(a, n)| (a.clone(), KIND_USER.to_owned(), n.clone()))
                .collect();
            d.extend(
                st.keys
                    .iter()
                    .filter(|(_, k)| k.account == id)
                    .map(|(k, _)| (id.to_owned(), KIND_KEY.to_owned(), k.clone())),
            );
            let named = |kind: &str, names: Vec<&String>| {
                names
                    .into_iter()
                    .map(|n| (id.to_owned(), kind.to_owned(), n.clone()))
                    .collect::<Vec<_>>()
            };
            d.extend(named(
                managed::KIND_POLICY,
                st.policies
                    .keys()
                    .filter(|(a, _)| a == id)
                    .map(|(_, n)| n)
                    .collect(),
            ));
            d.extend(named(
                managed::KIND_GROUP,
                st.groups
                    .keys()
                    .filter(|(a, _)| a == id)
                    .map(|(_, n)| n)
                    .collect(),
            ));
            d.extend(named(
                roles::KIND_ROLE,
                st.roles
                    .keys()
                    .filter(|(a, _)| a == id)
                    .map(|(_, n)| n)
                    .collect(),
            ));
            d.extend(named(
                roles::KIND_SESSION,
                st.sessions
                    .iter()
                    .filter(|(_, s)| s.account == id)
                    .map(|(k, _)| k)
                    .collect(),
            ));
            d
        };
        doomed.push((id.to_owned(), KIND_ACCOUNT.to_owned(), id.to_owned()));
        self.store.iam_delete(&doomed).await.map_err(internal)?;
        let mut st = self.write();
        let gone: Vec<String> = st
            .keys
            .iter()
            .filter(|(_, k)| k.account == id)
            .map(|(k, _)| k.clone())
            .chain(
                st.sessions
                    .iter()
                    .filter(|(_, s)| s.account == id)
                    .map(|(k, _)| k.clone()),
            )
            .collect();
        st.forgotten.extend(gone);
        st.users.retain(|(a, _), _| a != id);
        st.keys.retain(|_, k| k.account != id);
        st.policies.retain(|(a, _), _| a != id);
        st.groups.retain(|(a, _), _| a != id);
        st.roles.retain(|(a, _), _| a != id);
        st.sessions.retain(|_, s| s.account != id);
        st.accounts.remove(id);
        Ok(())
    }
}
