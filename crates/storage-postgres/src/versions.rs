//! How versions are stored in PostgreSQL, as in the SQLite backend: the `objects` row of
//! a key is its current version (an object or a delete marker), older versions are rows
//! of `versions`, newest first by `seq`. Writing a new version ([`add_version`], by
//! `NewVersion::plan`), finding one ([`version_row`]), removing one ([`delete`]: the next
//! newest becomes current) and listing them ([`list`]: two ordered index scans merged).
//!
//! Every write here runs inside a transaction that holds the key's advisory lock
//! ([`crate::rows::lock_key`]), so the current version it reads is the one it replaces,
//! whichever node wrote it.

use std::collections::BTreeSet;
use std::ops::Bound;

use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;

use coffer_storage::{
    Authority, DeleteMarker, Deleted, Entry, Error, Fate, ListPage, Listed, ListedVersion,
    NewVersion, ObjectMeta, ObjectRecord, Precondition, Result, VersionListQuery, VersionRef,
    VersionStart, VersionSummary, Versioning, Written,
};

use crate::rows::*;
use crate::{from_ms, ms};

/// The row of a version of a key, and whether it is the key's current one: one
/// statement, so one snapshot, however the version moves between the tables.
pub(crate) async fn version_row(
    c: &impl GenericClient,
    bucket: &str,
    key: &str,
    version: VersionRef<'_>,
) -> Result<Option<(ObjectRow, bool)>> {
    let k = key.as_bytes();
    let found = match version {
        VersionRef::Latest => {
            row(
                c,
                &format!(
                    "SELECT {OBJECT_COLUMNS}, true FROM objects WHERE bucket = $1 AND key = $2"
                ),
                &[&bucket, &k],
            )
            .await?
        }
        // No id is empty: that is how the null version is stored.
        VersionRef::Id("") => return Ok(None),
        VersionRef::Null | VersionRef::Id(_) => {
            let id = match version {
                VersionRef::Id(id) => id,
                _ => "",
            };
            row(
                c,
                &format!(
                    "SELECT {OBJECT_COLUMNS}, true FROM objects
                     WHERE bucket = $1 AND key = $2 AND version_id = $3
                     UNION ALL
                     SELECT {OBJECT_COLUMNS}, false FROM versions
                     WHERE bucket = $1 AND key = $2 AND version_id = $3"
                ),
                &[&bucket, &k, &id],
            )
            .await?
        }
    };
    found
        .map(|r| Ok((object_row(&r)?, col::<bool>(&r, 10)?)))
        .transpose()
}

/// A version's row as the parameters of [`OBJECT_COLUMNS`], after the bucket (`$1`).
fn row_params<'a>(bucket: &'a &str, row: &'a ObjectRow) -> [&'a (dyn ToSql + Sync); 11] {
    [
        bucket,
        &row.key,
        &row.size,
        &row.etag,
        &row.mtime_ms,
        &row.meta,
        &row.extents,
        &row.inline,
        &row.version_id,
        &row.seq,
        &row.marker,
    ]
}

/// Inserts a version's row as the key's current version, replacing the one there.
async fn set_current(c: &impl GenericClient, bucket: &str, row: &ObjectRow) -> Result<()> {
    exec(
        c,
        &format!(
            "INSERT INTO objects (bucket, {OBJECT_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (bucket, key) DO UPDATE SET
                size = EXCLUDED.size, etag = EXCLUDED.etag, mtime_ms = EXCLUDED.mtime_ms,
                meta = EXCLUDED.meta, extents = EXCLUDED.extents, inline = EXCLUDED.inline,
                version_id = EXCLUDED.version_id, seq = EXCLUDED.seq, marker = EXCLUDED.marker"
        ),
        &row_params(&bucket, row),
    )
    .await?;
    Ok(())
}

