//! How multipart uploads are stored in PostgreSQL: `uploads` rows and their `parts`, each
//! part's bytes an extent like an object's. The upload's row is the lock of its parts:
//! adding a part holds it, and completing or aborting the upload deletes it first.

use std::collections::BTreeSet;
use std::ops::Bound;

use deadpool_postgres::GenericClient;

use coffer_storage::{
    Error, ListPage, ObjectRecord, PartRecord, Precondition, Result, UploadListQuery, UploadRecord,
    Written,
};

use crate::ms;
use crate::rows::*;
use crate::versions::put_version;

/// Records a new multipart upload (`NoSuchBucket` if the bucket is gone). The caller
/// holds the bucket's lock, shared.
pub(crate) async fn create(c: &impl GenericClient, u: &UploadRecord) -> Result<()> {
    if !bucket_exists(c, &u.bucket).await? {
        return Err(Error::NoSuchBucket(u.bucket.clone()));
    }
    exec(
        c,
        &format!("INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"),
        &[
            &u.upload_id,
            &u.bucket,
            &u.key.as_bytes(),
            &ms(u.initiated),
            &u.initiator,
            &json(&u.meta)?,
        ],
    )
    .await?;
    Ok(())
}

/// An upload of `bucket`, if there is one.
pub(crate) async fn get(
    c: &impl GenericClient,
    bucket: &str,
    upload_id: &str,
) -> Result<Option<UploadRecord>> {
    row(
        c,
        &format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE upload_id = $1 AND bucket = $2"),
        &[&upload_id, &bucket],
    )
    .await?
    .map(|r| upload_record(&r))
    .transpose()
}

/// Adds or replaces a part; a replaced part's blob becomes garbage.
pub(crate) async fn put_part(
    c: &impl GenericClient,
    bucket: &str,
    upload_id: &str,
    part: &PartRecord,
) -> Result<()> {
    // Holding the upload's row orders this against other writes of the upload's parts
    // and against its completion or abortion.
    hold_upload(c, bucket, upload_id).await?;
    let number = i32::try_from(part.part_number)
        .map_err(|_| Error::Backend(format!("part number {}", part.part_number)))?;
    let old = row(
        c,
        "SELECT extent FROM parts WHERE upload_id = $1 AND part_number = $2",
        &[&upload_id, &number],
    )
    .await?;
    let part_extent = std::slice::from_ref(&part.extent);
    if let Some(old) = old {
        drop_extents(c, &col::<String>(&old, 0)?, &blob_set(part_extent)).await?;
    }
    let (extent, inline) = store_extents(c, part_extent).await?;
    let checksum = part.checksum.as_ref().map(json).transpose()?;
    exec(
        c,
        &format!(
            "INSERT INTO parts (upload_id, {PART_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (upload_id, part_number) DO UPDATE SET
                size = EXCLUDED.size, etag = EXCLUDED.etag, mtime_ms = EXCLUDED.mtime_ms,
                checksum = EXCLUDED.checksum, extent = EXCLUDED.extent, inline = EXCLUDED.inline"
        ),
        &[
            &upload_id,
            &number,
            &to_i64(part.size),
            &part.etag,
            &ms(part.last_modified),
            &checksum,
            &extent,
            &inline,
        ],
    )
    .await?;
    Ok(())
}

/// Parts numbered after `after`, ascending, at most `limit` (`NoSuchUpload` if the upload
/// is gone). The caller reads in one snapshot.
pub(crate) async fn list_parts(
    c: &impl GenericClient,
    bucket: &str,
    upload_id: &str,
    after: u32,
    limit: usize,
) -> Result<ListPage<PartRecord>> {
    if row(
        c,
        "SELECT 1 FROM uploads WHERE upload_id = $1 AND bucket = $2",
        &[&upload_id, &bucket],
    )
    .await?
    .is_none()
    {
        return Err(Error::NoSuchUpload(upload_id.to_owned()));
    }
    let after = i32::try_from(after).unwrap_or(i32::MAX);
    let found = rows(
        c,
        &format!(
            "SELECT {PART_COLUMNS} FROM parts WHERE upload_id = $1 AND part_number > $2
             ORDER BY part_number LIMIT $3"
        ),
        &[&upload_id, &after, &to_i64(limit as u64).saturating_add(1)],
    )
    .await?;
    let items = found.iter().map(part_record).collect::<Result<Vec<_>>>()?;
    Ok(ListPage::from_overfetch(items, limit))
}

