//! The cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey (with and
//! without plaintext) and GenerateRandom. They read only the in-memory key table, so they
//! cost no storage I/O.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use coffer_crypto::Secret;

use crate::ciphertext::{self, Header};
use crate::{Caller, Error, KeyEntry, KeyUsage, Kms, Op, Result};

/// The largest plaintext Encrypt accepts.
pub const MAX_PLAINTEXT: usize = 4096;
/// The largest ciphertext blob Decrypt accepts.
pub const MAX_CIPHERTEXT: usize = 6144;

/// A GenerateDataKey(WithoutPlaintext) request.
#[derive(Debug, Clone, Copy)]
pub struct DataKeyRequest<'a> {
    pub key_id: &'a str,
    /// `AES_256` or `AES_128`; exactly one of this and `number_of_bytes`.
    pub key_spec: Option<&'a str>,
    pub number_of_bytes: Option<i64>,
    pub context: &'a BTreeMap<String, String>,
    pub with_plaintext: bool,
}

/// A generated data key.
#[derive(Debug)]
pub struct DataKey {
    pub key_arn: String,
    /// Absent for GenerateDataKeyWithoutPlaintext.
    pub plaintext: Option<Secret>,
    pub ciphertext: Vec<u8>,
    pub material_id: String,
}

#[derive(Debug)]
pub struct Decrypted {
    pub key_arn: String,
    pub plaintext: Secret,
    pub material_id: String,
}

#[derive(Debug)]
pub struct ReEncrypted {
    pub ciphertext: Vec<u8>,
    pub source_key_arn: String,
    pub key_arn: String,
    pub source_material_id: String,
    pub material_id: String,
}

/// Symmetric encryption (SYMMETRIC_DEFAULT): only symmetric ENCRYPT_DECRYPT keys.
fn check_usage(e: &KeyEntry, arn: &str) -> Result<()> {
    if e.doc.spec.asym().is_some() && e.doc.usage == KeyUsage::EncryptDecrypt {
        return Err(Error::InvalidKeyUsage(format!(
            "The encryption algorithm SYMMETRIC_DEFAULT is not valid for {arn}, an {} key; use RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256.",
            e.doc.spec.as_str()
        )));
    }
    if e.doc.usage != KeyUsage::EncryptDecrypt {
        return Err(Error::InvalidKeyUsage(format!(
            "{arn} key usage is {} which is not valid for this operation.",
            e.doc.usage.as_str()
        )));
    }
    Ok(())
}

impl Kms {
    /// Seals `plaintext` under the key's current material.
    fn seal_with(
        &self,
        e: &KeyEntry,
        context: &BTreeMap<String, String>,
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, String)> {
        let m = e.current()?;
        let key_id = uuid::Uuid::try_parse(&e.id)
            .map_err(|_| Error::Internal(format!("key id {} is not a UUID", e.id)))?;
        let header = Header {
            key_id,
            version: m.version,
        };
        Ok((
            ciphertext::seal(header, &m.secret, context, plaintext)?,
            m.doc.material_id.clone(),
        ))
    }

    /// A usable key for a cryptographic operation: resolved, right usage, right state.
    async fn crypto_key(
        &self,
        caller: &Caller,
        key_id: &str,
        op: Op,
        context: &BTreeMap<String, String>,
    ) -> Result<std::sync::Arc<KeyEntry>> {
        let e = self
            .resolve_with(caller, key_id, true, op.action(), Some(context))
            .await?;
        let arn = self.key_arn(&e.account, &e.id);
        check_usage(&e, &arn)?;
        op.check(e.doc.state, &arn)?;
        Ok(e)
    }

    pub async fn encrypt(
        &self,
        caller: &Caller,
        key_id: &str,
        plaintext: &Secret,
        context: &BTreeMap<String, String>,
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, String)> {
        let r = self
            .encrypt_inner(caller, key_id, plaintext, context, now)
            .await;
        let key = r.as_ref().map_or(key_id, |(_, arn)| arn.as_str());
        caller.note("Encrypt", key, context, &r);
        r
    }

