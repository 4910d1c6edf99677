//! Coffer's root key inside a PKCS#11 hardware security module (any module: SoftHSM2 in
//! tests, a network HSM in production). [`Hsm::open`] loads the module, finds the token by
//! label and logs in with the user PIN; [`Hsm::generate_key`] makes a root key *inside*
//! the token — AES-256, `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`, a token object labelled
//! `coffer-root-key` with a random `CKA_ID` — and [`HsmRootKey`] implements
//! [`coffer_crypto::RootKey`] by calling `C_Encrypt`/`C_Decrypt` with `CKM_AES_GCM` on it, so
//! every wrap and unwrap of key material happens in the HSM and the root key never exists
//! in Coffer's memory.
//!
//! Wrapped layout (version 2): `0x02 || nonce (12) || AES-256-GCM(material) || tag (16)`,
//! the caller's associated data bound in, the nonce drawn fresh from the system CSPRNG for
//! every wrap. Every unwrap failure is [`coffer_crypto::Error::Decrypt`].

use std::path::Path;
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

use coffer_crypto::{Error as CryptoError, RootKey, Secret};

const WRAP_V2: u8 = 0x02;
/// The label of every root key Coffer makes in a token.
pub const KEY_LABEL: &str = "coffer-root-key";
const NONCE: usize = 12;

/// Why the HSM could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("loading the PKCS#11 module {path}: {detail}")]
    Module { path: String, detail: String },
    #[error("no PKCS#11 token labelled {0:?} (check --pkcs11-token-label)")]
    NoToken(String),
    #[error("logging in to token {label:?} failed (check COFFER_PKCS11_PIN): {detail}")]
    Login { label: String, detail: String },
    #[error("PKCS#11 {0}")]
    Pkcs11(String),
}

fn p11(what: &str) -> impl Fn(cryptoki::error::Error) -> HsmError + '_ {
    move |e| HsmError::Pkcs11(format!("{what}: {e}"))
}

/// A logged-in session with one token. Dropping it closes the session and finalizes the
/// module, so it can be opened again in the same process.
pub struct Hsm {
    session: Option<Mutex<Session>>,
    module: Option<Pkcs11>,
    label: String,
}

impl Drop for Hsm {
    fn drop(&mut self) {
        drop(self.session.take());
        if let Some(m) = self.module.take()
            && let Err(e) = m.finalize()
        {
            tracing::warn!(error = %e, "finalizing the PKCS#11 module");
        }
    }
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hsm(token {:?})", self.label)
    }
}

