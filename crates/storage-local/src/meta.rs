//! [`MetaStore`] on SQLite: writes through the group-commit [`Writer`], reads on a small
//! pool of read connections (WAL lets them run beside the writer) in blocking tasks.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use coffer_storage::{
    BlobId, BucketRecord, Error, Extent, ListPage, MetaStore, ObjectMeta, ObjectRecord,
    ObjectSummary, PartRecord, Precondition, Result, UploadListQuery, UploadRecord,
};

use crate::OpenError;
use crate::error::{backend, corrupt};
use crate::schema;
use crate::writer::Writer;

/// SQLite-backed metadata store.
#[derive(Clone)]
pub struct SqliteMeta {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
}

impl SqliteMeta {
    pub fn open(path: &Path) -> std::result::Result<Self, OpenError> {
        let mut conn = Connection::open(path)?;
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;
        schema::configure_writer(&conn)?;
        let checkpointer = Connection::open(path)?;
        schema::configure(&checkpointer)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        crate::writer::start_checkpointer(checkpointer, wal.into());
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Writer::start(conn),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.writer.write(f).await
    }

    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop();
            let conn = match pooled {
                Some(c) => c,
                None => {
                    let c = Connection::open(&inner.path).map_err(backend)?;
                    schema::configure(&c).map_err(backend)?;
                    c
                }
            };
            let r = f(&conn);
            inner
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
            r
        })
        .await
        .map_err(|e| Error::Backend(format!("metadata read task failed: {e}")))?
    }
}

// ---- encoding helpers ----

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

fn to_u64(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| corrupt(format!("negative size {v}")))
}

#[derive(Serialize, Deserialize)]
struct StoredExtent {
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

fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Backend(format!("encoding metadata: {e}")))
}

fn unjson<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(format!("decoding metadata: {e}")))
}

