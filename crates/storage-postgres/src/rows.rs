//! How object records map to PostgreSQL rows: JSON columns, extents (blob references,
//! and inline bytes kept in the row itself), object and upload rows, key ranges for
//! listings, the advisory locks that serialize writers, and the statements every write
//! path shares.
//!
//! Keys are `bytea`, so comparisons are bytewise (S3's order) and a prefix scan can be
//! bounded above by a byte string that need not be valid UTF-8.

use std::collections::BTreeSet;
use std::ops::Bound;

use bytes::Bytes;
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

use coffer_storage::{
    BlobId, DeleteMarker, Entry, Error, Extent, ObjectMeta, ObjectRecord, ObjectSummary,
    PartRecord, Result, UploadRecord,
};

use crate::{backend, from_ms};

/// Statement parameters.
pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// Executes a statement, prepared once per connection (the pool keeps the cache).
pub(crate) async fn exec(c: &impl GenericClient, sql: &str, params: &Params<'_>) -> Result<u64> {
    let st = c.prepare_cached(sql).await.map_err(backend)?;
    c.execute(&st, params).await.map_err(backend)
}

/// The rows of a query, prepared once per connection.
pub(crate) async fn rows(
    c: &impl GenericClient,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<Row>> {
    let st = c.prepare_cached(sql).await.map_err(backend)?;
    c.query(&st, params).await.map_err(backend)
}

/// The first row of a query, if any.
pub(crate) async fn row(
    c: &impl GenericClient,
    sql: &str,
    params: &Params<'_>,
) -> Result<Option<Row>> {
    Ok(rows(c, sql, params).await?.into_iter().next())
}

/// Column `i` of a row, as a corrupt-store error rather than a panic if it has another type.
pub(crate) fn col<'a, T: FromSql<'a>>(r: &'a Row, i: usize) -> Result<T> {
    r.try_get(i)
        .map_err(|e| Error::Corrupt(format!("column {i}: {e}")))
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt(format!("negative size {v}")))
}

pub(crate) fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Backend(format!("encoding metadata: {e}")))
}

pub(crate) fn unjson<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("decoding metadata: {e}")))
}

/// Takes the advisory locks a write to a key holds until its transaction ends: its
/// bucket's shared (so the bucket's versioning holds still and the bucket is not deleted
/// under it), then the key's exclusive (one writer per key across every node). Hashes
/// that collide only serialize writes that need not be.
pub(crate) async fn lock_key(
    c: &impl GenericClient,
    schema: &str,
    bucket: &str,
    key: &str,
) -> Result<()> {
    let (b, k) = key_locks(schema, bucket, key);
    exec(c, LOCK_KEY, &[&b, &k]).await?;
    Ok(())
}

/// Takes a key's locks (`$1` the bucket's, `$2` the key's; see [`lock_key`]).
const LOCK_KEY: &str = "SELECT pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock($2)";

/// The advisory-lock keys of a bucket and of a key in it.
pub(crate) fn key_locks(schema: &str, bucket: &str, key: &str) -> (i64, i64) {
    (
        crate::lock_key(&[schema.as_bytes(), b"bucket", bucket.as_bytes()]),
        crate::lock_key(&[schema.as_bytes(), b"key", bucket.as_bytes(), key.as_bytes()]),
    )
}

/// Takes a bucket's advisory lock until the transaction ends: exclusive to delete it or
/// change its versioning, shared to add to it (settings, uploads).
pub(crate) async fn lock_bucket(
    c: &impl GenericClient,
    schema: &str,
    bucket: &str,
    exclusive: bool,
) -> Result<()> {
    let b = crate::lock_key(&[schema.as_bytes(), b"bucket", bucket.as_bytes()]);
    let sql = if exclusive {
        "SELECT pg_advisory_xact_lock($1)"
    } else {
        "SELECT pg_advisory_xact_lock_shared($1)"
    };
    exec(c, sql, &[&b]).await?;
    Ok(())
}

/// An extent as a row stores it: a blob's id, or (no id) the next `n` bytes of the
/// row's `inline` column.
#[derive(Serialize, Deserialize)]
struct StoredExtent {
    #[serde(rename = "b", skip_serializing_if = "Option::is_none", default)]
    blob: Option<String>,
    #[serde(rename = "n")]
    len: u64,
}

/// Extents as a row stores them (JSON, and the inline bytes concatenated); their blobs
/// are recorded in `blob_refs`.
pub(crate) async fn store_extents(
    c: &impl GenericClient,
    extents: &[Extent],
) -> Result<(String, Option<Vec<u8>>)> {
    let (stored, inline, blobs) = encode_extents(extents)?;
    if !blobs.is_empty() {
        exec(
            c,
            "INSERT INTO blob_refs (blob_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
            &[&blobs],
        )
        .await?;
    }
    Ok((stored, inline))
}

