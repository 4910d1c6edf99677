//! The instance's identity: its account (a 12-digit id fixed at first start) and the root
//! credentials, taken from `COFFER_ROOT_ACCESS_KEY_ID` / `COFFER_ROOT_SECRET_ACCESS_KEY` or
//! generated at first start and kept in `DATA_DIR/identity.json` (mode 0600).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context as _;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use coffer_iam::{Account, Principal, PrincipalKind, SecretKey};

const FILE: &str = "identity.json";
pub const ENV_ACCESS_KEY: &str = "COFFER_ROOT_ACCESS_KEY_ID";
pub const ENV_SECRET_KEY: &str = "COFFER_ROOT_SECRET_ACCESS_KEY";

#[derive(Serialize, Deserialize)]
struct Stored {
    account_id: String,
    account_name: String,
    canonical_id: String,
    /// Present when Coffer generated the root credentials itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    root_access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    root_secret_access_key: Option<String>,
}

/// The resolved identity of this instance.
pub struct Identity {
    pub account: Account,
    pub root_access_key_id: String,
    pub root_secret: SecretKey,
    /// True when this start generated the root credentials (print them once).
    pub generated: bool,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("account", &self.account)
            .field("root_access_key_id", &self.root_access_key_id)
            .finish_non_exhaustive()
    }
}