/// Keeps a version's row as a noncurrent version.
async fn keep_noncurrent(c: &impl GenericClient, bucket: &str, row: &ObjectRow) -> Result<()> {
    exec(
        c,
        &format!(
            "INSERT INTO versions (bucket, {OBJECT_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ),
        &row_params(&bucket, row),
    )
    .await?;
    Ok(())
}

async fn delete_noncurrent(
    c: &impl GenericClient,
    bucket: &str,
    key: &[u8],
    seq: i64,
) -> Result<()> {
    exec(
        c,
        "DELETE FROM versions WHERE bucket = $1 AND key = $2 AND seq = $3",
        &[&bucket, &key, &seq],
    )
    .await?;
    Ok(())
}

/// Frees a version's data (but blobs in `keep`) and returns it as it was, if Object Lock
/// lets `by` remove it (`ObjectLocked` otherwise: the caller's transaction, which may
/// already have moved rows, is then rolled back whole).
async fn free(
    c: &impl GenericClient,
    bucket: &str,
    row: ObjectRow,
    keep: &BTreeSet<String>,
    by: &Authority,
) -> Result<Entry> {
    let stored = row.extents.clone();
    let entry = entry(bucket, row)?;
    entry.check_removal(by)?;
    drop_extents(c, &stored, keep).await?;
    Ok(entry)
}

/// The `seq` of a key's new current version: after its current one, else the time in
/// microseconds (so that versions order by age however the clocks of the nodes move).
pub(crate) fn next_seq(current: Option<i64>) -> i64 {
    let now =
        i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
    match current {
        Some(c) => now.max(c.saturating_add(1)),
        None => now,
    }
}

/// Reads the bucket's versioning and the key's current version (`$1` bucket, `$2` key).
static CURRENT_FOR_WRITE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT b.versioning, o.{} FROM buckets b
         LEFT JOIN objects o ON o.bucket = b.name AND o.key = $2
         WHERE b.name = $1",
        OBJECT_COLUMNS.replace(", ", ", o.")
    )
});

/// The bucket's versioning and the key's current version, read under the key's lock;
/// `NoSuchBucket` if the bucket is gone.
pub(crate) async fn current_for_write(
    c: &impl GenericClient,
    bucket: &str,
    key: &str,
) -> Result<(Versioning, Option<ObjectRow>)> {
    let found = row(c, &CURRENT_FOR_WRITE, &[&bucket, &key.as_bytes()]).await?;
    current_from(bucket, found)
}

/// What [`CURRENT_FOR_WRITE`] found.
pub(crate) fn current_from(
    bucket: &str,
    found: Option<tokio_postgres::Row>,
) -> Result<(Versioning, Option<ObjectRow>)> {
    let Some(r) = found else {
        return Err(Error::NoSuchBucket(bucket.to_owned()));
    };
    let v: String = col(&r, 0)?;
    let versioning =
        Versioning::parse(&v).ok_or_else(|| Error::Corrupt(format!("versioning state {v:?}")))?;
    let current = match col::<Option<Vec<u8>>>(&r, 1)? {
        None => None,
        Some(k) => Some(ObjectRow {
            key: k,
            size: col(&r, 2)?,
            etag: col(&r, 3)?,
            mtime_ms: col(&r, 4)?,
            meta: col(&r, 5)?,
            extents: col(&r, 6)?,
            inline: col(&r, 7)?,
            version_id: col(&r, 8)?,
            seq: col(&r, 9)?,
            marker: col(&r, 10)?,
        }),
    };
    Ok((versioning, current))
}

/// Writes `object` as its key's new version if `precondition` holds for the current one
/// (a delete marker counts as no object). The caller holds the key's lock.
pub(crate) async fn put_version(
    c: &impl GenericClient,
    object: &ObjectRecord,
    precondition: &Precondition,
) -> Result<Written> {
    let (versioning, current) = current_for_write(c, &object.bucket, &object.key).await?;
    precondition.check(
        current
            .as_ref()
            .filter(|r| !r.marker)
            .map(|r| r.etag.as_str()),
        &object.bucket,
        &object.key,
    )?;
    let candidate = object.version_id.clone().unwrap_or_default();
    add_version(
        c,
        versioning,
        &object.bucket,
        &object.key,
        NewRow::Object(object),
        &candidate,
        current,
        &Authority::at(object.last_modified),
    )
    .await
}

