//! What a KMS call contributes to its audit record: the request parameters CloudTrail
//! shows for KMS (a fixed list; `Plaintext`, `CiphertextBlob` and grant tokens are never
//! read), the key as a resource, and the response elements of key creation, deletion
//! scheduling and grants. Responses that carry a secret (plaintext data keys, random
//! bytes) are never parsed, and of the others only those three.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use coffer_audit::Filled;
use coffer_audit::record::Resource;

use crate::operation::{Core, Grants, Operation};

/// The request fields CloudTrail records for KMS calls. Everything else in a request
/// (`Plaintext`, `CiphertextBlob`, `GrantTokens`) is skipped unread by serde.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Params {
    key_id: Option<Value>,
    encryption_context: Option<Value>,
    key_spec: Option<Value>,
    number_of_bytes: Option<Value>,
    description: Option<Value>,
    key_usage: Option<Value>,
    customer_master_key_spec: Option<Value>,
    origin: Option<Value>,
    alias_name: Option<Value>,
    target_key_id: Option<Value>,
    pending_window_in_days: Option<Value>,
    grantee_principal: Option<Value>,
    retiring_principal: Option<Value>,
    operations: Option<Value>,
    constraints: Option<Value>,
    name: Option<Value>,
    grant_id: Option<Value>,
    policy_name: Option<Value>,
    policy: Option<Value>,
    destination_key_id: Option<Value>,
    source_key_id: Option<Value>,
    encryption_algorithm: Option<Value>,
    mac_algorithm: Option<Value>,
    signing_algorithm: Option<Value>,
    message_type: Option<Value>,
    key_pair_spec: Option<Value>,
    key_agreement_algorithm: Option<Value>,
    rotation_period_in_days: Option<Value>,
    tag_keys: Option<Value>,
    tags: Option<Value>,
    source_encryption_context: Option<Value>,
    destination_encryption_context: Option<Value>,
    limit: Option<Value>,
    marker: Option<Value>,
    wrapping_algorithm: Option<Value>,
    wrapping_key_spec: Option<Value>,
    expiration_model: Option<Value>,
    valid_to: Option<Value>,
    import_type: Option<Value>,
    key_material_id: Option<Value>,
}

/// What the trail records of a request: its parameters, and the key it names.
pub struct Requested {
    pub parameters: Option<Value>,
    /// `KeyId`, else `TargetKeyId`.
    pub named_key: Option<String>,
}

/// Reads the request's audit view once (secrets are skipped unread).
pub fn request(body: &[u8]) -> Requested {
    let p: Params = serde_json::from_slice(body).unwrap_or_default();
    let named_key = p
        .key_id
        .as_ref()
        .or(p.target_key_id.as_ref())
        .and_then(|v| v.as_str().map(str::to_owned));
    Requested {
        parameters: parameters(p),
        named_key,
    }
}

fn parameters(p: Params) -> Option<Value> {
    coffer_audit::record::params([
        ("keyId", p.key_id),
        ("encryptionContext", p.encryption_context),
        ("keySpec", p.key_spec),
        ("numberOfBytes", p.number_of_bytes),
        ("description", p.description),
        ("keyUsage", p.key_usage),
        ("customerMasterKeySpec", p.customer_master_key_spec),
        ("origin", p.origin),
        ("aliasName", p.alias_name),
        ("targetKeyId", p.target_key_id),
        ("pendingWindowInDays", p.pending_window_in_days),
        ("granteePrincipal", p.grantee_principal),
        ("retiringPrincipal", p.retiring_principal),
        ("operations", p.operations),
        ("constraints", p.constraints),
        ("name", p.name),
        ("grantId", p.grant_id),
        ("policyName", p.policy_name),
        ("policy", p.policy),
        ("destinationKeyId", p.destination_key_id),
        ("sourceKeyId", p.source_key_id),
        ("encryptionAlgorithm", p.encryption_algorithm),
        ("macAlgorithm", p.mac_algorithm),
        ("signingAlgorithm", p.signing_algorithm),
        ("messageType", p.message_type),
        ("keyPairSpec", p.key_pair_spec),
        ("keyAgreementAlgorithm", p.key_agreement_algorithm),
        ("rotationPeriodInDays", p.rotation_period_in_days),
        ("tagKeys", p.tag_keys),
        ("tags", p.tags),
        ("sourceEncryptionContext", p.source_encryption_context),
        (
            "destinationEncryptionContext",
            p.destination_encryption_context,
        ),
        ("limit", p.limit),
        ("marker", p.marker),
        ("wrappingAlgorithm", p.wrapping_algorithm),
        ("wrappingKeySpec", p.wrapping_key_spec),
        ("expirationModel", p.expiration_model),
        ("validTo", p.valid_to),
        ("importType", p.import_type),
        ("keyMaterialId", p.key_material_id),
    ])
}