fn random_from(alphabet: &[u8], len: usize) -> anyhow::Result<String> {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(len);
    // Rejection sampling keeps every symbol equally likely.
    let limit = 256 - (256 % alphabet.len());
    while out.len() < len {
        let mut b = [0u8; 32];
        rng.fill(&mut b)
            .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        for x in b {
            if (x as usize) < limit && out.len() < len {
                out.push(alphabet[x as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

impl Identity {
    pub fn root_principal(&self) -> Principal {
        Principal {
            account: self.account.clone(),
            kind: PrincipalKind::Root,
            access_key_id: self.root_access_key_id.clone(),
        }
    }

    /// The operator's account id recorded in a data directory (nothing is created).
    pub fn account_id(data_dir: &Path) -> anyhow::Result<String> {
        let path = data_dir.join(FILE);
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let stored: Stored = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a valid identity file", path.display()))?;
        Ok(stored.account_id)
    }

    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(FILE);
        // `dirty` is set when this start created or changed the file's content.
        let (mut stored, mut dirty): (Stored, bool) = match fs::read(&path) {
            Ok(bytes) => (
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a valid identity file", path.display()))?,
                false,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let account_id = loop {
                    let id = random_from(b"0123456789", 12)?;
                    if !id.starts_with('0') {
                        break id;
                    }
                };
                let stored = Stored {
                    account_id,
                    account_name: "default".into(),
                    canonical_id: random_from(b"0123456789abcdef", 64)?,
                    root_access_key_id: None,
                    root_secret_access_key: None,
                };
                (stored, true)
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let from_env = (
            std::env::var(ENV_ACCESS_KEY).ok().filter(|v| !v.is_empty()),
            std::env::var(ENV_SECRET_KEY).ok().filter(|v| !v.is_empty()),
        );
        let (key_id, secret, generated) = match from_env {
            (Some(id), Some(secret)) => (id, secret, false),
            (Some(_), None) | (None, Some(_)) => anyhow::bail!(
                "set both {ENV_ACCESS_KEY} and {ENV_SECRET_KEY}, or neither to use generated credentials"
            ),
            (None, None) => match (
                stored.root_access_key_id.clone(),
                stored.root_secret_access_key.clone(),
            ) {
                (Some(id), Some(secret)) => (id, secret, false),
                _ => {
                    let id = format!(
                        "AKIA{}",
                        random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)?
                    );
                    let secret = random_from(
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                        40,
                    )?;
                    stored.root_access_key_id = Some(id.clone());
                    stored.root_secret_access_key = Some(secret.clone());
                    dirty = true;
                    (id, secret, true)
                }
            },
        };
        if dirty {
            write_private(&path, &serde_json::to_vec_pretty(&stored)?)?;
        }
        Ok(Self {
            account: Account {
                id: stored.account_id,
                name: stored.account_name,
                canonical_id: stored.canonical_id,
            },
            root_access_key_id: key_id,
            root_secret: SecretKey::new(secret),
            generated,
        })
    }
}

/// This node's id within a scale-out deployment (it names the node's audit trail): 16
/// hex digits generated at its first start, kept in `DATA_DIR/node-id`.
pub fn node_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-id");
    match fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let id = random_from(b"0123456789abcdef", 16)?;
    write_private(&path, id.as_bytes())?;
    Ok(id)
}

/// The shared store's setting that holds a scale-out deployment's identity.
const SHARED_SETTING: &str = "coffer.identity";

impl Identity {
    /// The identity of a node of a scale-out deployment (`--meta postgres://...`): the
    /// account is the deployment's, decided by the first node to start (from its data
    /// directory's identity if it has one, else generated) and kept in the shared store;
    /// the root credentials come from `COFFER_ROOT_ACCESS_KEY_ID` /
    /// `COFFER_ROOT_SECRET_ACCESS_KEY` on every node, and the store records only the key
    /// id, so that a node started with other credentials refuses to start. The data
    /// directory keeps a copy of the account (no secret) for the offline commands.
    pub async fn shared(
        data_dir: &Path,
        store: &coffer_storage_postgres::PgStore,
    ) -> anyhow::Result<Self> {
        let (Some(key_id), Some(secret)) = (
            std::env::var(ENV_ACCESS_KEY).ok().filter(|v| !v.is_empty()),
            std::env::var(ENV_SECRET_KEY).ok().filter(|v| !v.is_empty()),
        ) else {
            anyhow::bail!(
                "with --meta postgres://... every node takes the root credentials from {ENV_ACCESS_KEY} and {ENV_SECRET_KEY}: set both, the same on every node"
            );
        };
        let path = data_dir.join(FILE);
        let local: Option<Stored> = match fs::read(&path) {
            Ok(bytes) => Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a valid identity file", path.display()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let candidate = match &local {
            Some(l) => Stored {
                account_id: l.account_id.clone(),
                account_name: l.account_name.clone(),
                canonical_id: l.canonical_id.clone(),
                root_access_key_id: Some(key_id.clone()),
                root_secret_access_key: None,
            },
            None => Stored {
                account_id: loop {
                    let id = random_from(b"0123456789", 12)?;
                    if !id.starts_with('0') {
                        break id;
                    }
                },
                account_name: "default".into(),
                canonical_id: random_from(b"0123456789abcdef", 64)?,
                root_access_key_id: Some(key_id.clone()),
                root_secret_access_key: None,
            },
        };
        let claimed = store
            .claim_setting(SHARED_SETTING, &serde_json::to_vec(&candidate)?)
            .await
            .map_err(|e| anyhow::anyhow!("reading the deployment's identity: {e}"))?;
        let shared: Stored = serde_json::from_slice(&claimed)
            .context("the deployment's identity in the shared store is not valid")?;
        if shared.root_access_key_id.as_deref() != Some(key_id.as_str()) {
            anyhow::bail!(
                "{ENV_ACCESS_KEY} differs from the deployment's root access key id ({}): every node must use the same root credentials",
                shared.root_access_key_id.as_deref().unwrap_or("none")
            );
        }
        match &local {
            Some(l) if l.account_id != shared.account_id => anyhow::bail!(
                "{} belongs to account {}, but this deployment's account is {}: give this node a data directory of its own",
                path.display(),
                l.account_id,
                shared.account_id
            ),
            Some(_) => {}
            None => {
                let copy = Stored {
                    root_access_key_id: None,
                    root_secret_access_key: None,
                    ..serde_json::from_slice(&claimed)?
                };
                fs::create_dir_all(data_dir)
                    .with_context(|| format!("creating {}", data_dir.display()))?;
                write_private(&path, &serde_json::to_vec_pretty(&copy)?)?;
            }
        }
        Ok(Self {
            account: Account {
                id: shared.account_id,
                name: shared.account_name,
                canonical_id: shared.canonical_id,
            },
            root_access_key_id: key_id,
            root_secret: SecretKey::new(secret),
            generated: false,
        })
    }
}

/// An embedded deployment's identity as a scale-out deployment keeps it (`coffer
/// migrate`): its account, and the root access key id every node must then be started
/// with, `COFFER_ROOT_ACCESS_KEY_ID` if set, else the one the data directory generated.
/// Returns the shared setting's name and value, and that key id.
pub fn shared_from(data_dir: &Path) -> anyhow::Result<(&'static str, Vec<u8>, String)> {
    let path = data_dir.join(FILE);
    let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let stored: Stored = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a valid identity file", path.display()))?;
    let key_id = match std::env::var(ENV_ACCESS_KEY).ok().filter(|v| !v.is_empty()) {
        Some(id) => id,
        None => stored.root_access_key_id.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "{} holds no root credentials (they came from the environment): set {ENV_ACCESS_KEY} to the root access key id the nodes will use",
                path.display()
            )
        })?,
    };
    let shared = Stored {
        root_access_key_id: Some(key_id.clone()),
        root_secret_access_key: None,
        ..stored
    };
    Ok((SHARED_SETTING, serde_json::to_vec(&shared)?, key_id))
}

/// Writes a file readable by its owner only, atomically (temp file, fsync, rename).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