/// What a new version of a key is.
pub(crate) enum NewRow<'a> {
    Object(&'a ObjectRecord),
    Marker { mtime_ms: i64 },
}

/// Writes a new current version of `bucket`/`key` by [`NewVersion::plan`]: the current
/// version (`current`, as read under the key's lock) becomes noncurrent or is replaced,
/// and so is a noncurrent null version when the plan says so (if Object Lock lets `by`
/// remove it).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn add_version(
    c: &impl GenericClient,
    versioning: Versioning,
    bucket: &str,
    key: &str,
    new: NewRow<'_>,
    candidate: &str,
    current: Option<ObjectRow>,
    by: &Authority,
) -> Result<Written> {
    let plan = NewVersion::plan(
        versioning,
        candidate,
        current.as_ref().map(|r| version_id(&r.version_id)),
    );
    let seq = next_seq(current.as_ref().map(|r| r.seq));
    let keep = match &new {
        NewRow::Object(o) => blob_set(&o.extents),
        NewRow::Marker { .. } => BTreeSet::new(),
    };
    let mut replaced = None;
    if let Some(row) = current {
        match plan.current {
            Fate::Kept => keep_noncurrent(c, bucket, &row).await?,
            Fate::Replaced => replaced = Some(free(c, bucket, row, &keep, by).await?),
        }
    }
    if plan.replaces_noncurrent_null
        && let Some(r) = row(
            c,
            &format!(
                "DELETE FROM versions WHERE bucket = $1 AND key = $2 AND version_id = ''
                 RETURNING {OBJECT_COLUMNS}"
            ),
            &[&bucket, &key.as_bytes()],
        )
        .await?
    {
        replaced = Some(free(c, bucket, object_row(&r)?, &keep, by).await?);
    }
    let version = plan.version_id.clone().unwrap_or_default();
    let row = match new {
        NewRow::Object(o) => {
            let (extents, inline) = store_extents(c, &o.extents).await?;
            ObjectRow {
                key: key.as_bytes().to_vec(),
                size: to_i64(o.size),
                etag: o.etag.clone(),
                mtime_ms: ms(o.last_modified),
                meta: json(&o.meta)?,
                extents,
                inline,
                version_id: version,
                seq,
                marker: false,
            }
        }
        NewRow::Marker { mtime_ms } => ObjectRow {
            key: key.as_bytes().to_vec(),
            size: 0,
            etag: String::new(),
            mtime_ms,
            meta: "{}".into(),
            extents: "[]".into(),
            inline: None,
            version_id: version,
            seq,
            marker: true,
        },
    };
    set_current(c, bucket, &row).await?;
    Ok(Written {
        version_id: plan.version_id,
        versioning,
        replaced,
    })
}

/// Changes the metadata of a version of an object in place (its bytes untouched), as
/// `change` says (given the version's id as S3 reports it; it may refuse):
/// `NoSuchKey`/`NoSuchVersion` if the version is missing, `IsDeleteMarker` for a marker.
/// The caller holds the key's lock.
pub(crate) async fn update_meta(
    c: &impl GenericClient,
    bucket: &str,
    key: &str,
    version: VersionRef<'_>,
    change: impl FnOnce(&mut ObjectMeta, &str) -> Result<()>,
) -> Result<()> {
    let Some((row, current)) = version_row(c, bucket, key, version).await? else {
        return Err(version.missing(bucket, key));
    };
    let id = version_id(&row.version_id).unwrap_or("null").to_owned();
    if row.marker {
        return Err(Error::IsDeleteMarker {
            key: key.to_owned(),
            version_id: id,
        });
    }
    let mut meta: ObjectMeta = unjson(&row.meta)?;
    change(&mut meta, &id)?;
    set_meta(c, bucket, &row, current, &json(&meta)?).await
}

