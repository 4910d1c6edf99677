//! The in-memory [`crate::IamStore`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::{Error, Result};

/// IAM records by (account, kind, name).
type IamMap = BTreeMap<(String, String, String), crate::IamRecord>;

/// In-memory [`crate::IamStore`].
#[derive(Default, Clone)]
pub struct MemoryIam {
    state: Arc<Mutex<IamMap>>,
}

impl MemoryIam {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, IamMap> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn iam_key(r: &crate::IamRecord) -> (String, String, String) {
    (r.account_id.clone(), r.kind.clone(), r.name.clone())
}

#[async_trait]
impl crate::IamStore for MemoryIam {
    async fn iam_create(&self, record: &crate::IamRecord) -> Result<()> {
        let mut st = self.lock();
        let k = iam_key(record);
        if st.contains_key(&k) {
            return Err(Error::AlreadyExists(format!(
                "{} {}",
                record.kind, record.name
            )));
        }
        st.insert(k, record.clone());
        Ok(())
    }

    async fn iam_update(&self, record: &crate::IamRecord) -> Result<()> {
        let mut st = self.lock();
        match st.get_mut(&iam_key(record)) {
            Some(r) => {
                r.doc.clone_from(&record.doc);
                Ok(())
            }
            None => Err(Error::NotFound(format!("{} {}", record.kind, record.name))),
        }
    }

    async fn iam_delete(&self, keys: &[(String, String, String)]) -> Result<()> {
        let mut st = self.lock();
        if let Some(first) = keys.first()
            && !st.contains_key(first)
        {
            return Err(Error::NotFound(format!("{} {}", first.1, first.2)));
        }
        for k in keys {
            st.remove(k);
        }
        Ok(())
    }

    async fn iam_all(&self) -> Result<Vec<crate::IamRecord>> {
        Ok(self.lock().values().cloned().collect())
    }
}
