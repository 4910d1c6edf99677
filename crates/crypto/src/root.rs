//! The root key: every piece of key material Coffer stores is wrapped under it.
//!
//! Wrapped layout (version 1): `0x01 || nonce (12) || AES-256-GCM(material) || tag (16)`,
//! with the caller's associated data (which key, which version) bound in. The version
//! byte leaves room for other wrappers (a PKCS#11 HSM) beside this one; changing the
//! layout breaks every stored key.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use aws_lc_rs::hmac;

use crate::{Error, KEY_LEN, Secret, open, seal};

const WRAP_V1: u8 = 0x01;

/// Wraps and unwraps key material. Implementations keep the root key itself out of reach
/// of callers (a local key in memory today; an HSM later).
pub trait RootKey: Send + Sync + 'static {
    fn wrap(&self, aad: &[u8], material: &Secret) -> Result<Vec<u8>, Error>;
    /// Any failure (wrong root key, tampered bytes, wrong `aad`) is [`Error::Decrypt`].
    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Secret, Error>;
    /// A short, non-secret identifier for messages ("root key 3f2a9c01...").
    fn fingerprint(&self) -> String;
}

/// Where the local root key comes from.
#[derive(Debug, Clone)]
pub enum RootKeySource {
    /// A file of exactly 32 random bytes; created (mode 0600) if absent.
    File(PathBuf),
    /// Base64 of 32 bytes (from `COFFER_ROOT_KEY`).
    Base64(String),
}

/// A 256-bit root key held in process memory.
pub struct LocalRootKey {
    key: Secret,
}

impl std::fmt::Debug for LocalRootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalRootKey({})", self.fingerprint())
    }
}

impl LocalRootKey {
    pub fn from_secret(key: Secret) -> Result<Self, Error> {
        if key.len() != KEY_LEN {
            return Err(Error::RootKey(format!(
                "a root key must be exactly {KEY_LEN} bytes, got {}",
                key.len()
            )));
        }
        Ok(Self { key })
    }

