//! The four ways a request names a key: key id, key ARN, alias name, alias ARN.

use crate::{Error, Result};

/// A parsed `KeyId` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A key id or key ARN; `account` is set for ARNs.
    Key { id: String, account: Option<String> },
    /// `alias/NAME`, or an alias ARN (`account` set).
    Alias {
        name: String,
        account: Option<String>,
    },
}

impl KeyRef {
    /// Parses a `KeyId` as AWS accepts it, for a server in `region`.
    pub fn parse(s: &str, region: &str) -> Result<Self> {
        if s.is_empty() || s.len() > 2048 {
            return Err(Error::Validation(
                "1 validation error detected: Value at 'keyId' failed to satisfy constraint: Member must have length between 1 and 2048".into(),
            ));
        }
        if let Some(rest) = s.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let [partition, service, arn_region, account, resource] = parts.as_slice() else {
                return Err(Error::InvalidArn(format!("Invalid arn {s}")));
            };
            if !partition.starts_with("aws") || *service != "kms" || account.len() != 12 {
                return Err(Error::InvalidArn(format!("Invalid arn {s}")));
            }
            if *arn_region != region {
                return Err(Error::NotFound(format!("Invalid arn {s}")));
            }
            if let Some(id) = resource.strip_prefix("key/") {
                return Ok(KeyRef::Key {
                    id: id.to_owned(),
                    account: Some((*account).to_owned()),
                });
            }
            if resource.starts_with("alias/") {
                return Ok(KeyRef::Alias {
                    name: (*resource).to_owned(),
                    account: Some((*account).to_owned()),
                });
            }
            return Err(Error::InvalidArn(format!("Invalid arn {s}")));
        }
        if s.starts_with("alias/") {
            return Ok(KeyRef::Alias {
                name: s.to_owned(),
                account: None,
            });
        }
        Ok(KeyRef::Key {
            id: s.to_owned(),
            account: None,
        })
    }
}

/// AWS's alias name rules: `alias/` then 1-250 of `[a-zA-Z0-9:/_-]`.
pub fn check_alias_name(name: &str) -> Result<()> {
    // AWS answers a missing prefix with a ValidationException (observed), and other
    // malformed names with InvalidAliasNameException.
    let Some(rest) = name.strip_prefix("alias/") else {
        return Err(Error::Validation(
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html".into(),
        ));
    };
    if rest.is_empty()
        || name.len() > 256
        || !rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-'))
    {
        return Err(Error::InvalidAliasName(format!(
            "Alias name {name} is not valid."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(
            KeyRef::parse(id, "us-east-1"),
            Ok(KeyRef::Key {
                id: id.into(),
                account: None
            })
        );
        assert_eq!(
            KeyRef::parse(
                &format!("arn:aws:kms:us-east-1:111122223333:key/{id}"),
                "us-east-1"
            ),
            Ok(KeyRef::Key {
                id: id.into(),
                account: Some("111122223333".into())
            })
        );
        assert_eq!(
            KeyRef::parse("alias/my-key", "us-east-1"),
            Ok(KeyRef::Alias {
                name: "alias/my-key".into(),
                account: None
            })
        );
        assert_eq!(
            KeyRef::parse(
                "arn:aws:kms:us-east-1:111122223333:alias/my-key",
                "us-east-1"
            ),
            Ok(KeyRef::Alias {
                name: "alias/my-key".into(),
                account: Some("111122223333".into())
            })
        );
        assert!(matches!(
            KeyRef::parse("arn:aws:s3:::bucket", "us-east-1"),
            Err(Error::InvalidArn(_))
        ));
        assert!(matches!(
            KeyRef::parse(
                &format!("arn:aws:kms:eu-west-1:111122223333:key/{id}"),
                "us-east-1"
            ),
            Err(Error::NotFound(_))
        ));
        assert!(KeyRef::parse("", "us-east-1").is_err());
    }

    #[test]
    fn alias_names() {
        assert!(check_alias_name("alias/ok_name-1:x/y").is_ok());
        for bad in ["my-key", "alias/", "alias/bad name", "alias/é"] {
            assert!(check_alias_name(bad).is_err(), "{bad}");
        }
    }
}
