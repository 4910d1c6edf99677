//! Root-key rotation for identities: every stored secret (access keys, role sessions)
//! wrapped again under the root key's current key. Secrets are held in memory, so
//! nothing is unwrapped and authentication goes on meanwhile.

use super::roles::{KIND_SESSION, SessionDoc};
use super::{Directory, KIND_KEY, KeyDoc, Result, internal, record, wrap_secret};

impl Directory {
    /// Re-wraps every stored secret under the root key's current key; returns how many.
    pub async fn rewrap_under_root(&self) -> Result<usize> {
        let _w = self.writing.lock().await;
        let mut updates = Vec::new();
        {
            let st = self.read();
            for (id, k) in &st.keys {
                let doc = KeyDoc {
                    user: k.user.clone(),
                    status: k.status.clone(),
                    created: k.created,
                    secret: wrap_secret(self.root.as_ref(), id, k.secret.expose())?,
                };
                updates.push((
                    Some(doc.secret.clone()),
                    record(&k.account, KIND_KEY, id, &doc)?,
                ));
            }
            for (id, e) in &st.sessions {
                let doc = SessionDoc::of(e, id, self.root.as_ref())?;
                updates.push((None, record(&e.account, KIND_SESSION, id, &doc)?));
            }
        }
        for (wrapped, r) in &updates {
            self.store.iam_update(r).await.map_err(internal)?;
            if let Some(w) = wrapped
                && let Some(k) = self.write().keys.get_mut(&r.name)
            {
                k.wrapped = w.clone();
            }
        }
        Ok(updates.len())
    }
}