/// Extents as a row stores them, and the ids of their blobs.
pub(crate) fn encode_extents(extents: &[Extent]) -> Result<(String, Option<Vec<u8>>, Vec<String>)> {
    let mut out = Vec::with_capacity(extents.len());
    let mut inline: Option<Vec<u8>> = None;
    let mut blobs = Vec::new();
    for e in extents {
        match e {
            Extent::Inline(data) => {
                inline.get_or_insert_with(Vec::new).extend_from_slice(data);
                out.push(StoredExtent {
                    blob: None,
                    len: data.len() as u64,
                });
            }
            Extent::Blob { id, len } => {
                blobs.push(id.as_str().to_owned());
                out.push(StoredExtent {
                    blob: Some(id.as_str().to_owned()),
                    len: *len,
                });
            }
        }
    }
    Ok((json(&out)?, inline, blobs))
}

/// The blobs stored extents reference, but those in `keep`.
pub(crate) fn stored_blobs(stored: &str, keep: &BTreeSet<String>) -> Result<Vec<String>> {
    let stored: Vec<StoredExtent> = unjson(stored)?;
    Ok(stored
        .into_iter()
        .filter_map(|s| s.blob)
        .filter(|b| !keep.contains(b))
        .collect())
}

/// The extents a row stores.
pub(crate) fn load_extents(stored: &str, inline: Option<Vec<u8>>) -> Result<Vec<Extent>> {
    let stored: Vec<StoredExtent> = unjson(stored)?;
    let inline = Bytes::from(inline.unwrap_or_default());
    let mut at = 0usize;
    let mut out = Vec::with_capacity(stored.len());
    for s in stored {
        match s.blob {
            Some(b) => out.push(Extent::Blob {
                id: BlobId::parse(&b)
                    .ok_or_else(|| Error::Corrupt(format!("bad blob id {b:?}")))?,
                len: s.len,
            }),
            None => {
                let end = usize::try_from(s.len)
                    .ok()
                    .and_then(|n| at.checked_add(n))
                    .filter(|end| *end <= inline.len())
                    .ok_or_else(|| Error::Corrupt("inline extents overrun their bytes".into()))?;
                out.push(Extent::Inline(inline.slice(at..end)));
                at = end;
            }
        }
    }
    if at != inline.len() {
        return Err(Error::Corrupt("inline bytes no extent claims".into()));
    }
    Ok(out)
}

