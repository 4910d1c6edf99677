//! S3's naming rules for buckets, keys, storage classes and tags.

use std::collections::BTreeMap;

use crate::{Error, Result};

/// The storage classes Coffer accepts. All are stored the same way; the class is recorded
/// and reported so that tools that set it keep working.
pub const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
];

pub const MAX_KEY_BYTES: usize = 1024;

/// The rules of "General purpose bucket naming rules" in the S3 user guide.
pub fn check_bucket_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::InvalidBucketName(format!("{name:?}: {why}")));
    if !(3..=63).contains(&name.len()) {
        return bad("must be between 3 and 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("may contain only lowercase letters, numbers, dots and hyphens");
    }
    let first = name.as_bytes()[0];
    let last = name.as_bytes()[name.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return bad("must begin and end with a letter or number");
    }
    if name.contains("..") {
        return bad("must not contain two adjacent periods");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("must not be formatted as an IP address");
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return bad("uses a reserved prefix");
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return bad("uses a reserved suffix");
        }
    }
    Ok(())
}

pub fn check_key(key: &str) -> Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::KeyTooLong);
    }
    if key.is_empty() {
        return Err(Error::InvalidArgument(
            "the object key must not be empty".into(),
        ));
    }
    Ok(())
}

/// Normalises a storage class; `None` and `STANDARD` are stored as `None`.
pub fn storage_class(class: Option<&str>) -> Result<Option<String>> {
    match class {
        None | Some("STANDARD") => Ok(None),
        Some(c) if STORAGE_CLASSES.contains(&c) => Ok(Some(c.to_owned())),
        Some(c) => Err(Error::InvalidStorageClass(c.to_owned())),
    }
}

/// S3's limits on object tags: at most 10, keys up to 128 and values up to 256 characters,
/// no duplicate keys, no `aws:` prefix.
pub fn check_tags(tags: &[(String, String)]) -> Result<BTreeMap<String, String>> {
    if tags.len() > 10 {
        return Err(Error::InvalidTag(
            "object tags cannot be greater than 10".into(),
        ));
    }
    check_tag_set(tags)
}

/// A bucket's tag set: at most 50 tags, each as for objects.
pub fn check_bucket_tags(tags: &[(String, String)]) -> Result<BTreeMap<String, String>> {
    if tags.len() > 50 {
        return Err(Error::InvalidTag(
            "Bucket tag count cannot be greater than 50".into(),
        ));
    }
    check_tag_set(tags)
}

fn check_tag_set(tags: &[(String, String)]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(Error::InvalidTag(
                "the TagKey you have provided is invalid".into(),
            ));
        }
        if v.chars().count() > 256 {
            return Err(Error::InvalidTag(
                "the TagValue you have provided is invalid".into(),
            ));
        }
        if k.starts_with("aws:") {
            return Err(Error::InvalidTag(
                "tag keys must not start with aws:".into(),
            ));
        }
        if out.insert(k.clone(), v.clone()).is_some() {
            return Err(Error::InvalidTag(
                "cannot provide multiple tags with the same key".into(),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_aws_rules() {
        for ok in ["abc", "my-bucket.1", "a".repeat(63).as_str(), "1bucket"] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "abc-s3alias",
            "a_b",
            "sthree-x",
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn storage_classes_are_checked() {
        assert_eq!(storage_class(Some("STANDARD")).ok(), Some(None));
        assert_eq!(
            storage_class(Some("GLACIER_IR")).ok(),
            Some(Some("GLACIER_IR".into()))
        );
        assert!(matches!(
            storage_class(Some("FROZEN")),
            Err(Error::InvalidStorageClass(_))
        ));
    }

    #[test]
    fn tag_limits() {
        let many: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(check_tags(&many).is_err());
        assert!(check_tags(&[("k".into(), "v".into()), ("k".into(), "w".into())]).is_err());
        assert!(check_tags(&[("k".repeat(129), "v".into())]).is_err());
        assert_eq!(
            check_tags(&[("k".into(), "v".into())])
                .map(|t| t.len())
                .ok(),
            Some(1)
        );
    }
}
