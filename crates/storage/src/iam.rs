//! The IAM store: accounts (tenants), users, groups, roles, managed policies and access
//! keys, each one JSON document owned by `coffer-iam` (schemas in `docs/formats.md`),
//! addressed by (account, kind, name). Secret access keys arrive already wrapped under
//! the root key; the store never sees one in the clear.
//!
//! IAM state is small and read on every request, so its owner loads it whole at start
//! ([`IamStore::iam_all`]) and writes through: every change is durable before the call
//! that made it answers.

use async_trait::async_trait;

use crate::Result;

/// One IAM entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamRecord {
    /// The 12-digit account the entity belongs to (an account's own record uses its id).
    pub account_id: String,
    /// `account`, `user`, `group`, `role`, `policy`, `access-key`, ...
    pub kind: String,
    /// Unique within (account, kind): a user name, an access key id, a policy name.
    pub name: String,
    pub doc: String,
}

#[async_trait]
pub trait IamStore: Send + Sync + 'static {
    /// Creates an entity; `AlreadyExists` if (account, kind, name) exists.
    async fn iam_create(&self, record: &IamRecord) -> Result<()>;

    /// Replaces an entity's document; `NotFound` if it does not exist.
    async fn iam_update(&self, record: &IamRecord) -> Result<()>;

    /// Deletes entities in one transaction; `NotFound` (and nothing deleted) if the first
    /// one does not exist. The others are deleted if present (dependents such as a user's
    /// access keys).
    async fn iam_delete(&self, keys: &[(String, String, String)]) -> Result<()>;

    /// Every entity of every account, ordered by (account, kind, name).
    async fn iam_all(&self) -> Result<Vec<IamRecord>>;
}
