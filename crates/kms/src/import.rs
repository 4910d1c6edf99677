//! Bring your own key: keys of origin EXTERNAL start without material (PendingImport);
//! GetParametersForImport hands out an RSA wrapping public key and an import token,
//! ImportKeyMaterial unwraps the customer's material and makes the key usable, and the
//! material goes away again at its ValidTo (in [`Kms::tick`]) or on
//! DeleteImportedKeyMaterial, after which only the same material can be imported.
//!
//! The import token carries everything needed to finish the import, so nothing is stored
//! between the two calls: `"CIT1" || u16 header length || header JSON || wrapped`, where
//! the header names the key, the wrapping algorithm and spec and the expiry, and `wrapped`
//! is the wrapping key's private half (PKCS#8) wrapped under the root key with the header
//! bound in as associated data. A token is therefore usable only for its key, until its
//! expiry, and only by this server; the private half never rests anywhere unwrapped.
//!
//! The KeyMaterialId of imported material is HMAC-SHA256 keyed by the material over the
//! key id: AWS derives it "based on the KMS key ID and the imported key material", and it
//! is what recognizes the same material on a later import without keeping the material.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use coffer_crypto::Secret;
use coffer_storage::KmsMaterialRecord;

use crate::keys::to_json;
use crate::model::{self, ExpirationModel, ImportDoc, MaterialDoc};
use crate::{Caller, Error, KeyEntry, KeySpec, KeyState, Kms, Material, Op, Result, material_aad};

const TOKEN_MAGIC: &[u8; 4] = b"CIT1";
const TOKEN_AAD: &[u8] = b"coffer:import-token:v1:";
/// Longest ValidTo AWS accepts: 365 days from the request.
const MAX_VALID_DAYS: u32 = 365;

/// GetParametersForImport's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportParameters {
    pub key_arn: String,
    pub import_token: Vec<u8>,
    /// DER SubjectPublicKeyInfo of the wrapping key.
    pub public_key: Vec<u8>,
    pub valid_to: OffsetDateTime,
}

/// An ImportKeyMaterial request.
#[derive(Debug, Clone, Default)]
pub struct ImportMaterial {
    pub import_token: Vec<u8>,
    pub encrypted_key_material: Vec<u8>,
    pub expiration_model: Option<String>,
    pub valid_to: Option<OffsetDateTime>,
    pub import_type: Option<String>,
    pub key_material_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct TokenHeader {
    /// Key id.
    key: String,
    algorithm: String,
    spec: String,
    expires_ms: i64,
}

fn wrapping_spec(spec: &str) -> Result<coffer_crypto::asym::Spec> {
    use coffer_crypto::asym::Spec;
    match spec {
        "RSA_2048" => Ok(Spec::Rsa2048),
        "RSA_3072" => Ok(Spec::Rsa3072),
        "RSA_4096" => Ok(Spec::Rsa4096),
        "SM2" => Err(Error::UnsupportedOperation(
            "WrappingKeySpec SM2 is available only in China Regions".into(),
        )),
        other => Err(Error::Validation(format!(
            "1 validation error detected: Value '{other}' at 'wrappingKeySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, SM2]"
        ))),
    }
}

fn check_algorithm(algorithm: &str, key: KeySpec, wrapping: &str) -> Result<()> {
    match algorithm {
        a if coffer_crypto::import::WRAPPING_ALGORITHMS.contains(&a) => {}
        "RSAES_PKCS1_V1_5" => {
            return Err(Error::UnsupportedOperation(
                "The RSAES_PKCS1_V1_5 wrapping algorithm is deprecated and no longer supported"
                    .into(),
            ));
        }
        "SM2PKE" => {
            return Err(Error::UnsupportedOperation(
                "The SM2PKE wrapping algorithm is available only in China Regions".into(),
            ));
        }
        other => {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{other}' at 'wrappingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [RSAES_PKCS1_V1_5, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1, RSA_AES_KEY_WRAP_SHA_256, SM2PKE]"
            )));
        }
    }
    // RSA private keys are too long for RSA-OAEP alone, and so is a P-521 key under
    // RSA_2048: AWS requires the AES key-wrap algorithms for them.
    let direct = algorithm.starts_with("RSAES_OAEP");
    let rsa = key.as_str().starts_with("RSA_");
    if direct && (rsa || (key == KeySpec::EccNistP521 && wrapping == "RSA_2048")) {
        return Err(Error::Validation(format!(
            "The wrapping algorithm {algorithm} cannot wrap {} key material with a {wrapping} wrapping key; use RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256",
            key.as_str()
        )));
    }
    Ok(())
}

