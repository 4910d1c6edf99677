//! How versions are stored in SQLite: the `objects` row of a key is its current version
//! (an object or a delete marker), older versions are rows of `versions`, newest first by
//! `seq`. Writing a new version ([`add_version`], by `NewVersion::plan`), finding one
//! ([`version_row`]), removing one ([`delete`]: the next newest becomes current) and
//! listing them ([`list`]: two ordered index scans merged) all live here.

use std::collections::BTreeSet;
use std::ops::Bound;

use rusqlite::{Connection, params};
use time::OffsetDateTime;

use coffer_storage::{
    Authority, DeleteMarker, Deleted, Entry, Error, Fate, ListPage, ListedVersion, NewVersion,
    ObjectMeta, ObjectRecord, Precondition, Result, VersionListQuery, VersionRef, VersionStart,
    VersionSummary, Versioning, Written,
};

use crate::error::{backend, corrupt};
use crate::rows::*;

/// A bucket's versioning, or `None` if there is no such bucket.
pub(crate) fn bucket_versioning(conn: &Connection, bucket: &str) -> Result<Option<Versioning>> {
    query_one(
        conn,
        "SELECT versioning FROM buckets WHERE name = ?1",
        [bucket],
        |r| r.get::<_, String>(0),
    )?
    .map(|v| Versioning::parse(&v).ok_or_else(|| corrupt(format!("versioning state {v:?}"))))
    .transpose()
}

/// The row of a version of a key, and whether it is the key's current one.
pub(crate) fn version_row(
    conn: &Connection,
    bucket: &str,
    key: &str,
    version: VersionRef<'_>,
) -> Result<Option<(ObjectRow, bool)>> {
    let current = get_object_row(conn, bucket, key)?;
    let id = match version {
        VersionRef::Latest => return Ok(current.map(|r| (r, true))),
        VersionRef::Null => "",
        // No id is empty: that is how the null version is stored.
        VersionRef::Id("") => return Ok(None),
        VersionRef::Id(id) => id,
    };
    if let Some(r) = current
        && r.version_id == id
    {
        return Ok(Some((r, true)));
    }
    Ok(query_one(
        conn,
        &format!(
            "SELECT {OBJECT_COLUMNS} FROM versions WHERE bucket = ?1 AND key = ?2 AND version_id = ?3"
        ),
        params![bucket, key.as_bytes(), id],
        object_row,
    )?
    .map(|r| (r, false)))
}

/// Inserts a version's row into `objects` (as the current version) or `versions`.
pub(crate) fn insert_row(
    conn: &Connection,
    table: &str,
    bucket: &str,
    row: &ObjectRow,
) -> Result<()> {
    exec(
        conn,
        &format!(
            "INSERT OR REPLACE INTO {table} (bucket, {OBJECT_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            bucket,
            row.key,
            row.size,
            row.etag,
            row.mtime_ms,
            row.meta,
            row.extents,
            row.version_id,
            row.seq,
            row.marker
        ],
    )?;
    Ok(())
}

/// Frees a version's data (but blobs in `keep`) and returns it as it was, if Object Lock
/// lets `by` remove it (`ObjectLocked` otherwise: the caller's transaction, which may
/// already have moved rows, is then rolled back whole).
pub(crate) fn free(
    conn: &Connection,
    bucket: &str,
    row: ObjectRow,
    keep: &BTreeSet<String>,
    by: &Authority,
) -> Result<Entry> {
    let stored = row.extents.clone();
    let entry = entry(conn, bucket, row)?;
    entry.check_removal(by)?;
    drop_extents(conn, &stored, keep)?;
    Ok(entry)
}

/// The `seq` of a key's new current version: after its current one, else the time in
/// microseconds (so that versions order by age however the clock moves).
fn next_seq(current: Option<i64>) -> i64 {
    let now =
        i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
    match current {
        Some(c) => now.max(c.saturating_add(1)),
        None => now,
    }
}

/// Writes `object` as its key's new version if `precondition` holds for the current one
/// (a delete marker counts as no object): [`add_version`] under `versioning`.
pub(crate) fn put_version(
    conn: &Connection,
    versioning: Versioning,
    object: &ObjectRecord,
    precondition: &coffer_storage::Precondition,
) -> Result<Written> {
    let current = get_object_row(conn, &object.bucket, &object.key)?;
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
        conn,
        versioning,
        &object.bucket,
        &object.key,
        NewRow::Object(object),
        &candidate,
        current,
        &Authority::at(object.last_modified),
    )
}

/// What a new version of a key is.
pub(crate) enum NewRow<'a> {
    Object(&'a ObjectRecord),
    Marker { mtime_ms: i64 },
}

