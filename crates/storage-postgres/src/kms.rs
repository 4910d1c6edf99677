//! [`KmsStore`] in PostgreSQL: keys, their wrapped materials, aliases and the named
//! settings (the wrapped root key's companions), each change one transaction.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use coffer_storage::{
    Error, KmsAliasRecord, KmsKeyRecord, KmsMaterialRecord, KmsStore, ListPage, Result,
};

use crate::{PgStore, backend, finish, from_ms, ms};

const KEY_COLUMNS: &str = "key_id, account_id, created_ms, doc";
const ALIAS_COLUMNS: &str = "account_id, name, key_id, created_ms, updated_ms";

fn key_record(r: &Row) -> Result<KmsKeyRecord> {
    Ok(KmsKeyRecord {
        key_id: r.get(0),
        account_id: r.get(1),
        created: from_ms(r.get(2))?,
        doc: r.get(3),
    })
}

fn alias_record(r: &Row) -> Result<KmsAliasRecord> {
    Ok(KmsAliasRecord {
        account_id: r.get(0),
        name: r.get(1),
        key_id: r.get(2),
        created: from_ms(r.get(3))?,
        updated: from_ms(r.get(4))?,
    })
}

fn material_record(r: &Row) -> Result<KmsMaterialRecord> {
    let version: i64 = r.get(1);
    Ok(KmsMaterialRecord {
        key_id: r.get(0),
        version: u32::try_from(version)
            .map_err(|_| Error::Corrupt(format!("material version {version}")))?,
        wrapped: r.get(2),
        doc: r.get(3),
    })
}

/// One more than the page, so that the page knows whether it is the last.
fn overfetch(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1
}

/// Replaces a key's document; `NotFound` if the key is gone.
async fn update_doc(c: &impl GenericClient, key: &KmsKeyRecord) -> Result<()> {
    let n = c
        .execute(
            "UPDATE kms_keys SET doc = $2 WHERE key_id = $1",
            &[&key.key_id, &key.doc],
        )
        .await
        .map_err(backend)?;
    if n == 0 {
        return Err(Error::NotFound(format!("key {}", key.key_id)));
    }
    Ok(())
}

async fn insert_material(c: &impl GenericClient, m: &KmsMaterialRecord) -> Result<()> {
    let n = c
        .execute(
            "INSERT INTO kms_materials (key_id, version, wrapped, doc) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&m.key_id, &i64::from(m.version), &m.wrapped, &m.doc],
        )
        .await
        .map_err(backend)?;
    if n == 0 {
        return Err(Error::AlreadyExists(format!(
            "material {} of key {}",
            m.version, m.key_id
        )));
    }
    Ok(())
}

const PUT_SETTING: &str = "INSERT INTO settings (name, value) VALUES ($1, $2)
     ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value";

#[async_trait]
impl KmsStore for PgStore {
    async fn kms_create_key(
        &self,
        key: &KmsKeyRecord,
        material: Option<&KmsMaterialRecord>,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let work = async {
            let n = tx
                .execute(
                    &*format!(
                        "INSERT INTO kms_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4)
                         ON CONFLICT DO NOTHING"
                    ),
                    &[&key.key_id, &key.account_id, &ms(key.created), &key.doc],
                )
                .await
                .map_err(backend)?;
            if n == 0 {
                return Err(Error::AlreadyExists(format!("key {}", key.key_id)));
            }
            match material {
                Some(m) => insert_material(&tx, m).await,
                None => Ok(()),
            }
        }
        .await;
        finish(tx, work).await
    }

    async fn kms_get_key(&self, key_id: &str) -> Result<Option<KmsKeyRecord>> {
        let client = self.client().await?;
        client
            .query_opt(
                &*format!("SELECT {KEY_COLUMNS} FROM kms_keys WHERE key_id = $1"),
                &[&key_id],
            )
            .await
            .map_err(backend)?
            .as_ref()
            .map(key_record)
            .transpose()
    }

    async fn kms_update_key(&self, key: &KmsKeyRecord) -> Result<()> {
        let client = self.client().await?;
        update_doc(&client, key).await
    }

