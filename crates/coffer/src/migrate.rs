//! `coffer migrate`: moves an embedded deployment (a data directory: SQLite and files) to
//! a scale-out one (PostgreSQL, a shared blob tier, a shared audit directory).
//!
//! The source must be stopped: its data directory is locked for the whole run, and first
//! recovered as a start would (blobs an unclean stop left in staging). Then, in one
//! PostgreSQL transaction on an empty database, every record is written as it was:
//! buckets and their settings, every version of every key (delete markers, version ids
//! and their order), uploads in progress and their parts, KMS keys with every version of
//! their material and aliases (still wrapped under the same root key: nothing is
//! unwrapped), IAM entities (secrets wrapped likewise), named settings, and the
//! deployment's identity. Object bytes are copied blob by blob, streamed, into the target
//! tier's staging (a blob store names its own blobs, so extents are rewritten to the new
//! names); encrypted objects are copied as the ciphertext they are. The source's audit
//! trail becomes one node's chain (`node-migrated`) in the target audit directory,
//! unchanged, so it verifies with the same audit key. Only after the commit are the
//! copied blobs published: a run that fails leaves the database as it was and, in the
//! blob tier, only staged blobs, which the nodes' collector removes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use futures::StreamExt;

use coffer_storage::{
    BlobId, BlobStore, Entry, Extent, IamStore, KmsStore, MetaStore, StoredVersion, Versions,
    is_archived,
};
use coffer_storage_local::{FileBlobs, LocalStore};

use crate::Blobs;

/// The trail directory the source's audit trail becomes, under the target audit root.
pub const MIGRATED_TRAIL: &str = "node-migrated";

/// Versions read from the source per page.
const PAGE: usize = 500;

/// Where `coffer migrate` reads from and writes to.
#[derive(Debug, Clone)]
pub struct Plan {
    pub from: PathBuf,
    /// The source's `--blobs` (default: in its data directory).
    pub from_blobs: Blobs,
    pub from_archive_dir: PathBuf,
    pub from_audit_dir: PathBuf,
    pub to: String,
    /// The target blob tier (a shared directory or an S3 store).
    pub blobs: Blobs,
    pub archive_dir: Option<PathBuf>,
    pub audit_dir: PathBuf,
}

/// What a migration moved.
#[derive(Debug, Default, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub struct Moved {
    pub buckets: u64,
    pub bucket_settings: u64,
    pub account_settings: u64,
    pub versions: u64,
    pub delete_markers: u64,
    pub uploads: u64,
    pub parts: u64,
    pub blobs: u64,
    /// Of `blobs`, those of archived objects (in `--archive-dir`).
    pub archived_blobs: u64,
    pub blob_bytes: u64,
    pub kms_keys: u64,
    pub kms_materials: u64,
    pub kms_aliases: u64,
    pub iam_entities: u64,
    pub settings: u64,
    pub trail_files: u64,
    /// The access key id the nodes must be started with.
    pub root_access_key_id: String,
}

/// The source's and target's blob stores, by tier.
struct Tiers {
    from: Arc<dyn BlobStore>,
    from_archive: Arc<dyn BlobStore>,
    to: Arc<dyn BlobStore>,
    to_archive: Option<Arc<dyn BlobStore>>,
    /// Source blob → its copy, and whether it went to the archive tier (a blob two
    /// records share is copied once). Its size grows with the number of blobs (about
    /// 100 bytes each).
    copied: HashMap<String, (BlobId, bool)>,
}

impl Tiers {
    /// Copies the blobs of `extents` (of a version or upload of storage class `class`)
    /// to the target tier, and points the extents at the copies.
    async fn copy(
        &mut self,
        extents: &mut [Extent],
        class: Option<&str>,
        moved: &mut Moved,
    ) -> anyhow::Result<()> {
        let archived = is_archived(class);
        for extent in extents.iter_mut() {
            let Extent::Blob { id, len } = extent else {
                continue;
            };
            if let Some((copy, _)) = self.copied.get(id.as_str()) {
                *id = copy.clone();
                continue;
            }
            let (from, to) = if archived {
                let Some(to) = &self.to_archive else {
                    bail!(
                        "the source has objects of an archive storage class ({}): pass --archive-dir, the directory the nodes will share for them",
                        class.unwrap_or_default()
                    );
                };
                (&self.from_archive, to)
            } else {
                (&self.from, &self.to)
            };
            let copy = copy_blob(from.as_ref(), to.as_ref(), id, *len)
                .await
                .with_context(|| format!("copying blob {}", id.as_str()))?;
            moved.blobs += 1;
            moved.blob_bytes += *len;
            moved.archived_blobs += u64::from(archived);
            self.copied
                .insert(id.as_str().to_owned(), (copy.clone(), archived));
            *id = copy;
        }
        Ok(())
    }
}

