//! [`MetaStore`] in PostgreSQL: buckets and their settings, objects and their versions,
//! multipart uploads, and the blob bookkeeping, shared by every node of a deployment.
//!
//! Each write is one transaction at READ COMMITTED that first takes advisory locks: a
//! write to a key holds its bucket's lock shared and the key's exclusively
//! ([`crate::rows::lock_key`]); deleting a bucket or changing its versioning holds the
//! bucket's exclusively. Every statement after the locks sees what the previous holder
//! committed, so writers on different nodes serialize per key exactly as the SQLite
//! backend's one writer serializes them, while writes to different keys run in parallel.
//! Reads that need more than one statement run in a read-only REPEATABLE READ
//! transaction, one snapshot.

use std::collections::BTreeMap;
use std::ops::Bound;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::IsolationLevel;

use coffer_storage::{
    Authority, BlobId, BucketRecord, BucketUsage, Deleted, Entry, Error, Extent, ListPage, Listed,
    ListedVersion, LockChange, MetaStore, ObjectMeta, ObjectRecord, ObjectSummary, PartRecord,
    Precondition, Restore, Result, SseRecord, UploadListQuery, UploadRecord, VersionListQuery,
    VersionRef, Versioning, Written,
};

use crate::rows::*;
use crate::{PgStore, backend, finish, from_ms, ms, uploads, versions};

/// Runs `$body` (an expression using the transaction `$tx`) in a read-write transaction,
/// committed if it succeeds and rolled back otherwise.
macro_rules! write_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut client = $store.client().await?;
        let $tx = client.transaction().await.map_err(backend)?;
        let work = async { $body }.await;
        finish($tx, work).await
    }};
}

/// Runs `$body` in a read-only transaction that sees one snapshot.
macro_rules! read_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut client = $store.client().await?;
        let $tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(backend)?;
        let work = async { $body }.await;
        finish($tx, work).await
    }};
}

const BUCKET_COLUMNS: &str = "name, owner, region, created_ms, versioning";

fn bucket_record(r: &tokio_postgres::Row) -> Result<BucketRecord> {
    let versioning: String = col(r, 4)?;
    Ok(BucketRecord {
        name: col(r, 0)?,
        owner: col(r, 1)?,
        region: col(r, 2)?,
        created: from_ms(col(r, 3)?)?,
        versioning: Versioning::parse(&versioning)
            .ok_or_else(|| Error::Corrupt(format!("versioning state {versioning:?}")))?,
    })
}

const PUT_BUCKET_SETTING: &str = "INSERT INTO bucket_settings (bucket, name, value)
     VALUES ($1, $2, $3) ON CONFLICT (bucket, name) DO UPDATE SET value = EXCLUDED.value";

impl PgStore {
    /// Takes the key's lock for the rest of the transaction (see [`lock_key`]).
    async fn lock(&self, tx: &Transaction<'_>, bucket: &str, key: &str) -> Result<()> {
        lock_key(tx, &self.schema, bucket, key).await
    }
}

#[async_trait]
impl MetaStore for PgStore {
    async fn create_bucket_with_settings(
        &self,
        bucket: &BucketRecord,
        settings: &[(&str, &str)],
    ) -> Result<()> {
        write_tx!(self, |tx| {
            lock_bucket(&tx, &self.schema, &bucket.name, true).await?;
            let n = exec(
                &tx,
                &format!(
                    "INSERT INTO buckets ({BUCKET_COLUMNS}) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT DO NOTHING"
                ),
                &[
                    &bucket.name,
                    &bucket.owner,
                    &bucket.region,
                    &ms(bucket.created),
                    &bucket.versioning.as_str(),
                ],
            )
            .await?;
            if n == 0 {
                let owner = row(
                    &tx,
                    "SELECT owner FROM buckets WHERE name = $1",
                    &[&bucket.name],
                )
                .await?
                .map(|r| col::<String>(&r, 0))
                .transpose()?
                .unwrap_or_default();
                return Err(Error::BucketAlreadyExists {
                    name: bucket.name.clone(),
                    owner,
                });
            }
            for (name, value) in settings {
                exec(&tx, PUT_BUCKET_SETTING, &[&bucket.name, name, value]).await?;
            }
            Ok(())
        })
    }