/// Replaces the metadata of a version's row, where it lives.
pub(crate) async fn set_meta(
    c: &impl GenericClient,
    bucket: &str,
    row: &ObjectRow,
    current: bool,
    meta: &str,
) -> Result<()> {
    if current {
        exec(
            c,
            "UPDATE objects SET meta = $3 WHERE bucket = $1 AND key = $2",
            &[&bucket, &row.key, &meta],
        )
        .await?;
    } else {
        exec(
            c,
            "UPDATE versions SET meta = $4 WHERE bucket = $1 AND key = $2 AND seq = $3",
            &[&bucket, &row.key, &row.seq, &meta],
        )
        .await?;
    }
    Ok(())
}

/// What a bucket holds (see `MetaStore::bucket_usage`): one aggregate over each table,
/// in one statement.
pub(crate) async fn usage(
    c: &impl GenericClient,
    bucket: &str,
) -> Result<coffer_storage::BucketUsage> {
    let r = row(
        c,
        "WITH o AS (SELECT COUNT(*) FILTER (WHERE NOT marker) AS n,
                           COALESCE(SUM(size) FILTER (WHERE NOT marker), 0)::BIGINT AS bytes,
                           COUNT(*) FILTER (WHERE marker) AS m
                    FROM objects WHERE bucket = $1),
              v AS (SELECT COUNT(*) FILTER (WHERE NOT marker) AS n,
                           COALESCE(SUM(size) FILTER (WHERE NOT marker), 0)::BIGINT AS bytes,
                           COUNT(*) FILTER (WHERE marker) AS m
                    FROM versions WHERE bucket = $1)
         SELECT EXISTS (SELECT 1 FROM buckets WHERE name = $1), o.n, o.bytes, o.m, v.n, v.bytes, v.m
         FROM o, v",
        &[&bucket],
    )
    .await?
    .ok_or_else(|| Error::Backend("usage query returned no row".into()))?;
    if !col::<bool>(&r, 0)? {
        return Err(Error::NoSuchBucket(bucket.to_owned()));
    }
    let n = |i: usize| -> Result<u64> { Ok(u64::try_from(col::<i64>(&r, i)?).unwrap_or(0)) };
    Ok(coffer_storage::BucketUsage {
        objects: n(1)?,
        object_bytes: n(2)?,
        noncurrent_versions: n(4)?,
        noncurrent_bytes: n(5)?,
        delete_markers: n(3)? + n(6)?,
    })
}