/// Writes a new current version of `bucket`/`key` by [`NewVersion::plan`]: the current
/// version (`current`, as read in this transaction) becomes noncurrent or is replaced,
/// and so is a noncurrent null version when the plan says so (if Object Lock lets `by`
/// remove it).
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_version(
    conn: &Connection,
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
            Fate::Kept => insert_row(conn, "versions", bucket, &row)?,
            Fate::Replaced => replaced = Some(free(conn, bucket, row, &keep, by)?),
        }
    }
    if plan.replaces_noncurrent_null
        && let Some(row) = query_one(
            conn,
            &format!(
                "SELECT {OBJECT_COLUMNS} FROM versions WHERE bucket = ?1 AND key = ?2 AND version_id = ''"
            ),
            params![bucket, key.as_bytes()],
            object_row,
        )?
    {
        exec(
            conn,
            "DELETE FROM versions WHERE bucket = ?1 AND key = ?2 AND seq = ?3",
            params![bucket, key.as_bytes(), row.seq],
        )?;
        replaced = Some(free(conn, bucket, row, &keep, by)?);
    }
    let row = match new {
        NewRow::Object(o) => ObjectRow {
            key: key.as_bytes().to_vec(),
            size: to_i64(o.size),
            etag: o.etag.clone(),
            mtime_ms: ms(o.last_modified),
            meta: json(&o.meta)?,
            extents: store_extents(conn, &o.extents)?,
            version_id: plan.version_id.clone().unwrap_or_default(),
            seq,
            marker: false,
        },
        NewRow::Marker { mtime_ms } => ObjectRow {
            key: key.as_bytes().to_vec(),
            size: 0,
            etag: String::new(),
            mtime_ms,
            meta: "{}".into(),
            extents: "[]".into(),
            version_id: plan.version_id.clone().unwrap_or_default(),
            seq,
            marker: true,
        },
    };
    insert_row(conn, "objects", bucket, &row)?;
    Ok(Written {
        version_id: plan.version_id,
        versioning,
        replaced,
    })
}

/// A [`VersionRef`] that can move into a blocking task.
pub(crate) enum OwnedVersion {
    Latest,
    Null,
    Id(String),
}

impl OwnedVersion {
    pub(crate) fn as_ref(&self) -> VersionRef<'_> {
        match self {
            OwnedVersion::Latest => VersionRef::Latest,
            OwnedVersion::Null => VersionRef::Null,
            OwnedVersion::Id(id) => VersionRef::Id(id),
        }
    }
}

pub(crate) fn owned(v: VersionRef<'_>) -> OwnedVersion {
    match v {
        VersionRef::Latest => OwnedVersion::Latest,
        VersionRef::Null => OwnedVersion::Null,
        VersionRef::Id(id) => OwnedVersion::Id(id.to_owned()),
    }
}

