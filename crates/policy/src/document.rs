//! The IAM policy language's grammar: parsing a JSON policy document into a typed
//! [`Document`], refusing anything AWS would call a malformed policy.
//!
//! Evaluation arrives with the access-control issue; the grammar is needed now so that
//! key policies are validated when they are stored (`MalformedPolicyDocumentException`).

use serde_json::{Map, Value};

/// Largest policy document, in bytes (AWS's limit for key policies).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn bad(msg: impl Into<String>) -> ParseError {
    ParseError(msg.into())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `"*"` or a map of principal types (`AWS`, `Service`, ...) to identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Any,
    Typed(Vec<(String, Vec<String>)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Negatable<T> {
    Is(T),
    Not(T),
}

/// `Condition`: operator → (condition key → values).
pub type Condition = Vec<(String, Vec<(String, Vec<String>)>)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<Negatable<Principal>>,
    pub action: Negatable<Vec<String>>,
    pub resource: Option<Negatable<Vec<String>>>,
    pub condition: Condition,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub version: Option<String>,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

/// What kind of policy is parsed: resource policies (key and bucket policies) must name
/// principals; identity policies must not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Resource,
    Identity,
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, ParseError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(format!("{what} must be a string or a list of strings")))
            })
            .collect(),
        _ => Err(bad(format!(
            "{what} must be a string or a non-empty list of strings"
        ))),
    }
}

fn principal(v: &Value) -> Result<Principal, ParseError> {
    match v {
        Value::String(s) if s == "*" => Ok(Principal::Any),
        Value::Object(m) if !m.is_empty() => {
            let mut out = Vec::new();
            for (k, v) in m {
                if !matches!(
                    k.as_str(),
                    "AWS" | "Service" | "Federated" | "CanonicalUser"
                ) {
                    return Err(bad(format!("unknown principal type {k:?}")));
                }
                out.push((k.clone(), strings(v, "a principal")?));
            }
            Ok(Principal::Typed(out))
        }
        _ => Err(bad(
            "Principal must be \"*\" or an object of principal types",
        )),
    }
}

fn condition(v: &Value) -> Result<Condition, ParseError> {
    let Value::Object(ops) = v else {
        return Err(bad("Condition must be an object"));
    };
    let mut out = Vec::new();
    for (op, keys) in ops {
        let Value::Object(keys) = keys else {
            return Err(bad(format!(
                "condition operator {op:?} must map keys to values"
            )));
        };
        let mut entries = Vec::new();
        for (k, vals) in keys {
            let vals = match vals {
                Value::Bool(b) => vec![b.to_string()],
                Value::Number(n) => vec![n.to_string()],
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => Ok(s.clone()),
                        Value::Bool(b) => Ok(b.to_string()),
                        Value::Number(n) => Ok(n.to_string()),
                        _ => Err(bad(format!("condition key {k:?} has a non-scalar value"))),
                    })
                    .collect::<Result<_, _>>()?,
                other => strings(other, "a condition value")?,
            };
            entries.push((k.clone(), vals));
        }
        out.push((op.clone(), entries));
    }
    Ok(out)
}

fn one_of<'a>(
    m: &'a Map<String, Value>,
    is: &str,
    not: &str,
) -> Result<Option<(bool, &'a Value)>, ParseError> {
    match (m.get(is), m.get(not)) {
        (Some(_), Some(_)) => Err(bad(format!("a statement cannot have both {is} and {not}"))),
        (Some(v), None) => Ok(Some((false, v))),
        (None, Some(v)) => Ok(Some((true, v))),
        (None, None) => Ok(None),
    }
}

fn statement(v: &Value, kind: Kind) -> Result<Statement, ParseError> {
    let Value::Object(m) = v else {
        return Err(bad("each statement must be an object"));
    };
    for k in m.keys() {
        if !matches!(
            k.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(bad(format!("unknown statement element {k:?}")));
        }
    }
    let sid = match m.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("Sid must be a string")),
    };
    let effect = match m.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(bad("Effect must be \"Allow\" or \"Deny\"")),
    };
    let principal = match (one_of(m, "Principal", "NotPrincipal")?, kind) {
        (None, Kind::Resource) => return Err(bad("a statement must name a Principal")),
        (Some(_), Kind::Identity) => {
            return Err(bad("an identity policy statement cannot name a Principal"));
        }
        (None, Kind::Identity) => None,
        (Some((neg, v)), Kind::Resource) => Some(if neg {
            Negatable::Not(principal(v)?)
        } else {
            Negatable::Is(principal(v)?)
        }),
    };
    let action = match one_of(m, "Action", "NotAction")? {
        Some((false, v)) => Negatable::Is(strings(v, "Action")?),
        Some((true, v)) => Negatable::Not(strings(v, "NotAction")?),
        None => return Err(bad("a statement must have an Action")),
    };
    for a in match &action {
        Negatable::Is(a) | Negatable::Not(a) => a,
    } {
        if a != "*" && !a.contains(':') {
            return Err(bad(format!(
                "action {a:?} must be of the form service:Action"
            )));
        }
    }
    let resource = match one_of(m, "Resource", "NotResource")? {
        Some((false, v)) => Some(Negatable::Is(strings(v, "Resource")?)),
        Some((true, v)) => Some(Negatable::Not(strings(v, "NotResource")?)),
        None if kind == Kind::Identity => return Err(bad("a statement must have a Resource")),
        None => None,
    };
    let condition = match m.get("Condition") {
        Some(c) => condition(c)?,
        None => Vec::new(),
    };
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        condition,
    })
}

