//! How multipart uploads are stored in SQLite: `uploads` rows and their `parts`, each
//! part's bytes an extent like an object's. The `MetaStore` methods of `meta.rs` run these
//! inside their transactions.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};

use coffer_storage::{
    Error, ListPage, ObjectRecord, PartRecord, Precondition, Result, UploadRecord, Written,
};

use crate::error::backend;
use crate::rows::*;
use crate::versions::{bucket_versioning, put_version};

/// Records a new multipart upload (`NoSuchBucket` if the bucket is gone).
pub(crate) fn create(conn: &Connection, u: &UploadRecord) -> Result<()> {
    if !bucket_exists(conn, &u.bucket)? {
        return Err(Error::NoSuchBucket(u.bucket.clone()));
    }
    exec(
        conn,
        &format!("INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            u.upload_id,
            u.bucket,
            u.key.as_bytes(),
            ms(u.initiated),
            u.initiator,
            json(&u.meta)?
        ],
    )?;
    Ok(())
}

/// An upload of `bucket`, if there is one.
pub(crate) fn get(
    conn: &Connection,
    bucket: &str,
    upload_id: &str,
) -> Result<Option<UploadRecord>> {
    conn.query_row(
        &format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ?1 AND bucket = ?2"),
        params![upload_id, bucket],
        upload_row,
    )
    .optional()
    .map_err(backend)?
    .map(upload_record)
    .transpose()
}

/// Adds or replaces a part; a replaced part's blob becomes garbage.
pub(crate) fn put_part(
    conn: &Connection,
    bucket: &str,
    upload_id: String,
    part: &PartRecord,
) -> Result<()> {
    if !upload_exists(conn, bucket, &upload_id)? {
        return Err(Error::NoSuchUpload(upload_id));
    }
    let old: Option<String> = conn
        .query_row(
            "SELECT extent FROM parts WHERE upload_id = ?1 AND part_number = ?2",
            params![upload_id, part.part_number],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    if let Some(old) = old {
        drop_extents(conn, &old, &blob_set(std::slice::from_ref(&part.extent)))?;
    }
    let extent = store_extents(conn, std::slice::from_ref(&part.extent))?;
    let checksum = part.checksum.as_ref().map(json).transpose()?;
    exec(
        conn,
        &format!(
            "INSERT OR REPLACE INTO parts (upload_id, {PART_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        ),
        params![
            upload_id,
            part.part_number,
            to_i64(part.size),
            part.etag,
            ms(part.last_modified),
            checksum,
            extent
        ],
    )?;
    Ok(())
}

/// Parts numbered after `after`, ascending, at most `limit`.
pub(crate) fn list_parts(
    conn: &Connection,
    bucket: &str,
    upload_id: String,
    after: u32,
    limit: usize,
) -> Result<ListPage<PartRecord>> {
    if !upload_exists(conn, bucket, &upload_id)? {
        return Err(Error::NoSuchUpload(upload_id));
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {PART_COLUMNS} FROM parts WHERE upload_id = ?1 AND part_number > ?2
             ORDER BY part_number LIMIT ?3"
        ))
        .map_err(backend)?;
    let mut rows = stmt
        .query(params![upload_id, after, to_i64(limit as u64 + 1)])
        .map_err(backend)?;
    let mut items = Vec::new();
    let mut truncated = false;
    while let Some(r) = rows.next().map_err(backend)? {
        if items.len() == limit {
            truncated = true;
            break;
        }
        items.push(part_row(conn, r)?);
    }
    Ok(ListPage { items, truncated })
}

/// Completes an upload into `object` (see `MetaStore::complete_upload`).
pub(crate) fn complete(
    conn: &Connection,
    upload_id: String,
    used: &[(u32, String)],
    object: &ObjectRecord,
    precondition: &Precondition,
) -> Result<Written> {
    let found: Option<(String, Vec<u8>)> = conn
        .query_row(
            "SELECT bucket, key FROM uploads WHERE upload_id = ?1",
            [&upload_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?;
    match found {
        Some((b, k)) if b == object.bucket && k == object.key.as_bytes() => {}
        _ => return Err(Error::NoSuchUpload(upload_id)),
    }
    let Some(versioning) = bucket_versioning(conn, &object.bucket)? else {
        return Err(Error::NoSuchBucket(object.bucket.clone()));
    };
    for (number, etag) in used {
        let stored: Option<String> = conn
            .query_row(
                "SELECT etag FROM parts WHERE upload_id = ?1 AND part_number = ?2",
                params![upload_id, number],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        if stored.as_ref() != Some(etag) {
            return Err(Error::InvalidPart(*number));
        }
    }
    // (A failed precondition rolls the whole transaction back, the upload too.)
    remove_upload(conn, &upload_id, &blob_set(&object.extents))?;
    put_version(conn, versioning, object, precondition)
}

/// Removes an upload, its parts' blobs queued as garbage.
pub(crate) fn abort(conn: &Connection, bucket: &str, upload_id: String) -> Result<()> {
    if !upload_exists(conn, bucket, &upload_id)? {
        return Err(Error::NoSuchUpload(upload_id));
    }
    remove_upload(conn, &upload_id, &BTreeSet::new())
}
