//! The SQLite schema. Changing a table here changes the on-disk format: add a migration
//! step and bump [`SCHEMA_VERSION`]; databases written by earlier releases must still open.
//!
//! Keys are stored as BLOBs so that comparisons are `memcmp` (S3's bytewise order) and a
//! prefix scan can be bounded above by a byte string that need not be valid UTF-8.

use rusqlite::Connection;

use crate::OpenError;

pub const SCHEMA_VERSION: i64 = 6;

const V1: &str = "
CREATE TABLE buckets (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    region     TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- extents: JSON list of {\"b\": blob id, \"n\": len} or {\"i\": inline_data rowid, \"n\": len}
CREATE TABLE objects (
    bucket   TEXT NOT NULL,
    key      BLOB NOT NULL,
    size     INTEGER NOT NULL,
    etag     TEXT NOT NULL,
    mtime_ms INTEGER NOT NULL,
    meta     TEXT NOT NULL,
    extents  TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;

CREATE TABLE inline_data (
    id   INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);

CREATE TABLE uploads (
    upload_id    TEXT PRIMARY KEY,
    bucket       TEXT NOT NULL,
    key          BLOB NOT NULL,
    initiated_ms INTEGER NOT NULL,
    initiator    TEXT NOT NULL,
    meta         TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX uploads_by_key ON uploads (bucket, key, upload_id);

CREATE TABLE parts (
    upload_id   TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    etag        TEXT NOT NULL,
    mtime_ms    INTEGER NOT NULL,
    checksum    TEXT,
    extent      TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;

-- Every blob a committed object or part references; lets start-up decide, for a blob
-- found in staging, whether to publish or delete it.
CREATE TABLE blob_refs (blob_id TEXT PRIMARY KEY) WITHOUT ROWID;

-- Blobs no record references any more, queued in the transaction that dropped them.
CREATE TABLE garbage (blob_id TEXT PRIMARY KEY) WITHOUT ROWID;
";

/// Version 2: the KMS (keys, wrapped material versions, aliases) and named settings.
const V2: &str = "
CREATE TABLE kms_keys (
    key_id     TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    doc        TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX kms_keys_by_account ON kms_keys (account_id, key_id);

-- wrapped: the material, wrapped under the root key (never stored unwrapped)
CREATE TABLE kms_materials (
    key_id  TEXT NOT NULL,
    version INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    doc     TEXT NOT NULL,
    PRIMARY KEY (key_id, version)
) WITHOUT ROWID;

CREATE TABLE kms_aliases (
    account_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;
CREATE INDEX kms_aliases_by_key ON kms_aliases (key_id);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
";

/// Version 3: named bucket settings (encryption configuration, later policies).
const V3: &str = "
CREATE TABLE bucket_settings (
    bucket TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (bucket, name)
) WITHOUT ROWID;
";

/// Version 4: IAM entities (accounts, users, groups, roles, policies, access keys with
/// secrets wrapped under the root key), one JSON document each.
const V4: &str = "
CREATE TABLE iam (
    account_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (account_id, kind, name)
) WITHOUT ROWID;
";

/// Version 5: versioning. A bucket's versioning state; the `objects` row of a key is its
/// current version (an object or a delete marker, `marker = 1`), with its version id (''
/// for the null version) and `seq`, which orders a key's versions; noncurrent versions
/// live in `versions`, newest first by key, so reading the current version stays one seek
/// however many versions a key has, and listing current objects scans `objects` alone.
const V5: &str = "
ALTER TABLE buckets ADD COLUMN versioning TEXT NOT NULL DEFAULT '';
ALTER TABLE objects ADD COLUMN version_id TEXT NOT NULL DEFAULT '';
ALTER TABLE objects ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE objects ADD COLUMN marker INTEGER NOT NULL DEFAULT 0;

CREATE TABLE versions (
    bucket     TEXT NOT NULL,
    key        BLOB NOT NULL,
    seq        INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    etag       TEXT NOT NULL,
    mtime_ms   INTEGER NOT NULL,
    meta       TEXT NOT NULL,
    extents    TEXT NOT NULL,
    version_id TEXT NOT NULL,
    marker     INTEGER NOT NULL,
    PRIMARY KEY (bucket, key, seq DESC)
) WITHOUT ROWID;
CREATE UNIQUE INDEX versions_by_id ON versions (bucket, key, version_id);
";

/// Sets the connection pragmas every connection needs.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = OFF;
         PRAGMA busy_timeout = 10000;
         PRAGMA mmap_size = 268435456;",
    )
}

/// Extra settings of the one write connection: a larger page cache (it walks the object
/// index on every write); `secure_delete`, so that deleted rows (destroyed key material,
/// even though it is wrapped) are overwritten rather than left in free pages; and no
/// automatic checkpoints: those would copy WAL pages into
/// the database inside a commit, stalling every write in the batch. The checkpointer
/// thread does that work beside the writer instead.
pub fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "PRAGMA cache_size = -8192;
         PRAGMA secure_delete = ON;
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = 67108864;",
    )
}

/// Version 6: named account settings (S3's account-level Block Public Access).
const V6: &str = "
CREATE TABLE account_settings (
    account TEXT NOT NULL,
    name    TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (account, name)
) WITHOUT ROWID;
";

/// Creates or checks the schema.
pub fn migrate(conn: &mut Connection) -> Result<(), OpenError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    // Each step upgrades one version, in one transaction.
    let steps: [(i64, &str); 6] = [(1, V1), (2, V2), (3, V3), (4, V4), (5, V5), (6, V6)];
    for (to, sql) in steps {
        if version < to {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", to)?;
            tx.commit()?;
        }
    }
    Ok(())
}
