//! `coffer snapshot save|load`: a stopped data directory in one file, and back.
//!
//! A snapshot is a tar archive (format in `docs/formats.md`): first `coffer-snapshot.json`
//! (the format version and the fingerprint of the root key the key material is wrapped
//! under), then every file of the data directory under `data/` — the SQLite metadata
//! (buckets, objects, KMS keys with their wrapped material, IAM entities), the object
//! bytes, the archive tier, the audit trail, the identity and the usage samples —, and
//! last `coffer-snapshot-manifest.json`, each file's size and SHA-256. The root key itself
//! is never in it: whoever loads a snapshot brings the key it was made under, and a load
//! under any other key is refused before anything is written.
//!
//! Save holds the data directory's lock, so it refuses a directory a server is running on.
//! Load fills a staging directory beside the target, checks every file against the
//! manifest and the root key against the header, and only then moves the files in: a
//! refused or broken snapshot leaves the target as it was.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::rootkey::{RootKeys, RootSource};

/// The first entry: what the snapshot is.
const HEADER: &str = "coffer-snapshot.json";
/// The last entry: every data file's size and digest.
const MANIFEST: &str = "coffer-snapshot-manifest.json";
/// Data files live under this prefix inside the archive.
const DATA: &str = "data";
/// The format's name in the header; with `VERSION`, what a reader checks first.
const FORMAT: &str = "coffer-snapshot";
/// Changing the layout without a new version breaks every snapshot already written.
const VERSION: u32 = 1;

/// `coffer-snapshot.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    /// RFC 3339, when the snapshot was saved.
    created: String,
    /// The fingerprint of the root key the key material and secrets are wrapped under
    /// (`coffer_crypto::RootKey::fingerprint`: an HMAC of a constant, not the key).
    root_key_fingerprint: String,
    coffer_version: String,
}

/// `coffer-snapshot-manifest.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileEntry {
    /// Relative to the data directory, `/`-separated.
    path: String,
    size: u64,
    sha256: String,
}

/// What a save or load did, printed as JSON.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    pub files: usize,
    pub bytes: u64,
    pub root_key_fingerprint: String,
}

/// Files of a data directory that never go into a snapshot: the lock, SQLite's shared
/// memory index (rebuilt on open), and root key files kept there (the key, a rotation's
/// next key, retired keys).
fn excluded(rel: &str, root_key_names: &[String]) -> bool {
    rel == "LOCK"
        || rel.ends_with("-shm")
        || is_staging(rel)
        || rel == "lost+found"
        || rel.starts_with("lost+found/")
        || root_key_names
            .iter()
            .any(|n| rel == n || rel.starts_with(&format!("{n}.")))
}

/// The data-directory-relative names of root key files for `source`, if the key is a
/// file inside `data_dir`.
fn root_key_names(source: &RootSource, data_dir: &Path) -> Vec<String> {
    let mut names = vec!["root.key".to_owned()];
    // Compared as the filesystem resolves them: `./dir/k.key` and `/abs/dir/k.key` are one.
    if let RootSource::Local(coffer_crypto::RootKeySource::File(p)) = source
        && let (Ok(p), Ok(dir)) = (std::fs::canonicalize(p), std::fs::canonicalize(data_dir))
        && let Ok(rel) = p.strip_prefix(&dir)
    {
        names.push(
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/"),
        );
    }
    names
}

/// The fingerprint of the root key `source` names for `data_dir`, refusing to create a
/// key file that is not there (a snapshot is only ever under an existing key).
fn fingerprint(source: &RootSource, data_dir: &Path) -> anyhow::Result<String> {
    if let RootSource::Local(coffer_crypto::RootKeySource::File(p)) = source
        && !p.exists()
    {
        bail!(
            "no root key at {}: give the key the data was wrapped under (--root-key-file or COFFER_ROOT_KEY)",
            p.display()
        );
    }
    let (keys, unfinished) = RootKeys::load(source, data_dir)?;
    if unfinished {
        bail!(
            "a root-key rotation of this data directory is unfinished: start its server once to finish it, then stop it and save"
        );
    }
    Ok(keys.root().fingerprint())
}

