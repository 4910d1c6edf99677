//! A KMS call, read once: the operation its `X-Amz-Target` names and its JSON body split
//! once into top-level fields, each kept as the raw JSON text it was sent as. Handlers take
//! their typed input from those fields ([`Request::input`]), so a secret (`Plaintext`) is
//! decoded only by the handler that needs it, straight into a zeroizing buffer; the audit
//! record takes the parameters CloudTrail shows from the same fields ([`Request::audited`])
//! and never decodes the others. Handlers answer with an [`Answer`]: the rendered reply
//! together with what the trail records of it, so no reply is parsed again.

use serde::Deserialize;
use serde::de::value::MapDeserializer;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use coffer_crypto::Secret;

use crate::error::WireError;
use crate::operation::Operation;

/// One KMS call.
pub struct Request<'a> {
    pub operation: Operation,
    /// The body's top-level fields, or why the body is not a JSON object.
    fields: Result<Vec<(String, &'a RawValue)>, String>,
}

/// The top-level fields of a JSON object, in order, values unparsed.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    out.push(entry);
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The request fields CloudTrail records for KMS calls, with the names the trail gives
/// them. Every other field (`Plaintext`, `CiphertextBlob`, `GrantTokens`) is never decoded.
const AUDITED: &[(&str, &str)] = &[
    ("KeyId", "keyId"),
    ("EncryptionContext", "encryptionContext"),
    ("KeySpec", "keySpec"),
    ("NumberOfBytes", "numberOfBytes"),
    ("Description", "description"),
    ("KeyUsage", "keyUsage"),
    ("CustomerMasterKeySpec", "customerMasterKeySpec"),
    ("Origin", "origin"),
    ("AliasName", "aliasName"),
    ("TargetKeyId", "targetKeyId"),
    ("PendingWindowInDays", "pendingWindowInDays"),
    ("GranteePrincipal", "granteePrincipal"),
    ("RetiringPrincipal", "retiringPrincipal"),
    ("Operations", "operations"),
    ("Constraints", "constraints"),
    ("Name", "name"),
    ("GrantId", "grantId"),
    ("PolicyName", "policyName"),
    ("Policy", "policy"),
    ("DestinationKeyId", "destinationKeyId"),
    ("SourceKeyId", "sourceKeyId"),
    ("EncryptionAlgorithm", "encryptionAlgorithm"),
    ("MacAlgorithm", "macAlgorithm"),
    ("SigningAlgorithm", "signingAlgorithm"),
    ("MessageType", "messageType"),
    ("KeyPairSpec", "keyPairSpec"),
    ("KeyAgreementAlgorithm", "keyAgreementAlgorithm"),
    ("RotationPeriodInDays", "rotationPeriodInDays"),
    ("TagKeys", "tagKeys"),
    ("Tags", "tags"),
    ("SourceEncryptionContext", "sourceEncryptionContext"),
    (
        "DestinationEncryptionContext",
        "destinationEncryptionContext",
    ),
    ("Limit", "limit"),
    ("Marker", "marker"),
    ("WrappingAlgorithm", "wrappingAlgorithm"),
    ("WrappingKeySpec", "wrappingKeySpec"),
    ("ExpirationModel", "expirationModel"),
    ("ValidTo", "validTo"),
    ("ImportType", "importType"),
    ("KeyMaterialId", "keyMaterialId"),
];

/// What the trail records of a request.
pub struct Audited {
    /// CloudTrail's `requestParameters`.
    pub parameters: Option<Value>,
    /// The key the request names (`KeyId`, else `TargetKeyId`), as sent.
    pub named_key: Option<String>,
}

impl<'a> Request<'a> {
    /// Reads a call's body (an empty body is an empty object, as the SDKs send for
    /// operations without input).
    pub fn read(operation: Operation, body: &'a [u8]) -> Self {
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            body
        };
        let fields = serde_json::from_slice::<Fields<'a>>(body)
            .map(|f| f.0)
            .map_err(|e| e.to_string());
        Request { operation, fields }
    }

    fn field(&self, name: &str) -> Option<&'a RawValue> {
        self.fields
            .as_ref()
            .ok()?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }

    /// The operation's typed input. Errors are AWS's: a missing required member is a
    /// `ValidationException`, anything malformed a `SerializationException`.
    pub fn input<T: Deserialize<'a>>(&self) -> Result<T, WireError> {
        let fields = self.fields.as_ref().map_err(|msg| malformed(msg.clone()))?;
        let de: MapDeserializer<'a, _, serde_json::Error> =
            MapDeserializer::new(fields.iter().map(|(k, v)| (k.as_str(), *v)));
        T::deserialize(de).map_err(|e| {
            let msg = e.to_string();
            match msg.strip_prefix("missing field `") {
                Some(rest) => {
                    let field = rest.split('`').next().unwrap_or("");
                    let mut chars = field.chars();
                    let camel = match chars.next() {
                        Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
                        None => String::new(),
                    };
                    WireError::validation(format!(
                        "1 validation error detected: Value null at '{camel}' failed to satisfy constraint: Member must not be null"
                    ))
                }
                None => malformed(msg),
            }
        })
    }

    /// The parameters and named key CloudTrail records; only the listed fields are
    /// decoded.
    pub fn audited(&self) -> Audited {
        let parameters = coffer_audit::record::params(AUDITED.iter().map(|(wire, trail)| {
            (
                *trail,
                self.field(wire)
                    .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok()),
            )
        }));
        let named_key = self
            .field("KeyId")
            .or_else(|| self.field("TargetKeyId"))
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
        Audited {
            parameters,
            named_key,
        }
    }
}

