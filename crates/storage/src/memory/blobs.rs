//! The in-memory [`BlobStore`]: blobs in a map, staged until published.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

use crate::{BlobId, BlobReader, BlobStore, BlobWriter, Error, Result};

struct MemBlob {
    data: Bytes,
    published: bool,
    staged_at: std::time::Instant,
}

/// In-memory [`BlobStore`].
#[derive(Default, Clone)]
pub struct MemoryBlobs {
    blobs: Arc<Mutex<HashMap<BlobId, MemBlob>>>,
}

impl MemoryBlobs {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<BlobId, MemBlob>> {
        self.blobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every blob's bytes, for tests that inspect what a store holds.
    pub fn all_bytes(&self) -> Vec<Bytes> {
        self.lock().values().map(|b| b.data.clone()).collect()
    }
}

struct MemWriter {
    id: BlobId,
    buf: BytesMut,
    store: MemoryBlobs,
}

#[async_trait]
impl BlobWriter for MemWriter {
    fn id(&self) -> &BlobId {
        &self.id
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.buf.extend_from_slice(&data);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<u64> {
        let len = self.buf.len() as u64;
        self.store.lock().insert(
            self.id.clone(),
            MemBlob {
                data: self.buf.freeze(),
                published: false,
                staged_at: std::time::Instant::now(),
            },
        );
        Ok(len)
    }
}

#[async_trait]
impl BlobStore for MemoryBlobs {
    async fn create(&self) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(MemWriter {
            id: BlobId::generate(),
            buf: BytesMut::new(),
            store: self.clone(),
        }))
    }

    async fn read(&self, id: &BlobId, offset: u64, len: u64) -> Result<BlobReader> {
        let data = self
            .lock()
            .get(id)
            .map(|b| b.data.clone())
            .ok_or_else(|| Error::NoSuchBlob(id.as_str().into()))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = usize::try_from(offset.saturating_add(len)).unwrap_or(usize::MAX);
        if end > data.len() || start > end {
            return Err(Error::Corrupt(format!(
                "blob {} is shorter than asked",
                id.as_str()
            )));
        }
        let slice = data.slice(start..end);
        Ok(Box::pin(futures::stream::iter([Ok(slice)])))
    }

    async fn publish(&self, id: &BlobId) -> Result<()> {
        if let Some(b) = self.lock().get_mut(id) {
            b.published = true;
        }
        Ok(())
    }

    async fn delete(&self, id: &BlobId) -> Result<()> {
        self.lock().remove(id);
        Ok(())
    }

    async fn staged(&self) -> Result<Vec<BlobId>> {
        Ok(self
            .lock()
            .iter()
            .filter(|(_, b)| !b.published)
            .map(|(id, _)| id.clone())
            .collect())
    }

    async fn abandoned(&self, idle: std::time::Duration) -> Result<Vec<BlobId>> {
        // (An unfinished write is only its writer's buffer: nothing to remove.)
        Ok(self
            .lock()
            .iter()
            .filter(|(_, b)| !b.published && b.staged_at.elapsed() >= idle)
            .map(|(id, _)| id.clone())
            .collect())
    }
}
