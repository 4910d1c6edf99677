//! Access keys of users and account roots: at most two per user, secrets wrapped under
//! the root key at rest ([`super::wrap_secret`]) and shown once, at creation.

use time::OffsetDateTime;

use super::{
    AccessKeyInfo, Directory, Error, KIND_KEY, KeyDoc, KeyEntry, MAX_KEYS_PER_USER, Result,
    SECRET_ALPHABET, UPPER_DIGITS, internal, random_string, record, wrap_secret,
};
use crate::SecretKey;

impl Directory {
    /// Creates an access key for `user` (or the account root with `None`); returns its
    /// description and the secret, which is shown this once.
    pub async fn create_access_key(
        &self,
        account: &str,
        user: Option<&str>,
    ) -> Result<(AccessKeyInfo, SecretKey)> {
        let _w = self.writing.lock().await;
        if let Some(u) = user {
            self.user_doc(account, u)?;
            let n = self
                .read()
                .keys
                .values()
                .filter(|k| k.account == account && k.user.as_deref() == Some(u))
                .count();
            if n >= MAX_KEYS_PER_USER {
                return Err(Error::LimitExceeded(
                    "Cannot exceed quota for AccessKeysPerUser: 2".into(),
                ));
            }
        }
        let id = format!("AKIA{}", random_string(UPPER_DIGITS, 16)?);
        let secret = random_string(SECRET_ALPHABET, 40)?;
        let wrapped = wrap_secret(self.root.as_ref(), &id, &secret)?;
        let created = OffsetDateTime::now_utc();
        let doc = KeyDoc {
            user: user.map(str::to_owned),
            status: "Active".into(),
            created,
            secret: wrapped.clone(),
        };
        self.store
            .iam_create(&record(account, KIND_KEY, &id, &doc)?)
            .await
            .map_err(internal)?;
        let secret = SecretKey::new(secret);
        self.write().keys.insert(
            id.clone(),
            KeyEntry {
                account: account.to_owned(),
                user: user.map(str::to_owned),
                status: "Active".into(),
                created,
                secret: secret.clone(),
                wrapped,
            },
        );
        Ok((
            AccessKeyInfo {
                access_key_id: id,
                user_name: user.map(str::to_owned),
                status: "Active".into(),
                created,
            },
            secret,
        ))
    }

    pub fn list_access_keys(
        &self,
        account: &str,
        user: Option<&str>,
    ) -> Result<Vec<AccessKeyInfo>> {
        if let Some(u) = user {
            self.user_doc(account, u)?;
        }
        let mut out: Vec<AccessKeyInfo> = self
            .read()
            .keys
            .iter()
            .filter(|(_, k)| k.account == account && k.user.as_deref() == user)
            .map(|(id, k)| AccessKeyInfo {
                access_key_id: id.clone(),
                user_name: k.user.clone(),
                status: k.status.clone(),
                created: k.created,
            })
            .collect();
        out.sort_by(|a, b| a.access_key_id.cmp(&b.access_key_id));
        Ok(out)
    }

    fn own_key(&self, account: &str, user: Option<&str>, id: &str) -> Result<()> {
        let st = self.read();
        match st.keys.get(id) {
            Some(k) if k.account == account && k.user.as_deref() == user => Ok(()),
            _ => Err(Error::NoSuchEntity(format!(
                "The Access Key with id {id} cannot be found."
            ))),
        }
    }

    pub async fn update_access_key(
        &self,
        account: &str,
        user: Option<&str>,
        id: &str,
        status: &str,
    ) -> Result<()> {
        if !matches!(status, "Active" | "Inactive") {
            return Err(Error::Invalid(format!(
                "1 validation error detected: Value '{status}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
            )));
        }
        let _w = self.writing.lock().await;
        self.own_key(account, user, id)?;
        let doc = {
            let st = self.read();
            let k = st.keys.get(id).ok_or_else(|| internal("key vanished"))?;
            KeyDoc {
                user: k.user.clone(),
                status: status.to_owned(),
                created: k.created,
                secret: k.wrapped.clone(),
            }
        };
        self.store
            .iam_update(&record(account, KIND_KEY, id, &doc)?)
            .await
            .map_err(internal)?;
        if let Some(k) = self.write().keys.get_mut(id) {
            k.status = status.to_owned();
        }
        Ok(())
    }

    pub async fn delete_access_key(
        &self,
        account: &str,
        user: Option<&str>,
        id: &str,
    ) -> Result<()> {
        let _w = self.writing.lock().await;
        self.own_key(account, user, id)?;
        self.store
            .iam_delete(&[(account.to_owned(), KIND_KEY.into(), id.to_owned())])
            .await
            .map_err(internal)?;
        let mut st = self.write();
        st.keys.remove(id);
        st.forgotten.insert(id.to_owned());
        Ok(())
    }
}
