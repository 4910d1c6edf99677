//! [`KmsStore`] on the same SQLite database as the object metadata, so one backup and one
//! transaction log cover both.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use coffer_storage::{
    Error, KmsAliasRecord, KmsKeyRecord, KmsMaterialRecord, KmsStore, ListPage, Result,
};

use crate::SqliteMeta;
use crate::error::backend;
use crate::rows::{exec, from_ms, ms, query_one, to_i64};

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, i64, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn key_record(
    (key_id, account_id, created, doc): (String, String, i64, String),
) -> Result<KmsKeyRecord> {
    Ok(KmsKeyRecord {
        key_id,
        account_id,
        created: from_ms(created)?,
        doc,
    })
}

pub(crate) fn alias_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, i64, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

pub(crate) fn alias_record(
    (account_id, name, key_id, created, updated): (String, String, String, i64, i64),
) -> Result<KmsAliasRecord> {
    Ok(KmsAliasRecord {
        account_id,
        name,
        key_id,
        created: from_ms(created)?,
        updated: from_ms(updated)?,
    })
}

fn key_exists(conn: &rusqlite::Connection, key_id: &str) -> Result<bool> {
    query_one(
        conn,
        "SELECT 1 FROM kms_keys WHERE key_id = ?1",
        [key_id],
        |_| Ok(()),
    )
    .map(|o| o.is_some())
}

/// Replaces a key's document; `NotFound` if the key is gone.
fn update_doc(conn: &rusqlite::Connection, key: &KmsKeyRecord) -> Result<()> {
    let n = exec(
        conn,
        "UPDATE kms_keys SET doc = ?2 WHERE key_id = ?1",
        params![key.key_id, key.doc],
    )?;
    if n == 0 {
        return Err(Error::NotFound(format!("key {}", key.key_id)));
    }
    Ok(())
}

fn insert_material(conn: &rusqlite::Connection, m: &KmsMaterialRecord) -> Result<()> {
    let exists = query_one(
        conn,
        "SELECT 1 FROM kms_materials WHERE key_id = ?1 AND version = ?2",
        params![m.key_id, m.version],
        |_| Ok(()),
    )?;
    if exists.is_some() {
        return Err(Error::AlreadyExists(format!(
            "material {} of key {}",
            m.version, m.key_id
        )));
    }
    exec(
        conn,
        "INSERT INTO kms_materials (key_id, version, wrapped, doc) VALUES (?1, ?2, ?3, ?4)",
        params![m.key_id, m.version, m.wrapped, m.doc],
    )?;
    Ok(())
}

const KEY_COLUMNS: &str = "key_id, account_id, created_ms, doc";
pub(crate) const ALIAS_COLUMNS: &str = "account_id, name, key_id, created_ms, updated_ms";

#[async_trait]
impl KmsStore for SqliteMeta {
    async fn kms_create_key(
        &self,
        key: &KmsKeyRecord,
        material: Option<&KmsMaterialRecord>,
    ) -> Result<()> {
        let (key, material) = (key.clone(), material.cloned());
        self.write(move |conn| {
            if key_exists(conn, &key.key_id)? {
                return Err(Error::AlreadyExists(format!("key {}", key.key_id)));
            }
            exec(
                conn,
                &format!("INSERT INTO kms_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4)"),
                params![key.key_id, key.account_id, ms(key.created), key.doc],
            )?;
            match &material {
                Some(m) => insert_material(conn, m),
                None => Ok(()),
            }
        })
        .await
    }

    async fn kms_remove_materials(&self, key: &KmsKeyRecord) -> Result<()> {
        let key = key.clone();
        self.write(move |conn| {
            update_doc(conn, &key)?;
            exec(
                conn,
                "DELETE FROM kms_materials WHERE key_id = ?1",
                params![key.key_id],
            )?;
            Ok(())
        })
        .await
    }

