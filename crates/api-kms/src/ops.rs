//! Every KMS operation Coffer serves: parse its JSON, call the domain, render the reply.

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use coffer_kms::{Caller, CreateKey, DataKeyRequest, KeyMetadata, Kms};

use crate::error::{WireError, to_wire};
use crate::operation::{Core, Operation};
use crate::request::{Answer, Request};
use crate::wire::{Blob, Context, SecretBlob, b64, epoch};

pub(crate) fn ok(v: Value) -> Result<Answer, WireError> {
    Ok(Answer::render(&v, None))
}

fn metadata(m: &KeyMetadata) -> Value {
    let mut v = json!({
        "AWSAccountId": m.account_id,
        "KeyId": m.key_id,
        "Arn": m.arn,
        "CreationDate": epoch(m.created),
        "Enabled": m.enabled,
        "Description": m.description,
        "KeyUsage": m.usage.as_str(),
        "KeyState": m.state.as_str(),
        "Origin": m.origin.as_str(),
        "KeyManager": m.manager.as_str(),
        "CustomerMasterKeySpec": m.spec.as_str(),
        "KeySpec": m.spec.as_str(),

        "MultiRegion": false,
    });
    if let Some(id) = &m.current_material_id {
        v["CurrentKeyMaterialId"] = json!(id);
    }
    if let Some(x) = m.expiration_model {
        v["ExpirationModel"] = json!(x.as_str());
    }
    if let Some(t) = m.valid_to {
        v["ValidTo"] = epoch(t);
    }
    match (m.spec.mac_algorithm(), m.spec.asym(), m.usage) {
        (Some(mac), _, _) => v["MacAlgorithms"] = json!([mac]),
        (None, Some(_), coffer_kms::KeyUsage::EncryptDecrypt) => {
            v["EncryptionAlgorithms"] = json!(coffer_crypto::asym::RSA_ENCRYPTION_ALGORITHMS)
        }
        (None, Some(_), coffer_kms::KeyUsage::KeyAgreement) => {
            v["KeyAgreementAlgorithms"] = json!(["ECDH"])
        }
        (None, Some(a), _) => v["SigningAlgorithms"] = json!(a.signing_algorithms()),
        (None, None, _) => v["EncryptionAlgorithms"] = json!(["SYMMETRIC_DEFAULT"]),
    }
    if let Some(d) = m.deletion_date {
        v["DeletionDate"] = epoch(d);
    }
    if let Some(w) = m.pending_window_days {
        v["PendingDeletionWindowInDays"] = json!(w);
    }
    v
}

fn check_algorithm(a: Option<&str>) -> Result<(), WireError> {
    match a {
        None | Some("SYMMETRIC_DEFAULT") => Ok(()),
        Some(other) => Err(WireError::new(
            "InvalidKeyUsageException",
            format!(
                "The encryption algorithm {other} is not valid for a symmetric encryption KMS key."
            ),
        )),
    }
}

