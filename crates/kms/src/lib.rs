//! Coffer's key management service: the domain behind the AWS KMS API, usable from Rust by
//! the rest of Coffer (S3 server-side encryption asks it for data keys through this API,
//! under the same checks as HTTP callers).
//!
//! Main types: [`Kms`] (one per server), [`Caller`] (who asks), [`KeyMetadata`]. Keys have
//! versions of 256-bit material; encryption uses the current version, decryption finds the
//! version named in the ciphertext blob (`ciphertext.rs`), so every earlier ciphertext
//! still decrypts after rotation. Invariants: key material is stored only wrapped under the
//! [`coffer_crypto::RootKey`], with the key id and version bound in as associated data; in
//! memory it lives in [`coffer_crypto::Secret`]s that zeroize; every operation checks the
//! key's state against one table (`states.rs`); time-dependent logic takes `now`, and a
//! "day" is configurable so that deletion windows and rotation periods can elapse in
//! seconds in tests. This crate never sees HTTP.

mod aliases;
pub mod ciphertext;
mod crypto_ops;
mod error;
mod grants;
mod import;
mod keyref;
mod keys;
mod lifecycle;
mod managed;
mod model;
mod policy_tags;
mod states;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use time::{Duration, OffsetDateTime};

use coffer_crypto::{RootKey, Secret};
pub use coffer_policy::{KeyGate, KeyGrant, KeyUse};
use coffer_storage::KmsStore;

pub use crypto_ops::{
    DataKey, DataKeyPair, DataKeyRequest, Decrypted, PublicKey, ReEncrypted, SignRequest,
};
pub use error::{Error, OpenError, Result};
pub use grants::{CreateGrant, Grant};
pub use import::{ImportMaterial, ImportParameters};
pub use keyref::{KeyRef, check_alias_name};
pub use keys::CreateKey;
pub use lifecycle::Tick;
pub use model::{
    Alias, ExpirationModel, KeyManager, KeyMetadata, KeySpec, KeyState, KeyUsage, LastUsage,
    Origin, RotationEntry, RotationStatus, RotationType,
};
pub use states::Op;

use model::{KeyDoc, MaterialDoc};

/// One page of a listing and where the next starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `Some` when the listing was truncated: pass it back as `Marker`.
    pub next_marker: Option<String>,
}

/// Settings of the KMS.
#[derive(Debug, Clone)]
pub struct Config {
    pub region: String,
    /// How long a "day" is for every KMS window (pending deletion, rotation period).
    /// 86,400 s in production; tests shorten it (`COFFER_KMS_DAY_SECONDS`).
    pub day: Duration,
    /// The business clock rotation, deletion and expiry follow (see `coffer_storage::Clock`).
    pub clock: coffer_storage::Clock,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            day: Duration::days(1),
            clock: coffer_storage::Clock::system(),
        }
    }
}

/// Who is calling: the account whose keys are addressed, the request (for
/// GetKeyLastUsage), whether the call comes from inside Coffer for a service of its own
/// (SSE-S3) rather than from a client, and the [`KeyGate`] that authorizes each key use.
#[derive(Clone)]
pub struct Caller {
    pub account_id: String,
    pub request_id: String,
    /// Internal callers may use hidden service keys (the SSE-S3 key), in any account,
    /// without a key-policy check; clients never can.
    pub internal: bool,
    /// Asked for every key the call touches; `None` only for in-process callers that
    /// were authorized already (tests, tools).
    pub gate: Option<Arc<dyn KeyGate>>,
    /// Set when a service calls the KMS for a client's request: each cryptographic call
    /// is recorded there, for the audit trail (`invokedBy`).
    pub trail: Option<Arc<coffer_audit::RequestContext>>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("account_id", &self.account_id)
            .field("request_id", &self.request_id)
            .field("internal", &self.internal)
            .field("gated", &self.gate.is_some())
            .finish()
    }
}

impl Caller {
    /// A client (or a service acting for one), authorized key by key through `gate`.
    pub fn client(
        account_id: impl Into<String>,
        request_id: impl Into<String>,
        gate: Arc<dyn KeyGate>,
    ) -> Self {
        Self {
            account_id: account_id.into(),
            request_id: request_id.into(),
            internal: false,
            gate: Some(gate),
            trail: None,
        }
    }