    async fn encrypt_inner(
        &self,
        caller: &Caller,
        key_id: &str,
        plaintext: &Secret,
        context: &BTreeMap<String, String>,
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, String)> {
        if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length between 1 and {MAX_PLAINTEXT}"
            )));
        }
        let e = self
            .crypto_key(caller, key_id, Op::Encrypt, context)
            .await?;
        let (blob, _) = self.seal_with(&e, context, plaintext.expose())?;
        self.used(&e, "Encrypt", caller, now);
        Ok((blob, self.key_arn(&e.account, &e.id)))
    }

    pub async fn generate_data_key(
        &self,
        caller: &Caller,
        req: &DataKeyRequest<'_>,
        now: OffsetDateTime,
    ) -> Result<DataKey> {
        let r = self.generate_data_key_inner(caller, req, now).await;
        let key = r.as_ref().map_or(req.key_id, |d| d.key_arn.as_str());
        let op = if req.with_plaintext {
            "GenerateDataKey"
        } else {
            "GenerateDataKeyWithoutPlaintext"
        };
        caller.note(op, key, req.context, &r);
        r
    }

    async fn generate_data_key_inner(
        &self,
        caller: &Caller,
        req: &DataKeyRequest<'_>,
        now: OffsetDateTime,
    ) -> Result<DataKey> {
        let DataKeyRequest {
            key_id,
            key_spec,
            number_of_bytes,
            context,
            with_plaintext,
        } = *req;
        let len = match (key_spec, number_of_bytes) {
            (Some("AES_256"), None) => 32,
            (Some("AES_128"), None) => 16,
            (Some(s), None) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{s}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
                )));
            }
            (None, Some(n)) if (1..=1024).contains(&n) => usize::try_from(n).unwrap_or(32),
            (None, Some(n)) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024"
                )));
            }
            _ => {
                return Err(Error::Validation(
                    "Please specify either number of bytes or key spec.".into(),
                ));
            }
        };
        let op = if with_plaintext {
            Op::GenerateDataKey
        } else {
            Op::GenerateDataKeyWithoutPlaintext
        };
        let e = self.crypto_key(caller, key_id, op, context).await?;
        let data_key = coffer_crypto::random_secret(len)?;
        let (blob, material_id) = self.seal_with(&e, context, data_key.expose())?;
        self.used(
            &e,
            if with_plaintext {
                "GenerateDataKey"
            } else {
                "GenerateDataKeyWithoutPlaintext"
            },
            caller,
            now,
        );
        Ok(DataKey {
            key_arn: self.key_arn(&e.account, &e.id),
            plaintext: with_plaintext.then_some(data_key),
            ciphertext: blob,
            material_id,
        })
    }

    /// Opens a blob: finds its key (in the caller's account, or any account for the
    /// cross-account `op`s and internal callers), authorizes `op` and checks its state.
    fn open_blob(
        &self,
        caller: &Caller,
        blob: &[u8],
        context: &BTreeMap<String, String>,
        op: Op,
    ) -> Result<(std::sync::Arc<KeyEntry>, Secret, String)> {
        if blob.is_empty() || blob.len() > MAX_CIPHERTEXT {
            return Err(Error::InvalidCiphertext);
        }
        let header = Header::decode(blob)?;
        let id = header.key_id.hyphenated().to_string();
        // A blob naming a key this caller cannot see (or a deleted key) is indistinguishable
        // from a corrupt one.
        let e = match self.entry(&id) {
            Some(e)
                if (e.account == caller.account_id || caller.gate.is_some() || caller.internal)
                    && (!e.doc.hidden || caller.internal) =>
            {
                e
            }
            _ => return Err(Error::InvalidCiphertext),
        };
        // Another account's key is usable when the gate allows: the key policy and the
        // caller's IAM policies both (AccessDenied otherwise, as AWS answers).
        self.authorize(caller, &e, op.action(), Some(context), None)?;
        let arn = self.key_arn(&e.account, &e.id);
        check_usage(&e, &arn)?;
        op.check(e.doc.state, &arn)?;
        let m = e.material(header.version).ok_or(Error::InvalidCiphertext)?;
        let plaintext = ciphertext::open(blob, &m.secret, context)?;
        let material_id = m.doc.material_id.clone();
        Ok((e, plaintext, material_id))
    }

    /// Decrypt finds the key from the blob; `key_id`, when given, must name that key.
    pub async fn decrypt(
        &self,
        caller: &Caller,
        blob: &[u8],
        context: &BTreeMap<String, String>,
        key_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Decrypted> {
        let r = self.decrypt_inner(caller, blob, context, key_id, now).await;
        let named = Header::decode(blob)
            .ok()
            .map(|h| h.key_id.hyphenated().to_string());
        let key = match (&r, named) {
            (Ok(d), _) => d.key_arn.clone(),
            (Err(_), Some(id)) => self
                .entry(&id)
                .map(|e| self.key_arn(&e.account, &e.id))
                .unwrap_or(id),
            (Err(_), None) => key_id.unwrap_or_default().to_owned(),
        };
        caller.note("Decrypt", &key, context, &r);
        r
    }

    async fn decrypt_inner(
        &self,
        caller: &Caller,
        blob: &[u8],
        context: &BTreeMap<String, String>,
        key_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Decrypted> {
        let expected = match key_id {
            Some(k) => Some(
                self.resolve_with(caller, k, true, Op::Decrypt.action(), Some(context))
                    .await?
                    .id
                    .clone(),
            ),
            None => None,
        };
        if let Some(expected) = &expected {
            let named = Header::decode(blob)?.key_id.hyphenated().to_string();
            if *expected != named {
                return Err(Error::IncorrectKey);
            }
        }
        let (e, plaintext, material_id) = self.open_blob(caller, blob, context, Op::Decrypt)?;
        self.used(&e, "Decrypt", caller, now);
        Ok(Decrypted {
            key_arn: self.key_arn(&e.account, &e.id),
            plaintext,
            material_id,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn re_encrypt(
        &self,
        caller: &Caller,
        blob: &[u8],
        source_context: &BTreeMap<String, String>,
        source_key_id: Option<&str>,
        destination_key_id: &str,
        destination_context: &BTreeMap<String, String>,
        now: OffsetDateTime,
    ) -> Result<ReEncrypted> {
        if let Some(k) = source_key_id {
            let expected = self
                .resolve_with(
                    caller,
                    k,
                    true,
                    Op::ReEncryptFrom.action(),
                    Some(source_context),
                )
                .await?
                .id
                .clone();
            if Header::decode(blob)?.key_id.hyphenated().to_string() != expected {
                return Err(Error::IncorrectKey);
            }
        }
        let dest = self
            .crypto_key(
                caller,
                destination_key_id,
                Op::ReEncryptTo,
                destination_context,
            )
            .await?;
        let (src, plaintext, source_material_id) =
            self.open_blob(caller, blob, source_context, Op::ReEncryptFrom)?;
        let (ciphertext, material_id) =
            self.seal_with(&dest, destination_context, plaintext.expose())?;
        self.used(&src, "ReEncrypt", caller, now);
        self.used(&dest, "ReEncrypt", caller, now);
        Ok(ReEncrypted {
            ciphertext,
            source_key_arn: self.key_arn(&src.account, &src.id),
            key_arn: self.key_arn(&dest.account, &dest.id),
            source_material_id,
            material_id,
        })
    }

    /// GenerateRandom: 1-1024 bytes from the system CSPRNG.
    pub fn generate_random(&self, number_of_bytes: Option<i64>) -> Result<Secret> {
        match number_of_bytes {
            Some(n) if (1..=1024).contains(&n) => Ok(coffer_crypto::random_secret(
                usize::try_from(n).unwrap_or(32),
            )?),
            Some(n) => Err(Error::Validation(format!(
                "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024"
            ))),
            None => Err(Error::Validation("NumberOfBytes is required".into())),
        }
    }
}

/// The largest message GenerateMac and VerifyMac accept.
pub const MAX_MAC_MESSAGE: usize = 4096;

impl Kms {
    /// An HMAC key ready for a MAC operation: resolved, authorized, right usage, state and
    /// algorithm. Returns the entry and the digest size in bits.
    async fn mac_key(
        &self,
        caller: &Caller,
        key_id: &str,
        op: Op,
        algorithm: &str,
        message: &[u8],
    ) -> Result<(std::sync::Arc<KeyEntry>, u16)> {
        if message.is_empty() || message.len() > MAX_MAC_MESSAGE {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length between 1 and {MAX_MAC_MESSAGE}"
            )));
        }
        let e = self.resolve(caller, key_id, true, op.action()).await?;
        let arn = self.key_arn(&e.account, &e.id);
        let Some(own) = e.doc.spec.mac_algorithm() else {
            return Err(Error::InvalidKeyUsage(format!(
                "{arn} key usage is {} which is not valid for this operation.",
                e.doc.usage.as_str()
            )));
        };
        op.check(e.doc.state, &arn)?;
        if algorithm != own {
            return Err(Error::InvalidKeyUsage(format!(
                "The MAC algorithm {algorithm} is not valid for {arn}, whose key spec is {}.",
                e.doc.spec.as_str()
            )));
        }
        let bits = own
            .strip_prefix("HMAC_SHA_")
            .and_then(|b| b.parse().ok())
            .unwrap_or(256);
        Ok((e, bits))
    }

    /// GenerateMac: the HMAC of `message` under the key's current material; (MAC, key ARN).
    pub async fn generate_mac(
        &self,
        caller: &Caller,
        key_id: &str,
        message: &[u8],
        algorithm: &str,
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, String)> {
        let (e, bits) = self
            .mac_key(caller, key_id, Op::GenerateMac, algorithm, message)
            .await?;
        let m = e.current()?;
        let mac = coffer_crypto::hmac(bits, m.secret.expose(), message)
            .ok_or_else(|| Error::Internal(format!("no HMAC of {bits} bits")))?;
        self.used(&e, "GenerateMac", caller, now);
        Ok((mac, self.key_arn(&e.account, &e.id)))
    }

    /// VerifyMac: `Ok(key ARN)` if `mac` is the HMAC of `message` under the key,
    /// `KMSInvalidMacException` otherwise.
    pub async fn verify_mac(
        &self,
        caller: &Caller,
        key_id: &str,
        message: &[u8],
        mac: &[u8],
        algorithm: &str,
        now: OffsetDateTime,
    ) -> Result<String> {
        let (e, bits) = self
            .mac_key(caller, key_id, Op::VerifyMac, algorithm, message)
            .await?;
        let m = e.current()?;
        let expected = coffer_crypto::hmac(bits, m.secret.expose(), message)
            .ok_or_else(|| Error::Internal(format!("no HMAC of {bits} bits")))?;
        self.used(&e, "VerifyMac", caller, now);
        if coffer_crypto::equal(&expected, mac) {
            Ok(self.key_arn(&e.account, &e.id))
        } else {
            Err(Error::InvalidMac)
        }
    }
}

/// A data key pair: the public key (DER SPKI), the private key (PKCS#8) sealed under a
/// symmetric KMS key, and, unless asked without, the private key in plaintext.
#[derive(Debug)]
pub struct DataKeyPair {
    pub key_arn: String,
    pub public_der: Vec<u8>,
    pub private_ciphertext: Vec<u8>,
    pub private_plaintext: Option<Secret>,
}

impl Kms {
    /// GenerateDataKeyPair(WithoutPlaintext): a fresh key pair of `pair_spec`
    /// (`RSA_2048`, `ECC_NIST_P256`, ...) whose private key is sealed under the symmetric
    /// key `key_id`, bound to `context` like any ciphertext.
    pub async fn generate_data_key_pair(
        &self,
        caller: &Caller,
        key_id: &str,
        pair_spec: &str,
        context: &BTreeMap<String, String>,
        with_plaintext: bool,
        now: OffsetDateTime,
    ) -> Result<DataKeyPair> {
        let spec = crate::KeySpec::parse(pair_spec)
            .and_then(crate::KeySpec::asym)
            .ok_or_else(|| {
                Error::Validation(format!(
                    "1 validation error detected: Value '{pair_spec}' at 'keyPairSpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1]"
                ))
            })?;
        let op = if with_plaintext {
            Op::GenerateDataKeyPair
        } else {
            Op::GenerateDataKeyPairWithoutPlaintext
        };
        let e = self.crypto_key(caller, key_id, op, context).await?;
        let private = crate::generate_key_pair(spec).await?;
        let public_der = coffer_crypto::asym::public_key_der(spec, &private)
            .map_err(|x| Error::Internal(format!("exporting a public key: {x}")))?;
        let (blob, _) = self.seal_with(&e, context, private.expose())?;
        self.used(&e, op.action().trim_start_matches("kms:"), caller, now);
        Ok(DataKeyPair {
            key_arn: self.key_arn(&e.account, &e.id),
            public_der,
            private_ciphertext: blob,
            private_plaintext: with_plaintext.then_some(private),
        })
    }
}

/// A signing request: what to sign or check, and how.
#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    pub key_id: &'a str,
    pub message: &'a [u8],
    /// `DIGEST`: `message` is already the hash.
    pub is_digest: bool,
    pub algorithm: &'a str,
}