    /// Loads the key; returns whether a new key file was created.
    pub fn load(source: &RootKeySource) -> Result<(Self, bool), Error> {
        match source {
            RootKeySource::Base64(b64) => {
                let bytes = base64_simd::STANDARD
                    .decode_to_vec(b64.trim().as_bytes())
                    .map_err(|_| Error::RootKey("COFFER_ROOT_KEY is not valid base64".into()))?;
                Ok((Self::from_secret(Secret::new(bytes))?, false))
            }
            RootKeySource::File(path) => match std::fs::read(path) {
                Ok(bytes) => Ok((
                    Self::from_secret(Secret::new(bytes))
                        .map_err(|e| Error::RootKey(format!("{}: {e}", path.display())))?,
                    false,
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let key = crate::random_secret(KEY_LEN)?;
                    write_new_key_file(path, &key)?;
                    Ok((Self::from_secret(key)?, true))
                }
                Err(e) => Err(Error::RootKey(format!("reading {}: {e}", path.display()))),
            },
        }
    }
}

/// Writes a new key file (mode 0600, created exclusively, synced with its directory).
pub fn write_new_key_file(path: &Path, key: &Secret) -> Result<(), Error> {
    let fail = |e: std::io::Error| Error::RootKey(format!("creating {}: {e}", path.display()));
    // A bare file name has an empty parent: the current directory.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.write_all(key.expose()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fail)?;
    Ok(())
}

impl RootKey for LocalRootKey {
    fn wrap(&self, aad: &[u8], material: &Secret) -> Result<Vec<u8>, Error> {
        let sealed = seal(&self.key, aad, material.expose())?;
        let mut out = Vec::with_capacity(1 + sealed.len());
        out.push(WRAP_V1);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Secret, Error> {
        match wrapped.split_first() {
            Some((&WRAP_V1, sealed)) => open(&self.key, aad, sealed),
            _ => Err(Error::Decrypt),
        }
    }

    fn fingerprint(&self) -> String {
        let k = hmac::Key::new(hmac::HMAC_SHA256, self.key.expose());
        let tag = hmac::sign(&k, b"coffer root key fingerprint v1");
        tag.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_binds_aad_and_key() {
        let a = LocalRootKey::from_secret(Secret::new(vec![1; 32])).expect("key");
        let b = LocalRootKey::from_secret(Secret::new(vec![2; 32])).expect("key");
        let m = Secret::from_slice(b"key material");
        let w = a.wrap(b"key-1/v0", &m).expect("wrap");
        assert_eq!(w[0], WRAP_V1);
        assert_eq!(a.unwrap(b"key-1/v0", &w).expect("unwrap"), m);
        assert_eq!(a.unwrap(b"key-1/v1", &w), Err(Error::Decrypt));
        assert_eq!(b.unwrap(b"key-1/v0", &w), Err(Error::Decrypt));
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(!format!("{a:?}").contains("0101"));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("keys/root.key");
        let (k1, created) = LocalRootKey::load(&RootKeySource::File(path.clone())).expect("create");
        assert!(created);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (k2, created) = LocalRootKey::load(&RootKeySource::File(path.clone())).expect("load");
        assert!(!created);
        assert_eq!(k1.fingerprint(), k2.fingerprint());
        std::fs::write(&path, b"short").expect("write");
        assert!(LocalRootKey::load(&RootKeySource::File(path)).is_err());
        assert!(LocalRootKey::load(&RootKeySource::Base64("!!".into())).is_err());
        let b64 = base64_simd::STANDARD.encode_to_string([9u8; 32]);
        assert!(LocalRootKey::load(&RootKeySource::Base64(b64)).is_ok());
    }
}

/// The current root key and the ones it replaced, newest first.
type Keys = (Arc<dyn RootKey>, Vec<Arc<dyn RootKey>>);

/// The root key in use plus, during a rotation, the keys it replaces: wraps under the
/// current key, unwraps with whichever key wrapped the value. Rotation swaps keys here
/// without callers noticing; everything stored is then re-wrapped and the old keys are
/// dropped.
pub struct RootKeyRing {
    keys: RwLock<Keys>,
}

impl RootKeyRing {
    pub fn new(current: Arc<dyn RootKey>) -> Self {
        Self {
            keys: RwLock::new((current, Vec::new())),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Keys> {
        // Writers replace whole values; a panic cannot leave one half-written.
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `next` the key new values are wrapped under; the current one stays usable
    /// for unwrapping until [`RootKeyRing::forget_previous`].
    pub fn rotate_to(&self, next: Arc<dyn RootKey>) {
        let mut k = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::replace(&mut k.0, next);
        k.1.insert(0, old);
    }

    /// Drops every key but the current one (once nothing stored needs them).
    pub fn forget_previous(&self) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clear();
    }

    pub fn current(&self) -> Arc<dyn RootKey> {
        self.read().0.clone()
    }
}

impl RootKey for RootKeyRing {
    fn wrap(&self, aad: &[u8], material: &Secret) -> Result<Vec<u8>, Error> {
        self.current().wrap(aad, material)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Secret, Error> {
        let (current, previous) = {
            let k = self.read();
            (k.0.clone(), k.1.clone())
        };
        match current.unwrap(aad, wrapped) {
            Ok(s) => Ok(s),
            Err(first) => previous
                .iter()
                .find_map(|k| k.unwrap(aad, wrapped).ok())
                .ok_or(first),
        }
    }

    fn fingerprint(&self) -> String {
        self.current().fingerprint()
    }
}

#[cfg(test)]
mod ring_tests {
    use super::*;

    #[test]
    fn a_rotated_ring_wraps_under_the_new_key_and_unwraps_with_both_until_told() {
        let a: Arc<dyn RootKey> =
            Arc::new(LocalRootKey::from_secret(Secret::new(vec![1; 32])).expect("a"));
        let b: Arc<dyn RootKey> =
            Arc::new(LocalRootKey::from_secret(Secret::new(vec![2; 32])).expect("b"));
        let ring = RootKeyRing::new(a.clone());
        let m = Secret::from_slice(b"material");
        let under_a = ring.wrap(b"x", &m).expect("wrap");
        ring.rotate_to(b.clone());
        assert_eq!(ring.fingerprint(), b.fingerprint());
        let under_b = ring.wrap(b"x", &m).expect("wrap");
        assert!(b.unwrap(b"x", &under_b).is_ok() && a.unwrap(b"x", &under_b).is_err());
        assert_eq!(ring.unwrap(b"x", &under_a).expect("old"), m);
        assert_eq!(ring.unwrap(b"x", &under_b).expect("new"), m);
        ring.forget_previous();
        assert_eq!(ring.unwrap(b"x", &under_a), Err(Error::Decrypt));
        assert_eq!(ring.unwrap(b"y", &under_b), Err(Error::Decrypt));
    }
}
