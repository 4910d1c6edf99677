//! [`BlobStore`] on the file system.
//!
//! Layout under the data directory:
//! - `staging/ID.tmp`: a blob being written (removed at start-up: never committed);
//! - `staging/ID`: a finished, fsynced blob not yet published;
//! - `blobs/XY/ID`: a published blob, `XY` being the last two hex digits of its id (the
//!   random end of a v7 UUID), spreading blobs over 256 directories.
//!
//! File I/O runs in blocking tasks in 1 MiB steps, so a request never holds more than one
//! buffer of its body and the async workers never wait on the disk.

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

use coffer_storage::{BlobId, BlobReader, BlobStore, BlobWriter, Error, Result};

use crate::OpenError;

/// Writes are gathered into buffers of this size before each write(2).
const WRITE_BUFFER: usize = 1 << 20;
/// Reads are served in chunks of this size.
const READ_CHUNK: usize = 1 << 20;

#[derive(Clone)]
pub struct FileBlobs {
    inner: Arc<Dirs>,
}

struct Dirs {
    staging: PathBuf,
    blobs: PathBuf,
}

impl Dirs {
    fn staged_path(&self, id: &BlobId) -> PathBuf {
        self.staging.join(id.as_str())
    }

    fn tmp_path(&self, id: &BlobId) -> PathBuf {
        self.staging.join(format!("{}.tmp", id.as_str()))
    }

    fn fanout(&self, id: &BlobId) -> PathBuf {
        let s = id.as_str();
        self.blobs.join(&s[s.len() - 2..])
    }

    fn published_path(&self, id: &BlobId) -> PathBuf {
        self.fanout(id).join(id.as_str())
    }

    /// Opens a finished blob wherever it is. A publish may move it between the two
    /// lookups, so a miss in both is retried once at the final place.
    fn open_finished(&self, id: &BlobId) -> io::Result<File> {
        let published = self.published_path(id);
        match File::open(&published) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        match File::open(self.staged_path(id)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        File::open(&published)
    }
}

impl FileBlobs {
    pub fn open(data_dir: &Path) -> std::result::Result<Self, OpenError> {
        let blobs = Self::open_shared(data_dir)?;
        let dirs = &blobs.inner;
        // Unfinished writes from before a crash were never acknowledged: remove them.
        let entries = fs::read_dir(&dirs.staging).map_err(|e| OpenError::io(&dirs.staging, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| OpenError::io(&dirs.staging, e))?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                tracing::info!(path = %path.display(), "removing an unfinished upload left by a crash");
                fs::remove_file(&path).map_err(|e| OpenError::io(&path, e))?;
            }
        }
        Ok(blobs)
    }

    /// Opens blob files other processes write too (the nodes of a scale-out deployment):
    /// unfinished writes in staging may be theirs, so none is removed here (see
    /// `BlobStore::abandoned`).
    pub fn open_shared(dir: &Path) -> std::result::Result<Self, OpenError> {
        let dirs = Dirs {
            staging: dir.join("staging"),
            blobs: dir.join("blobs"),
        };
        for d in [&dirs.staging, &dirs.blobs] {
            fs::create_dir_all(d).map_err(|e| OpenError::io(d, e))?;
        }
        Ok(Self {
            inner: Arc::new(dirs),
        })
    }
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Backend(format!("blob i/o task failed: {e}")))?
        .map_err(Error::Io)
}

struct FileWriter {
    id: BlobId,
    dirs: Arc<Dirs>,
    file: Option<File>,
    buf: BytesMut,
    written: u64,
    finished: bool,
}

impl FileWriter {
    async fn flush_buffer(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = self.buf.split().freeze();
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::Backend("blob writer used after a failure".into()))?;
        let (file, r) = tokio::task::spawn_blocking(move || {
            let mut file = file;
            let r = file.write_all(&data);
            (file, r)
        })
        .await
        .map_err(|e| Error::Backend(format!("blob i/o task failed: {e}")))?;
        self.file = Some(file);
        r.map_err(Error::Io)
    }
}

#[async_trait]
impl BlobWriter for FileWriter {
    fn id(&self) -> &BlobId {
        &self.id
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.written += data.len() as u64;
        self.buf.extend_from_slice(&data);
        if self.buf.len() >= WRITE_BUFFER {
            self.flush_buffer().await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64> {
        self.flush_buffer().await?;
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::Backend("blob writer used after a failure".into()))?;
        let tmp = self.dirs.tmp_path(&self.id);
        let staged = self.dirs.staged_path(&self.id);
        let staging = self.dirs.staging.clone();
        let written = self.written;
        blocking(move || {
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp, &staged)?;
            fsync_dir(&staging)
        })
        .await?;
        self.finished = true;
        Ok(written)
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Abandoned mid-body (client hung up, checksum mismatch, ...): the blob was
            // never acknowledged, so it goes.
            let _ = fs::remove_file(self.dirs.tmp_path(&self.id));
        }
    }
}