    /// An in-process caller with no key-policy check (its access was decided elsewhere).
    pub fn trusted(account_id: impl Into<String>, request_id: impl Into<String>) -> Self {
        Self {
            account_id: account_id.into(),
            request_id: request_id.into(),
            internal: false,
            gate: None,
            trail: None,
        }
    }

    /// Records a cryptographic call made on behalf of a service's client.
    pub(crate) fn note<T>(
        &self,
        operation: &'static str,
        key: &str,
        context: &BTreeMap<String, String>,
        result: &Result<T>,
    ) {
        // Service-internal keys (SSE-S3) are not the client's KMS calls.
        if self.internal {
            return;
        }
        if let Some(t) = &self.trail {
            t.kms_use(coffer_audit::KmsUse {
                operation,
                key_arn: key.to_owned(),
                encryption_context: context.clone(),
                error_code: result.as_ref().err().map(|e| e.code().to_owned()),
                time: OffsetDateTime::now_utc(),
            });
        }
    }
}

/// The operations AWS KMS lets a caller perform on another account's key (named by its
/// ARN), when both the key policy and the caller's IAM policies allow.
pub(crate) const CROSS_ACCOUNT: &[&str] = &[
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
    "kms:GetKeyRotationStatus",
    "kms:CreateGrant",
    "kms:ListGrants",
    "kms:RetireGrant",
    "kms:RevokeGrant",
];

/// One version of a key's material, unwrapped.
struct Material {
    version: u32,
    doc: MaterialDoc,
    secret: Secret,
}

/// A key as the service holds it in memory.
struct KeyEntry {
    id: String,
    account: String,
    created: OffsetDateTime,
    doc: KeyDoc,
    /// Shared between successive versions of the entry, so changing a key's settings
    /// never copies its material.
    materials: Arc<Vec<Material>>,
    /// The document's text as stored: a change is stored only if the store still holds
    /// it, so that a node sharing the store never overwrites another node's change with
    /// a change made to an older document.
    stored: Option<String>,
}

impl KeyEntry {
    fn material(&self, version: u32) -> Option<&Material> {
        self.materials.iter().find(|m| m.version == version)
    }

    fn current(&self) -> Result<&Material> {
        self.material(self.doc.current_version)
            .ok_or_else(|| Error::Internal(format!("key {} lost its current material", self.id)))
    }

    /// The stored record of this key with document `doc`.
    fn record(&self, doc: &KeyDoc) -> Result<coffer_storage::KmsKeyRecord> {
        Ok(coffer_storage::KmsKeyRecord {
            key_id: self.id.clone(),
            account_id: self.account.clone(),
            created: self.created,
            doc: keys::to_json(doc)?,
        })
    }

    /// The next version of this entry: a new document and material list.
    fn replaced(&self, doc: KeyDoc, materials: Arc<Vec<Material>>) -> KeyEntry {
        KeyEntry {
            id: self.id.clone(),
            account: self.account.clone(),
            created: self.created,
            stored: keys::to_json(&doc).ok(),
            doc,
            materials,
        }
    }
}

/// The key management service.
pub struct Kms {
    store: Arc<dyn KmsStore>,
    root: Arc<dyn RootKey>,
    config: Config,
    /// Every key, by id. Crypto operations read only this; it is replaced entry by entry
    /// after each committed change.
    keys: RwLock<HashMap<String, Arc<KeyEntry>>>,
    /// Alias → key id, for aliases already looked up. Changed only under `mutate`.
    aliases: RwLock<HashMap<(String, String), String>>,
    /// Serializes changes, so each reads the latest committed state.
    mutate: tokio::sync::Mutex<()>,
    /// Serializes the first-use creation of managed keys.
    managed: tokio::sync::Mutex<()>,
    /// Last uses not yet written to the store (flushed by [`Kms::tick`]).
    usage: Mutex<HashMap<String, LastUsage>>,
    /// Counts what another node's changes made this node forget (keys reloaded,
    /// aliases dropped): a value read from the store while it moved may already be
    /// stale, and is then not cached.
    forgotten: std::sync::atomic::AtomicU64,
}

const ROOT_CHECK: &str = "kms.root-check";
const ROOT_FINGERPRINT: &str = "kms.root-fingerprint";
const ROOT_CHECK_AAD: &[u8] = b"coffer:root-key-check:v1";

