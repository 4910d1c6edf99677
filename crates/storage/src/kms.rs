//! The KMS store: keys, their versions of key material (always wrapped under the root
//! key before they get here), aliases, and a few named settings.
//!
//! Key and material descriptions are JSON documents owned by `coffer-kms` (their schema is
//! in `docs/formats.md`); the store keeps them atomically and lists them in order, and
//! never sees unwrapped key material.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::{ListPage, Result};

/// One KMS key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsKeyRecord {
    /// A UUID.
    pub key_id: String,
    pub account_id: String,
    pub created: OffsetDateTime,
    /// Everything else about the key (state, settings, policy, tags), as JSON.
    pub doc: String,
}

/// One version of a key's material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsMaterialRecord {
    pub key_id: String,
    /// 0 for the material the key was created with, then one more per rotation.
    pub version: u32,
    /// The material, wrapped under the root key.
    pub wrapped: Vec<u8>,
    /// Material id, creation time, rotation type, as JSON.
    pub doc: String,
}

/// An alias (`alias/...`) of one account, pointing at one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsAliasRecord {
    pub account_id: String,
    pub name: String,
    pub key_id: String,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
}

#[async_trait]
pub trait KmsStore: Send + Sync + 'static {
    /// Stores a new key with its first material, atomically. A key whose material is to
    /// be imported (origin EXTERNAL) starts with none.
    async fn kms_create_key(
        &self,
        key: &KmsKeyRecord,
        material: Option<&KmsMaterialRecord>,
    ) -> Result<()>;

    async fn kms_get_key(&self, key_id: &str) -> Result<Option<KmsKeyRecord>>;

    /// Replaces a key's document; `NotFound` if the key is gone.
    async fn kms_update_key(&self, key: &KmsKeyRecord) -> Result<()>;

    /// Replaces a key's document if it is still `expected` (the text read before the
    /// change was made): `PreconditionFailed`, changing nothing, if another writer (a
    /// node sharing the store) replaced it meanwhile; `NotFound` if the key is gone.
    async fn kms_update_key_if(&self, key: &KmsKeyRecord, expected: &str) -> Result<()>;

    /// Adds a material version and replaces the key's document in one transaction
    /// (rotation). `AlreadyExists` if that version exists.
    async fn kms_add_material(
        &self,
        key: &KmsKeyRecord,
        material: &KmsMaterialRecord,
    ) -> Result<()>;

    /// Deletes every material version of a key and replaces its document, in one
    /// transaction (imported material deleted or expired). `NotFound` if the key is gone.
    async fn kms_remove_materials(&self, key: &KmsKeyRecord) -> Result<()>;

    /// Every material version of a key, oldest first.
    async fn kms_materials(&self, key_id: &str) -> Result<Vec<KmsMaterialRecord>>;

    /// An account's keys ordered by key id, after `after`.
    async fn kms_list_keys(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage<KmsKeyRecord>>;

    /// Every key of every account (for the background tasks and the start-up load).
    async fn kms_all_keys(&self) -> Result<Vec<KmsKeyRecord>>;

    /// Deletes a key, all its material and every alias pointing at it, in one transaction.
    async fn kms_delete_key(&self, key_id: &str) -> Result<()>;

    /// `AlreadyExists` if the account already has this alias.
    async fn kms_create_alias(&self, alias: &KmsAliasRecord) -> Result<()>;

    /// Points an existing alias at another key; `NotFound` if it does not exist.
    async fn kms_update_alias(&self, alias: &KmsAliasRecord) -> Result<()>;

    /// `NotFound` if it does not exist.
    async fn kms_delete_alias(&self, account_id: &str, name: &str) -> Result<()>;

    async fn kms_get_alias(&self, account_id: &str, name: &str) -> Result<Option<KmsAliasRecord>>;

    /// An account's aliases ordered by name, optionally only those of one key.
    async fn kms_list_aliases(
        &self,
        account_id: &str,
        key_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage<KmsAliasRecord>>;

    async fn get_setting(&self, name: &str) -> Result<Option<Vec<u8>>>;

    async fn put_setting(&self, name: &str, value: &[u8]) -> Result<()>;

    /// Replaces the wrapped bytes of existing material versions and sets settings, in one
    /// transaction (root-key rotation). Versions that no longer exist are skipped.
    async fn kms_rewrap(
        &self,
        materials: &[KmsMaterialRecord],
        settings: &[(String, Vec<u8>)],
    ) -> Result<()>;
}
