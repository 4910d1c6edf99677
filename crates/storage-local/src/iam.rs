//! [`IamStore`] on the same SQLite database as everything else: one backup, one log.

use async_trait::async_trait;
use rusqlite::params;

use coffer_storage::{Error, IamRecord, IamStore, Result};

use crate::SqliteMeta;
use crate::error::backend;
use crate::rows::exec;

#[async_trait]
impl IamStore for SqliteMeta {
    async fn iam_create(&self, record: &IamRecord) -> Result<()> {
        let r = record.clone();
        self.write(move |conn| {
            let inserted = exec(
                conn,
                "INSERT OR IGNORE INTO iam (account_id, kind, name, doc) VALUES (?1, ?2, ?3, ?4)",
                params![r.account_id, r.kind, r.name, r.doc],
            )?;
            if inserted == 0 {
                return Err(Error::AlreadyExists(format!("{} {}", r.kind, r.name)));
            }
            Ok(())
        })
        .await
    }

    async fn iam_update(&self, record: &IamRecord) -> Result<()> {
        let r = record.clone();
        self.write(move |conn| {
            let n = exec(
                conn,
                "UPDATE iam SET doc = ?4 WHERE account_id = ?1 AND kind = ?2 AND name = ?3",
                params![r.account_id, r.kind, r.name, r.doc],
            )?;
            if n == 0 {
                return Err(Error::NotFound(format!("{} {}", r.kind, r.name)));
            }
            Ok(())
        })
        .await
    }

    async fn iam_delete(&self, keys: &[(String, String, String)]) -> Result<()> {
        let keys = keys.to_vec();
        self.write(move |conn| {
            for (i, (account, kind, name)) in keys.iter().enumerate() {
                let n = exec(
                    conn,
                    "DELETE FROM iam WHERE account_id = ?1 AND kind = ?2 AND name = ?3",
                    params![account, kind, name],
                )?;
                if i == 0 && n == 0 {
                    return Err(Error::NotFound(format!("{kind} {name}")));
                }
            }
            Ok(())
        })
        .await
    }

    async fn iam_all(&self) -> Result<Vec<IamRecord>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT account_id, kind, name, doc FROM iam ORDER BY account_id, kind, name",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(IamRecord {
                        account_id: r.get(0)?,
                        kind: r.get(1)?,
                        name: r.get(2)?,
                        doc: r.get(3)?,
                    })
                })
                .map_err(backend)?;
            rows.map(|r| r.map_err(backend)).collect()
        })
        .await
    }
}
