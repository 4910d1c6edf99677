//! What the PostgreSQL tests share: the server (`COFFER_TEST_POSTGRES_URL`, which
//! scripts/test sets, starting a server if the machine has none; else
//! `postgres://postgres@127.0.0.1:5432/test`), and a schema per test, dropped when the
//! test ends.

#![allow(dead_code)]

use coffer_storage_postgres::PgStore;

pub fn server_url() -> String {
    std::env::var("COFFER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `url` with `search_path` set to `schema`.
pub fn url_in(schema: &str) -> String {
    let url = server_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// Drops the test's schema when the test ends.
pub struct Schema(pub String);

impl Schema {
    pub async fn create() -> Self {
        let name = format!("coffer_test_{}", uuid::Uuid::new_v4().simple());
        let (client, conn) = tokio_postgres::connect(&server_url(), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                // The URL is not printed: it may hold a password.
                panic!(
                    "PostgreSQL is not reachable at COFFER_TEST_POSTGRES_URL or 127.0.0.1:5432 ({e}); scripts/test starts one"
                )
            });
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create schema");
        Self(name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.0.clone();
        // A runtime of its own: the test's is shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&server_url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

pub async fn store() -> (PgStore, Schema) {
    let schema = Schema::create().await;
    let store = PgStore::connect(&url_in(&schema.0))
        .await
        .expect("connect and migrate");
    (store, schema)
}
