//! Bring-your-own-key operations on the wire: GetParametersForImport, ImportKeyMaterial
//! and DeleteImportedKeyMaterial. The encrypted key material and the import token are
//! opaque blobs here; only the KMS opens them.

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use coffer_kms::{Caller, ImportMaterial, Kms};

use crate::error::{WireError, to_wire};
use crate::operation::Import;
use crate::ops::ok;
use crate::request::{Answer, Request};
use crate::wire::{Blob, b64, epoch};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ParametersReq {
    key_id: String,
    wrapping_algorithm: String,
    wrapping_key_spec: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportReq {
    key_id: String,
    import_token: Blob,
    encrypted_key_material: Blob,
    /// Seconds since the epoch (the JSON protocol's timestamps).
    valid_to: Option<Value>,
    expiration_model: Option<String>,
    import_type: Option<String>,
    key_material_id: Option<String>,
    key_material_description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteReq {
    key_id: String,
    key_material_id: Option<String>,
}

/// A JSON protocol timestamp: epoch seconds (a number, or a string of one).
fn timestamp(v: &Value) -> Result<OffsetDateTime, WireError> {
    let secs = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    };
    secs.filter(|s| s.is_finite())
        .and_then(|s| OffsetDateTime::from_unix_timestamp_nanos((s * 1e9) as i128).ok())
        .ok_or_else(|| WireError::serialization("ValidTo is not a valid timestamp"))
}

pub async fn run(
    kms: &Kms,
    op: Import,
    req: &Request<'_>,
    caller: &Caller,
    now: OffsetDateTime,
) -> Result<Answer, WireError> {
    let e = to_wire;
    match op {
        Import::GetParametersForImport => {
            let r: ParametersReq = req.input()?;
            let p = kms
                .get_parameters_for_import(
                    caller,
                    &r.key_id,
                    &r.wrapping_algorithm,
                    &r.wrapping_key_spec,
                    now,
                )
                .await
                .map_err(e)?;
            ok(json!({
                "KeyId": p.key_arn,
                "ImportToken": b64(&p.import_token),
                "PublicKey": b64(&p.public_key),
                "ParametersValidTo": epoch(p.valid_to),
            }))
        }
        Import::ImportKeyMaterial => {
            let r: ImportReq = req.input()?;
            if r.key_material_description
                .as_ref()
                .is_some_and(|d| d.len() > 256)
            {
                return Err(WireError::validation(
                    "1 validation error detected: Value at 'keyMaterialDescription' failed to satisfy constraint: Member must have length less than or equal to 256",
                ));
            }
            let valid_to = r.valid_to.as_ref().map(timestamp).transpose()?;
            let (arn, material_id) = kms
                .import_key_material(
                    caller,
                    &r.key_id,
                    ImportMaterial {
                        import_token: r.import_token.0,
                        encrypted_key_material: r.encrypted_key_material.0,
                        expiration_model: r.expiration_model,
                        valid_to,
                        import_type: r.import_type,
                        key_material_id: r.key_material_id,
                    },
                    now,
                )
                .await
                .map_err(e)?;
            ok(json!({ "KeyId": arn, "KeyMaterialId": material_id }))
        }
        Import::DeleteImportedKeyMaterial => {
            let r: DeleteReq = req.input()?;
            let (arn, material_id) = kms
                .delete_imported_key_material(caller, &r.key_id, r.key_material_id.as_deref())
                .await
                .map_err(e)?;
            let mut v = json!({ "KeyId": arn });
            if let Some(id) = material_id {
                v["KeyMaterialId"] = json!(id);
            }
            ok(v)
        }
    }
}