impl Hsm {
    /// Loads `module`, finds the token labelled `token_label` and logs in as the user.
    pub fn open(module: &Path, token_label: &str, pin: &str) -> Result<Arc<Self>, HsmError> {
        let pkcs11 = Pkcs11::new(module).map_err(|e| HsmError::Module {
            path: module.display().to_string(),
            detail: e.to_string(),
        })?;
        match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            // Another context of this process initialized the module: sharing it is fine.
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::CryptokiAlreadyInitialized,
                _,
            )) => {}
            Err(e) => {
                return Err(HsmError::Module {
                    path: module.display().to_string(),
                    detail: e.to_string(),
                });
            }
        }
        let mut found = None;
        for slot in pkcs11
            .get_slots_with_token()
            .map_err(p11("listing slots"))?
        {
            let info = pkcs11
                .get_token_info(slot)
                .map_err(p11("reading a token"))?;
            if info.label().trim_end() == token_label {
                found = Some(slot);
                break;
            }
        }
        let slot = found.ok_or_else(|| HsmError::NoToken(token_label.to_owned()))?;
        let session = pkcs11
            .open_rw_session(slot)
            .map_err(p11("opening a session"))?;
        session
            .login(UserType::User, Some(&AuthPin::new(pin.into())))
            .map_err(|e| HsmError::Login {
                label: token_label.to_owned(),
                detail: e.to_string(),
            })?;
        Ok(Arc::new(Self {
            session: Some(Mutex::new(session)),
            module: Some(pkcs11),
            label: token_label.to_owned(),
        }))
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        // Present until drop. A panic inside a PKCS#11 call leaves no Rust state
        // half-written, so a poisoned lock is still usable.
        #[allow(clippy::expect_used)]
        let s = self.session.as_ref().expect("the session lives until drop");
        s.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `CKA_ID`s of every Coffer root key in the token.
    pub fn key_ids(&self) -> Result<Vec<Vec<u8>>, HsmError> {
        let s = self.session();
        let handles = s
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(KEY_LABEL.as_bytes().to_vec()),
            ])
            .map_err(p11("finding keys"))?;
        let mut ids = Vec::new();
        for h in handles {
            for a in s
                .get_attributes(h, &[AttributeType::Id])
                .map_err(p11("reading a key id"))?
            {
                if let Attribute::Id(id) = a {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    fn handle(&self, id: &[u8]) -> Result<Option<ObjectHandle>, HsmError> {
        let found = self
            .session()
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(KEY_LABEL.as_bytes().to_vec()),
                Attribute::Id(id.to_vec()),
            ])
            .map_err(p11("finding a key"))?;
        Ok(found.into_iter().next())
    }

    /// The root key with `CKA_ID` `id`, if the token holds it.
    pub fn key(self: &Arc<Self>, id: &[u8]) -> Result<Option<HsmRootKey>, HsmError> {
        Ok(self.handle(id)?.map(|handle| HsmRootKey {
            hsm: self.clone(),
            handle,
            id: id.to_vec(),
        }))
    }

    /// Generates a new root key inside the token: AES-256, sensitive, never extractable.
    pub fn generate_key(self: &Arc<Self>) -> Result<HsmRootKey, HsmError> {
        let mut id = [0u8; 16];
        coffer_crypto::random(&mut id).map_err(|e| HsmError::Pkcs11(e.to_string()))?;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Label(KEY_LABEL.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        let handle = self
            .session()
            .generate_key(&Mechanism::AesKeyGen, &template)
            .map_err(p11("generating the root key"))?;
        tracing::info!(token = %self.label, id = %hex(&id), "generated a root key inside the HSM");
        Ok(HsmRootKey {
            hsm: self.clone(),
            handle,
            id: id.to_vec(),
        })
    }

    /// Destroys the root key with `CKA_ID` `id` (after a rotation no longer needs it).
    pub fn destroy_key(&self, id: &[u8]) -> Result<bool, HsmError> {
        match self.handle(id)? {
            Some(h) => {
                self.session()
                    .destroy_object(h)
                    .map_err(p11("destroying a key"))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A root key held by the HSM: only its handle and id are in Coffer's memory.
pub struct HsmRootKey {
    hsm: Arc<Hsm>,
    handle: ObjectHandle,
    id: Vec<u8>,
}

impl HsmRootKey {
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// The key's protection as the token reports it.
    pub fn protection(&self) -> Result<Protection, HsmError> {
        let s = self.hsm.session();
        // Assume the worst until the token says otherwise.
        let mut p = Protection {
            sensitive: false,
            extractable: true,
            value_readable: true,
        };
        for a in s
            .get_attributes(
                self.handle,
                &[AttributeType::Sensitive, AttributeType::Extractable],
            )
            .map_err(p11("reading key attributes"))?
        {
            match a {
                Attribute::Sensitive(v) => p.sensitive = v,
                Attribute::Extractable(v) => p.extractable = v,
                _ => {}
            }
        }
        let value = s
            .get_attributes(self.handle, &[AttributeType::Value])
            .map_err(p11("reading the key value"))?;
        p.value_readable = value.iter().any(|a| matches!(a, Attribute::Value(_)));
        Ok(p)
    }
}

/// What the token says about a root key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    pub sensitive: bool,
    pub extractable: bool,
    /// Whether `CKA_VALUE` (the key itself) can be read: never for a root key.
    pub value_readable: bool,
}

impl std::fmt::Debug for HsmRootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HsmRootKey({})", self.fingerprint())
    }
}

impl RootKey for HsmRootKey {
    fn wrap(&self, aad: &[u8], material: &Secret) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE];
        coffer_crypto::random(&mut nonce)?;
        let mut iv = nonce;
        let params = GcmParams::new(&mut iv, aad, 128.into())
            .map_err(|e| CryptoError::RootKey(format!("HSM: {e}")))?;
        let sealed = self
            .hsm
            .session()
            .encrypt(&Mechanism::AesGcm(params), self.handle, material.expose())
            .map_err(|e| CryptoError::RootKey(format!("HSM wrap failed: {e}")))?;
        let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
        out.push(WRAP_V2);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Secret, CryptoError> {
        let Some((&WRAP_V2, rest)) = wrapped.split_first() else {
            return Err(CryptoError::Decrypt);
        };
        if rest.len() < NONCE + 16 {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, sealed) = rest.split_at(NONCE);
        let mut iv = [0u8; NONCE];
        iv.copy_from_slice(nonce);
        let params = GcmParams::new(&mut iv, aad, 128.into()).map_err(|_| CryptoError::Decrypt)?;
        let plain = self
            .hsm
            .session()
            .decrypt(&Mechanism::AesGcm(params), self.handle, sealed)
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(Secret::new(plain))
    }

    fn fingerprint(&self) -> String {
        format!("hsm:{}", hex(&self.id[..8.min(self.id.len())]))
    }
}