/// Stores extents: inline bytes go to `inline_data`, blob ids to `blob_refs`.
fn store_extents(conn: &Connection, extents: &[Extent]) -> Result<String> {
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

fn load_extents(conn: &Connection, stored: &str) -> Result<Vec<Extent>> {
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
fn drop_extents(conn: &Connection, stored: &str, keep: &BTreeSet<String>) -> Result<()> {
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

fn blob_set(extents: &[Extent]) -> BTreeSet<String> {
    extents
        .iter()
        .filter_map(Extent::blob_id)
        .map(|b| b.as_str().to_owned())
        .collect()
}

const OBJECT_COLUMNS: &str = "key, size, etag, mtime_ms, meta, extents";

struct ObjectRow {
    key: Vec<u8>,
    size: i64,
    etag: String,
    mtime_ms: i64,
    meta: String,
    extents: String,
}

fn object_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectRow> {
    Ok(ObjectRow {
        key: r.get(0)?,
        size: r.get(1)?,
        etag: r.get(2)?,
        mtime_ms: r.get(3)?,
        meta: r.get(4)?,
        extents: r.get(5)?,
    })
}

fn key_string(key: Vec<u8>) -> Result<String> {
    String::from_utf8(key).map_err(|_| corrupt("object key is not UTF-8"))
}

fn summary(row: ObjectRow) -> Result<ObjectSummary> {
    Ok(ObjectSummary {
        key: key_string(row.key)?,
        size: to_u64(row.size)?,
        etag: row.etag,
        last_modified: from_ms(row.mtime_ms)?,
        meta: unjson(&row.meta)?,
    })
}

fn full_object(conn: &Connection, bucket: &str, row: ObjectRow) -> Result<ObjectRecord> {
    let extents = load_extents(conn, &row.extents)?;
    let s = summary(row)?;
    Ok(ObjectRecord {
        bucket: bucket.to_owned(),
        key: s.key,
        size: s.size,
        etag: s.etag,
        last_modified: s.last_modified,
        meta: s.meta,
        extents,
    })
}

fn get_object_row(conn: &Connection, bucket: &str, key: &str) -> Result<Option<ObjectRow>> {
    query_one(
        conn,
        &format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1 AND key = ?2"),
        params![bucket, key.as_bytes()],
        object_row,
    )
}

fn check_precondition(
    current_etag: Option<&str>,
    precondition: &Precondition,
    object: &ObjectRecord,
) -> Result<()> {
    match (precondition, current_etag) {
        (Precondition::None, _) | (Precondition::NotExists, None) => Ok(()),
        (Precondition::NotExists, Some(_)) => Err(Error::PreconditionFailed),
        (Precondition::EtagMatches(_), None) => Err(Error::NoSuchKey {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
        }),
        (Precondition::EtagMatches(want), Some(have)) if want == have => Ok(()),
        (Precondition::EtagMatches(_), Some(_)) => Err(Error::PreconditionFailed),
    }
}

fn bucket_exists(conn: &Connection, name: &str) -> Result<bool> {
    query_one(
        conn,
        "SELECT 1 FROM buckets WHERE name = ?1",
        [name],
        |_| Ok(()),
    )
    .map(|o| o.is_some())
}

/// Writes `object`, replacing (and freeing the data of) any current version.
fn write_object(
    conn: &Connection,
    object: &ObjectRecord,
    current: Option<ObjectRow>,
) -> Result<Option<ObjectRecord>> {
    let old = match current {
        Some(row) => {
            let stored = row.extents.clone();
            let old = full_object(conn, &object.bucket, row)?;
            drop_extents(conn, &stored, &blob_set(&object.extents))?;
            Some(old)
        }
        None => None,
    };
    let extents = store_extents(conn, &object.extents)?;
    exec(
        conn,
        "INSERT OR REPLACE INTO objects (bucket, key, size, etag, mtime_ms, meta, extents)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            object.bucket,
            object.key.as_bytes(),
            to_i64(object.size),
            object.etag,
            ms(object.last_modified),
            json(&object.meta)?,
            extents
        ],
    )?;
    Ok(old)
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// SQL range condition and parameters for keys starting with `prefix` from `start`.
fn key_range(prefix: &str, start: Bound<&str>) -> (String, Vec<Vec<u8>>) {
    let mut cond = String::new();
    let mut args = Vec::new();
    let lower = match start {
        Bound::Included(s) if s.as_bytes() > prefix.as_bytes() => Some((">=", s.as_bytes())),
        Bound::Excluded(s) if s.as_bytes() >= prefix.as_bytes() => Some((">", s.as_bytes())),
        _ => Some((">=", prefix.as_bytes())),
    };
    if let Some((op, v)) = lower {
        cond.push_str(&format!(" AND key {op} ?{}", args.len() + 2));
        args.push(v.to_vec());
    }
    if let Some(end) = prefix_end(prefix.as_bytes()) {
        cond.push_str(&format!(" AND key < ?{}", args.len() + 2));
        args.push(end);
    }
    (cond, args)
}

const PART_COLUMNS: &str = "part_number, size, etag, mtime_ms, checksum, extent";

fn part_row(conn: &Connection, r: &rusqlite::Row<'_>) -> Result<PartRecord> {
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

fn upload_row(
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

fn upload_record(row: (String, String, Vec<u8>, i64, String, String)) -> Result<UploadRecord> {
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

const UPLOAD_COLUMNS: &str = "upload_id, bucket, key, initiated_ms, initiator, meta";

fn upload_exists(conn: &Connection, bucket: &str, upload_id: &str) -> Result<bool> {
    query_one(
        conn,
        "SELECT 1 FROM uploads WHERE upload_id = ?1 AND bucket = ?2",
        params![upload_id, bucket],
        |_| Ok(()),
    )
    .map(|o| o.is_some())
}

/// Removes an upload's parts; frees their data except blobs in `keep`.
fn remove_upload(conn: &Connection, upload_id: &str, keep: &BTreeSet<String>) -> Result<()> {
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

#[async_trait]
impl MetaStore for SqliteMeta {
    async fn create_bucket(&self, bucket: &BucketRecord) -> Result<()> {
        let b = bucket.clone();
        self.write(move |conn| {
            let existing: Option<String> = conn
                .query_row(
                    "SELECT owner FROM buckets WHERE name = ?1",
                    [&b.name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            if let Some(owner) = existing {
                return Err(Error::BucketAlreadyExists {
                    name: b.name,
                    owner,
                });
            }
            exec(
                conn,
                "INSERT INTO buckets (name, owner, region, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![b.name, b.owner, b.region, ms(b.created)],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        let name = name.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT name, owner, region, created_ms FROM buckets WHERE name = ?1",
                [&name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)?)),
            )
            .optional()
            .map_err(backend)?
            .map(|(name, owner, region, created)| {
                Ok(BucketRecord {
                    name,
                    owner,
                    region,
                    created: from_ms(created)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT name, owner, region, created_ms FROM buckets ORDER BY name")
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)?))
                })
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (name, owner, region, created) = row.map_err(backend)?;
                out.push(BucketRecord {
                    name,
                    owner,
                    region,
                    created: from_ms(created)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn delete_bucket(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.write(move |conn| {
            if !bucket_exists(conn, &name)? {
                return Err(Error::NoSuchBucket(name));
            }
            let busy = conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1)
                         OR EXISTS (SELECT 1 FROM uploads WHERE bucket = ?1)",
                    [&name],
                    |r| r.get::<_, bool>(0),
                )
                .map_err(backend)?;
            if busy {
                return Err(Error::BucketNotEmpty(name));
            }
            exec(conn, "DELETE FROM buckets WHERE name = ?1", [&name])?;
            exec(
                conn,
                "DELETE FROM bucket_settings WHERE bucket = ?1",
                [&name],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_bucket_setting(&self, bucket: &str, name: &str) -> Result<Option<String>> {
        let (bucket, name) = (bucket.to_owned(), name.to_owned());
        self.read(move |conn| {
            query_one(
                conn,
                "SELECT value FROM bucket_settings WHERE bucket = ?1 AND name = ?2",
                params![bucket, name],
                |r| r.get(0),
            )
        })
        .await
    }

    async fn put_bucket_setting(&self, bucket: &str, name: &str, value: &str) -> Result<()> {
        let (bucket, name, value) = (bucket.to_owned(), name.to_owned(), value.to_owned());
        self.write(move |conn| {
            if !bucket_exists(conn, &bucket)? {
                return Err(Error::NoSuchBucket(bucket));
            }
            exec(
                conn,
                "INSERT OR REPLACE INTO bucket_settings (bucket, name, value) VALUES (?1, ?2, ?3)",
                params![bucket, name, value],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_bucket_setting(&self, bucket: &str, name: &str) -> Result<()> {
        let (bucket, name) = (bucket.to_owned(), name.to_owned());
        self.write(move |conn| {
            exec(
                conn,
                "DELETE FROM bucket_settings WHERE bucket = ?1 AND name = ?2",
                params![bucket, name],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.read(move |conn| {
            get_object_row(conn, &bucket, &key)?
                .map(|row| full_object(conn, &bucket, row))
                .transpose()
        })
        .await
    }

    async fn put_object(
        &self,
        object: &ObjectRecord,
        precondition: &Precondition,
    ) -> Result<Option<ObjectRecord>> {
        let object = object.clone();
        let precondition = precondition.clone();
        self.write(move |conn| {
            if !bucket_exists(conn, &object.bucket)? {
                return Err(Error::NoSuchBucket(object.bucket.clone()));
            }
            let current = get_object_row(conn, &object.bucket, &object.key)?;
            check_precondition(
                current.as_ref().map(|r| r.etag.as_str()),
                &precondition,
                &object,
            )?;
            write_object(conn, &object, current)
        })
        .await
    }

    async fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        let (bucket, key, tags) = (bucket.to_owned(), key.to_owned(), tags.clone());
        self.write(move |conn| {
            let Some(row) = get_object_row(conn, &bucket, &key)? else {
                return Err(Error::NoSuchKey { bucket, key });
            };
            let mut meta: ObjectMeta = unjson(&row.meta)?;
            meta.tags = tags;
            exec(
                conn,
                "UPDATE objects SET meta = ?3 WHERE bucket = ?1 AND key = ?2",
                params![bucket, key.as_bytes(), json(&meta)?],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.write(move |conn| {
            let Some(row) = get_object_row(conn, &bucket, &key)? else {
                return Ok(None);
            };
            let stored = row.extents.clone();
            let old = full_object(conn, &bucket, row)?;
            drop_extents(conn, &stored, &BTreeSet::new())?;
            exec(
                conn,
                "DELETE FROM objects WHERE bucket = ?1 AND key = ?2",
                params![bucket, key.as_bytes()],
            )?;
            Ok(Some(old))
        })
        .await
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        start: Bound<&str>,
        limit: usize,
    ) -> Result<ListPage<ObjectSummary>> {
        let bucket = bucket.to_owned();
        let (cond, args) = key_range(prefix, start);
        self.read(move |conn| {
            let sql = format!(
                "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1{cond} ORDER BY key LIMIT {}",
                limit.saturating_add(1)
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let mut params: Vec<&dyn rusqlite::ToSql> = vec![&bucket];
            for a in &args {
                params.push(a);
            }
            let rows = stmt
                .query_map(params.as_slice(), object_row)
                .map_err(backend)?;
            let mut items = Vec::new();
            let mut truncated = false;
            for row in rows {
                if items.len() == limit {
                    truncated = true;
                    break;
                }
                items.push(summary(row.map_err(backend)?)?);
            }
            Ok(ListPage { items, truncated })
        })
        .await
    }

    async fn create_upload(&self, upload: &UploadRecord) -> Result<()> {
        let u = upload.clone();
        self.write(move |conn| {
            if !bucket_exists(conn, &u.bucket)? {
                return Err(Error::NoSuchBucket(u.bucket.clone()));
            }
            exec(
                conn,
                &format!("INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    u.upload_id,
                    u.bucket,
                    u.key.as_bytes(),
                    ms(u.initiated),
                    u.initiator,
                    json(&u.meta)?
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_upload(&self, bucket: &str, upload_id: &str) -> Result<Option<UploadRecord>> {
        let (bucket, upload_id) = (bucket.to_owned(), upload_id.to_owned());
        self.read(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ?1 AND bucket = ?2"
                ),
                params![upload_id, bucket],
                upload_row,
            )
            .optional()
            .map_err(backend)?
            .map(upload_record)
            .transpose()
        })
        .await
    }

    async fn put_part(&self, bucket: &str, upload_id: &str, part: &PartRecord) -> Result<()> {
        let (bucket, upload_id, part) = (bucket.to_owned(), upload_id.to_owned(), part.clone());
        self.write(move |conn| {
            if !upload_exists(conn, &bucket, &upload_id)? {
                return Err(Error::NoSuchUpload(upload_id));
            }
            let old: Option<String> = conn
                .query_row(
                    "SELECT extent FROM parts WHERE upload_id = ?1 AND part_number = ?2",
                    params![upload_id, part.part_number],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            if let Some(old) = old {
                drop_extents(conn, &old, &blob_set(std::slice::from_ref(&part.extent)))?;
            }
            let extent = store_extents(conn, std::slice::from_ref(&part.extent))?;
            let checksum = part.checksum.as_ref().map(json).transpose()?;
            exec(
                conn,
                &format!(
                    "INSERT OR REPLACE INTO parts (upload_id, {PART_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    upload_id,
                    part.part_number,
                    to_i64(part.size),
                    part.etag,
                    ms(part.last_modified),
                    checksum,
                    extent
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_parts(
        &self,
        bucket: &str,
        upload_id: &str,
        after: u32,
        limit: usize,
    ) -> Result<ListPage<PartRecord>> {
        let (bucket, upload_id) = (bucket.to_owned(), upload_id.to_owned());
        self.read(move |conn| {
            if !upload_exists(conn, &bucket, &upload_id)? {
                return Err(Error::NoSuchUpload(upload_id));
            }
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {PART_COLUMNS} FROM parts WHERE upload_id = ?1 AND part_number > ?2
                     ORDER BY part_number LIMIT ?3"
                ))
                .map_err(backend)?;
            let mut rows = stmt
                .query(params![upload_id, after, to_i64(limit as u64 + 1)])
                .map_err(backend)?;
            let mut items = Vec::new();
            let mut truncated = false;
            while let Some(r) = rows.next().map_err(backend)? {
                if items.len() == limit {
                    truncated = true;
                    break;
                }
                items.push(part_row(conn, r)?);
            }
            Ok(ListPage { items, truncated })
        })
        .await
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        query: &UploadListQuery<'_>,
    ) -> Result<ListPage<UploadRecord>> {
        let bucket = bucket.to_owned();
        let limit = query.limit;
        let (mut cond, mut args) = key_range(query.prefix, query.start);
        let mut id_marker = None;
        if let (Bound::Excluded(k), Some(id)) = (query.start, query.upload_id_marker) {
            // (key > k) OR (key = k AND upload_id > id), expressed without a second scan.
            let (c, a) = key_range(query.prefix, Bound::Included(k));
            cond = c;
            args = a;
            id_marker = Some((k.as_bytes().to_vec(), id.to_owned()));
        }
        self.read(move |conn| {
            let extra = if id_marker.is_some() {
                format!(
                    " AND (key > ?{} OR upload_id > ?{})",
                    args.len() + 2,
                    args.len() + 3
                )
            } else {
                String::new()
            };
            let sql = format!(
                "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE bucket = ?1{cond}{extra}
                 ORDER BY key, upload_id LIMIT {}",
                limit.saturating_add(1)
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let mut params: Vec<&dyn rusqlite::ToSql> = vec![&bucket];
            for a in &args {
                params.push(a);
            }
            if let Some((k, id)) = &id_marker {
                params.push(k);
                params.push(id);
            }
            let rows = stmt
                .query_map(params.as_slice(), upload_row)
                .map_err(backend)?;
            let mut items = Vec::new();
            let mut truncated = false;
            for row in rows {
                if items.len() == limit {
                    truncated = true;
                    break;
                }
                items.push(upload_record(row.map_err(backend)?)?);
            }
            Ok(ListPage { items, truncated })
        })
        .await
    }

    async fn complete_upload(
        &self,
        upload_id: &str,
        used: &[(u32, String)],
        object: &ObjectRecord,
        precondition: &Precondition,
    ) -> Result<Option<ObjectRecord>> {
        let (upload_id, used, object) = (upload_id.to_owned(), used.to_vec(), object.clone());
        let precondition = precondition.clone();
        self.write(move |conn| {
            let found: Option<(String, Vec<u8>)> = conn
                .query_row(
                    "SELECT bucket, key FROM uploads WHERE upload_id = ?1",
                    [&upload_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            match found {
                Some((b, k)) if b == object.bucket && k == object.key.as_bytes() => {}
                _ => return Err(Error::NoSuchUpload(upload_id)),
            }
            if !bucket_exists(conn, &object.bucket)? {
                return Err(Error::NoSuchBucket(object.bucket.clone()));
            }
            for (number, etag) in &used {
                let stored: Option<String> = conn
                    .query_row(
                        "SELECT etag FROM parts WHERE upload_id = ?1 AND part_number = ?2",
                        params![upload_id, number],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(backend)?;
                if stored.as_ref() != Some(etag) {
                    return Err(Error::InvalidPart(*number));
                }
            }
            let current = get_object_row(conn, &object.bucket, &object.key)?;
            check_precondition(
                current.as_ref().map(|r| r.etag.as_str()),
                &precondition,
                &object,
            )?;
            let keep = blob_set(&object.extents);
            remove_upload(conn, &upload_id, &keep)?;
            write_object(conn, &object, current)
        })
        .await
    }

    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> Result<()> {
        let (bucket, upload_id) = (bucket.to_owned(), upload_id.to_owned());
        self.write(move |conn| {
            if !upload_exists(conn, &bucket, &upload_id)? {
                return Err(Error::NoSuchUpload(upload_id));
            }
            remove_upload(conn, &upload_id, &BTreeSet::new())
        })
        .await
    }

    async fn blob_referenced(&self, id: &BlobId) -> Result<bool> {
        let id = id.as_str().to_owned();
        self.read(move |conn| {
            conn.query_row("SELECT 1 FROM blob_refs WHERE blob_id = ?1", [&id], |_| {
                Ok(())
            })
            .optional()
            .map(|o| o.is_some())
            .map_err(backend)
        })
        .await
    }

    async fn take_garbage(&self, limit: usize) -> Result<Vec<BlobId>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT blob_id FROM garbage ORDER BY blob_id LIMIT ?1")
                .map_err(backend)?;
            let rows = stmt
                .query_map([to_i64(limit as u64)], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            let mut out = Vec::new();
            for r in rows {
                let s = r.map_err(backend)?;
                out.push(BlobId::parse(&s).ok_or_else(|| corrupt(format!("bad blob id {s:?}")))?);
            }
            Ok(out)
        })
        .await
    }

    async fn forget_garbage(&self, ids: &[BlobId]) -> Result<()> {
        let ids: Vec<String> = ids.iter().map(|i| i.as_str().to_owned()).collect();
        self.write(move |conn| {
            for id in &ids {
                exec(conn, "DELETE FROM garbage WHERE blob_id = ?1", [id])?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_least_upper_bound() {
        assert_eq!(prefix_end(b"abc"), Some(b"abd".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn listing_uses_the_primary_key_index() {
        let conn = Connection::open_in_memory().expect("open");
        let mut conn = conn;
        schema::migrate(&mut conn).expect("schema");
        let (cond, _) = key_range("photos/", Bound::Excluded("photos/2024"));
        let plan: Vec<String> = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1{cond} ORDER BY key LIMIT 1001"
            ))
            .expect("prepare")
            .query_map(params!["b", b"photos/2024".to_vec(), b"photos0".to_vec()], |r| {
                r.get::<_, String>(3)
            })
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        let plan = plan.join(" | ");
        assert!(
            plan.contains("SEARCH objects USING PRIMARY KEY (bucket=? AND key>? AND key<?)"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "no sort step: {plan}");
    }
}
