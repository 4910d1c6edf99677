//! The KMS operations of HMAC and asymmetric keys on the wire: Sign, Verify,
//! GetPublicKey, GenerateMac, VerifyMac, GenerateDataKeyPair(WithoutPlaintext) and
//! DeriveSharedSecret. (RSA Encrypt/Decrypt share the symmetric operations' requests and
//! stay in `ops.rs`.) Messages and secrets are held in zeroizing buffers.

use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use coffer_kms::{Caller, Kms};

use crate::error::{WireError, to_wire};
use crate::operation::Asym;
use crate::ops::{KeyIdOnly, dry_run, ok};
use crate::request::{Answer, Request};
use crate::wire::{Blob, Context, SecretBlob, b64};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeriveReq {
    key_id: String,
    key_agreement_algorithm: String,
    public_key: Blob,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyPairReq {
    key_id: String,
    key_pair_spec: String,
    encryption_context: Option<Context>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignReq {
    key_id: String,
    /// The message may be sensitive: held in a zeroizing buffer.
    message: SecretBlob,
    message_type: Option<String>,
    signing_algorithm: String,
    signature: Option<Blob>,
    dry_run: Option<bool>,
}

impl SignReq {
    fn is_digest(&self) -> Result<bool, WireError> {
        match self.message_type.as_deref() {
            None | Some("RAW") => Ok(false),
            Some("DIGEST") => Ok(true),
            Some(other) => Err(WireError::validation(format!(
                "1 validation error detected: Value '{other}' at 'messageType' failed to satisfy constraint: Member must satisfy enum value set: [RAW, DIGEST]"
            ))),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MacReq {
    key_id: String,
    /// The message may be sensitive: held in a zeroizing buffer.
    message: SecretBlob,
    mac_algorithm: String,
    mac: Option<Blob>,
    dry_run: Option<bool>,
}

pub async fn run(
    kms: &Kms,
    op: Asym,
    req: &Request<'_>,
    caller: &Caller,
    now: OffsetDateTime,
) -> Result<Answer, WireError> {
    let e = to_wire;
    match op {
        Asym::Sign | Asym::Verify => {
            let r: SignReq = req.input()?;
            let req = coffer_kms::SignRequest {
                key_id: &r.key_id,
                message: r.message.0.expose(),
                is_digest: r.is_digest()?,
                algorithm: &r.signing_algorithm,
            };
            let out = if op == Asym::Sign {
                let (sig, arn) = kms.sign(caller, &req, now).await.map_err(e)?;
                json!({ "KeyId": arn, "Signature": b64(&sig), "SigningAlgorithm": r.signing_algorithm })
            } else {
                let sig = r.signature.as_ref().ok_or_else(|| {
                    WireError::validation("1 validation error detected: Value null at 'signature' failed to satisfy constraint: Member must not be null")
                })?;
                let arn = kms.verify(caller, &req, &sig.0, now).await.map_err(e)?;
                json!({ "KeyId": arn, "SignatureValid": true, "SigningAlgorithm": r.signing_algorithm })
            };
            dry_run(r.dry_run)?;
            ok(out)
        }
        Asym::GenerateDataKeyPair | Asym::GenerateDataKeyPairWithoutPlaintext => {
            let r: DataKeyPairReq = req.input()?;
            let ctx = r.encryption_context.unwrap_or_default();
            let p = kms
                .generate_data_key_pair(
                    caller,
                    &r.key_id,
                    &r.key_pair_spec,
                    &ctx,
                    op == Asym::GenerateDataKeyPair,
                    now,
                )
                .await
                .map_err(e)?;
            dry_run(r.dry_run)?;
            let v = json!({
                "KeyId": p.key_arn,
                "KeyPairSpec": r.key_pair_spec,
                "PublicKey": b64(&p.public_der),
                "PrivateKeyCiphertextBlob": b64(&p.private_ciphertext),
            });
            Ok(Answer::render(
                &v,
                p.private_plaintext
                    .as_ref()
                    .map(|s| ("PrivateKeyPlaintext", s)),
            ))
        }
        Asym::DeriveSharedSecret => {
            let r: DeriveReq = req.input()?;
            let (secret, arn) = kms
                .derive_shared_secret(
                    caller,
                    &r.key_id,
                    &r.key_agreement_algorithm,
                    &r.public_key.0,
                    now,
                )
                .await
                .map_err(e)?;
            dry_run(r.dry_run)?;
            let v = json!({
                "KeyId": arn,
                "KeyAgreementAlgorithm": r.key_agreement_algorithm,
                "KeyOrigin": "AWS_KMS",
            });
            Ok(Answer::render(&v, Some(("SharedSecret", &secret))))
        }
        Asym::GetPublicKey => {
            let r: KeyIdOnly = req.input()?;
            let p = kms.get_public_key(caller, &r.key_id).await.map_err(e)?;
            ok(json!({
                "KeyId": p.key_arn,
                "PublicKey": b64(&p.der),
                "CustomerMasterKeySpec": p.spec.as_str(),
                "KeySpec": p.spec.as_str(),
                "KeyUsage": p.usage.as_str(),
                match p.usage {
                    coffer_kms::KeyUsage::EncryptDecrypt => "EncryptionAlgorithms",
                    coffer_kms::KeyUsage::KeyAgreement => "KeyAgreementAlgorithms",
                    _ => "SigningAlgorithms",
                }: p.algorithms,
            }))
        }
        Asym::GenerateMac => {
            let r: MacReq = req.input()?;
            let (mac, arn) = kms
                .generate_mac(
                    caller,
                    &r.key_id,
                    r.message.0.expose(),
                    &r.mac_algorithm,
                    now,
                )
                .await
                .map_err(e)?;
            dry_run(r.dry_run)?;
            ok(json!({ "Mac": b64(&mac), "MacAlgorithm": r.mac_algorithm, "KeyId": arn }))
        }
        Asym::VerifyMac => {
            let r: MacReq = req.input()?;
            let mac = r.mac.ok_or_else(|| {
                WireError::validation("1 validation error detected: Value null at 'mac' failed to satisfy constraint: Member must not be null")
            })?;
            let arn = kms
                .verify_mac(
                    caller,
                    &r.key_id,
                    r.message.0.expose(),
                    &mac.0,
                    &r.mac_algorithm,
                    now,
                )
                .await
                .map_err(e)?;
            dry_run(r.dry_run)?;
            ok(json!({ "KeyId": arn, "MacValid": true, "MacAlgorithm": r.mac_algorithm }))
        }
    }
}
