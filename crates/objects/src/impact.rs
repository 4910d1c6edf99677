//! What a KMS key protects: the objects and bytes encrypted under it, bucket by bucket,
//! and the buckets whose default encryption names it. The console shows this before a
//! key is disabled or scheduled for deletion, so nobody makes data unreadable by
//! accident. Counted by a scan of every version (noncurrent ones become unreadable too).

use coffer_storage::{ListedVersion, VersionListQuery, VersionStart, VersionSummary};

use crate::{Objects, Result};

/// A key, by every name a record or a bucket's default encryption may call it.
#[derive(Debug, Clone)]
pub struct KeyNames {
    /// `1234abcd-...`
    pub key_id: String,
    /// `arn:aws:kms:REGION:ACCOUNT:key/ID`
    pub key_arn: String,
    /// `alias/NAME` for each alias of the key.
    pub aliases: Vec<String>,
}

impl KeyNames {
    /// Whether `name` (a key id, key ARN, alias name or alias ARN), as written in the
    /// settings of a bucket of account `owner`, is this key. A bare key id or alias name
    /// means a key of the bucket's own account.
    pub fn names(&self, name: &str, owner: &str) -> bool {
        if name == self.key_arn {
            return true;
        }
        if let Some((arn, rest)) = name.split_once(":alias/") {
            // arn:aws:kms:REGION:ACCOUNT:alias/NAME
            return arn.rsplit(':').next() == Some(self.account())
                && self.aliases.contains(&format!("alias/{rest}"));
        }
        owner == self.account() && (name == self.key_id || self.aliases.iter().any(|a| a == name))
    }

    fn account(&self) -> &str {
        self.key_arn
            .split(':')
            .nth(4)
            .filter(|a| !a.is_empty())
            .unwrap_or("-")
    }

    /// Whether an object encryption record's key ARN is this key.
    fn protects(&self, record_arn: &str) -> bool {
        record_arn == self.key_arn
            || record_arn
                .rsplit_once("key/")
                .is_some_and(|(prefix, id)| id == self.key_id && prefix.ends_with(':'))
    }
}

/// One bucket's share of a key's impact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketImpact {
    pub bucket: String,
    pub owner: String,
    /// Versions (current and noncurrent) encrypted under the key.
    pub objects: u64,
    pub bytes: u64,
    /// Whether the bucket's default encryption names the key.
    pub default_key: bool,
}

impl Objects {
    /// Every bucket with objects under `key` or whose default encryption names it, by
    /// name. Buckets the key touches not at all are left out.
    pub async fn key_impact(&self, key: &KeyNames) -> Result<Vec<BucketImpact>> {
        let mut out = Vec::new();
        for bucket in self.meta.list_buckets().await? {
            let default_key = match self.get_bucket_encryption(&bucket.name).await {
                Ok(e) => e
                    .and_then(|e| e.kms_key_id)
                    .is_some_and(|k| key.names(&k, &bucket.owner)),
                // Deleted since it was listed.
                Err(crate::Error::NoSuchBucket(_)) => continue,
                Err(e) => return Err(e),
            };
            let mut impact = BucketImpact {
                bucket: bucket.name.clone(),
                owner: bucket.owner.clone(),
                default_key,
                ..BucketImpact::default()
            };
            let mut after: Option<(String, Option<String>)> = None;
            loop {
                let start = match &after {
                    None => VersionStart::Beginning,
                    Some((k, v)) => VersionStart::AfterVersion(
                        k,
                        match v {
                            Some(id) => coffer_storage::VersionRef::Id(id),
                            None => coffer_storage::VersionRef::Null,
                        },
                    ),
                };
                let page = match self
                    .meta
                    .list_versions(
                        &bucket.name,
                        &VersionListQuery {
                            prefix: "",
                            start,
                            limit: 1000,
                        },
                    )
                    .await
                {
                    Ok(p) => p,
                    Err(coffer_storage::Error::NoSuchBucket(_)) => break,
                    Err(e) => return Err(e.into()),
                };
                for v in &page.items {
                    count(&mut impact, key, v);
                }
                match page.items.last() {
                    Some(last) if page.truncated => {
                        after = Some((last.key().to_owned(), last.version_id().map(str::to_owned)));
                    }
                    _ => break,
                }
            }
            if impact.objects > 0 || impact.default_key {
                out.push(impact);
            }
        }
        Ok(out)
    }
}

fn count(impact: &mut BucketImpact, key: &KeyNames, v: &ListedVersion) {
    if let VersionSummary::Object(o) = &v.version
        && o.meta
            .sse
            .as_ref()
            .and_then(|s| s.key_arn())
            .is_some_and(|arn| key.protects(arn))
    {
        impact.objects += 1;
        impact.bytes += o.size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyNames {
        KeyNames {
            key_id: "1234".into(),
            key_arn: "arn:aws:kms:us-east-1:111122223333:key/1234".into(),
            aliases: vec!["alias/app".into()],
        }
    }

    #[test]
    fn a_key_is_named_by_id_arn_alias_and_alias_arn() {
        let (k, own, other) = (key(), "111122223333", "444455556666");
        assert!(k.names("1234", own));
        assert!(k.names("arn:aws:kms:us-east-1:111122223333:key/1234", own));
        assert!(k.names("alias/app", own));
        assert!(k.names("arn:aws:kms:us-east-1:111122223333:alias/app", own));
        assert!(!k.names("arn:aws:kms:us-east-1:444455556666:alias/app", own));
        assert!(!k.names("alias/other", own));
        assert!(!k.names("12345", own));
        // In another account's bucket, a bare id or alias means that account's key.
        assert!(!k.names("1234", other));
        assert!(!k.names("alias/app", other));
        assert!(k.names("arn:aws:kms:us-east-1:111122223333:key/1234", other));
        assert!(k.names("arn:aws:kms:us-east-1:111122223333:alias/app", other));
    }

    #[test]
    fn a_record_is_protected_by_its_key_arn_only() {
        let k = key();
        assert!(k.protects("arn:aws:kms:us-east-1:111122223333:key/1234"));
        assert!(!k.protects("arn:aws:kms:us-east-1:111122223333:key/12345"));
        assert!(!k.protects("arn:aws:kms:us-east-1:111122223333:key/other"));
    }
}