    async fn kms_get_key(&self, key_id: &str) -> Result<Option<KmsKeyRecord>> {
        let key_id = key_id.to_owned();
        self.read(move |conn| {
            query_one(
                conn,
                &format!("SELECT {KEY_COLUMNS} FROM kms_keys WHERE key_id = ?1"),
                [&key_id],
                key_row,
            )?
            .map(key_record)
            .transpose()
        })
        .await
    }

    async fn kms_update_key(&self, key: &KmsKeyRecord) -> Result<()> {
        let key = key.clone();
        self.write(move |conn| update_doc(conn, &key)).await
    }

    async fn kms_update_key_if(&self, key: &KmsKeyRecord, expected: &str) -> Result<()> {
        let (key, expected) = (key.clone(), expected.to_owned());
        self.write(move |conn| {
            let n = exec(
                conn,
                "UPDATE kms_keys SET doc = ?2 WHERE key_id = ?1 AND doc = ?3",
                params![key.key_id, key.doc, expected],
            )?;
            if n == 0 {
                let exists = conn
                    .query_row(
                        "SELECT 1 FROM kms_keys WHERE key_id = ?1",
                        [&key.key_id],
                        |_| Ok(()),
                    )
                    .optional()
                    .map_err(backend)?
                    .is_some();
                return Err(if exists {
                    Error::PreconditionFailed
                } else {
                    Error::NotFound(format!("key {}", key.key_id))
                });
            }
            Ok(())
        })
        .await
    }

    async fn kms_add_material(
        &self,
        key: &KmsKeyRecord,
        material: &KmsMaterialRecord,
    ) -> Result<()> {
        let (key, material) = (key.clone(), material.clone());
        self.write(move |conn| {
            update_doc(conn, &key)?;
            insert_material(conn, &material)
        })
        .await
    }

    async fn kms_materials(&self, key_id: &str) -> Result<Vec<KmsMaterialRecord>> {
        let key_id = key_id.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT key_id, version, wrapped, doc FROM kms_materials
                     WHERE key_id = ?1 ORDER BY version",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([&key_id], |r| {
                    Ok(KmsMaterialRecord {
                        key_id: r.get(0)?,
                        version: r.get(1)?,
                        wrapped: r.get(2)?,
                        doc: r.get(3)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<_>>().map_err(backend)
        })
        .await
    }