pub(crate) fn dry_run(flag: Option<bool>) -> Result<(), WireError> {
    if flag == Some(true) {
        return Err(WireError::new(
            "DryRunOperationException",
            "The request would have succeeded, but the DryRun option is set.",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct KeyIdOnly {
    pub(crate) key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagIn {
    tag_key: String,
    tag_value: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateKeyReq {
    policy: Option<String>,
    description: Option<String>,
    key_usage: Option<String>,
    customer_master_key_spec: Option<String>,
    key_spec: Option<String>,
    origin: Option<String>,
    custom_key_store_id: Option<String>,
    tags: Option<Vec<TagIn>>,
    multi_region: Option<bool>,
    xks_key_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Paging {
    key_id: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
    include_key_material: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateDescriptionReq {
    key_id: String,
    description: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleReq {
    key_id: String,
    pending_window_in_days: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptReq {
    key_id: String,
    plaintext: SecretBlob,
    encryption_context: Option<Context>,
    encryption_algorithm: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptReq {
    ciphertext_blob: Blob,
    encryption_context: Option<Context>,
    key_id: Option<String>,
    encryption_algorithm: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReEncryptReq {
    ciphertext_blob: Blob,
    source_encryption_context: Option<Context>,
    source_key_id: Option<String>,
    destination_key_id: String,
    destination_encryption_context: Option<Context>,
    source_encryption_algorithm: Option<String>,
    destination_encryption_algorithm: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyReq {
    key_id: String,
    encryption_context: Option<Context>,
    number_of_bytes: Option<i64>,
    key_spec: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RandomReq {
    number_of_bytes: Option<i64>,
    custom_key_store_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotationReq {
    key_id: String,
    rotation_period_in_days: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasReq {
    alias_name: String,
    target_key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasNameReq {
    alias_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagReq {
    key_id: String,
    tags: Vec<TagIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UntagReq {
    key_id: String,
    tag_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyReq {
    key_id: String,
    policy_name: Option<String>,
    policy: Option<String>,
}

fn page_fields(v: &mut Value, next: Option<String>) {
    v["Truncated"] = json!(next.is_some());
    if let Some(n) = next {
        v["NextMarker"] = json!(n);
    }
}

/// Runs one operation. Returns the rendered JSON reply.
pub async fn run(
    kms: &Kms,
    req: &Request<'_>,
    caller: &Caller,
    now: OffsetDateTime,
) -> Result<Answer, WireError> {
    match req.operation {
        Operation::Core(op) => core(kms, op, req, caller, now).await,
        Operation::Asym(op) => crate::asym::run(kms, op, req, caller, now).await,
        Operation::Grant(op) => crate::grants::run(kms, op, req, caller, now).await,
        Operation::Import(op) => crate::import::run(kms, op, req, caller, now).await,
        Operation::NotYet(name) => Err(WireError::new(
            "UnsupportedOperationException",
            format!("{name} is not supported by this server yet"),
        )),
        Operation::Unknown => Err(WireError::new(
            "UnknownOperationException",
            "The operation named by X-Amz-Target is not a KMS operation",
        )),
    }
}

/// Key management and symmetric cryptography.
async fn core(
    kms: &Kms,
    op: Core,
    req: &Request<'_>,
    caller: &Caller,
    now: OffsetDateTime,
) -> Result<Answer, WireError> {
    let e = to_wire;
    match op {
        Core::CreateKey => {
            let r: CreateKeyReq = req.input()?;
            if r.custom_key_store_id.is_some() || r.xks_key_id.is_some() {
                return Err(WireError::new(
                    "UnsupportedOperationException",
                    "Custom key stores are not supported by this server",
                ));
            }
            let m = kms
                .create_key(
                    caller,
                    CreateKey {
                        description: r.description,
                        key_usage: r.key_usage,
                        key_spec: r.key_spec.or(r.customer_master_key_spec),
                        origin: r.origin,
                        policy: r.policy,
                        tags: r
                            .tags
                            .unwrap_or_default()
                            .into_iter()
                            .map(|t| (t.tag_key, t.tag_value))
                            .collect(),
                        multi_region: r.multi_region.unwrap_or(false),
                    },
                    now,
                )
                .await
                .map_err(e)?;
            let m = metadata(&m);
            let shown = json!({ "keyMetadata": crate::audit::camel(&m) });
            Ok(ok(json!({ "KeyMetadata": m }))?.showing(shown))
        }
        Core::DescribeKey => {
            let r: KeyIdOnly = req.input()?;
            let m = kms.describe_key(caller, &r.key_id).await.map_err(e)?;
            ok(json!({ "KeyMetadata": metadata(&m) }))
        }
        Core::ListKeys => {
            let r: Paging = req.input()?;
            let page = kms
                .list_keys(caller, r.limit, r.marker.as_deref())
                .map_err(e)?;
            let keys: Vec<Value> = page
                .items
                .iter()
                .map(|(id, arn)| json!({ "KeyId": id, "KeyArn": arn }))
                .collect();
            let mut v = json!({ "Keys": keys });
            page_fields(&mut v, page.next_marker);
            ok(v)
        }
        Core::EnableKey => {
            let r: KeyIdOnly = req.input()?;
            kms.enable_key(caller, &r.key_id).await.map_err(e)?;
            ok(json!({}))
        }
        Core::DisableKey => {
            let r: KeyIdOnly = req.input()?;
            kms.disable_key(caller, &r.key_id).await.map_err(e)?;
            ok(json!({}))
        }
        Core::UpdateKeyDescription => {
            let r: UpdateDescriptionReq = req.input()?;
            kms.update_key_description(caller, &r.key_id, &r.description)
                .await
                .map_err(e)?;
            ok(json!({}))
        }
        Core::ScheduleKeyDeletion => {
            let r: ScheduleReq = req.input()?;
            let (arn, when, days) = kms
                .schedule_key_deletion(caller, &r.key_id, r.pending_window_in_days, now)
                .await
                .map_err(e)?;
            let v = json!({
                "KeyId": arn,
                "DeletionDate": epoch(when),
                "KeyState": "PendingDeletion",
                "PendingWindowInDays": days,
            });
            let shown = crate::audit::camel(&v);
            Ok(ok(v)?.showing(shown))
        }
        Core::CancelKeyDeletion => {
            let r: KeyIdOnly = req.input()?;
            let arn = kms
                .cancel_key_deletion(caller, &r.key_id)
                .await
                .map_err(e)?;
            Ok(ok(json!({ "KeyId": arn }))?.showing(json!({ "keyId": arn })))
        }
        Core::GetKeyLastUsage => {
            let r: KeyIdOnly = req.input()?;
            let (arn, last, tracking, created) =
                kms.get_key_last_usage(caller, &r.key_id).await.map_err(e)?;
            let mut v = json!({
                "KeyId": arn,
                "TrackingStartDate": epoch(tracking),
                "KeyCreationDate": epoch(created),
            });
            if let Some(u) = last {
                v["KeyLastUsage"] = json!({
                    "Operation": u.operation,
                    "Timestamp": (u.time_ms as f64) / 1000.0,
                    "KmsRequestId": u.request_id,
                });
            }
            ok(v)
        }
        Core::Encrypt => {
            let r: EncryptReq = req.input()?;
            if let Some(alg) = r
                .encryption_algorithm
                .as_deref()
                .filter(|a| a.starts_with("RSAES_"))
            {
                let (blob, arn) = kms
                    .rsa_encrypt(caller, &r.key_id, &r.plaintext.0, alg, now)
                    .await
                    .map_err(e)?;
                dry_run(r.dry_run)?;
                return ok(json!({
                    "CiphertextBlob": b64(&blob),
                    "KeyId": arn,
                    "EncryptionAlgorithm": alg,
                }));
            }
            check_algorithm(r.encryption_algorithm.as_deref())?;
            let ctx = r.encryption_context.unwrap_or_default();
            let (blob, arn) = kms
                .encrypt(caller, &r.key_id, &r.plaintext.0, &ctx, now)
                .await
                .map_err(e)?;
            dry_run(r.dry_run)?;
            ok(json!({
                "CiphertextBlob": b64(&blob),
                "KeyId": arn,
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
            }))
        }
        Core::Decrypt => {
            let r: DecryptReq = req.input()?;
            if let Some(alg) = r
                .encryption_algorithm
                .as_deref()
                .filter(|a| a.starts_with("RSAES_"))
            {
                let key_id = r.key_id.as_deref().ok_or_else(|| {
                    WireError::validation("KeyId is required to decrypt with an asymmetric KMS key")
                })?;
                let d = kms
                    .rsa_decrypt(caller, key_id, &r.ciphertext_blob.0, alg, now)
                    .await
                    .map_err(e)?;
                dry_run(r.dry_run)?;
                let v = json!({
                    "KeyId": d.key_arn,
                    "EncryptionAlgorithm": alg,
                    "KeyMaterialId": d.material_id,
                });
                return Ok(Answer::render(&v, Some(("Plaintext", &d.plaintext))));
            }
            check_algorithm(r.encryption_algorithm.as_deref())?;
            let ctx = r.encryption_context.unwrap_or_default();
            let d = kms
                .decrypt(caller, &r.ciphertext_blob.0, &ctx, r.key_id.as_deref(), now)
                .await
                .map_err(e)?;
            dry_run(r.dry_run)?;
            let v = json!({
                "KeyId": d.key_arn,
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "KeyMaterialId": d.material_id,
            });
            Ok(Answer::render(&v, Some(("Plaintext", &d.plaintext))))
        }
        Core::ReEncrypt => {
            let r: ReEncryptReq = req.input()?;
            check_algorithm(r.source_encryption_algorithm.as_deref())?;
            check_algorithm(r.destination_encryption_algorithm.as_deref())?;
            let re = kms
                .re_encrypt(
                    caller,
                    &r.ciphertext_blob.0,
                    &r.source_encryption_context.unwrap_or_default(),
                    r.source_key_id.as_deref(),
                    &r.destination_key_id,
                    &r.destination_encryption_context.unwrap_or_default(),
                    now,
                )
                .await
                .map_err(e)?;
            dry_run(r.dry_run)?;
            ok(json!({
                "CiphertextBlob": b64(&re.ciphertext),
                "SourceKeyId": re.source_key_arn,
                "KeyId": re.key_arn,
                "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "SourceKeyMaterialId": re.source_material_id,
                "DestinationKeyMaterialId": re.material_id,
            }))
        }
        Core::GenerateDataKey | Core::GenerateDataKeyWithoutPlaintext => {
            let r: DataKeyReq = req.input()?;
            let ctx = r.encryption_context.unwrap_or_default();
            let dk = kms
                .generate_data_key(
                    caller,
                    &DataKeyRequest {
                        key_id: &r.key_id,
                        key_spec: r.key_spec.as_deref(),
                        number_of_bytes: r.number_of_bytes,
                        context: &ctx,
                        with_plaintext: op == Core::GenerateDataKey,
                    },
                    now,
                )
                .await
                .map_err(e)?;
            dry_run(r.dry_run)?;
            let v = json!({
                "CiphertextBlob": b64(&dk.ciphertext),
                "KeyId": dk.key_arn,
                "KeyMaterialId": dk.material_id,
            });
            Ok(Answer::render(
                &v,
                dk.plaintext.as_ref().map(|p| ("Plaintext", p)),
            ))
        }
        Core::GenerateRandom => {
            let r: RandomReq = req.input()?;
            if r.custom_key_store_id.is_some() {
                return Err(WireError::new(
                    "UnsupportedOperationException",
                    "Custom key stores are not supported by this server",
                ));
            }
            let s = kms.generate_random(r.number_of_bytes).map_err(e)?;
            Ok(Answer::render(&json!({}), Some(("Plaintext", &s))))
        }
        Core::EnableKeyRotation => {
            let r: RotationReq = req.input()?;
            kms.enable_key_rotation(caller, &r.key_id, r.rotation_period_in_days, now)
                .await
                .map_err(e)?;
            ok(json!({}))
        }
        Core::DisableKeyRotation => {
            let r: KeyIdOnly = req.input()?;
            kms.disable_key_rotation(caller, &r.key_id)
                .await
                .map_err(e)?;
            ok(json!({}))
        }
        Core::GetKeyRotationStatus => {
            let r: KeyIdOnly = req.input()?;
            let s = kms
                .get_key_rotation_status(caller, &r.key_id)
                .await
                .map_err(e)?;
            let mut v = json!({ "KeyId": s.key_id, "KeyRotationEnabled": s.enabled });
            if s.enabled {
                if let Some(p) = s.period_days {
                    v["RotationPeriodInDays"] = json!(p);
                }
                if let Some(n) = s.next_rotation {
                    v["NextRotationDate"] = epoch(n);
                }
            }
            ok(v)
        }
        Core::RotateKeyOnDemand => {
            let r: KeyIdOnly = req.input()?;
            let arn = kms
                .rotate_key_on_demand(caller, &r.key_id, now)
                .await
                .map_err(e)?;
            ok(json!({ "KeyId": arn }))
        }
        Core::ListKeyRotations => {
            let r: Paging = req.input()?;
            let key_id = r.key_id.ok_or_else(|| {
                WireError::validation("1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
            })?;
            let page = kms
                .list_key_rotations(
                    caller,
                    &key_id,
                    r.include_key_material.as_deref(),
                    r.limit,
                    r.marker.as_deref(),
                )
                .await
                .map_err(e)?;
            let rotations: Vec<Value> = page
                .items
                .iter()
                .map(|r| {
                    let mut v = json!({
                        "KeyId": r.key_id,
                        "KeyMaterialId": r.material_id,
                        "KeyMaterialState": if r.current { "CURRENT" } else { "NON_CURRENT" },
                    });
                    if let Some(t) = r.rotation_type {
                        v["RotationType"] = json!(t.as_str());
                        v["RotationDate"] = epoch(r.rotation_date);
                    }
                    v
                })
                .collect();
            let about = rotations
                .first()
                .and_then(|r| r["KeyId"].as_str())
                .map(str::to_owned);
            let mut v = json!({ "Rotations": rotations });
            page_fields(&mut v, page.next_marker);
            Ok(ok(v)?.about(about))
        }
        Core::CreateAlias => {
            let r: AliasReq = req.input()?;
            kms.create_alias(caller, &r.alias_name, &r.target_key_id, now)
                .await
                .map_err(e)?;
            ok(json!({}))
        }
        Core::UpdateAlias => {
            let r: AliasReq = req.input()?;
            kms.update_alias(caller, &r.alias_name, &r.target_key_id, now)
                .await
                .map_err(e)?;
            ok(json!({}))
        }
        Core::DeleteAlias => {
            let r: AliasNameReq = req.input()?;
            kms.delete_alias(caller, &r.alias_name).await.map_err(e)?;
            ok(json!({}))
        }
        Core::ListAliases => {
            let r: Paging = req.input()?;
            let page = kms
                .list_aliases(caller, r.key_id.as_deref(), r.limit, r.marker.as_deref())
                .await
                .map_err(e)?;
            let aliases: Vec<Value> = page
                .items
                .iter()
                .map(|a| {
                    let mut v = json!({ "AliasName": a.name, "AliasArn": a.arn });
                    if let Some(t) = &a.target_key_id {
                        v["TargetKeyId"] = json!(t);
                    }
                    if let Some(c) = a.created {
                        v["CreationDate"] = epoch(c);
                    }
                    if let Some(u) = a.updated {
                        v["LastUpdatedDate"] = epoch(u);
                    }
                    v
                })
                .collect();
            let mut v = json!({ "Aliases": aliases });
            page_fields(&mut v, page.next_marker);
            ok(v)
        }
        Core::TagResource => {
            let r: TagReq = req.input()?;
            let tags: Vec<(String, String)> = r
                .tags
                .into_iter()
                .map(|t| (t.tag_key, t.tag_value))
                .collect();
            kms.tag_resource(caller, &r.key_id, &tags)
                .await
                .map_err(e)?;
            ok(json!({}))
        }
        Core::UntagResource => {
            let r: UntagReq = req.input()?;
            kms.untag_resource(caller, &r.key_id, &r.tag_keys)
                .await
                .map_err(e)?;
            ok(json!({}))
        }
        Core::ListResourceTags => {
            let r: Paging = req.input()?;
            let key_id = r.key_id.ok_or_else(|| {
                WireError::validation("1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
            })?;
            let page = kms
                .list_resource_tags(caller, &key_id, r.limit, r.marker.as_deref())
                .await
                .map_err(e)?;
            let tags: Vec<Value> = page
                .items
                .iter()
                .map(|(k, v)| json!({ "TagKey": k, "TagValue": v }))
                .collect();
            let mut v = json!({ "Tags": tags });
            page_fields(&mut v, page.next_marker);
            ok(v)
        }
        Core::GetKeyPolicy => {
            let r: PolicyReq = req.input()?;
            let p = kms
                .get_key_policy(caller, &r.key_id, r.policy_name.as_deref())
                .await
                .map_err(e)?;
            ok(json!({ "Policy": p, "PolicyName": "default" }))
        }
        Core::PutKeyPolicy => {
            let r: PolicyReq = req.input()?;
            let policy = r.policy.ok_or_else(|| {
                WireError::validation("1 validation error detected: Value null at 'policy' failed to satisfy constraint: Member must not be null")
            })?;
            kms.put_key_policy(caller, &r.key_id, r.policy_name.as_deref(), &policy)
                .await
                .map_err(e)?;
            ok(json!({}))
        }
        Core::ListKeyPolicies => {
            let r: Paging = req.input()?;
            let key_id = r.key_id.ok_or_else(|| {
                WireError::validation("1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
            })?;
            let names = kms
                .list_key_policies(caller, &key_id, r.limit)
                .await
                .map_err(e)?;
            ok(json!({ "PolicyNames": names, "Truncated": false }))
        }
    }
}