/// The KeyMaterialId of imported material (see the module doc).
fn imported_material_id(key_id: &str, material: &Secret) -> String {
    let mac = coffer_crypto::hmac_sha256(
        material.expose(),
        format!("coffer:imported-key-material:v1:{key_id}").as_bytes(),
    );
    hex_simd::encode_to_string(mac, hex_simd::AsciiCase::Lower)
}

/// Checks the unwrapped material against the key's spec; returns it in the form Coffer
/// keeps.
fn check_material(spec: KeySpec, material: Secret) -> Result<Secret> {
    let bad = |what: &str| {
        Error::IncorrectKeyMaterial(format!(
            "The key material is not valid for a {} key: {what}",
            spec.as_str()
        ))
    };
    let len = material.len();
    let ok = |lo: usize, hi: usize| (lo..=hi).contains(&len);
    match spec {
        KeySpec::SymmetricDefault if len == 32 => Ok(material),
        KeySpec::SymmetricDefault => Err(bad("it must be a 256-bit (32-byte) key")),
        KeySpec::Hmac224 if ok(28, 64) => Ok(material),
        KeySpec::Hmac256 if ok(32, 64) => Ok(material),
        KeySpec::Hmac384 | KeySpec::Hmac512 if ok(spec.material_len(), 128) => Ok(material),
        KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => Err(bad(
            "its length is outside the range allowed for the key spec",
        )),
        _ => {
            let asym = spec.asym().ok_or_else(|| bad("unknown key spec"))?;
            coffer_crypto::asym::import_private(asym, material.expose())
                .map_err(|_| bad("it must be a DER-encoded PKCS#8 private key of the key spec"))
        }
    }
}

impl Kms {
    /// GetParametersForImport: a fresh RSA wrapping key and an import token for it, both
    /// valid for 24 hours (one KMS "day").
    pub async fn get_parameters_for_import(
        &self,
        caller: &Caller,
        key_id: &str,
        algorithm: &str,
        wrapping_key_spec: &str,
        now: OffsetDateTime,
    ) -> Result<ImportParameters> {
        let e = self
            .resolve(caller, key_id, false, Op::GetParametersForImport.action())
            .await?;
        let arn = self.key_arn(&e.account, &e.id);
        Op::GetParametersForImport.check_origin(e.doc.origin, &arn)?;
        Op::GetParametersForImport.check(e.doc.state, &arn)?;
        let spec = wrapping_spec(wrapping_key_spec)?;
        check_algorithm(algorithm, e.doc.spec, wrapping_key_spec)?;
        let private = crate::generate_key_pair(spec).await?;
        let public_key = coffer_crypto::asym::public_key_der(spec, &private)
            .map_err(|err| Error::Internal(format!("wrapping key: {err}")))?;
        let valid_to = now + self.days(1);
        let header = serde_json::to_vec(&TokenHeader {
            key: e.id.clone(),
            algorithm: algorithm.to_owned(),
            spec: wrapping_key_spec.to_owned(),
            expires_ms: model::ms(valid_to),
        })
        .map_err(|err| Error::Internal(err.to_string()))?;
        let wrapped = self.root.wrap(&[TOKEN_AAD, &header].concat(), &private)?;
        let len = u16::try_from(header.len())
            .map_err(|_| Error::Internal("import token header too long".into()))?;
        let mut import_token = Vec::with_capacity(6 + header.len() + wrapped.len());
        import_token.extend_from_slice(TOKEN_MAGIC);
        import_token.extend_from_slice(&len.to_be_bytes());
        import_token.extend_from_slice(&header);
        import_token.extend_from_slice(&wrapped);
        Ok(ImportParameters {
            key_arn: arn,
            import_token,
            public_key,
            valid_to,
        })
    }