    async fn kms_list_keys(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage<KmsKeyRecord>> {
        let (account_id, after) = (account_id.to_owned(), after.unwrap_or("").to_owned());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM kms_keys WHERE account_id = ?1 AND key_id > ?2
                     ORDER BY key_id LIMIT ?3"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![account_id, after, to_i64(limit as u64 + 1)],
                    key_row,
                )
                .map_err(backend)?;
            let mut items = Vec::new();
            for r in rows {
                items.push(key_record(r.map_err(backend)?)?);
            }
            Ok(ListPage::from_overfetch(items, limit))
        })
        .await
    }

    async fn kms_all_keys(&self) -> Result<Vec<KmsKeyRecord>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM kms_keys ORDER BY key_id"
                ))
                .map_err(backend)?;
            let rows = stmt.query_map([], key_row).map_err(backend)?;
            let mut items = Vec::new();
            for r in rows {
                items.push(key_record(r.map_err(backend)?)?);
            }
            Ok(items)
        })
        .await
    }

    async fn kms_delete_key(&self, key_id: &str) -> Result<()> {
        let key_id = key_id.to_owned();
        self.write(move |conn| {
            if exec(conn, "DELETE FROM kms_keys WHERE key_id = ?1", [&key_id])? == 0 {
                return Err(Error::NotFound(format!("key {key_id}")));
            }
            exec(
                conn,
                "DELETE FROM kms_materials WHERE key_id = ?1",
                [&key_id],
            )?;
            exec(conn, "DELETE FROM kms_aliases WHERE key_id = ?1", [&key_id])?;
            Ok(())
        })
        .await
    }

    async fn kms_create_alias(&self, alias: &KmsAliasRecord) -> Result<()> {
        let a = alias.clone();
        self.write(move |conn| {
            let exists = query_one(
                conn,
                "SELECT 1 FROM kms_aliases WHERE account_id = ?1 AND name = ?2",
                params![a.account_id, a.name],
                |_| Ok(()),
            )?;
            if exists.is_some() {
                return Err(Error::AlreadyExists(format!("alias {}", a.name)));
            }
            exec(
                conn,
                &format!("INSERT INTO kms_aliases ({ALIAS_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![a.account_id, a.name, a.key_id, ms(a.created), ms(a.updated)],
            )?;
            Ok(())
        })
        .await
    }

    async fn kms_update_alias(&self, alias: &KmsAliasRecord) -> Result<()> {
        let a = alias.clone();
        self.write(move |conn| {
            let n = exec(
                conn,
                "UPDATE kms_aliases SET key_id = ?3, updated_ms = ?4 WHERE account_id = ?1 AND name = ?2",
                params![a.account_id, a.name, a.key_id, ms(a.updated)],
            )?;
            if n == 0 {
                return Err(Error::NotFound(format!("alias {}", a.name)));
            }
            Ok(())
        })
        .await
    }

    async fn kms_delete_alias(&self, account_id: &str, name: &str) -> Result<()> {
        let (account_id, name) = (account_id.to_owned(), name.to_owned());
        self.write(move |conn| {
            let n = exec(
                conn,
                "DELETE FROM kms_aliases WHERE account_id = ?1 AND name = ?2",
                params![account_id, name],
            )?;
            if n == 0 {
                return Err(Error::NotFound(format!("alias {name}")));
            }
            Ok(())
        })
        .await
    }

    async fn kms_get_alias(&self, account_id: &str, name: &str) -> Result<Option<KmsAliasRecord>> {
        let (account_id, name) = (account_id.to_owned(), name.to_owned());
        self.read(move |conn| {
            query_one(
                conn,
                &format!(
                    "SELECT {ALIAS_COLUMNS} FROM kms_aliases WHERE account_id = ?1 AND name = ?2"
                ),
                params![account_id, name],
                alias_row,
            )?
            .map(alias_record)
            .transpose()
        })
        .await
    }

    async fn kms_list_aliases(
        &self,
        account_id: &str,
        key_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage<KmsAliasRecord>> {
        let account_id = account_id.to_owned();
        let key_id = key_id.map(str::to_owned);
        let after = after.unwrap_or("").to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ALIAS_COLUMNS} FROM kms_aliases
                     WHERE account_id = ?1 AND name > ?2 AND (?3 IS NULL OR key_id = ?3)
                     ORDER BY name LIMIT ?4"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![account_id, after, key_id, to_i64(limit as u64 + 1)],
                    alias_row,
                )
                .map_err(backend)?;
            let mut items = Vec::new();
            for r in rows {
                items.push(alias_record(r.map_err(backend)?)?);
            }
            Ok(ListPage::from_overfetch(items, limit))
        })
        .await
    }

    async fn get_setting(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let name = name.to_owned();
        self.read(move |conn| {
            conn.query_row("SELECT value FROM settings WHERE name = ?1", [&name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn kms_rewrap(
        &self,
        materials: &[KmsMaterialRecord],
        settings: &[(String, Vec<u8>)],
    ) -> Result<()> {
        let (materials, settings) = (materials.to_vec(), settings.to_vec());
        self.write(move |conn| {
            for m in &materials {
                exec(
                    conn,
                    "UPDATE kms_materials SET wrapped = ?3 WHERE key_id = ?1 AND version = ?2",
                    params![m.key_id, m.version, m.wrapped],
                )?;
            }
            for (name, value) in &settings {
                exec(
                    conn,
                    "INSERT OR REPLACE INTO settings (name, value) VALUES (?1, ?2)",
                    params![name, value],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn put_setting(&self, name: &str, value: &[u8]) -> Result<()> {
        let (name, value) = (name.to_owned(), value.to_vec());
        self.write(move |conn| {
            exec(
                conn,
                "INSERT OR REPLACE INTO settings (name, value) VALUES (?1, ?2)",
                params![name, value],
            )?;
            Ok(())
        })
        .await
    }
}