/// Uploads of a bucket in (key, upload id) order (see `MetaStore::list_uploads`).
pub(crate) async fn list(
    c: &impl GenericClient,
    bucket: &str,
    query: &UploadListQuery<'_>,
) -> Result<ListPage<UploadRecord>> {
    let mut id_marker = None;
    let (cond, args) = match (query.start, query.upload_id_marker) {
        (Bound::Excluded(k), Some(id)) => {
            // (key > k) OR (key = k AND upload_id > id): the range starts at k.
            id_marker = Some((k.as_bytes().to_vec(), id));
            key_range(query.prefix, Bound::Included(k), 2)
        }
        (start, _) => key_range(query.prefix, start, 2),
    };
    let extra = if id_marker.is_some() {
        format!(
            " AND (key > ${} OR upload_id > ${})",
            args.len() + 2,
            args.len() + 3
        )
    } else {
        String::new()
    };
    let limit_at = args.len() + 2 + if id_marker.is_some() { 2 } else { 0 };
    let sql = format!(
        "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE bucket = $1{cond}{extra}
         ORDER BY key, upload_id LIMIT ${limit_at}"
    );
    let limit = to_i64(query.limit as u64).saturating_add(1);
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&bucket];
    for a in &args {
        params.push(a);
    }
    if let Some((k, id)) = &id_marker {
        params.push(k);
        params.push(id);
    }
    params.push(&limit);
    let found = rows(c, &sql, &params).await?;
    let items = found
        .iter()
        .map(upload_record)
        .collect::<Result<Vec<_>>>()?;
    Ok(ListPage::from_overfetch(items, query.limit))
}

/// Completes an upload into `object` (see `MetaStore::complete_upload`). The caller
/// holds the object key's lock.
pub(crate) async fn complete(
    c: &impl GenericClient,
    upload_id: &str,
    used: &[(u32, String)],
    object: &ObjectRecord,
    precondition: &Precondition,
) -> Result<Written> {
    let found = row(
        c,
        "SELECT bucket, key FROM uploads WHERE upload_id = $1 FOR UPDATE",
        &[&upload_id],
    )
    .await?;
    match found {
        Some(r)
            if col::<String>(&r, 0)? == object.bucket
                && col::<Vec<u8>>(&r, 1)? == object.key.as_bytes() => {}
        _ => return Err(Error::NoSuchUpload(upload_id.to_owned())),
    }
    let stored = rows(
        c,
        "SELECT part_number, etag FROM parts WHERE upload_id = $1",
        &[&upload_id],
    )
    .await?;
    let mut etags = std::collections::BTreeMap::new();
    for r in &stored {
        etags.insert(col::<i32>(r, 0)?, col::<String>(r, 1)?);
    }
    for (number, etag) in used {
        let n = i32::try_from(*number).unwrap_or(-1);
        if etags.get(&n) != Some(etag) {
            return Err(Error::InvalidPart(*number));
        }
    }
    // (A failed precondition rolls the whole transaction back, the upload too.)
    remove_upload(c, upload_id, &blob_set(&object.extents)).await?;
    put_version(c, object, precondition).await
}

/// Removes an upload, its parts' blobs queued as garbage.
pub(crate) async fn abort(c: &impl GenericClient, bucket: &str, upload_id: &str) -> Result<()> {
    hold_upload(c, bucket, upload_id).await?;
    remove_upload(c, upload_id, &BTreeSet::new()).await
}

/// Locks an upload's row until the transaction ends; `NoSuchUpload` if it is gone.
async fn hold_upload(c: &impl GenericClient, bucket: &str, upload_id: &str) -> Result<()> {
    let held = row(
        c,
        "SELECT 1 FROM uploads WHERE upload_id = $1 AND bucket = $2 FOR UPDATE",
        &[&upload_id, &bucket],
    )
    .await?;
    match held {
        Some(_) => Ok(()),
        None => Err(Error::NoSuchUpload(upload_id.to_owned())),
    }
}