    async fn kms_update_key_if(&self, key: &KmsKeyRecord, expected: &str) -> Result<()> {
        let client = self.client().await?;
        let found = client
            .query_opt(
                "WITH changed AS (
                     UPDATE kms_keys SET doc = $2 WHERE key_id = $1 AND doc = $3 RETURNING 1)
                 SELECT EXISTS (SELECT 1 FROM changed),
                        EXISTS (SELECT 1 FROM kms_keys WHERE key_id = $1)",
                &[&key.key_id, &key.doc, &expected],
            )
            .await
            .map_err(backend)?;
        match found.map(|r| (r.get::<_, bool>(0), r.get::<_, bool>(1))) {
            Some((true, _)) => Ok(()),
            Some((false, true)) => Err(Error::PreconditionFailed),
            _ => Err(Error::NotFound(format!("key {}", key.key_id))),
        }
    }

    async fn kms_add_material(
        &self,
        key: &KmsKeyRecord,
        material: &KmsMaterialRecord,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let work = async {
            update_doc(&tx, key).await?;
            insert_material(&tx, material).await
        }
        .await;
        finish(tx, work).await
    }

    async fn kms_remove_materials(&self, key: &KmsKeyRecord) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let work = async {
            update_doc(&tx, key).await?;
            tx.execute(
                "DELETE FROM kms_materials WHERE key_id = $1",
                &[&key.key_id],
            )
            .await
            .map_err(backend)?;
            Ok(())
        }
        .await;
        finish(tx, work).await
    }

    async fn kms_materials(&self, key_id: &str) -> Result<Vec<KmsMaterialRecord>> {
        let client = self.client().await?;
        client
            .query(
                "SELECT key_id, version, wrapped, doc FROM kms_materials
                 WHERE key_id = $1 ORDER BY version",
                &[&key_id],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(material_record)
            .collect()
    }

    async fn kms_list_keys(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage<KmsKeyRecord>> {
        let client = self.client().await?;
        let items = client
            .query(
                &*format!(
                    "SELECT {KEY_COLUMNS} FROM kms_keys WHERE account_id = $1 AND key_id > $2
                     ORDER BY key_id LIMIT $3"
                ),
                &[&account_id, &after.unwrap_or(""), &overfetch(limit)],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(key_record)
            .collect::<Result<Vec<_>>>()?;
        Ok(ListPage::from_overfetch(items, limit))
    }

    async fn kms_all_keys(&self) -> Result<Vec<KmsKeyRecord>> {
        let client = self.client().await?;
        client
            .query(
                &*format!("SELECT {KEY_COLUMNS} FROM kms_keys ORDER BY key_id"),
                &[],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(key_record)
            .collect()
    }

    async fn kms_delete_key(&self, key_id: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let work = async {
            if tx
                .execute("DELETE FROM kms_keys WHERE key_id = $1", &[&key_id])
                .await
                .map_err(backend)?
                == 0
            {
                return Err(Error::NotFound(format!("key {key_id}")));
            }
            for table in ["kms_materials", "kms_aliases"] {
                tx.execute(
                    &*format!("DELETE FROM {table} WHERE key_id = $1"),
                    &[&key_id],
                )
                .await
                .map_err(backend)?;
            }
            Ok(())
        }
        .await;
        finish(tx, work).await
    }

    async fn kms_create_alias(&self, a: &KmsAliasRecord) -> Result<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                &*format!(
                    "INSERT INTO kms_aliases ({ALIAS_COLUMNS}) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT DO NOTHING"
                ),
                &[
                    &a.account_id,
                    &a.name,
                    &a.key_id,
                    &ms(a.created),
                    &ms(a.updated),
                ],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(Error::AlreadyExists(format!("alias {}", a.name)));
        }
        Ok(())
    }

    async fn kms_update_alias(&self, a: &KmsAliasRecord) -> Result<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE kms_aliases SET key_id = $3, updated_ms = $4
                 WHERE account_id = $1 AND name = $2",
                &[&a.account_id, &a.name, &a.key_id, &ms(a.updated)],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(Error::NotFound(format!("alias {}", a.name)));
        }
        Ok(())
    }

    async fn kms_delete_alias(&self, account_id: &str, name: &str) -> Result<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM kms_aliases WHERE account_id = $1 AND name = $2",
                &[&account_id, &name],
            )
            .await
            .map_err(backend)?;
        if n == 0 {
            return Err(Error::NotFound(format!("alias {name}")));
        }
        Ok(())
    }

    async fn kms_get_alias(&self, account_id: &str, name: &str) -> Result<Option<KmsAliasRecord>> {
        let client = self.client().await?;
        client
            .query_opt(
                &*format!(
                    "SELECT {ALIAS_COLUMNS} FROM kms_aliases WHERE account_id = $1 AND name = $2"
                ),
                &[&account_id, &name],
            )
            .await
            .map_err(backend)?
            .as_ref()
            .map(alias_record)
            .transpose()
    }

    async fn kms_list_aliases(
        &self,
        account_id: &str,
        key_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage<KmsAliasRecord>> {
        let client = self.client().await?;
        let items = client
            .query(
                &*format!(
                    "SELECT {ALIAS_COLUMNS} FROM kms_aliases
                     WHERE account_id = $1 AND name > $2 AND ($3::TEXT IS NULL OR key_id = $3)
                     ORDER BY name LIMIT $4"
                ),
                &[
                    &account_id,
                    &after.unwrap_or(""),
                    &key_id,
                    &overfetch(limit),
                ],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(alias_record)
            .collect::<Result<Vec<_>>>()?;
        Ok(ListPage::from_overfetch(items, limit))
    }

    async fn get_setting(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let client = self.client().await?;
        Ok(client
            .query_opt("SELECT value FROM settings WHERE name = $1", &[&name])
            .await
            .map_err(backend)?
            .map(|r| r.get(0)))
    }

    async fn put_setting(&self, name: &str, value: &[u8]) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(PUT_SETTING, &[&name, &value])
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn kms_rewrap(
        &self,
        materials: &[KmsMaterialRecord],
        settings: &[(String, Vec<u8>)],
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let work = async {
            for m in materials {
                tx.execute(
                    "UPDATE kms_materials SET wrapped = $3 WHERE key_id = $1 AND version = $2",
                    &[&m.key_id, &i64::from(m.version), &m.wrapped],
                )
                .await
                .map_err(backend)?;
            }
            for (name, value) in settings {
                tx.execute(PUT_SETTING, &[name, value])
                    .await
                    .map_err(backend)?;
            }
            Ok(())
        }
        .await;
        finish(tx, work).await
    }
}

impl PgStore {
    /// The value of a deployment-wide setting, set to `value` if it has none yet: the
    /// first node to start decides it (the instance's identity), the others adopt it.
    pub async fn claim_setting(&self, name: &str, value: &[u8]) -> Result<Vec<u8>> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&name, &value],
            )
            .await
            .map_err(backend)?;
        client
            .query_one("SELECT value FROM settings WHERE name = $1", &[&name])
            .await
            .map_err(backend)
            .map(|r| r.get(0))
    }
}
