//! How records map to SQLite rows: timestamps, JSON columns, extents (inline rows and
//! blob references), object and upload rows, key ranges for listings, and the shared
//! statements of the write paths.

use std::collections::BTreeSet;
use std::ops::Bound;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use coffer_storage::{
    BlobId, DeleteMarker, Entry, Error, Extent, ObjectMeta, ObjectRecord, ObjectSummary,
    PartRecord, Result, UploadRecord,
};

use crate::error::{backend, corrupt};

pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn from_ms(v: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000)
        .map_err(|_| corrupt(format!("timestamp {v} out of range")))
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| corrupt(format!("negative size {v}")))
}

#[derive(Serialize, Deserialize)]
pub(crate) struct StoredExtent {
    #[serde(rename = "b", skip_serializing_if = "Option::is_none", default)]
    blob: Option<String>,
    #[serde(rename = "i", skip_serializing_if = "Option::is_none", default)]
    inline: Option<i64>,
    #[serde(rename = "n")]
    len: u64,
}

/// Executes a statement through the connection's statement cache: hot statements are
/// parsed once per connection, not once per request.
pub(crate) fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
    conn.prepare_cached(sql)
        .and_then(|mut st| st.execute(params))
        .map_err(backend)
}

/// `query_row` through the statement cache.
pub(crate) fn query_one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    conn.prepare_cached(sql)
        .and_then(|mut st| st.query_row(params, f).optional())
        .map_err(backend)
}

pub(crate) fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Backend(format!("encoding metadata: {e}")))
}

pub(crate) fn unjson<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(format!("decoding metadata: {e}")))
}

/// Stores extents: inline bytes go to `inline_data`, blob ids to `blob_refs`.
pub(crate) fn store_extents(conn: &Connection, extents: &[Extent]) -> Result<String> {
    let mut out = Vec::with_capacity(extents.len());
    for e in extents {
        match e {
            Extent::Inline(data) => {
                exec(
                    conn,
                    "INSERT INTO inline_data (data) VALUES (?1)",
                    params![data.as_ref()],
                )?;
                out.push(StoredExtent {
                    blob: None,
                    inline: Some(conn.last_insert_rowid()),
                    len: data.len() as u64,
                });
            }
            Extent::Blob { id, len } => {
                exec(
                    conn,
                    "INSERT OR IGNORE INTO blob_refs (blob_id) VALUES (?1)",
                    params![id.as_str()],
                )?;
                out.push(StoredExtent {
                    blob: Some(id.as_str().to_owned()),
                    inline: None,
                    len: *len,
                });
            }
        }
    }
    json(&out)
}

pub(crate) fn load_extents(conn: &Connection, stored: &str) -> Result<Vec<Extent>> {
    let stored: Vec<StoredExtent> = unjson(stored)?;
    let mut out = Vec::with_capacity(stored.len());
    for s in stored {
        match (s.blob, s.inline) {
            (Some(b), None) => out.push(Extent::Blob {
                id: BlobId::parse(&b).ok_or_else(|| corrupt(format!("bad blob id {b:?}")))?,
                len: s.len,
            }),
            (None, Some(i)) => {
                let data: Vec<u8> = conn
                    .query_row("SELECT data FROM inline_data WHERE id = ?1", [i], |r| {
                        r.get(0)
                    })
                    .map_err(|e| corrupt(format!("inline data {i}: {e}")))?;
                if data.len() as u64 != s.len {
                    return Err(corrupt(format!("inline data {i} has the wrong length")));
                }
                out.push(Extent::Inline(Bytes::from(data)));
            }
            _ => return Err(corrupt("extent is neither blob nor inline")),
        }
    }
    Ok(out)
}

