//! Where the root key lives — a key file, `COFFER_ROOT_KEY`, or a PKCS#11 HSM — and
//! root-key rotation.
//!
//! The server holds the root key through a [`RootKeyRing`]. Rotation (`coffer root-key
//! rotate`, served by the running server) first records the next key durably (the file
//! `ROOT.next`; for an HSM, a key generated in the token and named in
//! `DATA_DIR/root-key-hsm.json`), makes it the ring's current key (new material is
//! wrapped under it at once, and either key unwraps), re-wraps every stored piece of
//! key material and every identity secret — all of which the server holds unwrapped in
//! memory, so reads and writes go on — and then commits: the old key file is renamed
//! `ROOT.retired-FINGERPRINT`, the HSM state names the new key current and the old one
//! retired. `coffer root-key destroy-retired` then removes retired keys. A rotation cut
//! short by a crash is finished at the next start, before anything is served.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use coffer_crypto::{LocalRootKey, RootKey, RootKeyRing, RootKeySource, Secret};

/// The PIN of the PKCS#11 token.
pub const ENV_PKCS11_PIN: &str = "COFFER_PKCS11_PIN";

/// How the server finds its root key.
#[derive(Debug, Clone)]
pub enum RootSource {
    Local(RootKeySource),
    Hsm {
        module: PathBuf,
        token_label: String,
        /// Read from `COFFER_PKCS11_PIN`.
        pin: zeroize::Zeroizing<String>,
    },
}

enum Backend {
    File(PathBuf),
    Env,
    Hsm {
        hsm: Arc<coffer_hsm::Hsm>,
        state_path: PathBuf,
    },
}

/// Which HSM keys are Coffer's for this data directory (key ids, hex).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HsmState {
    current: String,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    retired: Vec<String>,
}

/// What a rotation did.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub old_root_key: String,
    pub new_root_key: String,
    pub key_materials_rewrapped: usize,
    pub secrets_rewrapped: usize,
    /// Where the old key now is (a file, or an HSM key id), until destroyed.
    pub retired: String,
}

/// The root key of a running server.
pub struct RootKeys {
    ring: Arc<RootKeyRing>,
    backend: Backend,
    rotating: tokio::sync::Mutex<()>,
}

fn next_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".next");
    PathBuf::from(p)
}

fn retired_path(path: &Path, fingerprint: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".retired-{fingerprint}"));
    PathBuf::from(p)
}

fn unhex(s: &str) -> anyhow::Result<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        bail!("bad key id {s:?}");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).with_context(|| format!("bad key id {s:?}")))
        .collect()
}

fn sync_dir(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

fn write_state(path: &Path, state: &HsmState) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    sync_dir(path)
}