/// Every version and delete marker the query names, in order (see
/// `MetaStore::list_versions`). Runs in a repeatable-read transaction when it reads the
/// version marker first, so that both reads see one snapshot.
pub(crate) async fn list(
    c: &impl GenericClient,
    bucket: &str,
    q: &VersionListQuery<'_>,
) -> Result<ListPage<ListedVersion>> {
    let (key_marker, included, version_marker) = match q.start {
        VersionStart::Beginning => (None, false, None),
        VersionStart::FromKey(k) => (Some(k), true, None),
        VersionStart::AfterKey(k) => (Some(k), false, None),
        VersionStart::AfterVersion(k, v) => (Some(k), false, Some(v)),
    };
    // Current versions after the key marker; noncurrent ones after the version marker
    // within its key (its seq), then after the key marker. A key's current version has
    // its highest seq, so (key, seq DESC) is the listing's order, and both scans deliver
    // it from their indexes.
    let mut after_seq = None;
    if let (Some(k), Some(v)) = (key_marker, version_marker) {
        match version_row(c, bucket, k, v).await? {
            Some((row, _)) => after_seq = Some(row.seq),
            None => return Err(v.missing(bucket, k)),
        }
    }
    let start = match key_marker {
        Some(k) if included => Bound::Included(k),
        Some(k) => Bound::Excluded(k),
        None => Bound::Unbounded,
    };
    let (cond_current, mut args) = key_range(q.prefix, start, 2);
    let first = args.len() + 2;
    let (cond_old, old_args, extra) = match (key_marker, after_seq) {
        (Some(k), Some(seq)) => {
            let (cnd, mut a) = key_range(q.prefix, Bound::Included(k), first);
            let n = first + a.len();
            a.push(k.as_bytes().to_vec());
            (cnd, a, Some((n, seq)))
        }
        _ => {
            let (cnd, a) = key_range(q.prefix, start, first);
            (cnd, a, None)
        }
    };
    let extra_cond = match extra {
        Some((n, _)) => format!(" AND (key > ${n} OR seq < ${})", n + 1),
        None => String::new(),
    };
    args.extend(old_args);
    let limit_at = args.len() + 2 + usize::from(extra.is_some());
    let sql = format!(
        "SELECT {OBJECT_COLUMNS}, true AS latest FROM objects WHERE bucket = $1{cond_current}
         UNION ALL
         SELECT {OBJECT_COLUMNS}, false AS latest FROM versions WHERE bucket = $1{cond_old}{extra_cond}
         ORDER BY key, seq DESC LIMIT ${limit_at}"
    );
    let limit = to_i64(q.limit as u64).saturating_add(1);
    let seq = extra.map(|(_, seq)| seq);
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&bucket];
    for a in &args {
        params.push(a);
    }
    if let Some(seq) = &seq {
        params.push(seq);
    }
    params.push(&limit);
    let found = rows(c, &sql, &params).await?;
    let mut items = Vec::with_capacity(found.len());
    for r in &found {
        let row = object_row(r)?;
        let is_latest: bool = col(r, 10)?;
        let version = if row.marker {
            VersionSummary::Marker(marker(bucket, row)?)
        } else {
            VersionSummary::Object(summary(row)?)
        };
        items.push(ListedVersion { is_latest, version });
    }
    Ok(ListPage::from_overfetch(items, q.limit))
}

/// Deletes a key without naming a version, under the bucket's versioning (see
/// `MetaStore::delete_object`). The caller holds the key's lock.
pub(crate) async fn delete_current(
    c: &impl GenericClient,
    bucket: &str,
    key: &str,
    marker_id: &str,
    by: &Authority,
    precondition: &Precondition,
) -> Result<Deleted> {
    let (versioning, current) = current_for_write(c, bucket, key).await?;
    precondition.check(
        current
            .as_ref()
            .filter(|r| !r.marker)
            .map(|r| r.etag.as_str()),
        bucket,
        key,
    )?;
    if versioning == Versioning::Unversioned {
        let Some(row) = current else {
            return Ok(Deleted {
                marker: None,
                removed: None,
            });
        };
        exec(
            c,
            "DELETE FROM objects WHERE bucket = $1 AND key = $2",
            &[&bucket, &key.as_bytes()],
        )
        .await?;
        return Ok(Deleted {
            marker: None,
            removed: Some(free(c, bucket, row, &BTreeSet::new(), by).await?),
        });
    }
    let mtime_ms = ms(by.now);
    let written = add_version(
        c,
        versioning,
        bucket,
        key,
        NewRow::Marker { mtime_ms },
        marker_id,
        current,
        by,
    )
    .await?;
    Ok(Deleted {
        marker: Some(DeleteMarker {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: written.version_id,
            last_modified: from_ms(mtime_ms)?,
        }),
        removed: written.replaced,
    })
}

