//! Coffer's scale-out storage: metadata in PostgreSQL, which every node of a deployment
//! shares (issue: stateless nodes on PostgreSQL).
//!
//! [`PgStore`] implements the metadata store ([`coffer_storage::MetaStore`]: buckets,
//! objects and versions, uploads, blob bookkeeping), the IAM store and the KMS store, and
//! passes the same contract suite as the embedded backend. Each method is one transaction
//! on a pooled connection (deadpool-postgres over tokio-postgres); writers on every node
//! serialize per key through advisory locks (`meta.rs`).
//!
//! Text keys are `COLLATE "C"`, so listings order bytewise as on S3 and as the SQLite
//! backend orders them. The schema is versioned (`schema.rs`): the first node to start
//! migrates it under an advisory lock, and a node refuses a schema newer than it knows.
//!
//! The URL is libpq's (`postgres://USER@HOST:PORT/DB`); its `options` parameter reaches
//! the server, e.g. `?options=-c%20search_path%3Dcoffer` to keep Coffer's tables in a
//! schema of their own.

mod batch;
mod changes;
mod iam;
mod import;
mod kms;
mod lease;
mod meta;
mod rows;
mod schema;
mod uploads;
mod versions;

use coffer_storage::Error;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

pub use changes::{Change, Listener, Notice};
pub use import::Import;
pub use lease::Lease;
pub use schema::SCHEMA_VERSION;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid PostgreSQL URL: {0}")]
    Url(String),
    #[error("cannot reach PostgreSQL: {0}")]
    Unreachable(String),
    /// Another (newer) release migrated the database: this one must not write to it.
    #[error(
        "the database's schema is version {found}, newer than this coffer knows ({known}): upgrade coffer"
    )]
    SchemaTooNew { found: i32, known: i32 },
    #[error("schema migration failed: {0}")]
    Migration(String),
}

/// The PostgreSQL store: a pool of connections to one database.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// For the connections that live outside the pool (leases, change notices), with TCP
    /// keepalives so that a dead link is noticed in about 25 s rather than hours.
    config: tokio_postgres::Config,
    /// The schema the deployment's tables are in: leases are per deployment.
    schema: String,
    /// The deployment's change-notice channel (`changes.rs`).
    channel: String,
    /// Group commit for new current versions (`batch.rs`).
    batcher: Option<batch::Batcher>,
}

/// Connections per node: requests wait for one rather than open more.
const POOL_SIZE: usize = 16;

impl PgStore {
    /// Connects, and migrates the schema if this is the first node of a newer release.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::open(url, true).await
    }

    /// Connects to a database whose schema is already this release's, changing nothing
    /// (offline tools such as `coffer audit verify`): `Migration` if it is older or
    /// absent, `SchemaTooNew` if newer.
    pub async fn connect_without_migrating(url: &str) -> Result<Self, ConnectError> {
        Self::open(url, false).await
    }

    async fn open(url: &str, migrate: bool) -> Result<Self, ConnectError> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e| ConnectError::Url(format!("{e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| ConnectError::Url(e.to_string()))?;
        let mut side = config;
        side.keepalives(true)
            .keepalives_idle(std::time::Duration::from_secs(10))
            .keepalives_interval(std::time::Duration::from_secs(5))
            .keepalives_retries(3);
        let mut store = Self {
            pool,
            config: side,
            schema: String::new(),
            channel: String::new(),
            batcher: None,
        };
        let mut client = store
            .client()
            .await
            .map_err(|e| ConnectError::Unreachable(e.to_string()))?;
        if migrate {
            schema::migrate(&mut client).await?;
        } else {
            schema::check(&client).await?;
        }
        let names = client
            .query_one(
                "SELECT current_schema(), 'coffer_' || substr(md5(current_schema()), 1, 16)",
                &[],
            )
            .await
            .map_err(|e| ConnectError::Unreachable(e.to_string()))?;
        store.schema = names.get(0);
        store.channel = names.get(1);
        store.batcher = Some(batch::Batcher::start(
            store.pool.clone(),
            store.schema.as_str().into(),
        ));
        Ok(store)
    }

    /// The advisory lock a write to `key` of `bucket` holds exclusively (tests hold it
    /// from outside to see what waits for it).
    #[doc(hidden)]
    pub fn key_lock(&self, bucket: &str, key: &str) -> i64 {
        rows::key_locks(&self.schema, bucket, key).1
    }

    /// Group commit's figures: how many batches applied writes of new current versions,
    /// and how many writes they applied in all (the rest took the locked path).
    pub fn write_batches(&self) -> (u64, u64) {
        self.batcher
            .as_ref()
            .map(batch::Batcher::stats)
            .unwrap_or_default()
    }

    async fn client(&self) -> coffer_storage::Result<deadpool_postgres::Client> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::Backend(e.to_string()))
    }
}

/// Ends a transaction: commits it if its work succeeded, else rolls it back before the
/// connection goes back to the pool (not left to the transaction's drop, which only
/// queues the rollback).
async fn finish<T>(
    tx: deadpool_postgres::Transaction<'_>,
    work: coffer_storage::Result<T>,
) -> coffer_storage::Result<T> {
    match work {
        Ok(v) => {
            tx.commit().await.map_err(backend)?;
            Ok(v)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rolling back a failed transaction");
            }
            Err(e)
        }
    }
}

/// An engine failure, for the log only: the server's code and message when it sent one
/// (tokio-postgres's own text is only "db error").
fn backend(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::Backend(format!("PostgreSQL {}: {}", db.code().code(), db.message())),
        None => Error::Backend(e.to_string()),
    }
}

/// Timestamps are kept as milliseconds since the epoch, as in the SQLite backend.
fn ms(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// An advisory-lock key: FNV-1a 64 of `parts` joined by 0 bytes, stable across releases
/// and nodes, where Rust's own hashers are seeded per process.
fn lock_key(parts: &[&[u8]]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        let sep: &[u8] = if i == 0 { &[] } else { &[0] };
        for b in sep.iter().chain(part.iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

fn from_ms(v: i64) -> coffer_storage::Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000)
        .map_err(|e| Error::Corrupt(format!("timestamp {v}: {e}")))
}
