//! Why the embedded store could not be opened, and how engine errors map to storage errors.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data directory {0} is in use by another Coffer process")]
    Locked(PathBuf),
    #[error("metadata database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "metadata database schema version {found} is newer than this release understands ({supported})"
    )]
    SchemaTooNew { found: i64, supported: i64 },
}

impl OpenError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub(crate) fn backend(e: rusqlite::Error) -> coffer_storage::Error {
    coffer_storage::Error::Backend(format!("sqlite: {e}"))
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> coffer_storage::Error {
    coffer_storage::Error::Corrupt(what.to_string())
}
