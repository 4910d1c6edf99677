//! The blob store: opaque byte sequences addressed by [`BlobId`], written once.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use crate::{BlobId, Result};

/// A stream of a blob's bytes, in order.
pub type BlobReader = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Starts a new blob in staging. It is invisible to [`BlobStore::read`] until
    /// [`BlobWriter::finish`] returns.
    async fn create(&self) -> Result<Box<dyn BlobWriter>>;

    /// Streams `len` bytes from `offset`. Works for finished blobs whether published yet or
    /// still staged: a reader may race the publish that follows a metadata commit.
    async fn read(&self, id: &BlobId, offset: u64, len: u64) -> Result<BlobReader>;

    /// Like [`BlobStore::read`], in chunks of `chunk` bytes (the last may be shorter), so
    /// that a reader of fixed-size records (encrypted segments) gets whole records per
    /// chunk and need not copy them.
    async fn read_chunked(
        &self,
        id: &BlobId,
        offset: u64,
        len: u64,
        chunk: usize,
    ) -> Result<BlobReader> {
        let _ = chunk;
        self.read(id, offset, len).await
    }

    /// Moves a finished blob out of staging once a committed record references it. Need not
    /// be durable: after a crash the blob is found in staging and published again.
    async fn publish(&self, id: &BlobId) -> Result<()>;

    /// Removes a blob (staged or published). Removing a missing blob is not an error.
    async fn delete(&self, id: &BlobId) -> Result<()>;

    /// The finished blobs still in staging; at start-up, each is published if a record
    /// references it and deleted otherwise. Unfinished writes are removed by the backend.
    async fn staged(&self) -> Result<Vec<BlobId>>;

    /// What writers that died mid-way left in staging, in a store several nodes share
    /// (where no node may clear staging at its start): unfinished writes untouched for
    /// `idle` are removed here, and finished blobs staged at least `idle` ago are
    /// returned, for the caller to publish or delete as it does [`BlobStore::staged`]'s.
    /// `idle` must exceed the time a live writer may go without writing and a finished
    /// blob may wait for its record.
    async fn abandoned(&self, idle: std::time::Duration) -> Result<Vec<BlobId>>;
}

/// Writes one blob. Dropping a writer without calling [`BlobWriter::finish`] discards the
/// blob: a client that hangs up mid-body leaves nothing behind.
#[async_trait]
pub trait BlobWriter: Send {
    fn id(&self) -> &BlobId;

    async fn write(&mut self, data: Bytes) -> Result<()>;

    /// Makes the blob durable in staging and returns its length.
    async fn finish(self: Box<Self>) -> Result<u64>;
}
