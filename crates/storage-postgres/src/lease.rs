//! Leadership of one kind of time-based work (KMS rotation and deletion, lifecycle, blob
//! collection, audit sealing) across the nodes that share a database: a session-level
//! advisory lock held on a connection of the lease's own, outside the pool.
//!
//! PostgreSQL releases the lock when that session ends, however it ends: the lease
//! dropped, the node stopped, or the node killed (its socket closes; a link that dies
//! silently is noticed by TCP keepalives in about 25 s). Another node's next
//! [`PgStore::try_lease`] then succeeds, so work resumes within one polling interval.
//! Keys are per deployment (the schema's name is part of them); a leader that lost its
//! session learns so from [`Lease::is_held`], which long work asks between steps.

use coffer_storage::{Error, Result};
use tokio::task::JoinHandle;

use crate::PgStore;

/// Held leadership of one kind of work; dropping it lets another node take over.
pub struct Lease {
    client: tokio_postgres::Client,
    connection: JoinHandle<()>,
    work: String,
}

/// The advisory-lock key of a kind of work in a deployment.
fn key(schema: &str, work: &str) -> i64 {
    crate::lock_key(&[b"lease", schema.as_bytes(), work.as_bytes()])
}

impl PgStore {
    /// Leadership of `work` if no other node holds it, else `None`.
    pub async fn try_lease(&self, work: &str) -> Result<Option<Lease>> {
        let (client, conn) = self
            .config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| Error::Backend(e.to_string()))?;
        let connection = tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::warn!(error = %e, "a lease's database connection ended");
            }
        });
        let got: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1)",
                &[&key(&self.schema, work)],
            )
            .await
            .map_err(|e| Error::Backend(e.to_string()))?
            .get(0);
        if !got {
            connection.abort();
            return Ok(None);
        }
        Ok(Some(Lease {
            client,
            connection,
            work: work.to_owned(),
        }))
    }
}

impl Lease {
    pub fn work(&self) -> &str {
        &self.work
    }

    /// Whether the lease still holds: its session is alive. Work that runs long checks
    /// this between steps, and stops when the database no longer vouches for it.
    pub async fn is_held(&self) -> bool {
        !self.connection.is_finished()
            && tokio::time::timeout(
                std::time::Duration::from_secs(5),
                self.client.simple_query("SELECT 1"),
            )
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Ending the session releases the lock.
        self.connection.abort();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_stable_and_distinct() {
        // FNV-1a 64 of "a" (the reference value), as a signed key.
        assert_eq!(crate::lock_key(&[b"a"]), 0xaf63_dc4c_8601_ec8c_u64 as i64);
        assert_ne!(super::key("s", "kms"), super::key("s", "lifecycle"));
        assert_ne!(super::key("s1", "kms"), super::key("s2", "kms"));
    }
}