/// Changes the metadata of a version of an object in place (its bytes untouched), as
/// `change` says (given the version's id as S3 reports it; it may refuse):
/// `NoSuchKey`/`NoSuchVersion` if the version is missing, `IsDeleteMarker` for a marker.
pub(crate) fn update_meta(
    conn: &Connection,
    bucket: &str,
    key: &str,
    version: VersionRef<'_>,
    change: impl FnOnce(&mut ObjectMeta, &str) -> Result<()>,
) -> Result<()> {
    let Some((row, current)) = version_row(conn, bucket, key, version)? else {
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
    set_meta(conn, bucket, &row, current, &json(&meta)?)
}

/// What a bucket holds (see `MetaStore::bucket_usage`): one aggregate over each table.
pub(crate) fn usage(conn: &Connection, bucket: String) -> Result<coffer_storage::BucketUsage> {
    if !bucket_exists(conn, &bucket)? {
        return Err(Error::NoSuchBucket(bucket));
    }
    let count = |table: &str| {
        conn.query_row(
            &format!(
                "SELECT COALESCE(SUM(1 - marker), 0),
                        COALESCE(SUM(CASE WHEN marker = 0 THEN size ELSE 0 END), 0),
                        COALESCE(SUM(marker), 0)
                 FROM {table} WHERE bucket = ?1"
            ),
            [&bucket],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )
        .map_err(backend)
    };
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let (objects, object_bytes, markers) = count("objects")?;
    let (noncurrent, noncurrent_bytes, old_markers) = count("versions")?;
    Ok(coffer_storage::BucketUsage {
        objects: n(objects),
        object_bytes: n(object_bytes),
        noncurrent_versions: n(noncurrent),
        noncurrent_bytes: n(noncurrent_bytes),
        delete_markers: n(markers) + n(old_markers),
    })
}

/// Replaces the metadata of a version's row, where it lives.
pub(crate) fn set_meta(
    conn: &Connection,
    bucket: &str,
    row: &ObjectRow,
    current: bool,
    meta: &str,
) -> Result<()> {
    if current {
        exec(
            conn,
            "UPDATE objects SET meta = ?3 WHERE bucket = ?1 AND key = ?2",
            params![bucket, row.key, meta],
        )?;
    } else {
        exec(
            conn,
            "UPDATE versions SET meta = ?4 WHERE bucket = ?1 AND key = ?2 AND seq = ?3",
            params![bucket, row.key, row.seq, meta],
        )?;
    }
    Ok(())
}

/// A listing of versions, owned so that it can move into a blocking task.
pub(crate) struct ListQuery {
    bucket: String,
    prefix: String,
    key_marker: Option<String>,
    /// Whether the key marker itself is listed (`FromKey`).
    included: bool,
    version_marker: Option<OwnedVersion>,
    limit: usize,
}

impl ListQuery {
    pub(crate) fn new(bucket: &str, query: &VersionListQuery<'_>) -> Self {
        let bucket = bucket.to_owned();
        let prefix = query.prefix.to_owned();
        // (the key, whether it is included, the version marker)
        let (key_marker, included, version_marker) = match query.start {
            VersionStart::Beginning => (None, false, None),
            VersionStart::FromKey(k) => (Some(k.to_owned()), true, None),
            VersionStart::AfterKey(k) => (Some(k.to_owned()), false, None),
            VersionStart::AfterVersion(k, v) => (Some(k.to_owned()), false, Some(owned(v))),
        };
        let limit = query.limit;
        ListQuery {
            bucket,
            prefix,
            key_marker,
            included,
            version_marker,
            limit,
        }
    }
}

/// Every version and delete marker the query names, in order (see `MetaStore::list_versions`).
pub(crate) fn list(conn: &Connection, q: ListQuery) -> Result<ListPage<ListedVersion>> {
    let ListQuery {
        bucket,
        prefix,
        key_marker,
        included,
        version_marker,
        limit,
    } = q;

    // Current versions after the key marker; noncurrent ones after the version
    // marker within its key (its seq), then after the key marker. A key's current
    // version has its highest seq, so (key, seq DESC) is the listing's order, and
    // both scans deliver it from their primary keys: SQLite merges them unsorted.
    let mut after_seq = None;
    if let (Some(k), Some(v)) = (&key_marker, &version_marker) {
        match version_row(conn, &bucket, k, v.as_ref())? {
            Some((row, _)) => after_seq = Some(row.seq),
            None => return Err(v.as_ref().missing(&bucket, k)),
        }
    }
    let start = match &key_marker {
        Some(k) if included => Bound::Included(k.as_str()),
        Some(k) => Bound::Excluded(k.as_str()),
        None => Bound::Unbounded,
    };
    let (cond_current, mut args) = key_range_at(&prefix, start, 2);
    let first = args.len() + 2;
    let (cond_old, old_args, extra) = match (&key_marker, after_seq) {
        (Some(k), Some(seq)) => {
            let (c, mut a) = key_range_at(&prefix, Bound::Included(k.as_str()), first);
            let n = first + a.len();
            a.push(k.as_bytes().to_vec());
            (c, a, Some((n, seq)))
        }
        _ => {
            let (c, a) = key_range_at(&prefix, start, first);
            (c, a, None)
        }
    };
    let extra_cond = match extra {
        Some((n, _)) => format!(" AND (key > ?{n} OR seq < ?{})", n + 1),
        None => String::new(),
    };
    args.extend(old_args);
    let sql = format!(
                "SELECT {OBJECT_COLUMNS}, 0 AS nc FROM objects WHERE bucket = ?1{cond_current}
                 UNION ALL
                 SELECT {OBJECT_COLUMNS}, 1 AS nc FROM versions WHERE bucket = ?1{cond_old}{extra_cond}
                 ORDER BY key, seq DESC LIMIT {}",
                limit.saturating_add(1)
            );
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&bucket];
    for a in &args {
        params.push(a);
    }
    let seq_param = extra.map(|(_, seq)| seq);
    if let Some(seq) = &seq_param {
        params.push(seq);
    }
    let rows = stmt
        .query_map(params.as_slice(), |r| {
            Ok((object_row(r)?, r.get::<_, i64>(9)? == 0))
        })
        .map_err(backend)?;
    let mut items = Vec::new();
    for row in rows {
        let (row, is_latest) = row.map_err(backend)?;
        let version = if row.marker {
            VersionSummary::Marker(marker(&bucket, row)?)
        } else {
            VersionSummary::Object(summary(row)?)
        };
        items.push(ListedVersion { is_latest, version });
    }
    Ok(ListPage::from_overfetch(items, limit))
}