/// Every regular file under `dir`, as (relative `/`-path, absolute path), sorted.
fn walk(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e?;
            let ty = e.file_type()?;
            let path = e.path();
            if ty.is_dir() {
                stack.push(path);
            } else if !ty.is_file() {
                // A link could lead out of the directory, or make a save miss what it
                // holds: refused rather than guessed at.
                bail!(
                    "{} is not a plain file or directory: a snapshot takes only those",
                    path.display()
                );
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .context("a file outside the directory")?
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Hashes what passes through.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    size: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn json_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    value: &impl Serialize,
) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(value)?;
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o600);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, bytes.as_slice())?;
    Ok(())
}

/// Writes the stopped data directory `data_dir` into `file`.
pub fn save(data_dir: &Path, source: &RootSource, file: &Path) -> anyhow::Result<Summary> {
    if !data_dir.join("meta.sqlite").exists() {
        bail!(
            "{} holds no Coffer metadata (meta.sqlite): snapshots are of the embedded store",
            data_dir.display()
        );
    }
    let inside = |f: &Path| -> bool {
        let dir = std::fs::canonicalize(data_dir).ok();
        let parent = f
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .and_then(|p| std::fs::canonicalize(p).ok());
        matches!((dir, parent), (Some(d), Some(p)) if p.starts_with(&d))
    };
    if inside(file) {
        bail!("write the snapshot outside the data directory it is of");
    }
    // Held until the end: no server writes while the files are read.
    let _lock = coffer_storage_local::DirLock::take(data_dir)
        .with_context(|| format!("{} is in use: stop its server first", data_dir.display()))?;
    let root_key_fingerprint = fingerprint(source, data_dir)?;
    let names = root_key_names(source, data_dir);
    let files: Vec<_> = walk(data_dir)?
        .into_iter()
        .filter(|(rel, _)| !excluded(rel, &names))
        .collect();
    // Written beside the target and renamed into place once complete and synced; a save
    // that fails leaves neither.
    let mut partial = file.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = write(&partial, &root_key_fingerprint, &files).and_then(|manifest| {
        std::fs::rename(&partial, file).with_context(|| format!("writing {}", file.display()))?;
        Ok(manifest)
    });
    let manifest = match written {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    Ok(Summary {
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.size).sum(),
        root_key_fingerprint,
    })
}

/// Writes the snapshot of `files` into `partial`, synced; returns its manifest.
fn write(
    partial: &Path,
    root_key_fingerprint: &str,
    files: &[(String, PathBuf)],
) -> anyhow::Result<Manifest> {
    // A partial file a crashed save left is ours to replace.
    let _ = std::fs::remove_file(partial);
    let out = private(partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut tar = tar::Builder::new(BufWriter::new(out));
    tar.mode(tar::HeaderMode::Deterministic);
    json_entry(
        &mut tar,
        HEADER,
        &Header {
            format: FORMAT.into(),
            version: VERSION,
            created: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)?,
            root_key_fingerprint: root_key_fingerprint.to_owned(),
            coffer_version: env!("CARGO_PKG_VERSION").into(),
        },
    )?;
    let mut manifest = Manifest::default();
    for (rel, path) in files {
        let f = File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let size = f.metadata()?.len();
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o600);
        h.set_entry_type(tar::EntryType::Regular);
        let mut reader = Hashing {
            inner: BufReader::new(f).take(size),
            hash: Sha256::new(),
            size: 0,
        };
        tar.append_data(&mut h, format!("{DATA}/{rel}"), &mut reader)
            .with_context(|| format!("writing {rel} into the snapshot"))?;
        if reader.size != size {
            bail!("{} changed while it was saved", path.display());
        }
        manifest.files.push(FileEntry {
            path: rel.clone(),
            size,
            sha256: hex(&reader.hash.finalize()[..]),
        });
    }
    json_entry(&mut tar, MANIFEST, &manifest)?;
    let out = tar.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    out.sync_all()?;
    Ok(manifest)
}

/// The data-directory-relative path of an archive entry under `data/`, refusing any
/// that could land outside the directory.
fn data_path(name: &Path) -> anyhow::Result<PathBuf> {
    let rel = name
        .strip_prefix(DATA)
        .with_context(|| format!("unexpected entry {} in the snapshot", name.display()))?;
    if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!(
            "the snapshot's entry {} is not a plain relative path",
            name.display()
        );
    }
    Ok(rel.to_path_buf())
}