impl Document {
    pub fn parse(text: &str, kind: Kind) -> Result<Self, ParseError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(bad(format!(
                "the policy is larger than {MAX_POLICY_BYTES} bytes"
            )));
        }
        let v: Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let Value::Object(top) = v else {
            return Err(bad("a policy must be a JSON object"));
        };
        for k in top.keys() {
            if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
                return Err(bad(format!("unknown policy element {k:?}")));
            }
        }
        let version = match top.get("Version") {
            None => None,
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => Some(v.clone()),
            Some(_) => return Err(bad("Version must be \"2012-10-17\" or \"2008-10-17\"")),
        };
        let id = match top.get("Id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(bad("Id must be a string")),
        };
        let statements = match top.get("Statement") {
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|s| statement(s, kind))
                .collect::<Result<_, _>>()?,
            Some(s @ Value::Object(_)) => vec![statement(s, kind)?],
            _ => return Err(bad("Statement must be an object or a non-empty list")),
        };
        Ok(Self {
            version,
            id,
            statements,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_KEY_POLICY: &str = r#"{
      "Version": "2012-10-17",
      "Id": "key-default-1",
      "Statement": [{
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "kms:*",
        "Resource": "*"
      }]
    }"#;

    #[test]
    fn aws_default_key_policy_parses() {
        let d = Document::parse(DEFAULT_KEY_POLICY, Kind::Resource).expect("valid");
        assert_eq!(d.statements.len(), 1);
        assert_eq!(d.statements[0].effect, Effect::Allow);
    }

    #[test]
    fn conditions_parse() {
        let p = r#"{"Statement": {"Effect": "Deny", "Principal": "*", "NotAction": ["kms:Decrypt"],
            "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": ["1", "2"]},
            "Bool": {"aws:SecureTransport": false}}}}"#;
        let d = Document::parse(p, Kind::Resource).expect("valid");
        assert_eq!(d.statements[0].condition.len(), 2);
    }

    #[test]
    fn malformed_policies_are_refused() {
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"Statement": []}"#,
            r#"{"Version": "2020-01-01", "Statement": {"Effect":"Allow","Principal":"*","Action":"kms:*"}}"#,
            r#"{"Statement": {"Effect":"Maybe","Principal":"*","Action":"kms:*"}}"#,
            r#"{"Statement": {"Effect":"Allow","Action":"kms:*"}}"#,
            r#"{"Statement": {"Effect":"Allow","Principal":"*"}}"#,
            r#"{"Statement": {"Effect":"Allow","Principal":"*","Action":"kms:*","NotAction":"kms:X"}}"#,
            r#"{"Statement": {"Effect":"Allow","Principal":{"Bogus":"x"},"Action":"kms:*"}}"#,
            r#"{"Statement": {"Effect":"Allow","Principal":"*","Action":"nocolon"}}"#,
            r#"{"Statement": {"Effect":"Allow","Principal":"*","Action":"kms:*","Extra":1}}"#,
            r#"{"Statement": {"Effect":"Allow","Principal":"*","Action":"kms:*","Condition":"x"}}"#,
            r#"{"Statement": {"Effect":"Allow","Principal":"*","Action":"kms:*"}, "Other": 1}"#,
        ] {
            assert!(Document::parse(bad, Kind::Resource).is_err(), "{bad}");
        }
        let huge = format!(
            r#"{{"Id": "{}", "Statement": []}}"#,
            "x".repeat(MAX_POLICY_BYTES)
        );
        assert!(Document::parse(&huge, Kind::Resource).is_err());
    }

    #[test]
    fn identity_policies_have_no_principal() {
        let p = r#"{"Statement": {"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
        assert!(Document::parse(p, Kind::Identity).is_ok());
        assert!(Document::parse(p, Kind::Resource).is_err());
    }
}