fn read_state(path: &Path) -> anyhow::Result<Option<HsmState>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(
            serde_json::from_slice(&b).with_context(|| format!("reading {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The HSM state of a data directory that already has one.
fn existing_state(path: &Path) -> anyhow::Result<HsmState> {
    read_state(path)?.context("the HSM root-key state is missing")
}

fn hsm_key(hsm: &Arc<coffer_hsm::Hsm>, id: &str) -> anyhow::Result<Arc<dyn RootKey>> {
    match hsm.key(&unhex(id)?)? {
        Some(k) => Ok(Arc::new(k)),
        None => bail!(
            "the PKCS#11 token has no root key with id {id}, which this data directory's key material is wrapped under; refusing to start"
        ),
    }
}

impl RootKeys {
    /// Loads the root key for `data_dir`. Returns whether a rotation was cut short and
    /// must be finished ([`RootKeys::finish_rotation`]) once the stores are open.
    pub fn load(source: &RootSource, data_dir: &Path) -> anyhow::Result<(Self, bool)> {
        let (ring, backend, pending) = match source {
            RootSource::Local(RootKeySource::Base64(b64)) => {
                let (k, _) = LocalRootKey::load(&RootKeySource::Base64(b64.clone()))
                    .context("loading the root key")?;
                (RootKeyRing::new(Arc::new(k)), Backend::Env, false)
            }
            RootSource::Local(RootKeySource::File(path)) => {
                // A crash between the two renames of a rotation's commit: the re-wrap was
                // complete, so the next key is the key.
                if !path.exists() && next_path(path).exists() {
                    std::fs::rename(next_path(path), path)
                        .with_context(|| format!("installing {}", path.display()))?;
                    sync_dir(path)?;
                }
                let (k, created) = LocalRootKey::load(&RootKeySource::File(path.clone()))
                    .context("loading the root key")?;
                if created {
                    tracing::info!(path = %path.display(), "created a new root key");
                }
                if path.starts_with(data_dir) {
                    tracing::warn!(
                        path = %path.display(),
                        "the root key is inside the data directory: anyone with a copy of the directory can unwrap every key; in production keep it on another volume (--root-key-file), pass it in COFFER_ROOT_KEY, or use an HSM (--pkcs11-module)"
                    );
                }
                let ring = RootKeyRing::new(Arc::new(k));
                let next = next_path(path);
                let pending = next.exists();
                if pending {
                    let (n, _) = LocalRootKey::load(&RootKeySource::File(next.clone()))
                        .context("loading the next root key of an unfinished rotation")?;
                    ring.rotate_to(Arc::new(n));
                }
                (ring, Backend::File(path.clone()), pending)
            }
            RootSource::Hsm {
                module,
                token_label,
                pin,
            } => {
                let hsm = coffer_hsm::Hsm::open(module, token_label, pin)
                    .context("opening the PKCS#11 token")?;
                let state_path = data_dir.join("root-key-hsm.json");
                let state = match read_state(&state_path)? {
                    Some(s) => s,
                    None => {
                        let key = hsm.generate_key()?;
                        let s = HsmState {
                            current: coffer_hsm::hex(key.id()),
                            ..HsmState::default()
                        };
                        std::fs::create_dir_all(data_dir)?;
                        write_state(&state_path, &s)?;
                        s
                    }
                };
                let ring = RootKeyRing::new(hsm_key(&hsm, &state.current)?);
                let pending = match &state.next {
                    Some(next) => {
                        ring.rotate_to(hsm_key(&hsm, next)?);
                        true
                    }
                    None => false,
                };
                (ring, Backend::Hsm { hsm, state_path }, pending)
            }
        };
        Ok((
            Self {
                ring: Arc::new(ring),
                backend,
                rotating: tokio::sync::Mutex::new(()),
            },
            pending,
        ))
    }

    /// The root key every store wraps under.
    pub fn root(&self) -> Arc<dyn RootKey> {
        self.ring.clone()
    }

    /// Records the next key durably and makes it current (reusing one an interrupted
    /// rotation recorded).
    fn begin(&self) -> anyhow::Result<()> {
        let next: Arc<dyn RootKey> = match &self.backend {
            Backend::Env => bail!(
                "the root key comes from COFFER_ROOT_KEY, which Coffer cannot replace; use --root-key-file or an HSM to rotate it"
            ),
            Backend::File(path) => {
                let next = next_path(path);
                if !next.exists() {
                    let key = coffer_crypto::random_secret(coffer_crypto::KEY_LEN)?;
                    coffer_crypto::write_new_key_file(&next, &key)?;
                }
                let (k, _) = LocalRootKey::load(&RootKeySource::File(next))?;
                Arc::new(k)
            }
            Backend::Hsm { hsm, state_path } => {
                let mut state = existing_state(state_path)?;
                let id = match &state.next {
                    Some(id) => id.clone(),
                    None => {
                        let key = hsm.generate_key()?;
                        let id = coffer_hsm::hex(key.id());
                        state.next = Some(id.clone());
                        write_state(state_path, &state)?;
                        id
                    }
                };
                hsm_key(hsm, &id)?
            }
        };
        if next.fingerprint() != self.ring.fingerprint() {
            self.ring.rotate_to(next);
        }
        Ok(())
    }

    /// Makes the rotation final; returns where the old key went.
    fn commit(&self, old: &str) -> anyhow::Result<String> {
        let retired = match &self.backend {
            Backend::Env => bail!("nothing to commit"),
            Backend::File(path) => {
                let retired = retired_path(path, old);
                std::fs::rename(path, &retired)
                    .with_context(|| format!("retiring {}", path.display()))?;
                std::fs::rename(next_path(path), path)
                    .with_context(|| format!("installing the new {}", path.display()))?;
                sync_dir(path)?;
                retired.display().to_string()
            }
            Backend::Hsm { state_path, .. } => {
                let mut state = existing_state(state_path)?;
                let Some(next) = state.next.take() else {
                    bail!("no rotation in progress");
                };
                let old = std::mem::replace(&mut state.current, next);
                state.retired.push(old.clone());
                write_state(state_path, &state)?;
                format!("PKCS#11 key {old}")
            }
        };
        self.ring.forget_previous();
        Ok(retired)
    }

    /// Rotates the root key: everything stored is re-wrapped under a new one.
    pub async fn rotate(
        &self,
        kms: &coffer_kms::Kms,
        directory: &coffer_iam::Directory,
    ) -> anyhow::Result<Rotation> {
        let _one = self.rotating.lock().await;
        let old = self.ring.fingerprint();
        self.begin()?;
        self.rewrap_and_commit(old, kms, directory).await
    }

    /// Finishes a rotation a crash cut short (see [`RootKeys::load`]).
    pub async fn finish_rotation(
        &self,
        kms: &coffer_kms::Kms,
        directory: &coffer_iam::Directory,
    ) -> anyhow::Result<Rotation> {
        let _one = self.rotating.lock().await;
        let old = match &self.backend {
            Backend::File(path) => LocalRootKey::load(&RootKeySource::File(path.clone()))?
                .0
                .fingerprint(),
            Backend::Hsm { hsm, state_path } => {
                let state = existing_state(state_path)?;
                hsm_key(hsm, &state.current)?.fingerprint()
            }
            Backend::Env => bail!("nothing to finish"),
        };
        tracing::warn!("finishing a root-key rotation that was cut short");
        self.rewrap_and_commit(old, kms, directory).await
    }

    async fn rewrap_and_commit(
        &self,
        old: String,
        kms: &coffer_kms::Kms,
        directory: &coffer_iam::Directory,
    ) -> anyhow::Result<Rotation> {
        let materials = kms
            .rewrap_under_root()
            .await
            .map_err(|e| anyhow::anyhow!("re-wrapping key material: {e}"))?;
        let secrets = directory
            .rewrap_under_root()
            .await
            .map_err(|e| anyhow::anyhow!("re-wrapping identity secrets: {e}"))?;
        let retired = self.commit(&old)?;
        let new = self.ring.fingerprint();
        tracing::info!(old = %old, new = %new, materials, secrets, retired = %retired, "rotated the root key");
        Ok(Rotation {
            old_root_key: old,
            new_root_key: new,
            key_materials_rewrapped: materials,
            secrets_rewrapped: secrets,
            retired,
        })
    }

    /// Destroys every retired root key (files are overwritten before removal). Returns
    /// what was destroyed.
    pub async fn destroy_retired(&self) -> anyhow::Result<Vec<String>> {
        let _one = self.rotating.lock().await;
        let mut gone = Vec::new();
        match &self.backend {
            Backend::Env => {}
            Backend::File(path) => {
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let prefix = format!(
                    "{}.retired-",
                    path.file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default()
                );
                for entry in std::fs::read_dir(&dir)? {
                    let p = entry?.path();
                    let retired = p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&prefix));
                    if retired {
                        let len = std::fs::metadata(&p)?.len();
                        std::fs::write(&p, Secret::zeroed(usize::try_from(len)?).expose())?;
                        std::fs::File::open(&p)?.sync_all()?;
                        std::fs::remove_file(&p)?;
                        gone.push(p.display().to_string());
                    }
                }
                sync_dir(path)?;
            }
            Backend::Hsm { hsm, state_path } => {
                let mut state = existing_state(state_path)?;
                for id in std::mem::take(&mut state.retired) {
                    hsm.destroy_key(&unhex(&id)?)?;
                    gone.push(format!("PKCS#11 key {id}"));
                }
                write_state(state_path, &state)?;
            }
        }
        Ok(gone)
    }
}