/// Frees what stored extents hold, except blobs in `keep`: inline rows are deleted, blobs
/// move from `blob_refs` to `garbage`.
pub(crate) fn drop_extents(conn: &Connection, stored: &str, keep: &BTreeSet<String>) -> Result<()> {
    let stored: Vec<StoredExtent> = unjson(stored)?;
    for s in stored {
        if let Some(i) = s.inline {
            exec(conn, "DELETE FROM inline_data WHERE id = ?1", [i])?;
        }
        if let Some(b) = s.blob
            && !keep.contains(&b)
        {
            exec(conn, "DELETE FROM blob_refs WHERE blob_id = ?1", [&b])?;
            exec(
                conn,
                "INSERT OR IGNORE INTO garbage (blob_id) VALUES (?1)",
                [&b],
            )?;
        }
    }
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
    "key, size, etag, mtime_ms, meta, extents, version_id, seq, marker";

pub(crate) struct ObjectRow {
    pub(crate) key: Vec<u8>,
    pub(crate) size: i64,
    pub(crate) etag: String,
    pub(crate) mtime_ms: i64,
    pub(crate) meta: String,
    pub(crate) extents: String,
    /// '' for the null version.
    pub(crate) version_id: String,
    pub(crate) seq: i64,
    pub(crate) marker: bool,
}

pub(crate) fn object_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectRow> {
    Ok(ObjectRow {
        key: r.get(0)?,
        size: r.get(1)?,
        etag: r.get(2)?,
        mtime_ms: r.get(3)?,
        meta: r.get(4)?,
        extents: r.get(5)?,
        version_id: r.get(6)?,
        seq: r.get(7)?,
        marker: r.get(8)?,
    })
}

/// A stored version id ('' is the null version) as records carry it.
pub(crate) fn version_id(stored: &str) -> Option<&str> {
    (!stored.is_empty()).then_some(stored)
}

pub(crate) fn key_string(key: Vec<u8>) -> Result<String> {
    String::from_utf8(key).map_err(|_| corrupt("object key is not UTF-8"))
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

pub(crate) fn full_object(conn: &Connection, bucket: &str, row: ObjectRow) -> Result<ObjectRecord> {
    let extents = load_extents(conn, &row.extents)?;
    let s = summary(row)?;
    Ok(ObjectRecord {
        bucket: bucket.to_owned(),
        key: s.key,
        version_id: s.version_id,
        size: s.size,
        etag: s.etag,
        last_modified: s.last_modified,
        meta: s.meta,
        extents,
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
pub(crate) fn entry(conn: &Connection, bucket: &str, row: ObjectRow) -> Result<Entry> {
    if row.marker {
        Ok(Entry::Marker(marker(bucket, row)?))
    } else {
        Ok(Entry::Object(full_object(conn, bucket, row)?))
    }
}

pub(crate) fn get_object_row(
    conn: &Connection,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectRow>> {
    query_one(
        conn,
        &format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1 AND key = ?2"),
        params![bucket, key.as_bytes()],
        object_row,
    )
}

pub(crate) fn bucket_exists(conn: &Connection, name: &str) -> Result<bool> {
    query_one(
        conn,
        "SELECT 1 FROM buckets WHERE name = ?1",
        [name],
        |_| Ok(()),
    )
    .map(|o| o.is_some())
}

/// SQL range condition and parameters for keys starting with `prefix` from `start`.
pub(crate) fn key_range(prefix: &str, start: Bound<&str>) -> (String, Vec<Vec<u8>>) {
    key_range_at(prefix, start, 2)
}

/// [`key_range`] with its parameters numbered from `?first`.
pub(crate) fn key_range_at(
    prefix: &str,
    start: Bound<&str>,
    first: usize,
) -> (String, Vec<Vec<u8>>) {
    let ((lower, inclusive), upper) = coffer_storage::key_range(prefix, start);
    let op = if inclusive { ">=" } else { ">" };
    let mut cond = format!(" AND key {op} ?{first}");
    let mut args = vec![lower.to_vec()];
    if let Some(end) = upper {
        cond.push_str(&format!(" AND key < ?{}", first + 1));
        args.push(end);
    }
    (cond, args)
}

pub(crate) const PART_COLUMNS: &str = "part_number, size, etag, mtime_ms, checksum, extent";

pub(crate) fn part_row(conn: &Connection, r: &rusqlite::Row<'_>) -> Result<PartRecord> {
    let number: i64 = r.get(0).map_err(backend)?;
    let checksum: Option<String> = r.get(4).map_err(backend)?;
    let extent: String = r.get(5).map_err(backend)?;
    let mut extents = load_extents(conn, &extent)?;
    if extents.len() != 1 {
        return Err(corrupt("a part must have exactly one extent"));
    }
    Ok(PartRecord {
        part_number: u32::try_from(number).map_err(|_| corrupt("part number"))?,
        size: to_u64(r.get(1).map_err(backend)?)?,
        etag: r.get(2).map_err(backend)?,
        last_modified: from_ms(r.get(3).map_err(backend)?)?,
        checksum: checksum.map(|c| unjson(&c)).transpose()?,
        extent: extents.remove(0),
    })
}

pub(crate) fn upload_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, Vec<u8>, i64, String, String)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

pub(crate) fn upload_record(
    row: (String, String, Vec<u8>, i64, String, String),
) -> Result<UploadRecord> {
    let (upload_id, bucket, key, initiated, initiator, meta) = row;
    Ok(UploadRecord {
        upload_id,
        bucket,
        key: key_string(key)?,
        initiated: from_ms(initiated)?,
        initiator,
        meta: unjson::<ObjectMeta>(&meta)?,
    })
}

pub(crate) const UPLOAD_COLUMNS: &str = "upload_id, bucket, key, initiated_ms, initiator, meta";

pub(crate) fn upload_exists(conn: &Connection, bucket: &str, upload_id: &str) -> Result<bool> {
    query_one(
        conn,
        "SELECT 1 FROM uploads WHERE upload_id = ?1 AND bucket = ?2",
        params![upload_id, bucket],
        |_| Ok(()),
    )
    .map(|o| o.is_some())
}

/// Removes an upload's parts; frees their data except blobs in `keep`.
pub(crate) fn remove_upload(
    conn: &Connection,
    upload_id: &str,
    keep: &BTreeSet<String>,
) -> Result<()> {
    let extents: Vec<String> = {
        let mut stmt = conn
            .prepare_cached("SELECT extent FROM parts WHERE upload_id = ?1")
            .map_err(backend)?;
        let rows = stmt
            .query_map([upload_id], |r| r.get::<_, String>(0))
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)?
    };
    for e in &extents {
        drop_extents(conn, e, keep)?;
    }
    exec(conn, "DELETE FROM parts WHERE upload_id = ?1", [upload_id])?;
    exec(
        conn,
        "DELETE FROM uploads WHERE upload_id = ?1",
        [upload_id],
    )?;
    Ok(())
}