/// Deletes a key without naming a version, under the bucket's versioning (see
/// `MetaStore::delete_object`).
pub(crate) fn delete_current(
    conn: &Connection,
    bucket: String,
    key: String,
    marker_id: &str,
    by: &Authority,
    precondition: &Precondition,
) -> Result<Deleted> {
    let Some(versioning) = bucket_versioning(conn, &bucket)? else {
        return Err(Error::NoSuchBucket(bucket));
    };
    let current = get_object_row(conn, &bucket, &key)?;
    precondition.check(
        current
            .as_ref()
            .filter(|r| !r.marker)
            .map(|r| r.etag.as_str()),
        &bucket,
        &key,
    )?;
    if versioning == Versioning::Unversioned {
        let Some(row) = current else {
            return Ok(Deleted {
                marker: None,
                removed: None,
            });
        };
        exec(
            conn,
            "DELETE FROM objects WHERE bucket = ?1 AND key = ?2",
            params![bucket, key.as_bytes()],
        )?;
        return Ok(Deleted {
            marker: None,
            removed: Some(free(conn, &bucket, row, &BTreeSet::new(), by)?),
        });
    }
    let mtime_ms = ms(by.now);
    let written = add_version(
        conn,
        versioning,
        &bucket,
        &key,
        NewRow::Marker { mtime_ms },
        marker_id,
        current,
        by,
    )?;
    Ok(Deleted {
        marker: Some(DeleteMarker {
            bucket,
            key,
            version_id: written.version_id,
            last_modified: from_ms(mtime_ms)?,
        }),
        removed: written.replaced,
    })
}

/// Lifecycle's write (see `MetaStore::expire`): acts only if the version is still as
/// listed.
pub(crate) fn expire(
    conn: &Connection,
    bucket: String,
    key: String,
    listed: &OwnedListed,
    by: &Authority,
) -> Result<Option<Deleted>> {
    let Some((row, current)) = version_row(conn, &bucket, &key, listed.version.as_ref())? else {
        return Ok(None);
    };
    if row.mtime_ms != ms(listed.last_modified)
        || current != listed.current
        || row.etag != listed.etag
    {
        return Ok(None);
    }
    if !row.marker {
        let meta: coffer_storage::ObjectMeta = unjson(&row.meta)?;
        if meta.tags != listed.tags {
            return Ok(None);
        }
    } else if !listed.tags.is_empty() {
        return Ok(None);
    }
    if current && !row.marker {
        return delete_current(
            conn,
            bucket,
            key,
            &listed.marker_id,
            by,
            &Precondition::None,
        )
        .map(Some);
    }
    let removed = delete(conn, bucket, key, owned(listed.version.as_ref()), by)?;
    Ok(Some(Deleted {
        marker: None,
        removed,
    }))
}

/// Lifecycle's transition (see `MetaStore::transition`): acts only if the object version
/// is still as listed.
pub(crate) fn transition(
    conn: &Connection,
    bucket: &str,
    key: &str,
    listed: &OwnedListed,
    from: &[coffer_storage::Extent],
    storage_class: &str,
    extents: &[coffer_storage::Extent],
) -> Result<Option<Entry>> {
    let Some((row, current)) = version_row(conn, bucket, key, listed.version.as_ref())? else {
        return Ok(None);
    };
    if row.marker
        || row.mtime_ms != ms(listed.last_modified)
        || current != listed.current
        || row.etag != listed.etag
    {
        return Ok(None);
    }
    let mut meta: coffer_storage::ObjectMeta = unjson(&row.meta)?;
    meta.storage_class = Some(storage_class.to_owned());
    let (old_stored, row_key, seq) = (row.extents.clone(), row.key.clone(), row.seq);
    let old = entry(conn, bucket, row)?;
    // The bytes copied must be the bytes the version still has.
    if !matches!(&old, Entry::Object(o) if o.extents == from) {
        return Ok(None);
    }
    let stored = store_extents(conn, extents)?;
    drop_extents(conn, &old_stored, &blob_set(extents))?;
    let table = if current { "objects" } else { "versions" };
    exec(
        conn,
        &format!(
            "UPDATE {table} SET meta = ?4, extents = ?5 WHERE bucket = ?1 AND key = ?2 AND seq = ?3"
        ),
        params![bucket, row_key, seq, json(&meta)?, stored],
    )?;
    Ok(Some(old))
}

