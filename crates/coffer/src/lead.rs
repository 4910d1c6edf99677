//! Which node does a kind of time-based work (KMS rotation and deletion, lifecycle): with
//! the embedded store, this one; with a shared metadata store, the node that holds the
//! work's lease (`coffer-storage-postgres`, a session advisory lock). Each step of the
//! work asks [`Lead::holds`] first; a node that dies lets its lease go with its database
//! session, and another node's next step takes it over.

use coffer_storage_postgres::{Lease, PgStore};

pub(crate) struct Lead {
    /// `None`: the node is alone and always leads.
    store: Option<PgStore>,
    work: &'static str,
    lease: tokio::sync::Mutex<Option<Lease>>,
}

impl Lead {
    pub(crate) fn new(store: Option<PgStore>, work: &'static str) -> Self {
        Self {
            store,
            work,
            lease: tokio::sync::Mutex::new(None),
        }
    }

    /// Whether this node leads the work now: it holds the lease (checked with the
    /// database), or takes it because nobody does.
    pub(crate) async fn holds(&self) -> bool {
        let Some(store) = &self.store else {
            return true;
        };
        let mut lease = self.lease.lock().await;
        if let Some(held) = lease.as_ref() {
            if held.is_held().await {
                return true;
            }
            tracing::warn!(work = %self.work, "lost the lead of this work");
            *lease = None;
        }
        match store.try_lease(self.work).await {
            Ok(Some(taken)) => {
                tracing::info!(work = %self.work, "this node now leads this work");
                *lease = Some(taken);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(work = %self.work, error = %e, "cannot ask who leads this work");
                false
            }
        }
    }
}
