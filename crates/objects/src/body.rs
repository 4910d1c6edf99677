//! Taking a request body in: stream it into the blob store (or keep it inline when small)
//! while computing its MD5 and checksum, then check both against what the client declared.
//! Nothing is buffered beyond the inline threshold; a body that fails any check leaves no
//! blob behind (the writer is dropped, which deletes it).

use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

use coffer_storage::{BlobStore, BlobWriter, Checksum, Extent};

use crate::checksum::{self, ChecksumRequest, Hasher, Md5};
use crate::{BodyError, Error, Result};

/// A request body as the protocol layer hands it over.
pub type BodyStream = Pin<Box<dyn Stream<Item = std::result::Result<Bytes, BodyError>> + Send>>;

/// Bodies up to this size are stored inline in the metadata store.
pub const DEFAULT_INLINE_MAX: usize = 64 * 1024;

/// What was stored, and what we learned about it.
#[derive(Debug)]
pub struct Ingested {
    pub extent: Extent,
    pub size: u64,
    pub md5: [u8; 16],
    pub checksum: Option<Checksum>,
}

pub struct Ingest<'a> {
    pub blobs: &'a dyn BlobStore,
    /// Encrypts the body as it streams in (server-side encryption).
    pub sealer: Option<coffer_crypto::stream::Sealer>,
    /// Whether the ETag is the body's MD5 (plaintext and SSE-S3). Otherwise MD5 is
    /// computed only to check a Content-MD5, and the ETag is random, as on AWS.
    pub md5_etag: bool,
    pub inline_max: usize,
    /// The length the client declared, if any: the body must be exactly this long.
    pub declared_len: Option<u64>,
    /// Refuse bodies longer than this (`EntityTooLarge`).
    pub max_len: u64,
    pub checksums: ChecksumRequest,
}

impl Ingest<'_> {
    pub async fn run(self, mut body: BodyStream) -> Result<Ingested> {
        if let Some(len) = self.declared_len
            && len > self.max_len
        {
            return Err(Error::EntityTooLarge);
        }
        // A declared header checksum must at least be well-formed before we read anything.
        if let (Some(a), Some(v)) = (self.checksums.algorithm, &self.checksums.expected) {
            checksum::decode(a, v)?;
        }
        let mut md5 = (self.md5_etag || self.checksums.content_md5.is_some()).then(Md5::new);
        let mut hasher = self.checksums.algorithm.map(Hasher::new);
        let mut sealer = self.sealer;
        let mut size: u64 = 0;
        let mut inline = BytesMut::new();
        let mut writer: Option<Box<dyn BlobWriter>> = None;

        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(Error::Body)?;
            size += chunk.len() as u64;
            if size > self.max_len {
                return Err(Error::EntityTooLarge);
            }
            if let Some(len) = self.declared_len
                && size > len
            {
                return Err(Error::BodyTooLong);
            }
            if let Some(m) = md5.as_mut() {
                m.update(&chunk);
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            let stored = match sealer.as_mut() {
                Some(s) => Bytes::from(s.push(&chunk).map_err(seal_failed)?),
                None => chunk,
            };
            store(
                self.blobs,
                self.inline_max,
                &mut inline,
                &mut writer,
                stored,
            )
            .await?;
        }
        if let Some(len) = self.declared_len
            && size < len
        {
            return Err(Error::IncompleteBody);
        }

        if let Some(s) = sealer.take() {
            let last = Bytes::from(s.finish().map_err(seal_failed)?);
            store(self.blobs, self.inline_max, &mut inline, &mut writer, last).await?;
        }
        let md5 = match md5 {
            Some(m) => {
                let digest = m.finalize();
                if let Some(declared) = &self.checksums.content_md5 {
                    checksum::verify_content_md5(declared, &digest)?;
                }
                if self.md5_etag {
                    digest
                } else {
                    random_etag()?
                }
            }
            None => random_etag()?,
        };
        let mut checksum_out = None;
        if let (Some(a), Some(h)) = (self.checksums.algorithm, hasher) {
            let digest = h.finalize();
            let declared = match (self.checksums.expected, self.checksums.trailer) {
                (Some(v), _) => Some(v),
                (None, Some(read_trailer)) => read_trailer(),
                (None, None) => None,
            };
            if let Some(v) = declared {
                checksum::verify(a, &digest, &v)?;
            }
            checksum_out = Some(Checksum {
                algorithm: a,
                value: checksum::encode(&digest),
                composite: false,
            });
        }

        let extent = match writer {
            Some(w) => {
                let id = w.id().clone();
                let len = w.finish().await?;
                Extent::Blob { id, len }
            }
            None => Extent::Inline(inline.freeze()),
        };
        Ok(Ingested {
            extent,
            size,
            md5,
            checksum: checksum_out,
        })
    }
}

/// Appends stored bytes: inline while they fit, then to a blob.
async fn store(
    blobs: &dyn BlobStore,
    inline_max: usize,
    inline: &mut BytesMut,
    writer: &mut Option<Box<dyn BlobWriter>>,
    data: Bytes,
) -> Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    match writer.as_mut() {
        Some(w) => w.write(data).await?,
        None if inline.len() + data.len() <= inline_max => inline.extend_from_slice(&data),
        None => {
            let mut w = blobs.create().await?;
            if !inline.is_empty() {
                w.write(inline.split().freeze()).await?;
            }
            w.write(data).await?;
            *writer = Some(w);
        }
    }
    Ok(())
}

fn seal_failed(e: coffer_crypto::Error) -> Error {
    Error::Internal(format!("encrypting the object failed: {e}"))
}

/// The ETag of an encrypted object (SSE-KMS, SSE-C): random, never the plaintext's MD5,
/// which would reveal equal contents.
fn random_etag() -> Result<[u8; 16]> {
    let mut b = [0u8; 16];
    coffer_crypto::random(&mut b).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(b)
}
