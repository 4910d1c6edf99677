//! Keeping a node's caches coherent with the other nodes of a scale-out deployment: every
//! committed change to a KMS key, an alias, an IAM entity, a bucket or its settings
//! arrives as a change notice (`coffer-storage-postgres`, a trigger inside the changing
//! transaction), and this task reloads or drops what the node holds of it, within
//! milliseconds of the commit.
//!
//! When the notices stop (the database restarted, the network failed), the node can no
//! longer know that a key was disabled or a policy changed elsewhere: it marks itself
//! stale, so that every request is refused with the protocol's retryable error and
//! `/_coffer/health` answers 503, until it listens again and has reloaded everything.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use coffer_storage_postgres::{Change, Listener, PgStore};

/// What a node caches of the shared state.
pub(crate) struct Caches {
    pub kms: Arc<coffer_kms::Kms>,
    pub directory: Arc<coffer_iam::Directory>,
    pub objects: Arc<coffer_objects::Objects>,
}

impl Caches {
    async fn apply(&self, change: Change) -> Result<(), String> {
        match change {
            Change::KmsKey(id) => self.kms.refresh_key(&id).await.map_err(|e| e.to_string()),
            Change::KmsAlias { account, name } => {
                self.kms.forget_alias(&account, &name).await;
                Ok(())
            }
            Change::Iam(_) => self.directory.reload().await.map_err(|e| e.to_string()),
            Change::Bucket(name) => {
                self.objects.forget_bucket_state(&name);
                Ok(())
            }
            Change::Account(id) => {
                self.objects.forget_account_state(&id);
                Ok(())
            }
            Change::Unknown(payload) => {
                tracing::warn!(%payload, "a change notice this release does not know; reloading everything");
                self.reload_all().await
            }
        }
    }

    async fn reload_all(&self) -> Result<(), String> {
        self.objects.forget_all_state();
        self.kms.refresh_all().await.map_err(|e| e.to_string())?;
        self.directory.reload().await.map_err(|e| e.to_string())
    }
}

/// Runs for the life of the node.
pub(crate) async fn keep(
    pg: PgStore,
    mut listener: Listener,
    caches: Caches,
    stale: Arc<AtomicBool>,
) {
    loop {
        while let Some(notice) = listener.next().await {
            let change = Change::parse(&notice.payload);
            if let Err(e) = caches.apply(change).await {
                // The store answered the notice but not the reload: this node no longer
                // knows the state it serves. Listen afresh and reload everything.
                tracing::warn!(error = %e, "reloading after a change notice failed");
                break;
            }
        }
        stale.store(true, Ordering::Release);
        tracing::warn!(
            "lost the shared metadata store's change notices: refusing requests until they are back"
        );
        listener = loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let Ok(l) = pg.listen_changes().await else {
                continue;
            };
            // Listening first, then reloading: a change committed in between is heard.
            match caches.reload_all().await {
                Ok(()) => break l,
                Err(e) => tracing::warn!(error = %e, "reloading the caches failed; retrying"),
            }
        };
        stale.store(false, Ordering::Release);
        tracing::info!("hearing the shared metadata store's change notices again: serving");
    }
}