fn material_aad(key_id: &str, version: u32) -> Vec<u8> {
    format!("coffer:kms-material:v1:{key_id}:{version}").into_bytes()
}

/// A key's entry as stored: its document and every material version, unwrapped.
async fn load_entry(
    store: &dyn KmsStore,
    root: &dyn RootKey,
    record: coffer_storage::KmsKeyRecord,
) -> std::result::Result<KeyEntry, OpenError> {
    let doc: KeyDoc = serde_json::from_str(&record.doc)
        .map_err(|e| OpenError::Corrupt(format!("key {}: {e}", record.key_id)))?;
    let mut materials = Vec::new();
    for m in store.kms_materials(&record.key_id).await? {
        let secret = root
            .unwrap(&material_aad(&record.key_id, m.version), &m.wrapped)
            .map_err(|_| OpenError::WrongRootKey {
                expected: "the one that wrapped the stored keys".into(),
                given: root.fingerprint(),
            })?;
        let mdoc: MaterialDoc = serde_json::from_str(&m.doc).map_err(|e| {
            OpenError::Corrupt(format!("material {} of {}: {e}", m.version, record.key_id))
        })?;
        materials.push(Material {
            version: m.version,
            doc: mdoc,
            secret,
        });
    }
    Ok(KeyEntry {
        id: record.key_id,
        account: record.account_id,
        created: record.created,
        doc,
        materials: Arc::new(materials),
        stored: Some(record.doc),
    })
}

/// A new private key, generated on a blocking thread: an RSA-4096 key takes long enough
/// to stall the async workers that serve every other request.
async fn generate_key_pair(spec: coffer_crypto::asym::Spec) -> Result<Secret> {
    tokio::task::spawn_blocking(move || coffer_crypto::asym::generate(spec))
        .await
        .map_err(|e| Error::Internal(format!("key generation task failed: {e}")))?
        .map_err(|e| Error::Internal(format!("generating a key pair: {e}")))
}

