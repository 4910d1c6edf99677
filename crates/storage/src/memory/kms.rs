//! The in-memory [`crate::KmsStore`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::{Error, ListPage, Result};

/// In-memory [`crate::KmsStore`].
#[derive(Default, Clone)]
pub struct MemoryKms {
    state: Arc<Mutex<KmsState>>,
}

#[derive(Default)]
struct KmsState {
    keys: BTreeMap<String, crate::KmsKeyRecord>,
    materials: BTreeMap<(String, u32), crate::KmsMaterialRecord>,
    aliases: BTreeMap<(String, String), crate::KmsAliasRecord>,
    settings: BTreeMap<String, Vec<u8>>,
}

impl MemoryKms {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, KmsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl crate::KmsStore for MemoryKms {
    async fn kms_create_key(
        &self,
        key: &crate::KmsKeyRecord,
        material: Option<&crate::KmsMaterialRecord>,
    ) -> Result<()> {
        let mut st = self.lock();
        if st.keys.contains_key(&key.key_id) {
            return Err(Error::AlreadyExists(format!("key {}", key.key_id)));
        }
        st.keys.insert(key.key_id.clone(), key.clone());
        if let Some(m) = material {
            st.materials
                .insert((key.key_id.clone(), m.version), m.clone());
        }
        Ok(())
    }

    async fn kms_remove_materials(&self, key: &crate::KmsKeyRecord) -> Result<()> {
        let mut st = self.lock();
        if !st.keys.contains_key(&key.key_id) {
            return Err(Error::NotFound(format!("key {}", key.key_id)));
        }
        st.materials.retain(|(id, _), _| *id != key.key_id);
        st.keys.insert(key.key_id.clone(), key.clone());
        Ok(())
    }

    async fn kms_get_key(&self, key_id: &str) -> Result<Option<crate::KmsKeyRecord>> {
        Ok(self.lock().keys.get(key_id).cloned())
    }

    async fn kms_update_key(&self, key: &crate::KmsKeyRecord) -> Result<()> {
        let mut st = self.lock();
        match st.keys.get_mut(&key.key_id) {
            Some(k) => {
                *k = key.clone();
                Ok(())
            }
            None => Err(Error::NotFound(format!("key {}", key.key_id))),
        }
    }

    async fn kms_update_key_if(&self, key: &crate::KmsKeyRecord, expected: &str) -> Result<()> {
        let mut st = self.lock();
        match st.keys.get_mut(&key.key_id) {
            Some(k) if k.doc == expected => {
                *k = key.clone();
                Ok(())
            }
            Some(_) => Err(Error::PreconditionFailed),
            None => Err(Error::NotFound(format!("key {}", key.key_id))),
        }
    }

    async fn kms_add_material(
        &self,
        key: &crate::KmsKeyRecord,
        material: &crate::KmsMaterialRecord,
    ) -> Result<()> {
        let mut st = self.lock();
        if !st.keys.contains_key(&key.key_id) {
            return Err(Error::NotFound(format!("key {}", key.key_id)));
        }
        let id = (key.key_id.clone(), material.version);
        if st.materials.contains_key(&id) {
            return Err(Error::AlreadyExists(format!(
                "material {} of key {}",
                material.version, key.key_id
            )));
        }
        st.materials.insert(id, material.clone());
        st.keys.insert(key.key_id.clone(), key.clone());
        Ok(())
    }

    async fn kms_materials(&self, key_id: &str) -> Result<Vec<crate::KmsMaterialRecord>> {
        Ok(self
            .lock()
            .materials
            .range((key_id.to_owned(), 0)..=(key_id.to_owned(), u32::MAX))
            .map(|(_, m)| m.clone())
            .collect())
    }

    async fn kms_list_keys(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage<crate::KmsKeyRecord>> {
        let st = self.lock();
        let items: Vec<crate::KmsKeyRecord> = st
            .keys
            .values()
            .filter(|k| k.account_id == account_id && after.is_none_or(|a| k.key_id.as_str() > a))
            .cloned()
            .collect();
        Ok(ListPage::from_overfetch(items, limit))
    }

    async fn kms_all_keys(&self) -> Result<Vec<crate::KmsKeyRecord>> {
        Ok(self.lock().keys.values().cloned().collect())
    }

    async fn kms_delete_key(&self, key_id: &str) -> Result<()> {
        let mut st = self.lock();
        if st.keys.remove(key_id).is_none() {
            return Err(Error::NotFound(format!("key {key_id}")));
        }
        st.materials.retain(|(k, _), _| k != key_id);
        st.aliases.retain(|_, a| a.key_id != key_id);
        Ok(())
    }

    async fn kms_create_alias(&self, alias: &crate::KmsAliasRecord) -> Result<()> {
        let mut st = self.lock();
        let id = (alias.account_id.clone(), alias.name.clone());
        if st.aliases.contains_key(&id) {
            return Err(Error::AlreadyExists(format!("alias {}", alias.name)));
        }
        st.aliases.insert(id, alias.clone());
        Ok(())
    }

    async fn kms_update_alias(&self, alias: &crate::KmsAliasRecord) -> Result<()> {
        let mut st = self.lock();
        match st
            .aliases
            .get_mut(&(alias.account_id.clone(), alias.name.clone()))
        {
            Some(a) => {
                *a = alias.clone();
                Ok(())
            }
            None => Err(Error::NotFound(format!("alias {}", alias.name))),
        }
    }

    async fn kms_delete_alias(&self, account_id: &str, name: &str) -> Result<()> {
        match self
            .lock()
            .aliases
            .remove(&(account_id.to_owned(), name.to_owned()))
        {
            Some(_) => Ok(()),
            None => Err(Error::NotFound(format!("alias {name}"))),
        }
    }

    async fn kms_get_alias(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<crate::KmsAliasRecord>> {
        Ok(self
            .lock()
            .aliases
            .get(&(account_id.to_owned(), name.to_owned()))
            .cloned())
    }

    async fn kms_list_aliases(
        &self,
        account_id: &str,
        key_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage<crate::KmsAliasRecord>> {
        let st = self.lock();
        let items: Vec<crate::KmsAliasRecord> = st
            .aliases
            .values()
            .filter(|a| {
                a.account_id == account_id
                    && key_id.is_none_or(|k| a.key_id == k)
                    && after.is_none_or(|x| a.name.as_str() > x)
            })
            .cloned()
            .collect();
        Ok(ListPage::from_overfetch(items, limit))
    }

    async fn get_setting(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().settings.get(name).cloned())
    }

    async fn put_setting(&self, name: &str, value: &[u8]) -> Result<()> {
        self.lock().settings.insert(name.to_owned(), value.to_vec());
        Ok(())
    }

    async fn kms_rewrap(
        &self,
        materials: &[crate::KmsMaterialRecord],
        settings: &[(String, Vec<u8>)],
    ) -> Result<()> {
        let mut st = self.lock();
        for m in materials {
            if let Some(stored) = st.materials.get_mut(&(m.key_id.clone(), m.version)) {
                stored.wrapped = m.wrapped.clone();
            }
        }
        for (name, value) in settings {
            st.settings.insert(name.clone(), value.clone());
        }
        Ok(())
    }
}
