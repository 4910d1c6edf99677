//! Coffer's blob tier in another S3-compatible store (issue: scale-out), through the Apache
//! Arrow project's `object_store` client: every node of a deployment reads and writes the
//! same bucket. What is stored there is what the local blob files hold: ciphertext for
//! every encrypted object.
//!
//! Layout under the configured prefix: `staging/ID` for a finished blob no committed record
//! references yet, `blobs/ID` once published. A writer buffers up to [`PART_SIZE`]; a blob
//! that fits is one PUT when finished, a larger one a multipart upload that a writer
//! dropped unfinished aborts, so an abandoned upload leaves nothing readable or listed.
//!
//! Configured by URL: `s3://BUCKET/PREFIX?endpoint=URL&region=R`, credentials from the
//! usual `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` environment.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, MultipartUpload, ObjectStore,
    ObjectStoreExt, PutPayload, RetryConfig,
};
use tokio::task::JoinSet;

use coffer_storage::{BlobId, BlobReader, BlobStore, BlobWriter, Error, Result};

/// Bytes a writer holds before it starts a multipart upload, and each part's size (S3's
/// smallest part).
pub const PART_SIZE: usize = 5 * 1024 * 1024;

/// Parts of one blob in flight at once: a writer holds at most about
/// `(1 + PARTS_IN_FLIGHT) * PART_SIZE` (15 MiB) plus one written chunk, whatever the
/// blob's size.
const PARTS_IN_FLIGHT: usize = 2;

/// The largest object S3's CopyObject copies (5 GiB); a larger staged blob is not moved.
const MAX_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// Blobs in an S3 bucket, under a prefix.
#[derive(Clone)]
pub struct S3Blobs {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

/// Why a blob-tier URL was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct UrlError(pub String);

impl std::fmt::Display for UrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid blob store URL: {}", self.0)
    }
}

impl std::error::Error for UrlError {}

/// What `s3://BUCKET/PREFIX?endpoint=URL&region=R` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: String,
}

impl S3Location {
    pub fn parse(url: &str) -> std::result::Result<Self, UrlError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| UrlError(format!("{url:?} does not start with s3://")))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Err(UrlError(format!("{url:?} names no bucket")));
        }
        let mut endpoint = None;
        let mut region = "us-east-1".to_owned();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("endpoint", v)) if !v.is_empty() => endpoint = Some(v.to_owned()),
                Some(("region", v)) if !v.is_empty() => v.clone_into(&mut region),
                _ => return Err(UrlError(format!("unknown or empty parameter {pair:?}"))),
            }
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            endpoint,
            region,
        })
    }
}

impl S3Blobs {
    /// A store for `s3://BUCKET/PREFIX?endpoint=URL&region=R`, with the credentials given.
    pub fn new(
        location: &S3Location,
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
    ) -> std::result::Result<Self, UrlError> {
        // Bounded waits: a store that does not answer fails the request (or the start)
        // within seconds, not after object_store's default three minutes of retries.
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: Duration::from_secs(15),
        };
        // No overall request timeout (object_store's default is 30 s, body included): a
        // GET streams an object of any size at the pace of the client reading it.
        let client = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout_disabled();
        let mut b = AmazonS3Builder::new()
            .with_retry(retry)
            .with_client_options(client)
            .with_bucket_name(&location.bucket)
            .with_region(&location.region)
            .with_access_key_id(access_key_id)
            .with_secret_access_key(secret_access_key);
        if let Some(token) = session_token {
            b = b.with_token(token);
        }
        if let Some(e) = &location.endpoint {
            b = b
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = b.build().map_err(|e| UrlError(e.to_string()))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: Path::from(location.prefix.as_str()),
        })
    }

    fn staging(&self, id: &BlobId) -> Path {
        self.prefix.clone().join("staging").join(id.as_str())
    }

    fn published(&self, id: &BlobId) -> Path {
        self.prefix.clone().join("blobs").join(id.as_str())
    }

    async fn read_at(
        &self,
        path: &Path,
        offset: u64,
        len: u64,
    ) -> object_store::Result<BlobReader> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(offset..offset + len)),
            ..GetOptions::default()
        };
        let got = self.store.get_opts(path, options).await?;
        // S3 answers a range that runs past the end with what there is: that is an error
        // here, never short data.
        if got.range != (offset..offset + len) {
            return Err(object_store::Error::Generic {
                store: "S3",
                source: format!(
                    "asked for bytes {offset}..{} of {path}, got {:?}",
                    offset + len,
                    got.range
                )
                .into(),
            });
        }
        Ok(got
            .into_stream()
            .map_err(|e| Error::Backend(e.to_string()))
            .boxed())
    }
}

