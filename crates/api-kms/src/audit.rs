//! What a KMS call contributes to its audit record beyond its parameters (which
//! [`crate::request::Request::audited`] reads): the key as a resource, and the response
//! elements CloudTrail shows (key creation, deletion scheduling, grants), which handlers
//! attach to their [`Answer`] in AWS's camelCase. No reply is parsed: replies that carry a
//! secret (plaintext data keys, random bytes) are never looked into.

use serde_json::{Map, Value};

use coffer_audit::Filled;
use coffer_audit::record::Resource;

use crate::request::Answer;

fn lower_first(k: &str) -> String {
    let mut c = k.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// AWS's response elements use camelCase names.
pub fn camel(v: &Value) -> Value {
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

/// Fills the record's resources and response elements from a successful answer; the key
/// is the one the reply names, else the one the request named by ARN.
pub fn outcome(f: &mut Filled, answer: &mut Answer, named: Option<&str>) {
    f.response_elements = answer.elements.take();
    let arn = answer.key_arn.take().or_else(|| {
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
    use serde_json::json;

    #[test]
    fn response_elements_are_camel_case() {
        assert_eq!(
            camel(&json!({"KeyMetadata": {"KeyId": "k", "EncryptionAlgorithms": ["A"]}})),
            json!({"keyMetadata": {"keyId": "k", "encryptionAlgorithms": ["A"]}})
        );
    }
}
