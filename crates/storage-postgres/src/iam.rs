//! [`IamStore`] in PostgreSQL.

use async_trait::async_trait;

use coffer_storage::{Error, IamRecord, IamStore, Result};

use crate::{PgStore, backend, finish};

#[async_trait]
impl IamStore for PgStore {
    async fn iam_create(&self, r: &IamRecord) -> Result<()> {
        let client = self.client().await?;
        let inserted = client
            .execute(
                "INSERT INTO iam (account_id, kind, name, doc) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[&r.account_id, &r.kind, &r.name, &r.doc],
            )
            .await
            .map_err(backend)?;
        if inserted == 0 {
            return Err(Error::AlreadyExists(format!("{} {}", r.kind, r.name)));
        }
        Ok(())
    }

    async fn iam_update(&self, r: &IamRecord) -> Result<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE iam SET doc = $4 WHERE account_id = $1 AND kind = $2 AND name = $3",
                &[&r.account_id, &r.kind, &r.name, &r.doc],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(Error::NotFound(format!("{} {}", r.kind, r.name)));
        }
        Ok(())
    }

    async fn iam_delete(&self, keys: &[(String, String, String)]) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let work = async {
            for (i, (account, kind, name)) in keys.iter().enumerate() {
                let n = tx
                    .execute(
                        "DELETE FROM iam WHERE account_id = $1 AND kind = $2 AND name = $3",
                        &[account, kind, name],
                    )
                    .await
                    .map_err(backend)?;
                if i == 0 && n == 0 {
                    // Rolled back: nothing is deleted.
                    return Err(Error::NotFound(format!("{kind} {name}")));
                }
            }
            Ok(())
        }
        .await;
        finish(tx, work).await
    }

    async fn iam_all(&self) -> Result<Vec<IamRecord>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT account_id, kind, name, doc FROM iam ORDER BY account_id, kind, name",
                &[],
            )
            .await
            .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|r| IamRecord {
                account_id: r.get(0),
                kind: r.get(1),
                name: r.get(2),
                doc: r.get(3),
            })
            .collect())
    }
}