/// Frees the blobs stored extents reference, except those in `keep`: they move from
/// `blob_refs` to `garbage`. (Inline bytes go with their row.)
pub(crate) async fn drop_extents(
    c: &impl GenericClient,
    stored: &str,
    keep: &BTreeSet<String>,
) -> Result<()> {
    let freed = stored_blobs(stored, keep)?;
    if freed.is_empty() {
        return Ok(());
    }
    exec(
        c,
        "WITH gone AS (DELETE FROM blob_refs WHERE blob_id = ANY($1))
         INSERT INTO garbage (blob_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
        &[&freed],
    )
    .await?;
    Ok(())
}

pub(crate) fn blob_set(extents: &[Extent]) -> BTreeSet<String> {
    extents
        .iter()
        .filter_map(Extent::blob_id)
        .map(|b| b.as_str().to_owned())
        .collect()
}

/// The columns of a version's row, in `objects` (current versions) and `versions` alike.
pub(crate) const OBJECT_COLUMNS: &str =
    "key, size, etag, mtime_ms, meta, extents, inline, version_id, seq, marker";

pub(crate) struct ObjectRow {
    pub(crate) key: Vec<u8>,
    pub(crate) size: i64,
    pub(crate) etag: String,
    pub(crate) mtime_ms: i64,
    pub(crate) meta: String,
    pub(crate) extents: String,
    pub(crate) inline: Option<Vec<u8>>,
    /// '' for the null version.
    pub(crate) version_id: String,
    pub(crate) seq: i64,
    pub(crate) marker: bool,
}

/// A row selected with [`OBJECT_COLUMNS`] first.
pub(crate) fn object_row(r: &Row) -> Result<ObjectRow> {
    Ok(ObjectRow {
        key: col(r, 0)?,
        size: col(r, 1)?,
        etag: col(r, 2)?,
        mtime_ms: col(r, 3)?,
        meta: col(r, 4)?,
        extents: col(r, 5)?,
        inline: col(r, 6)?,
        version_id: col(r, 7)?,
        seq: col(r, 8)?,
        marker: col(r, 9)?,
    })
}

/// A stored version id ('' is the null version) as records carry it.
pub(crate) fn version_id(stored: &str) -> Option<&str> {
    (!stored.is_empty()).then_some(stored)
}

pub(crate) fn key_string(key: Vec<u8>) -> Result<String> {
    String::from_utf8(key).map_err(|_| Error::Corrupt("object key is not UTF-8".into()))
}

pub(crate) fn summary(row: ObjectRow) -> Result<ObjectSummary> {
    Ok(ObjectSummary {
        version_id: version_id(&row.version_id).map(str::to_owned),
        key: key_string(row.key)?,
        size: to_u64(row.size)?,
        etag: row.etag,
        last_modified: from_ms(row.mtime_ms)?,
        meta: unjson(&row.meta)?,
    })
}

pub(crate) fn marker(bucket: &str, row: ObjectRow) -> Result<DeleteMarker> {
    Ok(DeleteMarker {
        bucket: bucket.to_owned(),
        version_id: version_id(&row.version_id).map(str::to_owned),
        key: key_string(row.key)?,
        last_modified: from_ms(row.mtime_ms)?,
    })
}

/// A version's row as a record: objects with their extents.
pub(crate) fn entry(bucket: &str, mut row: ObjectRow) -> Result<Entry> {
    if row.marker {
        return Ok(Entry::Marker(marker(bucket, row)?));
    }
    let extents = load_extents(&row.extents, row.inline.take())?;
    let s = summary(row)?;
    Ok(Entry::Object(ObjectRecord {
        bucket: bucket.to_owned(),
        key: s.key,
        version_id: s.version_id,
        size: s.size,
        etag: s.etag,
        last_modified: s.last_modified,
        meta: s.meta,
        extents,
    }))
}

pub(crate) async fn bucket_exists(c: &impl GenericClient, name: &str) -> Result<bool> {
    Ok(row(c, "SELECT 1 FROM buckets WHERE name = $1", &[&name])
        .await?
        .is_some())
}

/// SQL range condition on `key` for keys starting with `prefix` from `start`, its
/// parameters numbered from `$first`.
pub(crate) fn key_range(prefix: &str, start: Bound<&str>, first: usize) -> (String, Vec<Vec<u8>>) {
    let ((lower, inclusive), upper) = coffer_storage::key_range(prefix, start);
    let op = if inclusive { ">=" } else { ">" };
    let mut cond = format!(" AND key {op} ${first}");
    let mut args = vec![lower.to_vec()];
    if let Some(end) = upper {
        cond.push_str(&format!(" AND key < ${}", first + 1));
        args.push(end);
    }
    (cond, args)
}

pub(crate) const PART_COLUMNS: &str = "part_number, size, etag, mtime_ms, checksum, extent, inline";

pub(crate) fn part_record(r: &Row) -> Result<PartRecord> {
    let number: i32 = col(r, 0)?;
    let checksum: Option<String> = col(r, 4)?;
    let extent: String = col(r, 5)?;
    let mut extents = load_extents(&extent, col(r, 6)?)?;
    if extents.len() != 1 {
        return Err(Error::Corrupt("a part must have exactly one extent".into()));
    }
    Ok(PartRecord {
        part_number: u32::try_from(number).map_err(|_| Error::Corrupt("part number".into()))?,
        size: to_u64(col(r, 1)?)?,
        etag: col(r, 2)?,
        last_modified: from_ms(col(r, 3)?)?,
        checksum: checksum.map(|c| unjson(&c)).transpose()?,
        extent: extents.remove(0),
    })
}

pub(crate) const UPLOAD_COLUMNS: &str = "upload_id, bucket, key, initiated_ms, initiator, meta";

pub(crate) fn upload_record(r: &Row) -> Result<UploadRecord> {
    let meta: String = col(r, 5)?;
    Ok(UploadRecord {
        upload_id: col(r, 0)?,
        bucket: col(r, 1)?,
        key: key_string(col(r, 2)?)?,
        initiated: from_ms(col(r, 3)?)?,
        initiator: col(r, 4)?,
        meta: unjson::<ObjectMeta>(&meta)?,
    })
}

/// Removes an upload and its parts, freeing their blobs but those in `keep`.
pub(crate) async fn remove_upload(
    c: &impl GenericClient,
    upload_id: &str,
    keep: &BTreeSet<String>,
) -> Result<()> {
    // The upload's row first: a part being added holds it, so this waits for that part
    // to commit and then frees it too.
    exec(c, "DELETE FROM uploads WHERE upload_id = $1", &[&upload_id]).await?;
    let parts = rows(
        c,
        "DELETE FROM parts WHERE upload_id = $1 RETURNING extent",
        &[&upload_id],
    )
    .await?;
    for p in &parts {
        let extent: String = col(p, 0)?;
        drop_extents(c, &extent, keep).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_extents_share_the_row_bytes() {
        let extents = vec![
            Extent::Inline(Bytes::from_static(b"abc")),
            Extent::Blob {
                id: BlobId::generate(),
                len: 7,
            },
            Extent::Inline(Bytes::from_static(b"de")),
        ];
        let stored: Vec<StoredExtent> = extents
            .iter()
            .map(|e| StoredExtent {
                blob: e.blob_id().map(|b| b.as_str().to_owned()),
                len: e.len(),
            })
            .collect();
        let json = json(&stored).expect("json");
        let back = load_extents(&json, Some(b"abcde".to_vec())).expect("load");
        assert_eq!(back, extents);
        assert!(load_extents(&json, Some(b"abcd".to_vec())).is_err());
        assert!(load_extents(&json, Some(b"abcdef".to_vec())).is_err());
    }
}