fn lock_read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // Writers replace whole values; a panic cannot leave one half-written.
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn lock_write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Kms {
    /// Opens the KMS: checks that `root` is the root key the store was created with (else
    /// [`OpenError::WrongRootKey`], changing nothing), then loads and unwraps every key.
    pub async fn open(
        store: Arc<dyn KmsStore>,
        root: Arc<dyn RootKey>,
        config: Config,
    ) -> std::result::Result<Self, OpenError> {
        let given = root.fingerprint();
        match store.get_setting(ROOT_CHECK).await? {
            Some(check) => {
                if root.unwrap(ROOT_CHECK_AAD, &check).is_err() {
                    let expected = store
                        .get_setting(ROOT_FINGERPRINT)
                        .await?
                        .map(|f| String::from_utf8_lossy(&f).into_owned())
                        .unwrap_or_else(|| "unknown".into());
                    return Err(OpenError::WrongRootKey { expected, given });
                }
            }
            None => {
                let check = root.wrap(ROOT_CHECK_AAD, &coffer_crypto::random_secret(32)?)?;
                store
                    .put_setting(ROOT_FINGERPRINT, given.as_bytes())
                    .await?;
                store.put_setting(ROOT_CHECK, &check).await?;
            }
        }
        let mut keys = HashMap::new();
        for record in store.kms_all_keys().await? {
            let entry = load_entry(store.as_ref(), root.as_ref(), record).await?;
            keys.insert(entry.id.clone(), Arc::new(entry));
        }
        Ok(Self {
            store,
            root,
            config,
            keys: RwLock::new(keys),
            aliases: RwLock::new(HashMap::new()),
            mutate: tokio::sync::Mutex::new(()),
            managed: tokio::sync::Mutex::new(()),
            usage: Mutex::new(HashMap::new()),
            forgotten: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Reloads one key from the store after another node changed it (a change notice): its
    /// state, settings and materials as committed, or its absence once deleted.
    pub async fn refresh_key(&self, key_id: &str) -> Result<()> {
        // Ordered with this node's own changes: the store's state is the newest.
        let _one = self.mutate.lock().await;
        self.reload_entry(key_id).await
    }

    /// [`Kms::refresh_key`] for a caller that holds `mutate`.
    async fn reload_entry(&self, key_id: &str) -> Result<()> {
        self.forget();
        match self.store.kms_get_key(key_id).await? {
            Some(record) => {
                let entry = load_entry(self.store.as_ref(), self.root.as_ref(), record)
                    .await
                    .map_err(|e| Error::Internal(format!("reloading key {key_id}: {e}")))?;
                lock_write(&self.keys).insert(entry.id.clone(), Arc::new(entry));
            }
            None => {
                lock_write(&self.keys).remove(key_id);
                lock_write(&self.aliases).retain(|_, target| target != key_id);
            }
        }
        Ok(())
    }

    /// Forgets an alias another node changed; the next use looks it up again.
    pub async fn forget_alias(&self, account: &str, name: &str) {
        let _one = self.mutate.lock().await;
        self.forget();
        lock_write(&self.aliases).remove(&(account.to_owned(), name.to_owned()));
    }

    /// Reloads every key and forgets every alias: after this node could not hear of
    /// other nodes' changes for a while.
    pub async fn refresh_all(&self) -> Result<()> {
        let _one = self.mutate.lock().await;
        self.forget();
        let mut keys = HashMap::new();
        for record in self.store.kms_all_keys().await? {
            let entry = load_entry(self.store.as_ref(), self.root.as_ref(), record)
                .await
                .map_err(|e| Error::Internal(format!("reloading keys: {e}")))?;
            keys.insert(entry.id.clone(), Arc::new(entry));
        }
        *lock_write(&self.keys) = keys;
        lock_write(&self.aliases).clear();
        Ok(())
    }

    /// Root-key rotation: wraps every material version again under the root key's
    /// current key (the caller has just rotated a [`coffer_crypto::RootKeyRing`]) and
    /// renews the root-key check, in one store transaction. Material is in memory, so
    /// nothing is unwrapped and cryptographic calls go on meanwhile. Returns how many
    /// material versions were re-wrapped.
    pub async fn rewrap_under_root(&self) -> Result<usize> {
        let _guard = self.mutate.lock().await;
        let entries: Vec<Arc<KeyEntry>> = lock_read(&self.keys).values().cloned().collect();
        let mut rows = Vec::new();
        for e in &entries {
            for m in e.materials.iter() {
                rows.push(coffer_storage::KmsMaterialRecord {
                    key_id: e.id.clone(),
                    version: m.version,
                    wrapped: self.root.wrap(&material_aad(&e.id, m.version), &m.secret)?,
                    doc: String::new(),
                });
            }
        }
        let check = self
            .root
            .wrap(ROOT_CHECK_AAD, &coffer_crypto::random_secret(32)?)?;
        let settings = vec![
            (ROOT_CHECK.to_owned(), check),
            (
                ROOT_FINGERPRINT.to_owned(),
                self.root.fingerprint().into_bytes(),
            ),
        ];
        self.store.kms_rewrap(&rows, &settings).await?;
        Ok(rows.len())
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Now on the business clock: what callers pass as `now` to the key operations.
    pub fn now(&self) -> OffsetDateTime {
        self.config.clock.now()
    }

    fn days(&self, n: u32) -> Duration {
        self.config.day * i32::try_from(n).unwrap_or(i32::MAX)
    }

    pub fn key_arn(&self, account: &str, key_id: &str) -> String {
        format!("arn:aws:kms:{}:{account}:key/{key_id}", self.config.region)
    }

    pub fn alias_arn(&self, account: &str, alias: &str) -> String {
        format!("arn:aws:kms:{}:{account}:{alias}", self.config.region)
    }

    fn entry(&self, key_id: &str) -> Option<Arc<KeyEntry>> {
        lock_read(&self.keys).get(key_id).cloned()
    }

    /// The key's entry, else the store's: with a store other nodes write, a key created
    /// elsewhere may be named before its change notice arrived. (A miss costs a store
    /// read; with the embedded store it finds nothing.)
    async fn entry_or_stored(&self, key_id: &str) -> Result<Option<Arc<KeyEntry>>> {
        if let Some(e) = self.entry(key_id) {
            return Ok(Some(e));
        }
        let before = self.forgotten();
        let Some(record) = self.store.kms_get_key(key_id).await? else {
            return Ok(None);
        };
        let entry = load_entry(self.store.as_ref(), self.root.as_ref(), record)
            .await
            .map_err(|e| Error::Internal(format!("loading key {key_id}: {e}")))?;
        let mut keys = lock_write(&self.keys);
        if self.forgotten() != before {
            // A notice arrived during the read: use what was read for this call only.
            return Ok(Some(Arc::new(entry)));
        }
        // A local change that raced this read wins: its entry is the newer.
        let e = keys
            .entry(entry.id.clone())
            .or_insert_with(|| Arc::new(entry))
            .clone();
        Ok(Some(e))
    }

    /// Finds the key a `KeyId` names and checks that the caller may perform `action` on it
    /// (see [`Kms::authorize`]). A key of another account is found only by its ARN and only
    /// for the [`CROSS_ACCOUNT`] actions. `allow_alias` is false for the operations AWS
    /// documents as taking only a key id or key ARN.
    async fn resolve(
        &self,
        caller: &Caller,
        key_id: &str,
        allow_alias: bool,
        action: &'static str,
    ) -> Result<Arc<KeyEntry>> {
        self.resolve_with(caller, key_id, allow_alias, action, None)
            .await
    }

    /// [`Kms::resolve`] for a cryptographic request with an encryption context.
    async fn resolve_with(
        &self,
        caller: &Caller,
        key_id: &str,
        allow_alias: bool,
        action: &'static str,
        context: Option<&BTreeMap<String, String>>,
    ) -> Result<Arc<KeyEntry>> {
        let not_found = || {
            Error::NotFound(format!(
                "Key '{}' does not exist",
                if key_id.starts_with("arn:") {
                    key_id.to_owned()
                } else if key_id.starts_with("alias/") {
                    self.alias_arn(&caller.account_id, key_id)
                } else {
                    self.key_arn(&caller.account_id, key_id)
                }
            ))
        };
        let visible = |e: &KeyEntry| !e.doc.hidden || caller.internal;
        // The account whose key is named: the ARN's, else the caller's. Another account's
        // keys exist for this call only if the action may cross accounts.
        let account_of = |named: &Option<String>| -> Option<String> {
            match named {
                Some(a) if *a != caller.account_id => {
                    (caller.internal || CROSS_ACCOUNT.contains(&action)).then(|| a.clone())
                }
                Some(a) => Some(a.clone()),
                None => Some(caller.account_id.clone()),
            }
        };
        let (e, alias) = match KeyRef::parse(key_id, &self.config.region)? {
            KeyRef::Key { id, account } => {
                let account = account_of(&account).ok_or_else(not_found)?;
                match self.entry_or_stored(&id).await? {
                    Some(e) if e.account == account && visible(&e) => (e, None),
                    _ => return Err(not_found()),
                }
            }
            KeyRef::Alias { name, account } => {
                if !allow_alias {
                    return Err(Error::NotFound(format!("Invalid keyId {key_id}")));
                }
                let Some(account) = account_of(&account) else {
                    return Err(Error::NotFound(format!("Alias {key_id} is not found.")));
                };
                let target = self.alias_target(&account, &name).await?.ok_or_else(|| {
                    Error::NotFound(format!(
                        "Alias {} is not found.",
                        self.alias_arn(&account, &name)
                    ))
                })?;
                match self.entry_or_stored(&target).await? {
                    Some(e) if visible(&e) => (e, Some(name)),
                    _ => return Err(not_found()),
                }
            }
        };
        self.authorize(caller, &e, action, context, alias.as_deref())?;
        Ok(e)
    }

    /// Asks the caller's [`KeyGate`] whether it may perform `action` on the key. Internal
    /// callers (SSE-S3's service key) and gateless in-process callers pass.
    fn authorize(
        &self,
        caller: &Caller,
        e: &KeyEntry,
        action: &'static str,
        context: Option<&BTreeMap<String, String>>,
        alias: Option<&str>,
    ) -> Result<()> {
        if caller.internal {
            return Ok(());
        }
        let Some(gate) = &caller.gate else {
            return Ok(());
        };
        let grants: Vec<KeyGrant<'_>> = e
            .doc
            .grants
            .iter()
            .map(|g| KeyGrant {
                grantee: &g.grantee,
                operations: &g.operations,
                context_equals: g.context_equals.as_ref(),
                context_subset: g.context_subset.as_ref(),
            })
            .collect();
        gate.check(&KeyUse {
            action,
            key_arn: &self.key_arn(&e.account, &e.id),
            key_policy: &e.doc.policy,
            encryption_context: context,
            request_alias: alias,
            grants: &grants,
        })
        .map_err(Error::AccessDenied)
    }

    /// Resolves a key for a use decided outside the KMS's own operations (S3 reusing a
    /// cached bucket key): authorizes `action` with `context` and checks the key's state
    /// for `op`.
    pub async fn authorize_use(
        &self,
        caller: &Caller,
        key_id: &str,
        action: &'static str,
        op: Op,
        context: &BTreeMap<String, String>,
    ) -> Result<KeyMetadata> {
        let e = self
            .resolve_with(caller, key_id, true, action, Some(context))
            .await?;
        op.check(e.doc.state, &self.key_arn(&e.account, &e.id))?;
        Ok(self.metadata(&e))
    }

    /// The key an alias points at, through the alias cache.
    async fn alias_target(&self, account: &str, name: &str) -> Result<Option<String>> {
        let k = (account.to_owned(), name.to_owned());
        if let Some(id) = lock_read(&self.aliases).get(&k) {
            return Ok(Some(id.clone()));
        }
        let before = self.forgotten();
        let found = self.store.kms_get_alias(account, name).await?;
        Ok(found.map(|a| {
            let mut aliases = lock_write(&self.aliases);
            if self.forgotten() == before {
                aliases.insert(k, a.key_id.clone());
            }
            a.key_id
        }))
    }

    fn forgotten(&self) -> u64 {
        self.forgotten.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Notes that another node's change made this node drop or reload cached state.
    fn forget(&self) {
        self.forgotten
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn metadata(&self, e: &KeyEntry) -> KeyMetadata {
        KeyMetadata {
            account_id: e.account.clone(),
            key_id: e.id.clone(),
            arn: self.key_arn(&e.account, &e.id),
            created: e.created,
            enabled: e.doc.state == KeyState::Enabled,
            description: e.doc.description.clone(),
            usage: e.doc.usage,
            state: e.doc.state,
            deletion_date: e.doc.deletion_date_ms.map(model::from_ms),
            pending_window_days: e.doc.pending_window_days,
            origin: e.doc.origin,
            manager: e.doc.manager,
            spec: e.doc.spec,
            current_material_id: e
                .material(e.doc.current_version)
                .map(|m| m.doc.material_id.clone()),
            expiration_model: e.doc.import.as_ref().and_then(|i| i.expiration),
            valid_to: e
                .doc
                .import
                .as_ref()
                .and_then(|i| i.valid_to_ms)
                .map(model::from_ms),
        }
    }

    /// Stores a changed key document and swaps the cached entry. Call under `mutate`.
    /// If another node changed the key since this node read it, nothing is stored: the
    /// entry is reloaded and the call fails with a retryable internal error (SDKs retry
    /// it), so that no change is made to a stale document.
    async fn commit_doc(&self, e: &KeyEntry, doc: KeyDoc) -> Result<Arc<KeyEntry>> {
        let record = e.record(&doc)?;
        let stored = match &e.stored {
            Some(expected) => self.store.kms_update_key_if(&record, expected).await,
            None => self.store.kms_update_key(&record).await,
        };
        if let Err(coffer_storage::Error::PreconditionFailed) = stored {
            self.reload_entry(&e.id).await?;
            return Err(Error::Internal(format!(
                "key {} was changed concurrently by another node; retry",
                e.id
            )));
        }
        stored?;
        Ok(self.install(e.replaced(doc, e.materials.clone())))
    }

    /// Makes `entry` the cached version of its key (after its change is stored).
    fn install(&self, entry: KeyEntry) -> Arc<KeyEntry> {
        let entry = Arc::new(entry);
        lock_write(&self.keys).insert(entry.id.clone(), entry.clone());
        entry
    }

    /// Records a cryptographic use of a key (flushed to the store by [`Kms::tick`]).
    fn used(&self, e: &KeyEntry, operation: &str, caller: &Caller, now: OffsetDateTime) {
        let mut u = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        u.insert(
            e.id.clone(),
            LastUsage {
                operation: operation.to_owned(),
                time_ms: model::ms(now),
                request_id: caller.request_id.clone(),
            },
        );
    }
}

#[cfg(test)]
mod tests;
