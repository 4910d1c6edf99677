//! [`MetaStore`] on SQLite: writes through the group-commit [`Writer`], reads on a small
//! pool of read connections (WAL lets them run beside the writer) in blocking tasks.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use coffer_storage::{
    Authority, BlobId, BucketRecord, Deleted, Entry, Error, ListPage, Listed, ListedVersion,
    LockChange, MetaStore, ObjectMeta, ObjectRecord, ObjectSummary, PartRecord, Precondition,
    Result, SseRecord, UploadListQuery, UploadRecord, VersionListQuery, VersionRef, Versioning,
    Written,
};

use crate::OpenError;
use crate::error::{backend, corrupt};
use crate::rows::*;
use crate::schema;
use crate::uploads;
use crate::versions::{self, bucket_versioning, owned, put_version, set_meta, version_row};
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
    /// Set to have the checkpointer truncate the WAL (see `writer::start_checkpointer`).
    scrub: Arc<AtomicBool>,
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
        let scrub = Arc::new(AtomicBool::new(false));
        crate::writer::start_checkpointer(checkpointer, wal.into(), scrub.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Writer::start(conn),
                readers: Mutex::new(Vec::new()),
                scrub,
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

#[async_trait]
impl MetaStore for SqliteMeta {
    async fn create_bucket_with_settings(
        &self,
        bucket: &BucketRecord,
        settings: &[(&str, &str)],
    ) -> Result<()> {
        let b = bucket.clone();
        let settings: Vec<(String, String)> = settings
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
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
                "INSERT INTO buckets (name, owner, region, created_ms, versioning)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    b.name,
                    b.owner,
                    b.region,
                    ms(b.created),
                    b.versioning.as_str()
                ],
            )?;
            for (name, value) in &settings {
                exec(
                    conn,
                    "INSERT OR REPLACE INTO bucket_settings (bucket, name, value) VALUES (?1, ?2, ?3)",
                    params![b.name, name, value],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        let name = name.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {BUCKET_COLUMNS} FROM buckets WHERE name = ?1"),
                [&name],
                bucket_row,
            )
            .optional()
            .map_err(backend)?
            .map(bucket_record)
            .transpose()
        })
        .await
    }

    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {BUCKET_COLUMNS} FROM buckets ORDER BY name"
                ))
                .map_err(backend)?;
            let rows = stmt.query_map([], bucket_row).map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(bucket_record(row.map_err(backend)?)?);
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
                         OR EXISTS (SELECT 1 FROM versions WHERE bucket = ?1)",
                    [&name],
                    |r| r.get::<_, bool>(0),
                )
                .map_err(backend)?;
            if busy {
                return Err(Error::BucketNotEmpty(name));
            }
            // Uploads in progress go with the bucket, as S3 aborts them.
            let uploads: Vec<String> = {
                let mut stmt = conn
                    .prepare_cached("SELECT upload_id FROM uploads WHERE bucket = ?1")
                    .map_err(backend)?;
                let rows = stmt
                    .query_map([&name], |r| r.get::<_, String>(0))
                    .map_err(backend)?;
                rows.collect::<rusqlite::Result<_>>().map_err(backend)?
            };
            for id in &uploads {
                remove_upload(conn, id, &BTreeSet::new())?;
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

    async fn set_versioning(&self, bucket: &str, versioning: Versioning) -> Result<()> {
        let bucket = bucket.to_owned();
        self.write(move |conn| {
            let n = exec(
                conn,
                "UPDATE buckets SET versioning = ?2 WHERE name = ?1",
                params![bucket, versioning.as_str()],
            )?;
            if n == 0 {
                return Err(Error::NoSuchBucket(bucket));
            }
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

    async fn get_account_setting(&self, account: &str, name: &str) -> Result<Option<String>> {
        let (account, name) = (account.to_owned(), name.to_owned());
        self.read(move |conn| {
            query_one(
                conn,
                "SELECT value FROM account_settings WHERE account = ?1 AND name = ?2",
                params![account, name],
                |r| r.get(0),
            )
        })
        .await
    }

    async fn put_account_setting(&self, account: &str, name: &str, value: &str) -> Result<()> {
        let (account, name, value) = (account.to_owned(), name.to_owned(), value.to_owned());
        self.write(move |conn| {
            exec(
                conn,
                "INSERT OR REPLACE INTO account_settings (account, name, value) VALUES (?1, ?2, ?3)",
                params![account, name, value],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_account_setting(&self, account: &str, name: &str) -> Result<()> {
        let (account, name) = (account.to_owned(), name.to_owned());
        self.write(move |conn| {
            exec(
                conn,
                "DELETE FROM account_settings WHERE account = ?1 AND name = ?2",
                params![account, name],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_entry(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
    ) -> Result<Option<Entry>> {
        let (bucket, key, version) = (bucket.to_owned(), key.to_owned(), owned(version));
        self.read(move |conn| {
            version_row(conn, &bucket, &key, version.as_ref())?
                .map(|(row, _)| entry(conn, &bucket, row))
                .transpose()
        })
        .await
    }

    async fn put_object(
        &self,
        object: &ObjectRecord,
        precondition: &Precondition,
    ) -> Result<Written> {
        let object = object.clone();
        let precondition = precondition.clone();
        self.write(move |conn| {
            let Some(versioning) = bucket_versioning(conn, &object.bucket)? else {
                return Err(Error::NoSuchBucket(object.bucket.clone()));
            };
            put_version(conn, versioning, &object, &precondition)
        })
        .await
    }

    async fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        let (bucket, key, tags) = (bucket.to_owned(), key.to_owned(), tags.clone());
        let version = owned(version);
        self.write(move |conn| {
            versions::update_meta(conn, &bucket, &key, version.as_ref(), |meta, _| {
                meta.tags = tags;
                Ok(())
            })
        })
        .await
    }

    async fn set_object_acl(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        acl: Option<&str>,
    ) -> Result<()> {
        let (bucket, key, acl) = (bucket.to_owned(), key.to_owned(), acl.map(str::to_owned));
        let version = owned(version);
        self.write(move |conn| {
            versions::update_meta(conn, &bucket, &key, version.as_ref(), |meta, _| {
                meta.acl = acl;
                Ok(())
            })
        })
        .await
    }

    async fn set_object_sse(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        object_id: &[u8; 16],
        sse: &SseRecord,
    ) -> Result<()> {
        let (bucket, key, object_id, sse) =
            (bucket.to_owned(), key.to_owned(), *object_id, sse.clone());
        let version = owned(version);
        self.write(move |conn| {
            let v = version.as_ref();
            let Some((row, current)) = version_row(conn, &bucket, &key, v)? else {
                return Err(v.missing(&bucket, &key));
            };
            if row.marker {
                return Err(Error::PreconditionFailed);
            }
            let mut meta: ObjectMeta = unjson(&row.meta)?;
            if meta.sse.as_ref().map(SseRecord::object_id) != Some(object_id) {
                return Err(Error::PreconditionFailed);
            }
            meta.sse = Some(sse);
            set_meta(conn, &bucket, &row, current, &json(&meta)?)
        })
        .await
    }

    async fn set_object_lock(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        change: LockChange,
        by: &Authority,
    ) -> Result<()> {
        let (bucket, key, by) = (bucket.to_owned(), key.to_owned(), *by);
        let version = owned(version);
        self.write(move |conn| {
            versions::update_meta(conn, &bucket, &key, version.as_ref(), |meta, id| {
                meta.change_lock(change, &by)
                    .map_err(|refusal| Error::ObjectLocked {
                        key: key.clone(),
                        version_id: id.to_owned(),
                        refusal,
                    })
            })
        })
        .await
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        marker_id: &str,
        by: &Authority,
        precondition: &Precondition,
    ) -> Result<Deleted> {
        let (bucket, key, marker_id, by, precondition) = (
            bucket.to_owned(),
            key.to_owned(),
            marker_id.to_owned(),
            *by,
            precondition.clone(),
        );
        self.write(move |conn| {
            versions::delete_current(conn, bucket, key, &marker_id, &by, &precondition)
        })
        .await
    }

    async fn expire(
        &self,
        bucket: &str,
        key: &str,
        listed: &Listed<'_>,
        by: &Authority,
    ) -> Result<Option<Deleted>> {
        let (bucket, key, listed, by) = (
            bucket.to_owned(),
            key.to_owned(),
            versions::OwnedListed::new(listed),
            *by,
        );
        self.write(move |conn| versions::expire(conn, bucket, key, &listed, &by))
            .await
    }

    async fn bucket_usage(&self, bucket: &str) -> Result<coffer_storage::BucketUsage> {
        let bucket = bucket.to_owned();
        self.read(move |conn| versions::usage(conn, bucket)).await
    }

    async fn transition(
        &self,
        bucket: &str,
        key: &str,
        listed: &Listed<'_>,
        from: &[coffer_storage::Extent],
        storage_class: &str,
        extents: &[coffer_storage::Extent],
    ) -> Result<Option<Entry>> {
        let (bucket, key, listed, from, class, extents) = (
            bucket.to_owned(),
            key.to_owned(),
            versions::OwnedListed::new(listed),
            from.to_vec(),
            storage_class.to_owned(),
            extents.to_vec(),
        );
        self.write(move |conn| {
            versions::transition(conn, &bucket, &key, &listed, &from, &class, &extents)
        })
        .await
    }

    async fn set_object_restore(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        restore: &coffer_storage::Restore,
    ) -> Result<()> {
        let (bucket, key, restore) = (bucket.to_owned(), key.to_owned(), *restore);
        let version = owned(version);
        self.write(move |conn| {
            versions::update_meta(conn, &bucket, &key, version.as_ref(), |meta, _| {
                meta.restore = Some(restore);
                Ok(())
            })
        })
        .await
    }

    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        by: &Authority,
    ) -> Result<Option<Entry>> {
        let (bucket, key, version, by) = (bucket.to_owned(), key.to_owned(), owned(version), *by);
        self.write(move |conn| versions::delete(conn, bucket, key, version, &by))
            .await
    }

    async fn list_versions(
        &self,
        bucket: &str,
        query: &VersionListQuery<'_>,
    ) -> Result<ListPage<ListedVersion>> {
        let q = versions::ListQuery::new(bucket, query);
        self.read(move |conn| versions::list(conn, q)).await
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
                "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1{cond} AND marker = 0
                 ORDER BY key LIMIT {}",
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
        self.write(move |conn| uploads::create(conn, &u)).await
    }

    async fn get_upload(&self, bucket: &str, upload_id: &str) -> Result<Option<UploadRecord>> {
        let (bucket, upload_id) = (bucket.to_owned(), upload_id.to_owned());
        self.read(move |conn| uploads::get(conn, &bucket, &upload_id))
            .await
    }

    async fn put_part(&self, bucket: &str, upload_id: &str, part: &PartRecord) -> Result<()> {
        let (bucket, upload_id, part) = (bucket.to_owned(), upload_id.to_owned(), part.clone());
        self.write(move |conn| uploads::put_part(conn, &bucket, upload_id, &part))
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
        self.read(move |conn| uploads::list_parts(conn, &bucket, upload_id, after, limit))
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
    ) -> Result<Written> {
        let (upload_id, used, object) = (upload_id.to_owned(), used.to_vec(), object.clone());
        let precondition = precondition.clone();
        self.write(move |conn| uploads::complete(conn, upload_id, &used, &object, &precondition))
            .await
    }

    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> Result<()> {
        let (bucket, upload_id) = (bucket.to_owned(), upload_id.to_owned());
        self.write(move |conn| uploads::abort(conn, &bucket, upload_id))
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

    fn scrub_freed(&self) {
        self.inner.scrub.store(true, Ordering::Release);
    }
}

const BUCKET_COLUMNS: &str = "name, owner, region, created_ms, versioning";

fn bucket_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, i64, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn bucket_record(
    (name, owner, region, created, versioning): (String, String, String, i64, String),
) -> Result<BucketRecord> {
    Ok(BucketRecord {
        name,
        owner,
        region,
        created: from_ms(created)?,
        versioning: Versioning::parse(&versioning)
            .ok_or_else(|| corrupt(format!("versioning state {versioning:?}")))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
