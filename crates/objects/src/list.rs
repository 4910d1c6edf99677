//! Listing objects and multipart uploads with prefix, delimiter and markers.
//!
//! Keys that contain the delimiter after the prefix roll up into one common prefix; the
//! scan then jumps past every key under that prefix with a new bounded index scan, so a
//! listing of `photos/` over a million keys under `photos/2024/` costs one seek, not a
//! million rows.

use std::ops::Bound;

use coffer_storage::{ObjectSummary, UploadListQuery, UploadRecord};

use crate::{Objects, Result};

/// Which objects to list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Resume after this key or common prefix (marker, start-after, continuation token).
    pub after: Option<String>,
    pub max_keys: usize,
}

/// One page of a listing, in bytewise order; keys and common prefixes interleaved in the
/// order they were met. `next` is the last entry returned, the place to resume from.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub objects: Vec<ObjectSummary>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    pub next: Option<String>,
}

/// The smallest string greater than every string starting with `prefix`, when it is valid
/// UTF-8 (it is for every ASCII delimiter).
fn jump_past(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0xFF {
            bytes.push(last + 1);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

/// The common prefix `key` rolls up into, if any.
pub(crate) fn common_prefix<'a>(
    key: &'a str,
    prefix: &str,
    delimiter: Option<&str>,
) -> Option<&'a str> {
    let d = delimiter.filter(|d| !d.is_empty())?;
    let rest = key.get(prefix.len()..)?;
    rest.find(d).map(|i| &key[..prefix.len() + i + d.len()])
}

/// A scan position.
pub(crate) enum Cursor {
    After(String),
    From(String),
    Start,
}

impl Cursor {
    fn bound(&self) -> Bound<&str> {
        match self {
            Cursor::After(k) => Bound::Excluded(k),
            Cursor::From(k) => Bound::Included(k),
            Cursor::Start => Bound::Unbounded,
        }
    }

    /// The position just past everything under common prefix `cp`.
    pub(crate) fn past_prefix(cp: &str) -> Self {
        match jump_past(cp) {
            Some(k) => Cursor::From(k),
            // Not expressible as a string bound: step past the prefix one key at a time.
            None => Cursor::After(cp.to_owned()),
        }
    }
}

impl Objects {
    pub async fn list_objects(&self, bucket: &str, q: &ListQuery) -> Result<Listing> {
        self.bucket(bucket).await?;
        let delimiter = q.delimiter.as_deref();
        let mut out = Listing::default();
        // Zero keys asked for: an empty, complete page (no marker to go on from), as S3.
        if q.max_keys == 0 {
            return Ok(out);
        }
        let mut cursor = match &q.after {
            None => Cursor::Start,
            // Resuming after a common prefix skips everything under it.
            Some(a) => match common_prefix(a, &q.prefix, delimiter) {
                Some(cp) if cp == a => Cursor::past_prefix(cp),
                _ => Cursor::After(a.clone()),
            },
        };
        let mut count = 0usize;
        'scan: loop {
            // Read one more than needed so we can tell whether the listing is truncated.
            let want = q.max_keys.saturating_sub(count).saturating_add(1).min(1001);
            let page = self
                .meta
                .list_objects(bucket, &q.prefix, cursor.bound(), want)
                .await?;
            for o in page.items {
                let cp = common_prefix(&o.key, &q.prefix, delimiter);
                if cp.is_some() && cp == out.common_prefixes.last().map(String::as_str) {
                    // Only when the prefix could not be jumped over: step past its keys.
                    cursor = Cursor::After(o.key.clone());
                    continue;
                }
                if count == q.max_keys {
                    out.truncated = true;
                    break 'scan;
                }
                count += 1;
                if let Some(cp) = cp {
                    let cp = cp.to_owned();
                    cursor = Cursor::past_prefix(&cp);
                    out.next = Some(cp.clone());
                    out.common_prefixes.push(cp);
                    // Everything else under this prefix is skipped by a fresh scan.
                    continue 'scan;
                }
                out.next = Some(o.key.clone());
                cursor = Cursor::After(o.key.clone());
                out.objects.push(o);
            }
            if !page.truncated {
                break;
            }
        }
        if !out.truncated {
            out.next = None;
        }
        Ok(out)
    }

    pub async fn list_uploads(&self, bucket: &str, q: &UploadQuery) -> Result<UploadListing> {
        self.bucket(bucket).await?;
        let delimiter = q.delimiter.as_deref();
        let mut out = UploadListing::default();
        let mut key_cursor = match &q.key_marker {
            None => Cursor::Start,
            Some(k) => match common_prefix(k, &q.prefix, delimiter) {
                Some(cp) if cp == k => Cursor::past_prefix(cp),
                _ => Cursor::After(k.clone()),
            },
        };
        let mut id_marker = q
            .upload_id_marker
            .clone()
            .filter(|_| q.key_marker.is_some());
        let mut count = 0usize;
        'scan: loop {
            let want = q
                .max_uploads
                .saturating_sub(count)
                .saturating_add(1)
                .min(1001);
            let query = UploadListQuery {
                prefix: &q.prefix,
                start: key_cursor.bound(),
                upload_id_marker: id_marker.as_deref(),
                limit: want,
            };
            let page = self.meta.list_uploads(bucket, &query).await?;
            for u in page.items {
                let cp = common_prefix(&u.key, &q.prefix, delimiter);
                if cp.is_some() && cp == out.common_prefixes.last().map(String::as_str) {
                    key_cursor = Cursor::After(u.key.clone());
                    id_marker = Some(u.upload_id.clone());
                    continue;
                }
                if count == q.max_uploads {
                    out.truncated = true;
                    break 'scan;
                }
                count += 1;
                if let Some(cp) = cp {
                    let cp = cp.to_owned();
                    key_cursor = Cursor::past_prefix(&cp);
                    id_marker = None;
                    out.next_key_marker = Some(cp.clone());
                    out.next_upload_id_marker = None;
                    out.common_prefixes.push(cp);
                    continue 'scan;
                }
                out.next_key_marker = Some(u.key.clone());
                out.next_upload_id_marker = Some(u.upload_id.clone());
                // Resume within this key after this upload id.
                key_cursor = Cursor::After(u.key.clone());
                id_marker = Some(u.upload_id.clone());
                out.uploads.push(u);
            }
            if !page.truncated {
                break;
            }
        }
        if !out.truncated {
            out.next_key_marker = None;
            out.next_upload_id_marker = None;
        }
        Ok(out)
    }
}

/// Which multipart uploads to list.
#[derive(Debug, Clone, Default)]
pub struct UploadQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    pub upload_id_marker: Option<String>,
    pub max_uploads: usize,
}

#[derive(Debug, Clone, Default)]
pub struct UploadListing {
    pub uploads: Vec<UploadRecord>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefixes() {
        assert_eq!(common_prefix("a/b/c", "", Some("/")), Some("a/"));
        assert_eq!(common_prefix("a/b/c", "a/", Some("/")), Some("a/b/"));
        assert_eq!(common_prefix("a/b", "a/", Some("/")), None);
        assert_eq!(common_prefix("a/b", "a/", None), None);
        assert_eq!(common_prefix("a--b--c", "", Some("--")), Some("a--"));
        assert_eq!(jump_past("a/"), Some("a0".to_string()));
    }
}