/// Lifecycle's write (see `MetaStore::expire`): acts only if the version is still as
/// listed. The caller holds the key's lock.
pub(crate) async fn expire(
    c: &impl GenericClient,
    bucket: &str,
    key: &str,
    listed: &Listed<'_>,
    by: &Authority,
) -> Result<Option<Deleted>> {
    let Some((row, current)) = version_row(c, bucket, key, listed.version).await? else {
        return Ok(None);
    };
    if row.mtime_ms != ms(listed.last_modified)
        || current != listed.current
        || row.etag != listed.etag
    {
        return Ok(None);
    }
    if !row.marker {
        let meta: ObjectMeta = unjson(&row.meta)?;
        if &meta.tags != listed.tags {
            return Ok(None);
        }
    } else if !listed.tags.is_empty() {
        return Ok(None);
    }
    if current && !row.marker {
        return delete_current(c, bucket, key, listed.marker_id, by, &Precondition::None)
            .await
            .map(Some);
    }
    let removed = delete(c, bucket, key, listed.version, by).await?;
    Ok(Some(Deleted {
        marker: None,
        removed,
    }))
}

/// Lifecycle's transition (see `MetaStore::transition`): acts only if the object version
/// is still as listed. The caller holds the key's lock.
pub(crate) async fn transition(
    c: &impl GenericClient,
    bucket: &str,
    key: &str,
    listed: &Listed<'_>,
    from: &[coffer_storage::Extent],
    storage_class: &str,
    extents: &[coffer_storage::Extent],
) -> Result<Option<Entry>> {
    let Some((row, current)) = version_row(c, bucket, key, listed.version).await? else {
        return Ok(None);
    };
    if row.marker
        || row.mtime_ms != ms(listed.last_modified)
        || current != listed.current
        || row.etag != listed.etag
    {
        return Ok(None);
    }
    let mut meta: ObjectMeta = unjson(&row.meta)?;
    meta.storage_class = Some(storage_class.to_owned());
    let (old_stored, row_key, seq) = (row.extents.clone(), row.key.clone(), row.seq);
    let old = entry(bucket, row)?;
    // The bytes copied must be the bytes the version still has.
    if !matches!(&old, Entry::Object(o) if o.extents == from) {
        return Ok(None);
    }
    let (stored, inline) = store_extents(c, extents).await?;
    drop_extents(c, &old_stored, &blob_set(extents)).await?;
    let table = if current { "objects" } else { "versions" };
    exec(
        c,
        &format!(
            "UPDATE {table} SET meta = $4, extents = $5, inline = $6
             WHERE bucket = $1 AND key = $2 AND seq = $3"
        ),
        &[&bucket, &row_key, &seq, &json(&meta)?, &stored, &inline],
    )
    .await?;
    Ok(Some(old))
}

/// Removes one version for good; if it was the current one, the newest remaining version
/// becomes current (see `MetaStore::delete_version`). The caller holds the key's lock.
pub(crate) async fn delete(
    c: &impl GenericClient,
    bucket: &str,
    key: &str,
    version: VersionRef<'_>,
    by: &Authority,
) -> Result<Option<Entry>> {
    if !bucket_exists(c, bucket).await? {
        return Err(Error::NoSuchBucket(bucket.to_owned()));
    }
    let Some((row, current)) = version_row(c, bucket, key, version).await? else {
        return Ok(None);
    };
    let k = key.as_bytes();
    if current {
        exec(
            c,
            "DELETE FROM objects WHERE bucket = $1 AND key = $2",
            &[&bucket, &k],
        )
        .await?;
        // The newest remaining version becomes current.
        let next = super::rows::row(
            c,
            &format!(
                "DELETE FROM versions WHERE bucket = $1 AND key = $2 AND seq =
                    (SELECT seq FROM versions WHERE bucket = $1 AND key = $2
                     ORDER BY seq DESC LIMIT 1)
                 RETURNING {OBJECT_COLUMNS}"
            ),
            &[&bucket, &k],
        )
        .await?;
        if let Some(next) = next {
            set_current(c, bucket, &object_row(&next)?).await?;
        }
    } else {
        delete_noncurrent(c, bucket, k, row.seq).await?;
    }
    free(c, bucket, row, &BTreeSet::new(), by).await.map(Some)
}