fn malformed(msg: String) -> WireError {
    WireError::serialization(format!(
        "Start of structure or map found where not expected: {msg}"
    ))
}

/// A handler's successful reply: the rendered JSON (wiped when dropped: it may hold a
/// data key) and what the trail records of it.
pub struct Answer {
    pub body: Zeroizing<Vec<u8>>,
    /// The key the reply is about (its `KeyId`, or its metadata's `Arn`), if an ARN.
    pub key_arn: Option<String>,
    /// CloudTrail's `responseElements` (key creation, deletion scheduling, grants).
    pub elements: Option<Value>,
}

impl Answer {
    /// Renders `value` (an object) plus, optionally, one secret field encoded straight
    /// into the output buffer.
    pub fn render(value: &Value, secret: Option<(&str, &Secret)>) -> Answer {
        let key_arn = value["KeyId"]
            .as_str()
            .or_else(|| value["KeyMetadata"]["Arn"].as_str())
            .filter(|a| a.starts_with("arn:"))
            .map(str::to_owned);
        Answer {
            body: crate::wire::render(value, secret),
            key_arn,
            elements: None,
        }
    }

    /// Names the key the reply is about, where the reply itself does not.
    pub fn about(mut self, key_arn: Option<String>) -> Answer {
        if self.key_arn.is_none() {
            self.key_arn = key_arn.filter(|a| a.starts_with("arn:"));
        }
        self
    }

    /// Records `elements` as the trail's `responseElements`.
    pub fn showing(mut self, elements: Value) -> Answer {
        self.elements = Some(elements);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::Core;
    use serde_json::json;

    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        key_id: String,
        plaintext: crate::wire::SecretBlob,
        number_of_bytes: Option<i64>,
    }

    fn read(body: &[u8]) -> Request<'_> {
        Request::read(Operation::Core(Core::Encrypt), body)
    }

    #[test]
    fn typed_input_and_audited_fields_come_from_one_read() {
        let body = br#"{"KeyId":"alias/k","Plaintext":"c2VjcmV0","EncryptionContext":{"a":"b"},"GrantTokens":["t"]}"#;
        let r = read(body);
        let a = r.audited();
        assert_eq!(
            a.parameters,
            Some(json!({"keyId": "alias/k", "encryptionContext": {"a": "b"}}))
        );
        assert_eq!(a.named_key.as_deref(), Some("alias/k"));
        let input: In = r.input().expect("input");
        assert_eq!(input.key_id, "alias/k");
        assert_eq!(input.plaintext.0.expose(), b"secret");
        assert_eq!(input.number_of_bytes, None);
    }

    #[test]
    fn errors_are_awss() {
        let missing = read(br#"{"Plaintext":"c2VjcmV0"}"#)
            .input::<In>()
            .err()
            .expect("missing");
        assert_eq!(missing.code, "ValidationException");
        assert!(
            missing
                .message
                .as_deref()
                .is_some_and(|m| m.contains("Value null at 'keyId'")),
            "{:?}",
            missing.message
        );
        for bad in [
            &br#"{"KeyId":5,"Plaintext":"c2VjcmV0"}"#[..],
            br#"{"KeyId":"k","Plaintext":"!!"}"#,
            br#"[1]"#,
            br#"{"KeyId":"#,
            br#"{"KeyId":"k","KeyId":"j","Plaintext":"c2VjcmV0"}"#,
        ] {
            let e = read(bad).input::<In>().err().expect("malformed");
            assert_eq!(e.code, "SerializationException", "{bad:?}");
        }
        // A body that is not an object is audited as no parameters.
        assert!(read(b"[1]").audited().parameters.is_none());
        // An empty body is an empty object.
        assert!(read(b"  ").input::<serde::de::IgnoredAny>().is_ok());
    }

    #[test]
    fn answers_name_their_key() {
        let s = Secret::from_slice(b"hi");
        let a = Answer::render(
            &json!({"KeyId": "arn:aws:kms:us-east-1:1:key/k"}),
            Some(("Plaintext", &s)),
        );
        assert_eq!(a.key_arn.as_deref(), Some("arn:aws:kms:us-east-1:1:key/k"));
        let m = Answer::render(
            &json!({"KeyMetadata": {"KeyId": "k", "Arn": "arn:aws:kms:us-east-1:1:key/k"}}),
            None,
        );
        assert_eq!(m.key_arn.as_deref(), Some("arn:aws:kms:us-east-1:1:key/k"));
        assert_eq!(Answer::render(&json!({"KeyId": "k"}), None).key_arn, None);
    }
}