/// A key's public half, as GetPublicKey describes it.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub key_arn: String,
    /// DER SubjectPublicKeyInfo.
    pub der: Vec<u8>,
    pub spec: crate::KeySpec,
    pub usage: KeyUsage,
    /// SigningAlgorithms for SIGN_VERIFY keys, EncryptionAlgorithms for ENCRYPT_DECRYPT.
    pub algorithms: &'static [&'static str],
}

impl Kms {
    /// A signing key ready for `op`: resolved, authorized, asymmetric, SIGN_VERIFY, usable.
    async fn signing_key(
        &self,
        caller: &Caller,
        key_id: &str,
        op: Op,
    ) -> Result<(std::sync::Arc<KeyEntry>, coffer_crypto::asym::Spec)> {
        let e = self.resolve(caller, key_id, true, op.action()).await?;
        let arn = self.key_arn(&e.account, &e.id);
        let spec = match (e.doc.spec.asym(), e.doc.usage) {
            (Some(s), KeyUsage::SignVerify) => s,
            _ => {
                return Err(Error::InvalidKeyUsage(format!(
                    "{arn} key usage is {} which is not valid for this operation.",
                    e.doc.usage.as_str()
                )));
            }
        };
        op.check(e.doc.state, &arn)?;
        Ok((e, spec))
    }