    /// Opens an import token for `key_id`: its header and the wrapping private key.
    fn open_token(&self, key_id: &str, token: &[u8]) -> Result<(TokenHeader, Secret)> {
        let rest = token
            .strip_prefix(TOKEN_MAGIC.as_slice())
            .ok_or(Error::InvalidImportToken)?;
        let (len, rest) = rest.split_at_checked(2).ok_or(Error::InvalidImportToken)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (header_bytes, wrapped) = rest
            .split_at_checked(len)
            .ok_or(Error::InvalidImportToken)?;
        let header: TokenHeader =
            serde_json::from_slice(header_bytes).map_err(|_| Error::InvalidImportToken)?;
        if header.key != key_id {
            return Err(Error::InvalidImportToken);
        }
        let private = self
            .root
            .unwrap(&[TOKEN_AAD, header_bytes].concat(), wrapped)
            .map_err(|_| Error::InvalidImportToken)?;
        Ok((header, private))
    }

    /// ImportKeyMaterial: (key ARN, KeyMaterialId).
    pub async fn import_key_material(
        &self,
        caller: &Caller,
        key_id: &str,
        req: ImportMaterial,
        now: OffsetDateTime,
    ) -> Result<(String, String)> {
        let expiration = match req.expiration_model.as_deref() {
            None | Some("KEY_MATERIAL_EXPIRES") => ExpirationModel::Expires,
            Some("KEY_MATERIAL_DOES_NOT_EXPIRE") => ExpirationModel::DoesNotExpire,
            Some(other) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{other}' at 'expirationModel' failed to satisfy constraint: Member must satisfy enum value set: [KEY_MATERIAL_EXPIRES, KEY_MATERIAL_DOES_NOT_EXPIRE]"
                )));
            }
        };
        let valid_to = match (expiration, req.valid_to) {
            (ExpirationModel::Expires, None) => {
                return Err(Error::Validation(
                    "A ValidTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
                        .into(),
                ));
            }
            (ExpirationModel::Expires, Some(t)) if t <= now => {
                return Err(Error::Validation("ValidTo must be in the future".into()));
            }
            (ExpirationModel::Expires, Some(t)) if t > now + self.days(MAX_VALID_DAYS) => {
                return Err(Error::Validation(format!(
                    "ValidTo must be at most {MAX_VALID_DAYS} days from now"
                )));
            }
            (ExpirationModel::Expires, Some(t)) => Some(t),
            (ExpirationModel::DoesNotExpire, None) => None,
            (ExpirationModel::DoesNotExpire, Some(_)) => {
                return Err(Error::Validation(
                    "A ValidTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE"
                        .into(),
                ));
            }
        };
        let e = self
            .resolve(caller, key_id, false, Op::ImportKeyMaterial.action())
            .await?;
        let arn = self.key_arn(&e.account, &e.id);
        Op::ImportKeyMaterial.check_origin(e.doc.origin, &arn)?;
        Op::ImportKeyMaterial.check(e.doc.state, &arn)?;
        let (header, private) = self.open_token(&e.id, &req.import_token)?;
        if header.expires_ms <= model::ms(now) {
            return Err(Error::ExpiredImportToken);
        }
        let material = coffer_crypto::import::unwrap_imported(
            &private,
            &header.algorithm,
            &req.encrypted_key_material,
        )
        .map_err(|_| Error::InvalidCiphertext)?;
        drop(private);
        let material = check_material(e.doc.spec, material)?;
        let material_id = imported_material_id(&e.id, &material);

        let _guard = self.mutate.lock().await;
        let e = self
            .entry(&e.id)
            .ok_or_else(|| Error::NotFound(format!("Key '{arn}' does not exist")))?;
        Op::ImportKeyMaterial.check(e.doc.state, &arn)?;
        let before = e.doc.import.as_ref().map(|i| i.material_id.as_str());
        match (req.import_type.as_deref(), before) {
            (None, _)
            | (Some("NEW_KEY_MATERIAL"), None)
            | (Some("EXISTING_KEY_MATERIAL"), Some(_)) => {}
            (Some("NEW_KEY_MATERIAL"), Some(_)) => {
                return Err(Error::UnsupportedOperation(format!(
                    "{arn} already has imported key material; importing new key material for on-demand rotation is not supported by this server"
                )));
            }
            (Some("EXISTING_KEY_MATERIAL"), None) => {
                return Err(Error::Validation(format!(
                    "{arn} has no imported key material to reimport; use ImportType NEW_KEY_MATERIAL"
                )));
            }
            (Some(other), _) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{other}' at 'importType' failed to satisfy constraint: Member must satisfy enum value set: [NEW_KEY_MATERIAL, EXISTING_KEY_MATERIAL]"
                )));
            }
        }
        if let Some(asked) = &req.key_material_id {
            if before.is_none() {
                return Err(Error::Validation(
                    "A KeyMaterialId cannot be given for the first import of key material".into(),
                ));
            }
            if *asked != material_id {
                return Err(Error::IncorrectKeyMaterial(format!(
                    "The key material does not match the key material ID {asked}"
                )));
            }
        }
        if before.is_some_and(|b| b != material_id) {
            return Err(Error::IncorrectKeyMaterial(format!(
                "The key material is not the key material that was previously imported into {arn}"
            )));
        }

        let mut doc = e.doc.clone();
        doc.import = Some(ImportDoc {
            material_id: material_id.clone(),
            expiration: Some(expiration),
            valid_to_ms: valid_to.map(model::ms),
        });
        if doc.state == KeyState::PendingImport {
            doc.state = KeyState::Enabled;
        }
        if !e.materials.is_empty() {
            // The same material again: only the expiration terms change.
            self.commit_doc(&e, doc).await?;
            return Ok((arn, material_id));
        }
        let mdoc = MaterialDoc {
            material_id: material_id.clone(),
            created_ms: model::ms(now),
            rotation: None,
        };
        self.store
            .kms_add_material(
                &e.record(&doc)?,
                &KmsMaterialRecord {
                    key_id: e.id.clone(),
                    version: 0,
                    wrapped: self.root.wrap(&material_aad(&e.id, 0), &material)?,
                    doc: to_json(&mdoc)?,
                },
            )
            .await?;
        self.install(e.replaced(
            doc,
            Arc::new(vec![Material {
                version: 0,
                doc: mdoc,
                secret: material,
            }]),
        ));
        Ok((arn, material_id))
    }

    /// DeleteImportedKeyMaterial: (key ARN, KeyMaterialId of the deleted material).
    pub async fn delete_imported_key_material(
        &self,
        caller: &Caller,
        key_id: &str,
        key_material_id: Option<&str>,
    ) -> Result<(String, Option<String>)> {
        let e = self
            .resolve(
                caller,
                key_id,
                false,
                Op::DeleteImportedKeyMaterial.action(),
            )
            .await?;
        let arn = self.key_arn(&e.account, &e.id);
        Op::DeleteImportedKeyMaterial.check_origin(e.doc.origin, &arn)?;
        let _guard = self.mutate.lock().await;
        let e = self
            .entry(&e.id)
            .ok_or_else(|| Error::NotFound(format!("Key '{arn}' does not exist")))?;
        Op::DeleteImportedKeyMaterial.check(e.doc.state, &arn)?;
        let current = e.doc.import.as_ref().map(|i| i.material_id.clone());
        if let Some(asked) = key_material_id
            && current.as_deref() != Some(asked)
        {
            return Err(Error::NotFound(format!(
                "Key material {asked} is not associated with {arn}"
            )));
        }
        if !e.materials.is_empty() {
            self.remove_material(&e).await?;
        }
        Ok((arn, current))
    }

    /// Deletes an EXTERNAL key's material: the key waits for an import again (unless it
    /// is pending deletion, which it stays). Call under `mutate`.
    async fn remove_material(&self, e: &KeyEntry) -> Result<()> {
        let mut doc = e.doc.clone();
        if let Some(i) = &mut doc.import {
            i.expiration = None;
            i.valid_to_ms = None;
        }
        if doc.state != KeyState::PendingDeletion {
            doc.state = KeyState::PendingImport;
        }
        self.store.kms_remove_materials(&e.record(&doc)?).await?;
        self.install(e.replaced(doc, Arc::new(Vec::new())));
        Ok(())
    }

    /// For [`Kms::tick`]: deletes imported material whose ValidTo has passed. Returns
    /// whether it did. Call under `mutate`.
    pub(crate) async fn expire_material(&self, e: &KeyEntry, now_ms: i64) -> Result<bool> {
        let due = e
            .doc
            .import
            .as_ref()
            .and_then(|i| i.valid_to_ms)
            .is_some_and(|t| t <= now_ms);
        if !due || e.materials.is_empty() {
            return Ok(false);
        }
        self.remove_material(e).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_is_checked_against_the_key_spec() {
        assert!(check_material(KeySpec::SymmetricDefault, Secret::new(vec![1; 32])).is_ok());
        for n in [0, 16, 31, 33, 64] {
            assert!(matches!(
                check_material(KeySpec::SymmetricDefault, Secret::new(vec![1; n])),
                Err(Error::IncorrectKeyMaterial(_))
            ));
        }
        assert!(check_material(KeySpec::Hmac224, Secret::new(vec![1; 28])).is_ok());
        assert!(check_material(KeySpec::Hmac224, Secret::new(vec![1; 27])).is_err());
        assert!(check_material(KeySpec::Hmac512, Secret::new(vec![1; 128])).is_ok());
        assert!(check_material(KeySpec::Hmac512, Secret::new(vec![1; 63])).is_err());
        assert!(check_material(KeySpec::Hmac384, Secret::new(vec![1; 129])).is_err());
        let p256 =
            coffer_crypto::asym::generate(coffer_crypto::asym::Spec::P256).expect("generate");
        assert!(check_material(KeySpec::EccNistP256, p256.clone()).is_ok());
        assert!(check_material(KeySpec::EccNistP384, p256).is_err());
        let rsa =
            coffer_crypto::asym::generate(coffer_crypto::asym::Spec::Rsa2048).expect("generate");
        assert!(check_material(KeySpec::Rsa2048, rsa.clone()).is_ok());
        assert!(check_material(KeySpec::Rsa3072, rsa).is_err());
    }

    #[test]
    fn direct_oaep_cannot_carry_rsa_keys() {
        assert!(
            check_algorithm("RSAES_OAEP_SHA_256", KeySpec::SymmetricDefault, "RSA_2048").is_ok()
        );
        assert!(check_algorithm("RSA_AES_KEY_WRAP_SHA_1", KeySpec::Rsa4096, "RSA_2048").is_ok());
        assert!(check_algorithm("RSAES_OAEP_SHA_1", KeySpec::Rsa2048, "RSA_4096").is_err());
        assert!(check_algorithm("RSAES_OAEP_SHA_1", KeySpec::EccNistP521, "RSA_2048").is_err());
        assert!(check_algorithm("RSAES_OAEP_SHA_1", KeySpec::EccNistP521, "RSA_3072").is_ok());
        assert!(matches!(
            check_algorithm("RSAES_PKCS1_V1_5", KeySpec::SymmetricDefault, "RSA_2048"),
            Err(Error::UnsupportedOperation(_))
        ));
        assert!(matches!(
            check_algorithm("ROT13", KeySpec::SymmetricDefault, "RSA_2048"),
            Err(Error::Validation(_))
        ));
    }
}
