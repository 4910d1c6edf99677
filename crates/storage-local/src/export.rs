//! Reading the whole store, table by table, for `coffer migrate`: what the store traits
//! do not read whole (bucket and account settings, every alias and setting) and every
//! version of every key with its `seq`, in pages, so memory stays flat however many
//! objects there are.

use rusqlite::params;

use coffer_storage::{KmsAliasRecord, Result, StoredVersion, UploadRecord, Versions};

use crate::SqliteMeta;
use crate::error::backend;
use crate::kms::{ALIAS_COLUMNS, alias_record, alias_row};
use crate::rows::{OBJECT_COLUMNS, UPLOAD_COLUMNS, entry, object_row, upload_record, upload_row};

/// Rows of a query with no parameters, mapped.
fn all<T, R>(
    conn: &rusqlite::Connection,
    sql: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
    record: impl Fn(R) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare(sql).map_err(backend)?;
    let rows = stmt.query_map([], row).map_err(backend)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(record(r.map_err(backend)?)?);
    }
    Ok(out)
}

impl SqliteMeta {
    /// Every bucket's settings: (bucket, name, value), by bucket and name.
    pub async fn export_bucket_settings(&self) -> Result<Vec<(String, String, String)>> {
        self.read(|conn| {
            all(
                conn,
                "SELECT bucket, name, value FROM bucket_settings ORDER BY bucket, name",
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                Ok,
            )
        })
        .await
    }

    /// Every account setting: (account, name, value).
    pub async fn export_account_settings(&self) -> Result<Vec<(String, String, String)>> {
        self.read(|conn| {
            all(
                conn,
                "SELECT account, name, value FROM account_settings ORDER BY account, name",
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                Ok,
            )
        })
        .await
    }

    /// Up to `limit` versions of `bucket` (current or noncurrent ones), in key order (and
    /// newest first within a key), after `after` (a key and a `seq`) if given.
    pub async fn export_versions(
        &self,
        bucket: &str,
        which: Versions,
        after: Option<(String, i64)>,
        limit: usize,
    ) -> Result<Vec<StoredVersion>> {
        let bucket = bucket.to_owned();
        self.read(move |conn| {
            let (table, current) = match which {
                Versions::Current => ("objects", true),
                Versions::Noncurrent => ("versions", false),
            };
            // S3 keys are never empty, so `(b"", MAX)` is before every version.
            let (key, seq) = match &after {
                Some((k, s)) => (k.as_bytes().to_vec(), *s),
                None => (Vec::new(), i64::MAX),
            };
            // Keyset pagination on the primary key, (key, seq DESC): `key >= ?2` lets each
            // page start with a seek rather than a scan from the bucket's first key.
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {OBJECT_COLUMNS} FROM {table}
                     WHERE bucket = ?1 AND key >= ?2 AND (key > ?2 OR seq < ?3)
                     ORDER BY key, seq DESC LIMIT ?4"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![bucket, key, seq, i64::try_from(limit).unwrap_or(i64::MAX)],
                    object_row,
                )
                .map_err(backend)?;
            let mut out = Vec::new();
            for r in rows {
                let row = r.map_err(backend)?;
                let seq = row.seq;
                out.push(StoredVersion {
                    entry: entry(conn, &bucket, row)?,
                    seq,
                    current,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Every multipart upload in progress (their parts: [`coffer_storage::MetaStore::list_parts`]).
    pub async fn export_uploads(&self) -> Result<Vec<UploadRecord>> {
        self.read(|conn| {
            all(
                conn,
                &format!("SELECT {UPLOAD_COLUMNS} FROM uploads ORDER BY bucket, key, upload_id"),
                upload_row,
                upload_record,
            )
        })
        .await
    }

    /// Every KMS alias of every account.
    pub async fn export_aliases(&self) -> Result<Vec<KmsAliasRecord>> {
        self.read(|conn| {
            all(
                conn,
                &format!("SELECT {ALIAS_COLUMNS} FROM kms_aliases ORDER BY account_id, name"),
                alias_row,
                alias_record,
            )
        })
        .await
    }

    /// Every named setting (values as stored: secrets in them are wrapped).
    pub async fn export_settings(&self) -> Result<Vec<(String, Vec<u8>)>> {
        self.read(|conn| {
            all(
                conn,
                "SELECT name, value FROM settings ORDER BY name",
                |r| Ok((r.get(0)?, r.get(1)?)),
                Ok,
            )
        })
        .await
    }
}