    fn asym_error(e: coffer_crypto::asym::AsymError, arn: &str, algorithm: &str) -> Error {
        use coffer_crypto::asym::AsymError;
        match e {
            AsymError::Algorithm => Error::InvalidKeyUsage(format!(
                "The signing algorithm {algorithm} is not valid for {arn}."
            )),
            AsymError::DigestLength => Error::Validation(format!(
                "Digest is invalid length for algorithm {algorithm}."
            )),
            AsymError::Key => Error::Internal(format!("the material of {arn} cannot be used")),
            AsymError::PeerKey => Error::Validation("The public key is not valid.".into()),
        }
    }

    fn check_message(message: &[u8]) -> Result<()> {
        if message.is_empty() || message.len() > MAX_PLAINTEXT {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length between 1 and {MAX_PLAINTEXT}"
            )));
        }
        Ok(())
    }

    /// Sign: the key's signature of the message; (signature, key ARN).
    pub async fn sign(
        &self,
        caller: &Caller,
        req: &SignRequest<'_>,
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, String)> {
        Self::check_message(req.message)?;
        let (e, spec) = self.signing_key(caller, req.key_id, Op::Sign).await?;
        let arn = self.key_arn(&e.account, &e.id);
        let sig = coffer_crypto::asym::sign(
            spec,
            &e.current()?.secret,
            req.algorithm,
            req.message,
            req.is_digest,
        )
        .map_err(|x| Self::asym_error(x, &arn, req.algorithm))?;
        self.used(&e, "Sign", caller, now);
        Ok((sig, arn))
    }

    /// Verify: `Ok(key ARN)` if the signature is the key's, KMSInvalidSignatureException
    /// otherwise.
    pub async fn verify(
        &self,
        caller: &Caller,
        req: &SignRequest<'_>,
        signature: &[u8],
        now: OffsetDateTime,
    ) -> Result<String> {
        Self::check_message(req.message)?;
        let (e, spec) = self.signing_key(caller, req.key_id, Op::Verify).await?;
        let arn = self.key_arn(&e.account, &e.id);
        let ok = coffer_crypto::asym::verify(
            spec,
            &e.current()?.secret,
            req.algorithm,
            req.message,
            req.is_digest,
            signature,
        )
        .map_err(|x| Self::asym_error(x, &arn, req.algorithm))?;
        self.used(&e, "Verify", caller, now);
        if ok {
            Ok(arn)
        } else {
            Err(Error::InvalidSignature)
        }
    }

    /// An RSA ENCRYPT_DECRYPT key ready for `op`.
    async fn rsa_key(
        &self,
        caller: &Caller,
        key_id: &str,
        op: Op,
    ) -> Result<std::sync::Arc<KeyEntry>> {
        let e = self.resolve(caller, key_id, true, op.action()).await?;
        let arn = self.key_arn(&e.account, &e.id);
        let rsa = e.doc.spec.as_str().starts_with("RSA_");
        if !rsa || e.doc.usage != KeyUsage::EncryptDecrypt {
            return Err(Error::InvalidKeyUsage(format!(
                "{arn} key usage is {} which is not valid for RSAES_OAEP encryption.",
                e.doc.usage.as_str()
            )));
        }
        op.check(e.doc.state, &arn)?;
        Ok(e)
    }

    fn rsa_error(x: coffer_crypto::asym::RsaCryptError, arn: &str, algorithm: &str) -> Error {
        use coffer_crypto::asym::RsaCryptError as R;
        match x {
            R::Algorithm => Error::InvalidKeyUsage(format!(
                "The encryption algorithm {algorithm} is not valid for {arn}."
            )),
            R::TooLong(max) => Error::Validation(format!(
                "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to {max} for {algorithm}"
            )),
            R::Decrypt => Error::InvalidCiphertext,
            R::Key => Error::Internal(format!("the material of {arn} cannot be used")),
        }
    }

    /// Encrypt with an RSA key (RSAES_OAEP_SHA_1/SHA_256): (ciphertext, key ARN).
    pub async fn rsa_encrypt(
        &self,
        caller: &Caller,
        key_id: &str,
        plaintext: &Secret,
        algorithm: &str,
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, String)> {
        let e = self.rsa_key(caller, key_id, Op::Encrypt).await?;
        let arn = self.key_arn(&e.account, &e.id);
        let c =
            coffer_crypto::asym::rsa_encrypt(&e.current()?.secret, algorithm, plaintext.expose())
                .map_err(|x| Self::rsa_error(x, &arn, algorithm))?;
        self.used(&e, "Encrypt", caller, now);
        Ok((c, arn))
    }

    /// Decrypt with an RSA key: AWS requires the key to be named.
    pub async fn rsa_decrypt(
        &self,
        caller: &Caller,
        key_id: &str,
        ciphertext: &[u8],
        algorithm: &str,
        now: OffsetDateTime,
    ) -> Result<Decrypted> {
        let e = self.rsa_key(caller, key_id, Op::Decrypt).await?;
        let arn = self.key_arn(&e.account, &e.id);
        let m = e.current()?;
        let plaintext = coffer_crypto::asym::rsa_decrypt(&m.secret, algorithm, ciphertext)
            .map_err(|x| Self::rsa_error(x, &arn, algorithm))?;
        self.used(&e, "Decrypt", caller, now);
        Ok(Decrypted {
            key_arn: arn,
            plaintext,
            material_id: m.doc.material_id.clone(),
        })
    }

    /// DeriveSharedSecret (ECDH) with a KEY_AGREEMENT key and a peer's public key:
    /// (shared secret, key ARN).
    pub async fn derive_shared_secret(
        &self,
        caller: &Caller,
        key_id: &str,
        algorithm: &str,
        peer_public_key: &[u8],
        now: OffsetDateTime,
    ) -> Result<(Secret, String)> {
        let e = self
            .resolve(caller, key_id, true, Op::DeriveSharedSecret.action())
            .await?;
        let arn = self.key_arn(&e.account, &e.id);
        let spec = match (e.doc.spec.asym(), e.doc.usage) {
            (Some(s), KeyUsage::KeyAgreement) => s,
            _ => {
                return Err(Error::InvalidKeyUsage(format!(
                    "{arn} key usage is {} which is not valid for DeriveSharedSecret.",
                    e.doc.usage.as_str()
                )));
            }
        };
        Op::DeriveSharedSecret.check(e.doc.state, &arn)?;
        if algorithm != "ECDH" {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{algorithm}' at 'keyAgreementAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [ECDH]"
            )));
        }
        let secret = coffer_crypto::asym::ecdh(spec, &e.current()?.secret, peer_public_key)
            .map_err(|x| match x {
                coffer_crypto::asym::AsymError::PeerKey => Error::Validation(format!(
                    "The public key is not a valid {} public key.",
                    e.doc.spec.as_str()
                )),
                other => Self::asym_error(other, &arn, algorithm),
            })?;
        self.used(&e, "DeriveSharedSecret", caller, now);
        Ok((secret, arn))
    }

    /// GetPublicKey: the public half of an asymmetric key.
    pub async fn get_public_key(&self, caller: &Caller, key_id: &str) -> Result<PublicKey> {
        let e = self
            .resolve(caller, key_id, true, Op::GetPublicKey.action())
            .await?;
        let arn = self.key_arn(&e.account, &e.id);
        let Some(spec) = e.doc.spec.asym() else {
            return Err(Error::UnsupportedOperation(format!(
                "{arn} is not an asymmetric key: it has no public key."
            )));
        };
        Op::GetPublicKey.check(e.doc.state, &arn)?;
        let der = coffer_crypto::asym::public_key_der(spec, &e.current()?.secret)
            .map_err(|x| Self::asym_error(x, &arn, ""))?;
        Ok(PublicKey {
            key_arn: arn,
            der,
            spec: e.doc.spec,
            usage: e.doc.usage,
            algorithms: match e.doc.usage {
                KeyUsage::EncryptDecrypt => coffer_crypto::asym::RSA_ENCRYPTION_ALGORITHMS,
                KeyUsage::KeyAgreement => &["ECDH"],
                _ => spec.signing_algorithms(),
            },
        })
    }
}