    async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        let client = self.client().await?;
        row(
            &client,
            &format!("SELECT {BUCKET_COLUMNS} FROM buckets WHERE name = $1"),
            &[&name],
        )
        .await?
        .map(|r| bucket_record(&r))
        .transpose()
    }

    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        let client = self.client().await?;
        rows(
            &client,
            &format!("SELECT {BUCKET_COLUMNS} FROM buckets ORDER BY name"),
            &[],
        )
        .await?
        .iter()
        .map(bucket_record)
        .collect()
    }

    async fn delete_bucket(&self, name: &str) -> Result<()> {
        write_tx!(self, |tx| {
            // Exclusive: no write to the bucket is under way, and none starts until this
            // commits (and then finds no bucket).
            lock_bucket(&tx, &self.schema, name, true).await?;
            if !bucket_exists(&tx, name).await? {
                return Err(Error::NoSuchBucket(name.to_owned()));
            }
            let busy = row(
                &tx,
                "SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = $1)
                     OR EXISTS (SELECT 1 FROM versions WHERE bucket = $1)",
                &[&name],
            )
            .await?
            .map(|r| col::<bool>(&r, 0))
            .transpose()?
            .unwrap_or(true);
            if busy {
                return Err(Error::BucketNotEmpty(name.to_owned()));
            }
            // Uploads in progress go with the bucket, as S3 aborts them.
            let ids = rows(
                &tx,
                "SELECT upload_id FROM uploads WHERE bucket = $1",
                &[&name],
            )
            .await?;
            for r in &ids {
                let id: String = col(r, 0)?;
                remove_upload(&tx, &id, &Default::default()).await?;
            }
            exec(&tx, "DELETE FROM buckets WHERE name = $1", &[&name]).await?;
            exec(
                &tx,
                "DELETE FROM bucket_settings WHERE bucket = $1",
                &[&name],
            )
            .await?;
            Ok(())
        })
    }

    async fn set_versioning(&self, bucket: &str, versioning: Versioning) -> Result<()> {
        write_tx!(self, |tx| {
            // Exclusive: writes in flight finish under the state they read.
            lock_bucket(&tx, &self.schema, bucket, true).await?;
            let n = exec(
                &tx,
                "UPDATE buckets SET versioning = $2 WHERE name = $1",
                &[&bucket, &versioning.as_str()],
            )
            .await?;
            if n == 0 {
                return Err(Error::NoSuchBucket(bucket.to_owned()));
            }
            Ok(())
        })
    }

    async fn bucket_usage(&self, bucket: &str) -> Result<BucketUsage> {
        let client = self.client().await?;
        versions::usage(&client, bucket).await
    }

    async fn get_bucket_setting(&self, bucket: &str, name: &str) -> Result<Option<String>> {
        let client = self.client().await?;
        row(
            &client,
            "SELECT value FROM bucket_settings WHERE bucket = $1 AND name = $2",
            &[&bucket, &name],
        )
        .await?
        .map(|r| col(&r, 0))
        .transpose()
    }

    async fn put_bucket_setting(&self, bucket: &str, name: &str, value: &str) -> Result<()> {
        write_tx!(self, |tx| {
            // Shared: a bucket being deleted does not get a setting after its others went.
            lock_bucket(&tx, &self.schema, bucket, false).await?;
            if !bucket_exists(&tx, bucket).await? {
                return Err(Error::NoSuchBucket(bucket.to_owned()));
            }
            exec(&tx, PUT_BUCKET_SETTING, &[&bucket, &name, &value]).await?;
            Ok(())
        })
    }

    async fn delete_bucket_setting(&self, bucket: &str, name: &str) -> Result<()> {
        let client = self.client().await?;
        exec(
            &client,
            "DELETE FROM bucket_settings WHERE bucket = $1 AND name = $2",
            &[&bucket, &name],
        )
        .await?;
        Ok(())
    }

    async fn get_account_setting(&self, account: &str, name: &str) -> Result<Option<String>> {
        let client = self.client().await?;
        row(
            &client,
            "SELECT value FROM account_settings WHERE account = $1 AND name = $2",
            &[&account, &name],
        )
        .await?
        .map(|r| col(&r, 0))
        .transpose()
    }

    async fn put_account_setting(&self, account: &str, name: &str, value: &str) -> Result<()> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO account_settings (account, name, value) VALUES ($1, $2, $3)
             ON CONFLICT (account, name) DO UPDATE SET value = EXCLUDED.value",
            &[&account, &name, &value],
        )
        .await?;
        Ok(())
    }

    async fn delete_account_setting(&self, account: &str, name: &str) -> Result<()> {
        let client = self.client().await?;
        exec(
            &client,
            "DELETE FROM account_settings WHERE account = $1 AND name = $2",
            &[&account, &name],
        )
        .await?;
        Ok(())
    }

    async fn get_entry(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
    ) -> Result<Option<Entry>> {
        let client = self.client().await?;
        versions::version_row(&client, bucket, key, version)
            .await?
            .map(|(row, _)| entry(bucket, row))
            .transpose()
    }

    async fn put_object(
        &self,
        object: &ObjectRecord,
        precondition: &Precondition,
    ) -> Result<Written> {
        if let Some(batcher) = &self.batcher
            && let Some(written) = batcher.put(object, precondition).await?
        {
            return Ok(written);
        }
        write_tx!(self, |tx| {
            self.lock(&tx, &object.bucket, &object.key).await?;
            versions::put_version(&tx, object, precondition).await
        })
    }

    async fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        write_tx!(self, |tx| {
            self.lock(&tx, bucket, key).await?;
            versions::update_meta(&tx, bucket, key, version, |meta, _| {
                meta.tags = tags.clone();
                Ok(())
            })
            .await
        })
    }

    async fn set_object_acl(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        acl: Option<&str>,
    ) -> Result<()> {
        write_tx!(self, |tx| {
            self.lock(&tx, bucket, key).await?;
            versions::update_meta(&tx, bucket, key, version, |meta, _| {
                meta.acl = acl.map(str::to_owned);
                Ok(())
            })
            .await
        })
    }

    async fn set_object_sse(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        object_id: &[u8; 16],
        sse: &SseRecord,
    ) -> Result<()> {
        write_tx!(self, |tx| {
            self.lock(&tx, bucket, key).await?;
            let Some((row, current)) = versions::version_row(&tx, bucket, key, version).await?
            else {
                return Err(version.missing(bucket, key));
            };
            if row.marker {
                return Err(Error::PreconditionFailed);
            }
            let mut meta: ObjectMeta = unjson(&row.meta)?;
            if meta.sse.as_ref().map(SseRecord::object_id) != Some(*object_id) {
                return Err(Error::PreconditionFailed);
            }
            meta.sse = Some(sse.clone());
            versions::set_meta(&tx, bucket, &row, current, &json(&meta)?).await
        })
    }

    async fn set_object_lock(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        change: LockChange,
        by: &Authority,
    ) -> Result<()> {
        write_tx!(self, |tx| {
            self.lock(&tx, bucket, key).await?;
            versions::update_meta(&tx, bucket, key, version, |meta, id| {
                meta.change_lock(change, by)
                    .map_err(|refusal| Error::ObjectLocked {
                        key: key.to_owned(),
                        version_id: id.to_owned(),
                        refusal,
                    })
            })
            .await
        })
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        marker_id: &str,
        by: &Authority,
        precondition: &Precondition,
    ) -> Result<Deleted> {
        write_tx!(self, |tx| {
            self.lock(&tx, bucket, key).await?;
            versions::delete_current(&tx, bucket, key, marker_id, by, precondition).await
        })
    }

    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        by: &Authority,
    ) -> Result<Option<Entry>> {
        write_tx!(self, |tx| {
            self.lock(&tx, bucket, key).await?;
            versions::delete(&tx, bucket, key, version, by).await
        })
    }

    async fn expire(
        &self,
        bucket: &str,
        key: &str,
        listed: &Listed<'_>,
        by: &Authority,
    ) -> Result<Option<Deleted>> {
        write_tx!(self, |tx| {
            self.lock(&tx, bucket, key).await?;
            versions::expire(&tx, bucket, key, listed, by).await
        })
    }

    async fn transition(
        &self,
        bucket: &str,
        key: &str,
        listed: &Listed<'_>,
        from: &[Extent],
        storage_class: &str,
        extents: &[Extent],
    ) -> Result<Option<Entry>> {
        write_tx!(self, |tx| {
            self.lock(&tx, bucket, key).await?;
            versions::transition(&tx, bucket, key, listed, from, storage_class, extents).await
        })
    }

    async fn set_object_restore(
        &self,
        bucket: &str,
        key: &str,
        version: VersionRef<'_>,
        restore: &Restore,
    ) -> Result<()> {
        write_tx!(self, |tx| {
            self.lock(&tx, bucket, key).await?;
            versions::update_meta(&tx, bucket, key, version, |meta, _| {
                meta.restore = Some(*restore);
                Ok(())
            })
            .await
        })
    }

    async fn list_versions(
        &self,
        bucket: &str,
        query: &VersionListQuery<'_>,
    ) -> Result<ListPage<ListedVersion>> {
        read_tx!(self, |tx| versions::list(&tx, bucket, query).await)
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        start: Bound<&str>,
        limit: usize,
    ) -> Result<ListPage<ObjectSummary>> {
        let (cond, args) = key_range(prefix, start, 2);
        let sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = $1{cond} AND NOT marker
             ORDER BY key LIMIT ${}",
            args.len() + 2
        );
        let lim = to_i64(limit as u64).saturating_add(1);
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&bucket];
        for a in &args {
            params.push(a);
        }
        params.push(&lim);
        let client = self.client().await?;
        let found = rows(&client, &sql, &params).await?;
        let items = found
            .iter()
            .map(|r| object_row(r).and_then(summary))
            .collect::<Result<Vec<_>>>()?;
        Ok(ListPage::from_overfetch(items, limit))
    }

    async fn create_upload(&self, upload: &UploadRecord) -> Result<()> {
        write_tx!(self, |tx| {
            lock_bucket(&tx, &self.schema, &upload.bucket, false).await?;
            uploads::create(&tx, upload).await
        })
    }

    async fn get_upload(&self, bucket: &str, upload_id: &str) -> Result<Option<UploadRecord>> {
        let client = self.client().await?;
        uploads::get(&client, bucket, upload_id).await
    }

    async fn put_part(&self, bucket: &str, upload_id: &str, part: &PartRecord) -> Result<()> {
        write_tx!(self, |tx| uploads::put_part(&tx, bucket, upload_id, part)
            .await)
    }

    async fn list_parts(
        &self,
        bucket: &str,
        upload_id: &str,
        after: u32,
        limit: usize,
    ) -> Result<ListPage<PartRecord>> {
        read_tx!(self, |tx| uploads::list_parts(
            &tx, bucket, upload_id, after, limit
        )
        .await)
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        query: &UploadListQuery<'_>,
    ) -> Result<ListPage<UploadRecord>> {
        let client = self.client().await?;
        uploads::list(&client, bucket, query).await
    }

    async fn complete_upload(
        &self,
        upload_id: &str,
        used: &[(u32, String)],
        object: &ObjectRecord,
        precondition: &Precondition,
    ) -> Result<Written> {
        write_tx!(self, |tx| {
            self.lock(&tx, &object.bucket, &object.key).await?;
            uploads::complete(&tx, upload_id, used, object, precondition).await
        })
    }

    async fn abort_upload(&self, bucket: &str, upload_id: &str) -> Result<()> {
        write_tx!(self, |tx| uploads::abort(&tx, bucket, upload_id).await)
    }

    async fn blob_referenced(&self, id: &BlobId) -> Result<bool> {
        let client = self.client().await?;
        Ok(row(
            &client,
            "SELECT 1 FROM blob_refs WHERE blob_id = $1",
            &[&id.as_str()],
        )
        .await?
        .is_some())
    }

    async fn take_garbage(&self, limit: usize) -> Result<Vec<BlobId>> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT blob_id FROM garbage ORDER BY blob_id LIMIT $1",
            &[&to_i64(limit as u64)],
        )
        .await?;
        found
            .iter()
            .map(|r| {
                let s: String = col(r, 0)?;
                BlobId::parse(&s).ok_or_else(|| Error::Corrupt(format!("bad blob id {s:?}")))
            })
            .collect()
    }

    async fn forget_garbage(&self, ids: &[BlobId]) -> Result<()> {
        let ids: Vec<&str> = ids.iter().map(BlobId::as_str).collect();
        let client = self.client().await?;
        exec(
            &client,
            "DELETE FROM garbage WHERE blob_id = ANY($1)",
            &[&ids],
        )
        .await?;
        Ok(())
    }

    // `scrub_freed`: nothing to ask. PostgreSQL keeps a replaced row's old version until
    // VACUUM reclaims it, and its WAL until a checkpoint recycles it; Coffer's rows hold
    // only metadata and the ciphertext of encrypted objects' inline bytes.
}