#[async_trait]
impl BlobStore for FileBlobs {
    async fn create(&self) -> Result<Box<dyn BlobWriter>> {
        let id = BlobId::generate();
        let path = self.inner.tmp_path(&id);
        let file =
            blocking(move || File::options().write(true).create_new(true).open(&path)).await?;
        Ok(Box::new(FileWriter {
            id,
            dirs: self.inner.clone(),
            file: Some(file),
            buf: BytesMut::with_capacity(WRITE_BUFFER),
            written: 0,
            finished: false,
        }))
    }

    async fn read(&self, id: &BlobId, offset: u64, len: u64) -> Result<BlobReader> {
        self.read_chunked(id, offset, len, READ_CHUNK).await
    }

    async fn read_chunked(
        &self,
        id: &BlobId,
        offset: u64,
        len: u64,
        chunk: usize,
    ) -> Result<BlobReader> {
        let chunk = chunk.clamp(4096, 8 * READ_CHUNK);
        let dirs = self.inner.clone();
        let id2 = id.clone();
        let file = match blocking(move || {
            let mut f = dirs.open_finished(&id2)?;
            f.seek(io::SeekFrom::Start(offset))?;
            Ok(f)
        })
        .await
        {
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NoSuchBlob(id.as_str().into()));
            }
            other => other?,
        };
        let id = id.clone();
        let stream = futures::stream::try_unfold((Some(file), len), move |(file, remaining)| {
            let id = id.clone();
            async move {
                let Some(file) = file else { return Ok(None) };
                if remaining == 0 {
                    return Ok(None);
                }
                let want = remaining.min(chunk as u64);
                // read_to_end fills spare capacity directly: no zeroing of the buffer.
                let (file, buf) = tokio::task::spawn_blocking(move || {
                    let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(chunk));
                    let r = (&file).take(want).read_to_end(&mut buf);
                    (file, r.map(|_| buf))
                })
                .await
                .map_err(|e| Error::Backend(format!("blob i/o task failed: {e}")))?;
                let buf = buf.map_err(Error::Io)?;
                if buf.is_empty() {
                    return Err(Error::Corrupt(format!(
                        "blob {} ends {remaining} bytes early",
                        id.as_str()
                    )));
                }
                let n = buf.len() as u64;
                Ok(Some((Bytes::from(buf), (Some(file), remaining - n))))
            }
        });
        Ok(Box::pin(stream))
    }

    async fn publish(&self, id: &BlobId) -> Result<()> {
        let dirs = self.inner.clone();
        let id = id.clone();
        blocking(move || {
            let staged = dirs.staged_path(&id);
            let dir = dirs.fanout(&id);
            fs::create_dir_all(&dir)?;
            match fs::rename(&staged, dir.join(id.as_str())) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        })
        .await
    }

    async fn delete(&self, id: &BlobId) -> Result<()> {
        let dirs = self.inner.clone();
        let id = id.clone();
        blocking(move || {
            // Staged first: a publish (a rename from staging) racing this delete then
            // either moved the blob already, and the second removal finds it, or finds
            // nothing to move.
            for p in [dirs.staged_path(&id), dirs.published_path(&id)] {
                match fs::remove_file(&p) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    other => other?,
                }
            }
            Ok(())
        })
        .await
    }

    async fn staged(&self) -> Result<Vec<BlobId>> {
        let dirs = self.inner.clone();
        blocking(move || {
            let mut out = Vec::new();
            for entry in fs::read_dir(&dirs.staging)? {
                let name = entry?.file_name();
                if let Some(id) = name.to_str().and_then(BlobId::parse) {
                    out.push(id);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn abandoned(&self, idle: std::time::Duration) -> Result<Vec<BlobId>> {
        let dirs = self.inner.clone();
        blocking(move || {
            let mut out = Vec::new();
            for entry in fs::read_dir(&dirs.staging)? {
                let entry = entry?;
                let path = entry.path();
                // Gone meanwhile (published, deleted): not abandoned.
                let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
                    continue;
                };
                if modified.elapsed().unwrap_or_default() < idle {
                    continue;
                }
                if path.extension().is_some_and(|e| e == "tmp") {
                    tracing::info!(path = %path.display(), "removing an abandoned unfinished upload");
                    match fs::remove_file(&path) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                        _ => {}
                    }
                } else if let Some(id) = entry.file_name().to_str().and_then(BlobId::parse) {
                    out.push(id);
                }
            }
            Ok(out)
        })
        .await
    }
}