/// Fills `data_dir` (absent or empty) from `file`.
pub fn load(
    data_dir: &Path,
    source_for: impl Fn(&Path) -> anyhow::Result<RootSource>,
    file: &Path,
) -> anyhow::Result<Summary> {
    let existed = data_dir.exists();
    if existed {
        // What an interrupted load left (no destructor ran) is ours to clear.
        for e in std::fs::read_dir(data_dir)
            .with_context(|| format!("reading {}", data_dir.display()))?
            .filter_map(Result::ok)
            .filter(|e| is_staging(&e.file_name().to_string_lossy()))
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
        if !is_empty(data_dir)? {
            bail!(
                "{} is not empty: load a snapshot into a new directory",
                data_dir.display()
            );
        }
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let undo_dir = |e: anyhow::Error| {
        if !existed {
            let _ = std::fs::remove_dir(data_dir);
        }
        e
    };
    // Staged inside the target (one filesystem, so the files move by rename, whatever is
    // mounted there) and removed with everything in it unless the load completes.
    let staging = tempfile::Builder::new()
        .prefix(STAGING)
        .tempdir_in(data_dir)
        .with_context(|| format!("creating a staging directory in {}", data_dir.display()))
        .map_err(undo_dir)?;
    let summary = match fill(staging.path(), &source_for, file) {
        Ok(s) => s,
        Err(e) => {
            drop(staging);
            return Err(undo_dir(e));
        }
    };
    // The directory's lock, as a server takes it: a server started on the directory
    // meanwhile holds it, and then nothing is moved in (nor its lock file touched).
    let lock = coffer_storage_local::DirLock::take(data_dir)
        .with_context(|| format!("{} came into use meanwhile", data_dir.display()))?;
    let moved = move_in(staging.path(), data_dir);
    if moved.is_err() {
        // Ours: the target held no lock file before.
        let _ = std::fs::remove_file(data_dir.join("LOCK"));
        drop(lock);
        drop(staging);
        if !existed {
            let _ = std::fs::remove_dir(data_dir);
        }
    }
    moved.map(|()| summary)
}

/// The prefix of a load's staging directory inside its target.
const STAGING: &str = ".coffer-snapshot-";

fn is_staging(name: &str) -> bool {
    name.starts_with(STAGING)
}

/// Moves what `staging` holds into `data_dir`, which holds nothing else but the lock file;
/// on failure moves back what it moved.
fn move_in(staging: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let stray = std::fs::read_dir(data_dir)?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .find(|n| n != "LOCK" && n != "lost+found" && !is_staging(&n.to_string_lossy()));
    if let Some(n) = stray {
        bail!(
            "{} appeared in {} meanwhile: nothing was loaded",
            n.to_string_lossy(),
            data_dir.display()
        );
    }
    // Listed whole first: the listing does not change while it is read.
    let names: Vec<std::ffi::OsString> = std::fs::read_dir(staging)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    for (i, name) in names.iter().enumerate() {
        if let Err(err) = std::fs::rename(staging.join(name), data_dir.join(name)) {
            for back in &names[..i] {
                let _ = std::fs::rename(data_dir.join(back), staging.join(back));
            }
            return Err(
                anyhow::Error::new(err).context(format!("moving into {}", data_dir.display()))
            );
        }
    }
    Ok(())
}

/// Whether `dir` holds nothing but, at most, the `lost+found` of a fresh filesystem.
fn is_empty(dir: &Path) -> anyhow::Result<bool> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .all(|e| e.file_name() == "lost+found"))
}