/// Streams one blob into a new staged blob of `to`; returns the new blob's id.
async fn copy_blob(
    from: &dyn BlobStore,
    to: &dyn BlobStore,
    id: &BlobId,
    len: u64,
) -> anyhow::Result<BlobId> {
    let mut reader = from.read(id, 0, len).await?;
    let mut writer = to.create().await?;
    let copy = writer.id().clone();
    while let Some(chunk) = reader.next().await {
        writer.write(chunk?).await?;
    }
    let written = writer.finish().await?;
    if written != len {
        bail!("read {written} bytes where the record says {len}");
    }
    Ok(copy)
}

/// Copies the regular files of `from` into a new directory `to`, durably.
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<u64> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut n = 0;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let dest = to.join(entry.file_name());
        std::fs::copy(entry.path(), &dest)
            .with_context(|| format!("copying {}", entry.path().display()))?;
        std::fs::File::open(&dest)?.sync_all()?;
        n += 1;
    }
    std::fs::File::open(to)?.sync_all()?;
    Ok(n)
}

/// Moves the deployment in `plan.from` into the empty database `plan.to`.
pub async fn run(plan: &Plan) -> anyhow::Result<Moved> {
    if plan.blobs == Blobs::Local {
        bail!("give the blob tier the nodes will share: --blobs DIR or --blobs s3://...");
    }
    let trail_dest = plan.audit_dir.join(MIGRATED_TRAIL);
    if trail_dest.exists() {
        bail!(
            "{} already exists: this audit directory holds a migrated trail already",
            trail_dest.display()
        );
    }
    let (identity_setting, identity, root_access_key_id) =
        crate::identity::shared_from(&plan.from)?;
    // Key material moves wrapped under the root key: the nodes need that one key.
    if plan.from.join("root-key-hsm.json").exists() {
        bail!(
            "{}'s root key is in a PKCS#11 token: migrating such a deployment is not supported yet",
            plan.from.display()
        );
    }
    if plan.from.join("root.key.next").exists() {
        bail!(
            "{} has an unfinished root-key rotation: start its server once to finish it, stop it, then migrate",
            plan.from.display()
        );
    }

    // The source, locked and recovered as a start would.
    let source = LocalStore::open(&plan.from).with_context(|| {
        format!(
            "opening data directory {} (stop its server first)",
            plan.from.display()
        )
    })?;
    let from_blobs = plan.from_blobs.open(&source.blobs, false)?;
    let from_archive: Arc<dyn BlobStore> = Arc::new(
        FileBlobs::open(&plan.from_archive_dir)
            .with_context(|| format!("opening {}", plan.from_archive_dir.display()))?,
    );
    let meta = source.meta.clone();
    coffer_objects::Objects::new(
        Arc::new(meta.clone()),
        from_blobs.clone(),
        coffer_objects::Config::default(),
    )
    .with_archive(from_archive.clone())
    .recover(true)
    .await
    .context("recovering the source's blobs")?;

    // The target.
    let pg = coffer_storage_postgres::PgStore::connect(&plan.to)
        .await
        .context("opening the target PostgreSQL database (--to)")?;
    let to_blobs = plan.blobs.open(&source.blobs, true)?;
    let to_archive: Option<Arc<dyn BlobStore>> = match &plan.archive_dir {
        Some(dir) => Some(Arc::new(
            FileBlobs::open_shared(dir).with_context(|| format!("opening {}", dir.display()))?,
        )),
        None => None,
    };
    let import = pg
        .import()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("starting the import")?;
    let mut tiers = Tiers {
        from: from_blobs,
        from_archive,
        to: to_blobs,
        to_archive,
        copied: HashMap::new(),
    };
    let mut moved = Moved {
        root_access_key_id,
        ..Moved::default()
    };
    let e = |e: coffer_storage::Error| anyhow::anyhow!("{e}");

    // Buckets, their settings, and every version of every key.
    let buckets = meta.list_buckets().await.map_err(e)?;
    for b in &buckets {
        import.bucket(b).await.map_err(e)?;
        moved.buckets += 1;
    }
    for (bucket, name, value) in meta.export_bucket_settings().await.map_err(e)? {
        import
            .bucket_setting(&bucket, &name, &value)
            .await
            .map_err(e)?;
        moved.bucket_settings += 1;
    }
    for (account, name, value) in meta.export_account_settings().await.map_err(e)? {
        import
            .account_setting(&account, &name, &value)
            .await
            .map_err(e)?;
        moved.account_settings += 1;
    }
    for b in &buckets {
        for which in [Versions::Current, Versions::Noncurrent] {
            let mut after = None;
            loop {
                let page = meta
                    .export_versions(&b.name, which, after.clone(), PAGE)
                    .await
                    .map_err(e)?;
                let Some(last) = page.last() else { break };
                after = Some((key_of(last).to_owned(), last.seq));
                let full = page.len() == PAGE;
                for mut v in page {
                    match &mut v.entry {
                        Entry::Object(o) => {
                            let class = o.meta.storage_class.clone();
                            tiers
                                .copy(&mut o.extents, class.as_deref(), &mut moved)
                                .await?;
                            moved.versions += 1;
                        }
                        Entry::Marker(_) => moved.delete_markers += 1,
                    }
                    import.version(&v).await.map_err(e)?;
                }
                if !full {
                    break;
                }
            }
        }
    }

    // Multipart uploads in progress.
    for upload in meta.export_uploads().await.map_err(e)? {
        let mut parts = Vec::new();
        let mut after = 0;
        loop {
            let page = meta
                .list_parts(&upload.bucket, &upload.upload_id, after, 1000)
                .await
                .map_err(e)?;
            if let Some(last) = page.items.last() {
                after = last.part_number;
            }
            parts.extend(page.items);
            if !page.truncated {
                break;
            }
        }
        for p in &mut parts {
            tiers
                .copy(
                    std::slice::from_mut(&mut p.extent),
                    upload.meta.storage_class.as_deref(),
                    &mut moved,
                )
                .await?;
        }
        import.upload(&upload, &parts).await.map_err(e)?;
        moved.uploads += 1;
        moved.parts += parts.len() as u64;
    }

    // The KMS, IAM and settings, as stored (wrapped under the same root key).
    for key in meta.kms_all_keys().await.map_err(e)? {
        let materials = meta.kms_materials(&key.key_id).await.map_err(e)?;
        import.kms_key(&key, &materials).await.map_err(e)?;
        moved.kms_keys += 1;
        moved.kms_materials += materials.len() as u64;
    }
    for alias in meta.export_aliases().await.map_err(e)? {
        import.kms_alias(&alias).await.map_err(e)?;
        moved.kms_aliases += 1;
    }
    for record in meta.iam_all().await.map_err(e)? {
        import.iam(&record).await.map_err(e)?;
        moved.iam_entities += 1;
    }
    for (name, value) in meta.export_settings().await.map_err(e)? {
        import.setting(&name, &value).await.map_err(e)?;
        moved.settings += 1;
    }
    import
        .setting(identity_setting, &identity)
        .await
        .map_err(e)?;

    // The trail, copied beside its place before the commit, and put in place after it.
    let partial = plan.audit_dir.join(format!(".{MIGRATED_TRAIL}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("removing {}", partial.display()))?;
    }
    let trail = plan.from_audit_dir.is_dir();
    if trail {
        moved.trail_files = copy_dir(&plan.from_audit_dir, &partial)?;
    }
    if let Err(err) = import.commit().await {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(anyhow::anyhow!("{err}")).context(
            "committing the import (if the database now holds the deployment, the connection failed after the commit: start a node, and move the trail's copy in place by hand)",
        );
    }
    if trail {
        std::fs::rename(&partial, &trail_dest).with_context(|| {
            format!(
                "the deployment is migrated, but its trail is still at {}: rename it {}",
                partial.display(),
                trail_dest.display()
            )
        })?;
        std::fs::File::open(&plan.audit_dir)?.sync_all()?;
    }

    // Referenced now: publish the copies.
    for (copy, archived) in tiers.copied.values() {
        let store = match (archived, &tiers.to_archive) {
            (true, Some(archive)) => archive,
            _ => &tiers.to,
        };
        store
            .publish(copy)
            .await
            .map_err(e)
            .with_context(|| format!("publishing blob {}", copy.as_str()))?;
    }
    Ok(moved)
}

fn key_of(v: &StoredVersion) -> &str {
    match &v.entry {
        Entry::Object(o) => &o.key,
        Entry::Marker(m) => &m.key,
    }
}
