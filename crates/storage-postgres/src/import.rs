//! Filling an empty deployment's database from another store (`coffer migrate`), in one
//! transaction: the deployment appears whole when [`Import::commit`] returns, or not at
//! all. Records are written as the store's own writes would write them (the same row
//! encodings, blob references recorded), with `seq`s and timestamps as they were.

use coffer_storage::{
    BucketRecord, Entry, Error, IamRecord, KmsAliasRecord, KmsKeyRecord, KmsMaterialRecord,
    PartRecord, Result, StoredVersion, UploadRecord,
};

use crate::rows::{
    OBJECT_COLUMNS, PART_COLUMNS, UPLOAD_COLUMNS, exec, json, row, store_extents, to_i64,
};
use crate::{PgStore, backend, ms};

/// An import in progress: one transaction on a connection of its own. Dropped without
/// [`Import::commit`], its connection closes and the server rolls everything back.
pub struct Import {
    client: Option<deadpool_postgres::Client>,
}

/// What the target must not hold already: a deployment of its own.
const OCCUPIED: &str = "SELECT EXISTS (SELECT 1 FROM buckets) OR EXISTS (SELECT 1 FROM kms_keys)
    OR EXISTS (SELECT 1 FROM iam) OR EXISTS (SELECT 1 FROM settings)";

impl PgStore {
    /// Starts importing into this database, which must hold no deployment yet (no
    /// bucket, key, identity or setting): refused, changing nothing, if it does.
    pub async fn import(&self) -> Result<Import> {
        let client = self.client().await?;
        client
            .batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
            .await
            .map_err(backend)?;
        let import = Import {
            client: Some(client),
        };
        let occupied: bool = row(import.client()?, OCCUPIED, &[])
            .await?
            .map(|r| r.get(0))
            .unwrap_or(false);
        if occupied {
            return Err(Error::Backend(
                "the target database already holds a deployment (buckets, keys, identities or settings): migrate into an empty one".into(),
            ));
        }
        Ok(import)
    }
}

impl Import {
    fn client(&self) -> Result<&deadpool_postgres::Client> {
        self.client
            .as_ref()
            .ok_or_else(|| Error::Backend("the import has ended".into()))
    }

