//! Coffer's embedded storage: metadata in SQLite ([`SqliteMeta`]) and object bytes in files
//! ([`FileBlobs`]), both under one data directory.
//!
//! Durability discipline (see `docs/formats.md` for the layout):
//! - metadata writes go through one writer thread that commits whatever writes are waiting
//!   as one transaction (group commit: WAL + `synchronous=FULL`, one fsync per batch), each
//!   write inside its own savepoint so one failure does not undo its neighbours;
//! - a blob is written to `staging/ID.tmp`, fsynced, renamed to `staging/ID`, and the
//!   staging directory fsynced before the caller commits the record that references it;
//!   afterwards it is renamed into `blobs/` without an fsync, because start-up publishes
//!   any referenced blob it finds still staged and deletes the rest.
//!
//! A data directory is opened by one process at a time (an exclusive lock on `LOCK`).

mod blobs;
mod error;
mod export;
mod iam;
mod kms;
mod meta;
mod rows;
mod schema;
mod uploads;
mod versions;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};

pub use blobs::FileBlobs;
pub use error::OpenError;
pub use meta::SqliteMeta;

/// The exclusive lock on a data directory (its `LOCK` file), held while it lives: one
/// process per data directory, whichever metadata store it uses.
pub struct DirLock(File);

impl DirLock {
    /// Creates `dir` if needed and locks it; `Locked` if another process holds it.
    pub fn take(dir: &Path) -> Result<Self, OpenError> {
        std::fs::create_dir_all(dir).map_err(|e| OpenError::io(dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| OpenError::io(&lock_path, e))?;
        if lock.try_lock().is_err() {
            return Err(OpenError::Locked(dir.to_path_buf()));
        }
        Ok(Self(lock))
    }
}

/// The embedded store of one data directory.
pub struct LocalStore {
    pub meta: SqliteMeta,
    pub blobs: FileBlobs,
    // Held for the life of the store: the exclusive lock on the data directory.
    _lock: File,
}

impl LocalStore {
    /// Opens (creating if needed) the store under `dir`. Removes unfinished blob writes left
    /// by a crash; the caller then reconciles finished staged blobs against the metadata.
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        let DirLock(lock) = DirLock::take(dir)?;
        let meta = SqliteMeta::open(&dir.join("meta.sqlite"))?;
        let blobs = FileBlobs::open(dir)?;
        Ok(Self {
            meta,
            blobs,
            _lock: lock,
        })
    }

    /// Paths a backup must include.
    pub fn files(dir: &Path) -> Vec<PathBuf> {
        vec![dir.join("meta.sqlite"), dir.join("blobs")]
    }
}
