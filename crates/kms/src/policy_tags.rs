//! Key policies (grammar-checked now, enforced with the access-control issue) and tags.

use std::collections::BTreeMap;

use coffer_policy::document::{Document, Kind};

use crate::keys::list_limit;
use crate::{Caller, Error, Kms, Op, Page, Result};

/// The only key policy name AWS supports.
pub const POLICY_NAME: &str = "default";
const MAX_TAGS: usize = 50;

pub(crate) fn check_policy(policy: &str) -> Result<()> {
    Document::parse(policy, Kind::Resource)
        .map(|_| ())
        .map_err(|e| Error::MalformedPolicyDocument(format!("The new key policy will not allow you to update the key policy in the future, or it is malformed: {e}")))
}

fn check_policy_name(name: Option<&str>) -> Result<()> {
    match name {
        None | Some(POLICY_NAME) => Ok(()),
        Some(other) => Err(Error::NotFound(format!("No such policy exists: {other}"))),
    }
}

/// Merges `add` into `existing` under AWS's tag rules.
pub(crate) fn check_tags(
    existing: &BTreeMap<String, String>,
    add: &[(String, String)],
) -> Result<BTreeMap<String, String>> {
    let mut out = existing.clone();
    for (k, v) in add {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{k}' at 'tags.member.tagKey' failed to satisfy constraint: Member must have length between 1 and 128"
            )));
        }
        if v.chars().count() > 256 {
            return Err(Error::Validation(
                "1 validation error detected: Value at 'tags.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256".into(),
            ));
        }
        if k.starts_with("aws:") {
            return Err(Error::Tag(format!(
                "Tag keys cannot begin with \"aws:\": {k}"
            )));
        }
        out.insert(k.clone(), v.clone());
    }
    if out.len() > MAX_TAGS {
        return Err(Error::Tag(format!(
            "A KMS key can have at most {MAX_TAGS} tags"
        )));
    }
    Ok(out)
}

impl Kms {
    pub async fn get_key_policy(
        &self,
        caller: &Caller,
        key_id: &str,
        name: Option<&str>,
    ) -> Result<String> {
        check_policy_name(name)?;
        let e = self
            .resolve(caller, key_id, false, Op::GetKeyPolicy.action())
            .await?;
        Op::GetKeyPolicy.check(e.doc.state, &self.key_arn(&e.account, &e.id))?;
        Ok(e.doc.policy.clone())
    }

    pub async fn put_key_policy(
        &self,
        caller: &Caller,
        key_id: &str,
        name: Option<&str>,
        policy: &str,
    ) -> Result<()> {
        check_policy_name(name)?;
        check_policy(policy)?;
        let policy = policy.to_owned();
        self.change(caller, key_id, Op::PutKeyPolicy, |d| {
            d.policy = policy;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub async fn list_key_policies(
        &self,
        caller: &Caller,
        key_id: &str,
        limit: Option<i64>,
    ) -> Result<Vec<String>> {
        list_limit(limit, 100)?;
        let e = self
            .resolve(caller, key_id, false, Op::ListKeyPolicies.action())
            .await?;
        Op::ListKeyPolicies.check(e.doc.state, &self.key_arn(&e.account, &e.id))?;
        Ok(vec![POLICY_NAME.to_owned()])
    }

    pub async fn tag_resource(
        &self,
        caller: &Caller,
        key_id: &str,
        tags: &[(String, String)],
    ) -> Result<()> {
        let tags = tags.to_vec();
        self.change(caller, key_id, Op::TagResource, |d| {
            d.tags = check_tags(&d.tags, &tags)?;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub async fn untag_resource(
        &self,
        caller: &Caller,
        key_id: &str,
        keys: &[String],
    ) -> Result<()> {
        let keys = keys.to_vec();
        self.change(caller, key_id, Op::UntagResource, |d| {
            for k in &keys {
                d.tags.remove(k);
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// ListResourceTags: tags by key, `limit` (1-50, default 50) after `marker` (a tag key).
    pub async fn list_resource_tags(
        &self,
        caller: &Caller,
        key_id: &str,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> Result<Page<(String, String)>> {
        let limit = match limit {
            None => 50,
            Some(l) if (1..=50).contains(&l) => usize::try_from(l).unwrap_or(50),
            Some(l) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 50"
                )));
            }
        };
        let e = self
            .resolve(caller, key_id, false, Op::ListResourceTags.action())
            .await?;
        Op::ListResourceTags.check(e.doc.state, &self.key_arn(&e.account, &e.id))?;
        if let Some(m) = marker
            && !e.doc.tags.contains_key(m)
            && !e.doc.tags.keys().any(|k| k.as_str() > m)
        {
            return Err(Error::InvalidMarker);
        }
        let mut tags: Vec<(String, String)> = e
            .doc
            .tags
            .iter()
            .filter(|(k, _)| marker.is_none_or(|m| k.as_str() > m))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let truncated = tags.len() > limit;
        tags.truncate(limit);
        let next = if truncated {
            tags.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        Ok(Page {
            items: tags,
            next_marker: next,
        })
    }
}