    pub async fn bucket(&self, b: &BucketRecord) -> Result<()> {
        exec(
            self.client()?,
            "INSERT INTO buckets (name, owner, region, created_ms, versioning)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &b.name,
                &b.owner,
                &b.region,
                &ms(b.created),
                &b.versioning.as_str(),
            ],
        )
        .await?;
        Ok(())
    }

    pub async fn bucket_setting(&self, bucket: &str, name: &str, value: &str) -> Result<()> {
        exec(
            self.client()?,
            "INSERT INTO bucket_settings (bucket, name, value) VALUES ($1, $2, $3)",
            &[&bucket, &name, &value],
        )
        .await?;
        Ok(())
    }

    pub async fn account_setting(&self, account: &str, name: &str, value: &str) -> Result<()> {
        exec(
            self.client()?,
            "INSERT INTO account_settings (account, name, value) VALUES ($1, $2, $3)",
            &[&account, &name, &value],
        )
        .await?;
        Ok(())
    }

    /// One version, current or not, with its blobs recorded as referenced.
    pub async fn version(&self, v: &StoredVersion) -> Result<()> {
        let c = self.client()?;
        let table = if v.current { "objects" } else { "versions" };
        let (bucket, key, version_id, mtime, size, etag, meta, extents, inline, marker) =
            match &v.entry {
                Entry::Object(o) => {
                    let (extents, inline) = store_extents(c, &o.extents).await?;
                    (
                        &o.bucket,
                        &o.key,
                        &o.version_id,
                        o.last_modified,
                        to_i64(o.size),
                        o.etag.clone(),
                        json(&o.meta)?,
                        extents,
                        inline,
                        false,
                    )
                }
                Entry::Marker(m) => (
                    &m.bucket,
                    &m.key,
                    &m.version_id,
                    m.last_modified,
                    0,
                    String::new(),
                    "{}".to_owned(),
                    "[]".to_owned(),
                    None,
                    true,
                ),
            };
        exec(
            c,
            &format!(
                "INSERT INTO {table} (bucket, {OBJECT_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            &[
                bucket,
                &key.as_bytes(),
                &size,
                &etag,
                &ms(mtime),
                &meta,
                &extents,
                &inline,
                &version_id.as_deref().unwrap_or_default(),
                &v.seq,
                &marker,
            ],
        )
        .await?;
        Ok(())
    }

    /// A multipart upload in progress and its parts, their blobs recorded as referenced.
    pub async fn upload(&self, u: &UploadRecord, parts: &[PartRecord]) -> Result<()> {
        let c = self.client()?;
        exec(
            c,
            &format!("INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"),
            &[
                &u.upload_id,
                &u.bucket,
                &u.key.as_bytes(),
                &ms(u.initiated),
                &u.initiator,
                &json(&u.meta)?,
            ],
        )
        .await?;
        for p in parts {
            let (extent, inline) = store_extents(c, std::slice::from_ref(&p.extent)).await?;
            let checksum = p.checksum.as_ref().map(json).transpose()?;
            exec(
                c,
                &format!(
                    "INSERT INTO parts (upload_id, {PART_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ),
                &[
                    &u.upload_id,
                    &i32::try_from(p.part_number)
                        .map_err(|_| Error::Corrupt("part number".into()))?,
                    &to_i64(p.size),
                    &p.etag,
                    &ms(p.last_modified),
                    &checksum,
                    &extent,
                    &inline,
                ],
            )
            .await?;
        }
        Ok(())
    }

    /// A KMS key and every version of its material (wrapped, as stored).
    pub async fn kms_key(&self, key: &KmsKeyRecord, materials: &[KmsMaterialRecord]) -> Result<()> {
        let c = self.client()?;
        exec(
            c,
            "INSERT INTO kms_keys (key_id, account_id, created_ms, doc) VALUES ($1, $2, $3, $4)",
            &[&key.key_id, &key.account_id, &ms(key.created), &key.doc],
        )
        .await?;
        for m in materials {
            exec(
                c,
                "INSERT INTO kms_materials (key_id, version, wrapped, doc) VALUES ($1, $2, $3, $4)",
                &[&m.key_id, &i64::from(m.version), &m.wrapped, &m.doc],
            )
            .await?;
        }
        Ok(())
    }

    pub async fn kms_alias(&self, a: &KmsAliasRecord) -> Result<()> {
        exec(
            self.client()?,
            "INSERT INTO kms_aliases (account_id, name, key_id, created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &a.account_id,
                &a.name,
                &a.key_id,
                &ms(a.created),
                &ms(a.updated),
            ],
        )
        .await?;
        Ok(())
    }

    pub async fn setting(&self, name: &str, value: &[u8]) -> Result<()> {
        exec(
            self.client()?,
            "INSERT INTO settings (name, value) VALUES ($1, $2)",
            &[&name, &value],
        )
        .await?;
        Ok(())
    }

    pub async fn iam(&self, r: &IamRecord) -> Result<()> {
        exec(
            self.client()?,
            "INSERT INTO iam (account_id, kind, name, doc) VALUES ($1, $2, $3, $4)",
            &[&r.account_id, &r.kind, &r.name, &r.doc],
        )
        .await?;
        Ok(())
    }

    /// Makes everything imported visible at once.
    pub async fn commit(mut self) -> Result<()> {
        let client = self
            .client
            .take()
            .ok_or_else(|| Error::Backend("the import has ended".into()))?;
        client.batch_execute("COMMIT").await.map_err(backend)
    }
}

impl Drop for Import {
    fn drop(&mut self) {
        // Not committed: take the connection out of the pool so that it closes, and the
        // server rolls the transaction back, rather than going back open.
        if let Some(client) = self.client.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}
