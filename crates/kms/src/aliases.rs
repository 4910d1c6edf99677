//! Aliases: friendly names (`alias/...`) for keys, per account. `alias/aws/` is reserved
//! for the AWS-managed keys Coffer creates on first use.

use time::OffsetDateTime;

use coffer_storage::KmsAliasRecord;

use crate::keyref::check_alias_name;
use crate::{Alias, Caller, Error, Kms, Op, Page, Result, lock_write};

const RESERVED: &str = "alias/aws/";

impl Kms {
    fn check_user_alias(&self, caller: &Caller, name: &str) -> Result<()> {
        check_alias_name(name)?;
        if name.starts_with(RESERVED) {
            return Err(Error::NotAuthorized(format!(
                "{} is a reserved alias name: alias/aws/ is reserved for AWS managed keys",
                self.alias_arn(&caller.account_id, name)
            )));
        }
        Ok(())
    }

    pub async fn create_alias(
        &self,
        caller: &Caller,
        name: &str,
        target: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.check_user_alias(caller, name)?;
        let key = self
            .resolve(caller, target, false, Op::CreateAlias.action())
            .await?;
        Op::CreateAlias.check(key.doc.state, &self.key_arn(&key.account, &key.id))?;
        if key.doc.manager == crate::KeyManager::Aws {
            return Err(Error::UnsupportedOperation(
                "An alias cannot point to an AWS managed key".into(),
            ));
        }
        let _guard = self.mutate.lock().await;
        let record = KmsAliasRecord {
            account_id: caller.account_id.clone(),
            name: name.to_owned(),
            key_id: key.id.clone(),
            created: now,
            updated: now,
        };
        match self.store.kms_create_alias(&record).await {
            Ok(()) => {}
            Err(coffer_storage::Error::AlreadyExists(_)) => {
                return Err(Error::AlreadyExists(format!(
                    "An alias with the name {} already exists",
                    self.alias_arn(&caller.account_id, name)
                )));
            }
            Err(e) => return Err(e.into()),
        }
        lock_write(&self.aliases)
            .insert((caller.account_id.clone(), name.to_owned()), key.id.clone());
        Ok(())
    }

    pub async fn update_alias(
        &self,
        caller: &Caller,
        name: &str,
        target: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.check_user_alias(caller, name)?;
        let key = self
            .resolve(caller, target, false, Op::UpdateAlias.action())
            .await?;
        Op::UpdateAlias.check(key.doc.state, &self.key_arn(&key.account, &key.id))?;
        let _guard = self.mutate.lock().await;
        let Some(existing) = self.store.kms_get_alias(&caller.account_id, name).await? else {
            return Err(Error::NotFound(format!(
                "Alias {} is not found.",
                self.alias_arn(&caller.account_id, name)
            )));
        };
        if let Some(old) = self.entry(&existing.key_id)
            && old.doc.usage != key.doc.usage
        {
            return Err(Error::Validation(
                "The new target key must have the same key usage as the current target key".into(),
            ));
        }
        let record = KmsAliasRecord {
            key_id: key.id.clone(),
            updated: now,
            ..existing
        };
        self.store.kms_update_alias(&record).await?;
        lock_write(&self.aliases)
            .insert((caller.account_id.clone(), name.to_owned()), key.id.clone());
        Ok(())
    }

    pub async fn delete_alias(&self, caller: &Caller, name: &str) -> Result<()> {
        self.check_user_alias(caller, name)?;
        let _guard = self.mutate.lock().await;
        match self.store.kms_delete_alias(&caller.account_id, name).await {
            Ok(()) => {}
            Err(coffer_storage::Error::NotFound(_)) => {
                return Err(Error::NotFound(format!(
                    "Alias {} is not found.",
                    self.alias_arn(&caller.account_id, name)
                )));
            }
            Err(e) => return Err(e.into()),
        }
        lock_write(&self.aliases).remove(&(caller.account_id.clone(), name.to_owned()));
        Ok(())
    }

    /// ListAliases: by name, optionally only one key's, `limit` (1-100, default 50) after
    /// `marker` (an alias name).
    pub async fn list_aliases(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> Result<Page<Alias>> {
        let limit = match limit {
            None => 50,
            Some(l) if (1..=100).contains(&l) => usize::try_from(l).unwrap_or(50),
            Some(l) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 100"
                )));
            }
        };
        if let Some(m) = marker
            && check_alias_name(m).is_err()
        {
            return Err(Error::InvalidMarker);
        }
        let key = match key_id {
            Some(k) => Some(
                self.resolve(caller, k, false, Op::ListAliases.action())
                    .await?
                    .id
                    .clone(),
            ),
            None => None,
        };
        let page = self
            .store
            .kms_list_aliases(&caller.account_id, key.as_deref(), marker, limit)
            .await?;
        let next = if page.truncated {
            page.items.last().map(|a| a.name.clone())
        } else {
            None
        };
        let aliases = page
            .items
            .into_iter()
            .filter(|a| self.entry(&a.key_id).is_none_or(|e| !e.doc.hidden))
            .map(|a| Alias {
                arn: self.alias_arn(&a.account_id, &a.name),
                name: a.name,
                target_key_id: Some(a.key_id),
                created: Some(a.created),
                updated: Some(a.updated),
            })
            .collect();
        Ok(Page {
            items: aliases,
            next_marker: next,
        })
    }
}