/// A [`coffer_storage::Listed`] that can move into a blocking task.
pub(crate) struct OwnedListed {
    pub(crate) version: OwnedVersion,
    pub(crate) last_modified: OffsetDateTime,
    pub(crate) current: bool,
    pub(crate) etag: String,
    pub(crate) tags: std::collections::BTreeMap<String, String>,
    pub(crate) marker_id: String,
}

impl OwnedListed {
    pub(crate) fn new(l: &coffer_storage::Listed<'_>) -> Self {
        Self {
            version: owned(l.version),
            last_modified: l.last_modified,
            current: l.current,
            etag: l.etag.to_owned(),
            tags: l.tags.clone(),
            marker_id: l.marker_id.to_owned(),
        }
    }
}

/// Removes one version for good; if it was the current one, the newest remaining version
/// becomes current (see `MetaStore::delete_version`).
pub(crate) fn delete(
    conn: &Connection,
    bucket: String,
    key: String,
    version: OwnedVersion,
    by: &Authority,
) -> Result<Option<Entry>> {
    if !bucket_exists(conn, &bucket)? {
        return Err(Error::NoSuchBucket(bucket));
    }
    let Some((row, current)) = version_row(conn, &bucket, &key, version.as_ref())? else {
        return Ok(None);
    };
    if current {
        exec(
            conn,
            "DELETE FROM objects WHERE bucket = ?1 AND key = ?2",
            params![bucket, key.as_bytes()],
        )?;
        // The newest remaining version becomes current.
        let next = query_one(
            conn,
            &format!(
                "SELECT {OBJECT_COLUMNS} FROM versions WHERE bucket = ?1 AND key = ?2
                         ORDER BY seq DESC LIMIT 1"
            ),
            params![bucket, key.as_bytes()],
            object_row,
        )?;
        if let Some(next) = next {
            exec(
                conn,
                "DELETE FROM versions WHERE bucket = ?1 AND key = ?2 AND seq = ?3",
                params![bucket, key.as_bytes(), next.seq],
            )?;
            insert_row(conn, "objects", &bucket, &next)?;
        }
    } else {
        exec(
            conn,
            "DELETE FROM versions WHERE bucket = ?1 AND key = ?2 AND seq = ?3",
            params![bucket, key.as_bytes(), row.seq],
        )?;
    }
    free(conn, &bucket, row, &BTreeSet::new(), by).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;

    fn plan(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> String {
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("prepare")
            .query_map(params, |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        plan.join(" | ")
    }

    /// Reading a version is one index seek however many versions the key has, and a
    /// listing of versions merges two ordered index scans without sorting.
    #[test]
    fn versions_are_read_by_seeks_and_listed_without_a_sort() {
        let mut conn = Connection::open_in_memory().expect("open");
        schema::migrate(&mut conn).expect("schema");
        let by_id = plan(
            &conn,
            &format!(
                "SELECT {OBJECT_COLUMNS} FROM versions WHERE bucket = ?1 AND key = ?2 AND version_id = ?3"
            ),
            params!["b", b"k".to_vec(), "v"],
        );
        assert!(by_id.contains("USING INDEX versions_by_id"), "{by_id}");
        let newest = plan(
            &conn,
            &format!(
                "SELECT {OBJECT_COLUMNS} FROM versions WHERE bucket = ?1 AND key = ?2
                 ORDER BY seq DESC LIMIT 1"
            ),
            params!["b", b"k".to_vec()],
        );
        assert!(newest.contains("USING PRIMARY KEY"), "{newest}");
        assert!(!newest.contains("TEMP B-TREE"), "{newest}");
        let (c1, _) = key_range_at("p/", Bound::Excluded("p/a"), 2);
        let (c2, _) = key_range_at("p/", Bound::Included("p/a"), 4);
        let listing = plan(
            &conn,
            &format!(
                "SELECT {OBJECT_COLUMNS}, 0 AS nc FROM objects WHERE bucket = ?1{c1}
                 UNION ALL
                 SELECT {OBJECT_COLUMNS}, 1 AS nc FROM versions WHERE bucket = ?1{c2}
                 AND (key > ?6 OR seq < ?7)
                 ORDER BY key, seq DESC LIMIT 1001"
            ),
            params![
                "b",
                b"p/a".to_vec(),
                b"p0".to_vec(),
                b"p/a".to_vec(),
                b"p0".to_vec(),
                b"p/a".to_vec(),
                5
            ],
        );
        assert!(!listing.contains("TEMP B-TREE"), "{listing}");
        assert!(listing.contains("MERGE"), "{listing}");
    }
}