fn backend(e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { path, .. } => Error::NoSuchBlob(path),
        e => Error::Backend(e.to_string()),
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn create(&self) -> Result<Box<dyn BlobWriter>> {
        let id = BlobId::generate();
        Ok(Box::new(S3Writer {
            path: self.staging(&id),
            id,
            store: self.store.clone(),
            buffer: BytesMut::new(),
            upload: None,
            in_flight: JoinSet::new(),
            len: 0,
        }))
    }

    async fn read(&self, id: &BlobId, offset: u64, len: u64) -> Result<BlobReader> {
        if len == 0 {
            // S3 has no empty range; the blob must still exist.
            for path in [self.published(id), self.staging(id)] {
                if self.store.head(&path).await.is_ok() {
                    return Ok(futures::stream::empty().boxed());
                }
            }
            return Err(Error::NoSuchBlob(id.as_str().to_owned()));
        }
        // A reader may race the publish that follows a metadata commit: staged, then
        // published.
        match self.read_at(&self.published(id), offset, len).await {
            Err(object_store::Error::NotFound { .. }) => self
                .read_at(&self.staging(id), offset, len)
                .await
                .map_err(backend),
            other => other.map_err(backend),
        }
    }

    async fn publish(&self, id: &BlobId) -> Result<()> {
        match self
            .store
            .rename(&self.staging(id), &self.published(id))
            .await
        {
            Ok(()) => Ok(()),
            // Published already (a repeat after a crash, or a second call).
            Err(object_store::Error::NotFound { .. })
                if self.store.head(&self.published(id)).await.is_ok() =>
            {
                Ok(())
            }
            Err(e) => match self.store.head(&self.staging(id)).await {
                // Too large for one CopyObject (an encrypted 5 GiB object is a little
                // larger): it stays staged, where reads find it and deletes remove it.
                Ok(meta) if meta.size > MAX_COPY => Ok(()),
                _ => Err(backend(e)),
            },
        }
    }

    async fn delete(&self, id: &BlobId) -> Result<()> {
        for path in [self.staging(id), self.published(id)] {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(backend(e)),
            }
        }
        Ok(())
    }

    async fn staged(&self) -> Result<Vec<BlobId>> {
        let prefix = self.prefix.clone().join("staging");
        let mut ids: Vec<BlobId> = self
            .store
            .list(Some(&prefix))
            .map_err(backend)
            .try_filter_map(
                |meta| async move { Ok(meta.location.filename().and_then(BlobId::parse)) },
            )
            .try_collect()
            .await?;
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(ids)
    }

    async fn abandoned(&self, idle: std::time::Duration) -> Result<Vec<BlobId>> {
        // Unfinished writes are multipart uploads, which the S3 API lists but
        // object_store does not: the bucket's lifecycle rule for incomplete multipart
        // uploads removes them (docs/deploy.md). Finished staged blobs are objects.
        let prefix = self.prefix.clone().join("staging");
        let now_ms = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(i64::MAX);
        let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        let mut ids: Vec<BlobId> = self
            .store
            .list(Some(&prefix))
            .map_err(backend)
            .try_filter_map(|meta| async move {
                let age = now_ms.saturating_sub(meta.last_modified.timestamp_millis());
                Ok((age >= idle_ms)
                    .then(|| meta.location.filename().and_then(BlobId::parse))
                    .flatten())
            })
            .try_collect()
            .await?;
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(ids)
    }
}

struct S3Writer {
    id: BlobId,
    path: Path,
    store: Arc<dyn ObjectStore>,
    /// What is not yet part of an upload.
    buffer: BytesMut,
    /// The multipart upload, once the blob outgrew one part. Kept here until it completes,
    /// so that a writer dropped at any point, `finish` included, aborts it.
    upload: Option<Box<dyn MultipartUpload>>,
    /// Parts on their way, in the order they were cut.
    in_flight: JoinSet<object_store::Result<()>>,
    len: u64,
}

impl S3Writer {
    /// Sends `part` once fewer than [`PARTS_IN_FLIGHT`] are on their way.
    async fn send(&mut self, part: Bytes) -> Result<()> {
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.settle_one().await?;
        }
        let Some(upload) = self.upload.as_mut() else {
            return Err(Error::Backend(
                "no multipart upload to send a part to".into(),
            ));
        };
        self.in_flight
            .spawn(upload.put_part(PutPayload::from(part)));
        Ok(())
    }

    async fn settle_one(&mut self) -> Result<()> {
        match self.in_flight.join_next().await {
            Some(Ok(sent)) => sent.map_err(backend),
            Some(Err(e)) => Err(Error::Backend(format!("a part upload task failed: {e}"))),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl BlobWriter for S3Writer {
    fn id(&self) -> &BlobId {
        &self.id
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.len += data.len() as u64;
        self.buffer.extend_from_slice(&data);
        while self.buffer.len() >= PART_SIZE {
            if self.upload.is_none() {
                self.upload = Some(
                    self.store
                        .put_multipart(&self.path)
                        .await
                        .map_err(backend)?,
                );
            }
            let part = self.buffer.split_to(PART_SIZE).freeze();
            self.send(part).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64> {
        if self.upload.is_none() {
            let body = PutPayload::from(self.buffer.split().freeze());
            self.store.put(&self.path, body).await.map_err(backend)?;
            return Ok(self.len);
        }
        if !self.buffer.is_empty() {
            let last = self.buffer.split().freeze();
            self.send(last).await?;
        }
        while !self.in_flight.is_empty() {
            self.settle_one().await?;
        }
        if let Some(upload) = self.upload.as_mut() {
            upload.complete().await.map_err(backend)?;
        }
        // Completed: nothing for the drop to abort.
        self.upload = None;
        Ok(self.len)
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        // Unfinished (dropped mid-body, or while finishing): abort the multipart upload
        // so that its parts are freed.
        self.in_flight.abort_all();
        if let Some(mut upload) = self.upload.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let id = self.id.clone();
            rt.spawn(async move {
                if let Err(e) = upload.abort().await {
                    tracing::warn!(blob = id.as_str(), error = %e, "aborting an abandoned upload");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            S3Location::parse(
                "s3://b/some/prefix/?endpoint=http://127.0.0.1:9000&region=eu-west-1"
            ),
            Ok(S3Location {
                bucket: "b".into(),
                prefix: "some/prefix".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: "eu-west-1".into(),
            })
        );
        assert_eq!(
            S3Location::parse("s3://b").map(|l| (l.prefix, l.endpoint, l.region)),
            Ok((String::new(), None, "us-east-1".into()))
        );
        for bad in [
            "http://b/p",
            "s3:///p",
            "s3://b/p?endpoint=",
            "s3://b?colour=blue",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
    }
}