/// The value of the first `"KeyId":"..."` in a rendered reply, found without parsing it.
fn key_id_in(rendered: &[u8]) -> Option<String> {
    const NEEDLE: &[u8] = b"\"KeyId\":\"";
    let start = rendered.windows(NEEDLE.len()).position(|w| w == NEEDLE)? + NEEDLE.len();
    let len = rendered[start..].iter().position(|b| *b == b'"')?;
    String::from_utf8(rendered[start..start + len].to_vec()).ok()
}

fn lower_first(k: &str) -> String {
    let mut c = k.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// AWS's response elements use camelCase names.
fn camel(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (lower_first(k), camel(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(camel).collect()),
        other => other.clone(),
    }
}

/// Fills the record's resources and response elements from a successful reply. Only the
/// three replies CloudTrail shows elements of are parsed (CreateKey, ScheduleKeyDeletion and
/// CancelKeyDeletion, and of CreateGrant the grant id alone: its token is a credential);
/// the key's ARN is found in the others without parsing them (they may hold secrets).
pub fn outcome(f: &mut Filled, op: Operation, rendered: &[u8], named: Option<&str>) {
    let mut arn = key_id_in(rendered);
    let reply = || serde_json::from_slice::<Value>(rendered).unwrap_or(Value::Null);
    match op {
        Operation::Core(Core::CreateKey) => {
            let reply = reply();
            arn = reply["KeyMetadata"]["Arn"].as_str().map(str::to_owned);
            f.response_elements = Some(json!({ "keyMetadata": camel(&reply["KeyMetadata"]) }));
        }
        Operation::Core(Core::ScheduleKeyDeletion | Core::CancelKeyDeletion) => {
            f.response_elements = Some(camel(&reply()));
        }
        Operation::Grant(Grants::CreateGrant) => {
            f.response_elements = Some(json!({ "grantId": reply()["GrantId"] }));
        }
        // No response elements in CloudTrail for the others.
        _ => {}
    }
    let arn = arn.filter(|a| a.starts_with("arn:")).or_else(|| {
        named
            .filter(|n| n.starts_with("arn:") && n.contains(":key/"))
            .map(str::to_owned)
    });
    if let Some(arn) = arn {
        f.resources = vec![Resource {
            account_id: arn.split(':').nth(4).map(str::to_owned),
            arn,
            kind: "AWS::KMS::Key".into(),
        }];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_request_fields_are_kept() {
        let body = br#"{"KeyId":"alias/k","Plaintext":"c2VjcmV0","EncryptionContext":{"a":"b"},"GrantTokens":["t"]}"#;
        let r = request(body);
        let p = r.parameters.expect("params");
        assert_eq!(
            p,
            json!({"keyId": "alias/k", "encryptionContext": {"a": "b"}})
        );
        assert_eq!(r.named_key.as_deref(), Some("alias/k"));
        assert_eq!(
            key_id_in(br#"{"CiphertextBlob":"x","KeyId":"arn:aws:kms:us-east-1:1:key/k","Plaintext":"s"}"#)
                .as_deref(),
            Some("arn:aws:kms:us-east-1:1:key/k")
        );
    }
}