/// Creates a file readable by its owner alone: a snapshot and what it holds are as secret
/// as the data directory (`identity.json` may hold the operator's secret).
fn private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Extracts `file` into `staging`, checks every file against the manifest and the root key
/// against the header.
fn fill(
    staging: &Path,
    source_for: &impl Fn(&Path) -> anyhow::Result<RootSource>,
    file: &Path,
) -> anyhow::Result<Summary> {
    let f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut archive = tar::Archive::new(BufReader::new(f));
    let mut header: Option<Header> = None;
    let mut manifest: Option<Manifest> = None;
    let mut seen: Vec<FileEntry> = Vec::new();
    for entry in archive.entries().context("reading the snapshot")? {
        let mut entry = match entry {
            Ok(e) => e,
            Err(_) if header.is_none() => bail!("{} is not a Coffer snapshot", file.display()),
            Err(e) => bail!("the snapshot is damaged: {e}"),
        };
        let name = entry.path()?.into_owned();
        if manifest.is_some() {
            bail!("the snapshot has entries after its manifest");
        }
        if header.is_none() {
            if name != Path::new(HEADER) {
                bail!("{} is not a Coffer snapshot", file.display());
            }
            let h: Header = serde_json::from_reader(entry.by_ref().take(1 << 20))
                .context("the snapshot's header is malformed")?;
            if h.format != FORMAT || h.version != VERSION {
                bail!(
                    "{} is a {} snapshot of version {}; this Coffer reads {FORMAT} version {VERSION}",
                    file.display(),
                    h.format,
                    h.version
                );
            }
            header = Some(h);
            continue;
        }
        if name == Path::new(MANIFEST) {
            manifest = Some(
                serde_json::from_reader(entry.by_ref().take(64 << 20))
                    .context("the snapshot's manifest is malformed")?,
            );
            continue;
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            bail!("the snapshot's entry {} is not a file", name.display());
        }
        let rel = data_path(&name)?;
        let dest = staging.join(&rel);
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d)?;
        }
        let mut out =
            BufWriter::new(private(&dest).with_context(|| format!("creating {}", dest.display()))?);
        let mut reader = Hashing {
            inner: &mut entry,
            hash: Sha256::new(),
            size: 0,
        };
        std::io::copy(&mut reader, &mut out)
            .with_context(|| format!("extracting {}", rel.display()))?;
        let out = out.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()?;
        seen.push(FileEntry {
            path: rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/"),
            size: reader.size,
            sha256: hex(&reader.hash.finalize()[..]),
        });
    }
    let header = header.with_context(|| format!("{} is empty", file.display()))?;
    let manifest = manifest.context("the snapshot has no manifest: it was cut short or damaged")?;
    let mut want = manifest.files.clone();
    want.sort_by(|a, b| a.path.cmp(&b.path));
    seen.sort_by(|a, b| a.path.cmp(&b.path));
    if want != seen {
        let bad = want
            .iter()
            .find(|w| !seen.contains(w))
            .map(|w| w.path.clone())
            .or_else(|| {
                seen.iter()
                    .find(|s| !want.contains(s))
                    .map(|s| s.path.clone())
            })
            .unwrap_or_default();
        bail!("the snapshot is damaged: {bad} does not match its manifest");
    }
    // The key check runs against the staged directory (an HSM's key names are there),
    // before anything reaches the target.
    let source = source_for(staging)?;
    if let RootSource::Local(coffer_crypto::RootKeySource::File(p)) = &source
        && p.starts_with(staging)
        && !p.exists()
    {
        bail!(
            "the snapshot's key material is wrapped under root key {}: give that key (--root-key-file or COFFER_ROOT_KEY)",
            header.root_key_fingerprint
        );
    }
    let found = fingerprint(&source, staging).with_context(|| {
        format!(
            "the snapshot's key material is wrapped under root key {}",
            header.root_key_fingerprint
        )
    })?;
    if found != header.root_key_fingerprint {
        bail!(
            "the snapshot was made under root key {}, not the one given ({found}): give that key (--root-key-file or COFFER_ROOT_KEY)",
            header.root_key_fingerprint
        );
    }
    Ok(Summary {
        files: seen.len(),
        bytes: seen.iter().map(|f| f.size).sum(),
        root_key_fingerprint: found,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_key_files_the_lock_and_shm_stay_out() {
        let names = vec!["root.key".to_owned(), "keys/mine.key".to_owned()];
        for rel in [
            "LOCK",
            "meta.sqlite-shm",
            "root.key",
            "root.key.next",
            "root.key.retired-3f2a9c01",
            "keys/mine.key",
            "keys/mine.key.retired-00",
        ] {
            assert!(excluded(rel, &names), "{rel}");
        }
        for rel in [
            "meta.sqlite",
            "meta.sqlite-wal",
            "identity.json",
            "blobs/ab/cd",
            "root.keyring",
        ] {
            assert!(!excluded(rel, &names), "{rel}");
        }
    }

    #[test]
    fn entries_outside_the_data_directory_are_refused() {
        assert!(data_path(Path::new("data/blobs/x")).is_ok());
        for bad in ["data", "data/../x", "other/x", "/data/x", "data/a/../../x"] {
            assert!(data_path(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
