//! The versioned schema. `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`; a
//! node applies the missing ones at start, inside one transaction holding an advisory
//! lock, so that nodes starting together migrate once. A database migrated by a newer
//! release (a version above [`SCHEMA_VERSION`]) is refused.

use crate::ConnectError;

/// The schema version this release writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The advisory lock every node takes to migrate ("Coffer" in ASCII).
const MIGRATION_LOCK: i64 = 0x436f_6666_6572;

const MIGRATIONS: [&str; 5] = [
    // 1: IAM entities, KMS keys, materials, aliases and settings.
    r#"
    CREATE TABLE iam (
        account_id TEXT COLLATE "C" NOT NULL,
        kind TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (account_id, kind, name)
    );
    CREATE TABLE kms_keys (
        key_id TEXT COLLATE "C" PRIMARY KEY,
        account_id TEXT COLLATE "C" NOT NULL,
        created_ms BIGINT NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX kms_keys_by_account ON kms_keys (account_id, key_id);
    CREATE TABLE kms_materials (
        key_id TEXT COLLATE "C" NOT NULL,
        version BIGINT NOT NULL,
        wrapped BYTEA NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (key_id, version)
    );
    CREATE TABLE kms_aliases (
        account_id TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        key_id TEXT COLLATE "C" NOT NULL,
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL,
        PRIMARY KEY (account_id, name)
    );
    CREATE TABLE settings (
        name TEXT COLLATE "C" PRIMARY KEY,
        value BYTEA NOT NULL
    );
    "#,
    // 2: buckets and their settings, account settings, objects and their versions,
    // multipart uploads, and the blob bookkeeping. Keys are BYTEA (bytewise order). The
    // `objects` row of a key is its current version; older ones are rows of `versions`,
    // newest first by `seq`. `extents` is a JSON list of blob references and inline
    // lengths; the inline bytes are the row's `inline`, concatenated.
    r#"
    CREATE TABLE buckets (
        name TEXT COLLATE "C" PRIMARY KEY,
        owner TEXT NOT NULL,
        region TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        versioning TEXT NOT NULL
    );
    CREATE TABLE bucket_settings (
        bucket TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (bucket, name)
    );
    CREATE TABLE account_settings (
        account TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (account, name)
    );
    CREATE TABLE objects (
        bucket TEXT COLLATE "C" NOT NULL,
        key BYTEA NOT NULL,
        size BIGINT NOT NULL,
        etag TEXT NOT NULL,
        mtime_ms BIGINT NOT NULL,
        meta TEXT NOT NULL,
        extents TEXT NOT NULL,
        inline BYTEA,
        version_id TEXT COLLATE "C" NOT NULL,
        seq BIGINT NOT NULL,
        marker BOOLEAN NOT NULL,
        PRIMARY KEY (bucket, key)
    );
    CREATE TABLE versions (
        bucket TEXT COLLATE "C" NOT NULL,
        key BYTEA NOT NULL,
        size BIGINT NOT NULL,
        etag TEXT NOT NULL,
        mtime_ms BIGINT NOT NULL,
        meta TEXT NOT NULL,
        extents TEXT NOT NULL,
        inline BYTEA,
        version_id TEXT COLLATE "C" NOT NULL,
        seq BIGINT NOT NULL,
        marker BOOLEAN NOT NULL
    );
    CREATE UNIQUE INDEX versions_by_seq ON versions (bucket, key, seq DESC);
    CREATE UNIQUE INDEX versions_by_id ON versions (bucket, key, version_id);
    CREATE TABLE uploads (
        upload_id TEXT COLLATE "C" PRIMARY KEY,
        bucket TEXT COLLATE "C" NOT NULL,
        key BYTEA NOT NULL,
        initiated_ms BIGINT NOT NULL,
        initiator TEXT NOT NULL,
        meta TEXT NOT NULL
    );
    CREATE INDEX uploads_by_key ON uploads (bucket, key, upload_id);
    CREATE TABLE parts (
        upload_id TEXT COLLATE "C" NOT NULL,
        part_number INT NOT NULL,
        size BIGINT NOT NULL,
        etag TEXT NOT NULL,
        mtime_ms BIGINT NOT NULL,
        checksum TEXT,
        extent TEXT NOT NULL,
        inline BYTEA,
        PRIMARY KEY (upload_id, part_number)
    );
    CREATE TABLE blob_refs (blob_id TEXT COLLATE "C" PRIMARY KEY);
    CREATE TABLE garbage (blob_id TEXT COLLATE "C" PRIMARY KEY);
    "#,
    // 3: change notices. A change to state the nodes cache (KMS keys, their materials and
    // aliases, IAM entities, buckets and their settings, account settings) notifies the
    // deployment's channel (`changes.rs`) as part of the transaction that makes it, so
    // every node hears of it once it commits, and of nothing that rolled back, whoever
    // wrote it. Payload: `kind:id` (`kind:account:name` for aliases).
    r#"
    CREATE FUNCTION coffer_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        r JSONB;
        id TEXT;
    BEGIN
        IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
        id := r ->> TG_ARGV[1];
        IF TG_NARGS > 2 THEN id := id || ':' || (r ->> TG_ARGV[2]); END IF;
        PERFORM pg_notify('coffer_' || substr(md5(TG_TABLE_SCHEMA), 1, 16), TG_ARGV[0] || ':' || id);
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER kms_keys_changed AFTER INSERT OR UPDATE OR DELETE ON kms_keys
        FOR EACH ROW EXECUTE FUNCTION coffer_notify('kms_key', 'key_id');
    CREATE TRIGGER kms_materials_changed AFTER INSERT OR UPDATE OR DELETE ON kms_materials
        FOR EACH ROW EXECUTE FUNCTION coffer_notify('kms_key', 'key_id');
    CREATE TRIGGER kms_aliases_changed AFTER INSERT OR UPDATE OR DELETE ON kms_aliases
        FOR EACH ROW EXECUTE FUNCTION coffer_notify('kms_alias', 'account_id', 'name');
    CREATE TRIGGER iam_changed AFTER INSERT OR UPDATE OR DELETE ON iam
        FOR EACH ROW EXECUTE FUNCTION coffer_notify('iam', 'account_id');
    CREATE TRIGGER buckets_changed AFTER INSERT OR UPDATE OR DELETE ON buckets
        FOR EACH ROW EXECUTE FUNCTION coffer_notify('bucket', 'name');
    CREATE TRIGGER bucket_settings_changed AFTER INSERT OR UPDATE OR DELETE ON bucket_settings
        FOR EACH ROW EXECUTE FUNCTION coffer_notify('bucket', 'bucket');
    CREATE TRIGGER account_settings_changed AFTER INSERT OR UPDATE OR DELETE ON account_settings
        FOR EACH ROW EXECUTE FUNCTION coffer_notify('account', 'account');
    "#,
    // 4: a write of a new current version in one statement (`versions.rs`, `put_fast`):
    // the caller read the key without locks and decided everything; this takes the
    // key's locks, checks that the bucket's versioning and the key's current version
    // (its row version, `xmin`) are still what the caller read, and only then applies
    // the caller's decision: the current version kept as noncurrent (`keep`), the
    // blobs it frees queued as garbage, the new blobs referenced, the new row written.
    // Returns false, changing nothing, if anything moved: the caller then takes the
    // locked path.
    r#"
    CREATE FUNCTION coffer_put(
        p_bucket TEXT, p_key BYTEA, p_lock_bucket BIGINT, p_lock_key BIGINT,
        p_versioning TEXT, p_xmin TEXT, p_keep BOOLEAN, p_freed TEXT[], p_refs TEXT[],
        p_size BIGINT, p_etag TEXT, p_mtime_ms BIGINT, p_meta TEXT, p_extents TEXT,
        p_inline BYTEA, p_version_id TEXT, p_seq BIGINT
    ) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock_shared(p_lock_bucket), pg_advisory_xact_lock(p_lock_key);
        -- Each statement below sees what the locks' previous holders committed.
        IF (SELECT versioning FROM buckets WHERE name = p_bucket) IS DISTINCT FROM p_versioning
           OR (SELECT xmin::text FROM objects WHERE bucket = p_bucket AND key = p_key)
              IS DISTINCT FROM p_xmin THEN
            RETURN FALSE;
        END IF;
        IF p_keep THEN
            INSERT INTO versions (bucket, key, size, etag, mtime_ms, meta, extents, inline,
                                  version_id, seq, marker)
            SELECT bucket, key, size, etag, mtime_ms, meta, extents, inline, version_id, seq,
                   marker
            FROM objects WHERE bucket = p_bucket AND key = p_key;
        END IF;
        IF cardinality(p_freed) > 0 THEN
            DELETE FROM blob_refs WHERE blob_id = ANY(p_freed);
            INSERT INTO garbage (blob_id) SELECT unnest(p_freed) ON CONFLICT DO NOTHING;
        END IF;
        IF cardinality(p_refs) > 0 THEN
            INSERT INTO blob_refs (blob_id) SELECT unnest(p_refs) ON CONFLICT DO NOTHING;
        END IF;
        INSERT INTO objects (bucket, key, size, etag, mtime_ms, meta, extents, inline,
                             version_id, seq, marker)
        VALUES (p_bucket, p_key, p_size, p_etag, p_mtime_ms, p_meta, p_extents, p_inline,
                p_version_id, p_seq, FALSE)
        ON CONFLICT (bucket, key) DO UPDATE SET
            size = EXCLUDED.size, etag = EXCLUDED.etag, mtime_ms = EXCLUDED.mtime_ms,
            meta = EXCLUDED.meta, extents = EXCLUDED.extents, inline = EXCLUDED.inline,
            version_id = EXCLUDED.version_id, seq = EXCLUDED.seq, marker = EXCLUDED.marker;
        RETURN TRUE;
    END
    $$;
    "#,
    // 5: a batch of such writes in one statement (`batch.rs`). `coffer_put` now takes
    // its locks only if they are free at once, and returns false (nothing changed) if
    // not, so that a write waiting for a busy key cannot hold up the writes batched with
    // it: that write takes the locked path instead. `coffer_put_many` calls it for each
    // write, in the order given (the callers sort by lock key), one array per argument,
    // each write's blob ids joined by spaces, and returns which writes were applied.
    r#"
    CREATE OR REPLACE FUNCTION coffer_put(
        p_bucket TEXT, p_key BYTEA, p_lock_bucket BIGINT, p_lock_key BIGINT,
        p_versioning TEXT, p_xmin TEXT, p_keep BOOLEAN, p_freed TEXT[], p_refs TEXT[],
        p_size BIGINT, p_etag TEXT, p_mtime_ms BIGINT, p_meta TEXT, p_extents TEXT,
        p_inline BYTEA, p_version_id TEXT, p_seq BIGINT
    ) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT pg_try_advisory_xact_lock_shared(p_lock_bucket)
           OR NOT pg_try_advisory_xact_lock(p_lock_key) THEN
            RETURN FALSE;
        END IF;
        -- Each statement below sees what the locks' previous holders committed.
        IF (SELECT versioning FROM buckets WHERE name = p_bucket) IS DISTINCT FROM p_versioning
           OR (SELECT xmin::text FROM objects WHERE bucket = p_bucket AND key = p_key)
              IS DISTINCT FROM p_xmin THEN
            RETURN FALSE;
        END IF;
        IF p_keep THEN
            INSERT INTO versions (bucket, key, size, etag, mtime_ms, meta, extents, inline,
                                  version_id, seq, marker)
            SELECT bucket, key, size, etag, mtime_ms, meta, extents, inline, version_id, seq,
                   marker
            FROM objects WHERE bucket = p_bucket AND key = p_key;
        END IF;
        IF cardinality(p_freed) > 0 THEN
            DELETE FROM blob_refs WHERE blob_id = ANY(p_freed);
            INSERT INTO garbage (blob_id) SELECT unnest(p_freed) ON CONFLICT DO NOTHING;
        END IF;
        IF cardinality(p_refs) > 0 THEN
            INSERT INTO blob_refs (blob_id) SELECT unnest(p_refs) ON CONFLICT DO NOTHING;
        END IF;
        INSERT INTO objects (bucket, key, size, etag, mtime_ms, meta, extents, inline,
                             version_id, seq, marker)
        VALUES (p_bucket, p_key, p_size, p_etag, p_mtime_ms, p_meta, p_extents, p_inline,
                p_version_id, p_seq, FALSE)
        ON CONFLICT (bucket, key) DO UPDATE SET
            size = EXCLUDED.size, etag = EXCLUDED.etag, mtime_ms = EXCLUDED.mtime_ms,
            meta = EXCLUDED.meta, extents = EXCLUDED.extents, inline = EXCLUDED.inline,
            version_id = EXCLUDED.version_id, seq = EXCLUDED.seq, marker = EXCLUDED.marker;
        RETURN TRUE;
    END
    $$;
    CREATE FUNCTION coffer_put_many(
        p_bucket TEXT[], p_key BYTEA[], p_lock_bucket BIGINT[], p_lock_key BIGINT[],
        p_versioning TEXT[], p_xmin TEXT[], p_keep BOOLEAN[], p_freed TEXT[], p_refs TEXT[],
        p_size BIGINT[], p_etag TEXT[], p_mtime_ms BIGINT[], p_meta TEXT[], p_extents TEXT[],
        p_inline BYTEA[], p_version_id TEXT[], p_seq BIGINT[]
    ) RETURNS BOOLEAN[] LANGUAGE plpgsql AS $$
    DECLARE
        applied BOOLEAN[] := '{}';
    BEGIN
        FOR i IN 1 .. coalesce(cardinality(p_bucket), 0) LOOP
            applied := applied || coffer_put(
                p_bucket[i], p_key[i], p_lock_bucket[i], p_lock_key[i], p_versioning[i],
                p_xmin[i], p_keep[i], string_to_array(p_freed[i], ' '),
                string_to_array(p_refs[i], ' '), p_size[i], p_etag[i], p_mtime_ms[i],
                p_meta[i], p_extents[i], p_inline[i], p_version_id[i], p_seq[i]);
        END LOOP;
        RETURN applied;
    END
    $$;
    "#,
];

fn failed(e: tokio_postgres::Error) -> ConnectError {
    ConnectError::Migration(e.to_string())
}

pub(crate) async fn migrate(client: &mut deadpool_postgres::Client) -> Result<(), ConnectError> {
    let tx = client.transaction().await.map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(failed)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS coffer_schema (version INT NOT NULL)")
        .await
        .map_err(failed)?;
    let found: i32 = match tx
        .query_opt("SELECT version FROM coffer_schema", &[])
        .await
        .map_err(failed)?
    {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO coffer_schema (version) VALUES (0)", &[])
                .await
                .map_err(failed)?;
            0
        }
    };
    if found > SCHEMA_VERSION {
        return Err(ConnectError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (from, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        tx.batch_execute(sql).await.map_err(failed)?;
        tracing::info!(version = from + 1, "migrated the PostgreSQL schema");
    }
    tx.execute("UPDATE coffer_schema SET version = $1", &[&SCHEMA_VERSION])
        .await
        .map_err(failed)?;
    tx.commit().await.map_err(failed)
}

/// Checks, changing nothing, that the schema is the one this release writes.
pub(crate) async fn check(client: &deadpool_postgres::Client) -> Result<(), ConnectError> {
    let found: i32 = match client
        .query_opt("SELECT version FROM coffer_schema", &[])
        .await
    {
        Ok(Some(row)) => row.get(0),
        // No table (undefined_table): nothing was ever migrated here.
        Ok(None) => 0,
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => 0,
        Err(e) => return Err(failed(e)),
    };
    if found > SCHEMA_VERSION {
        return Err(ConnectError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found < SCHEMA_VERSION {
        return Err(ConnectError::Migration(format!(
            "the database's schema is version {found}, older than this coffer's ({SCHEMA_VERSION}): start `coffer serve --meta` once to migrate it"
        )));
    }
    Ok(())
}
