//! Reading the trail back: the records of a file, a trail or a deployment's trails, and
//! `verify`, which checks a trail's chain of records and digests and reports what it finds.

use std::path::{Path, PathBuf};

use super::{
    Digest, GENESIS, Line, Signer, digest_name, file_name, file_numbers, line_hash, sha256,
};
use crate::record::Record;

/// The records of one trail file, oldest first, and its digest's text (if sealed).
pub fn read_file(dir: &Path, number: u64) -> std::io::Result<(Vec<Record>, Option<String>)> {
    let text = std::fs::read(dir.join(file_name(number)))?;
    let records = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<Line<'_>>(l).ok())
        .filter_map(|l| serde_json::from_str::<Record>(l.record.get()).ok())
        .collect();
    let digest = std::fs::read_to_string(dir.join(digest_name(number))).ok();
    Ok((records, digest))
}

/// Every record of the trail in `dir`, newest first (lines that do not parse are
/// skipped: `verify` is what reports them).
pub fn read_records(dir: &Path) -> std::io::Result<Vec<Record>> {
    let mut out = Vec::new();
    for n in file_numbers(dir)?.into_iter().rev() {
        let text = std::fs::read(dir.join(file_name(n)))?;
        let mut in_file: Vec<Record> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice::<Line<'_>>(l).ok())
            .filter_map(|l| serde_json::from_str::<Record>(l.record.get()).ok())
            .collect();
        in_file.reverse();
        out.extend(in_file);
    }
    Ok(out)
}

/// The trails of a deployment's nodes: the subdirectories of `root`, by name.
pub fn node_trails(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let path = entry?.path();
        if path.is_dir() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Every record of every node's trail under `root`, newest first (a node's records in
/// their own order; nodes ordered by name among records of the same time).
pub fn read_deployment(root: &Path) -> std::io::Result<Vec<Record>> {
    let mut all = Vec::new();
    for dir in node_trails(root)? {
        all.extend(read_records(&dir)?);
    }
    // Stable: the order within a node and between nodes is kept for equal times.
    all.sort_by_cached_key(|r| std::cmp::Reverse(r.parsed_time()));
    Ok(all)
}

/// Checks the whole trail in `dir`; returns one finding per problem, naming the file and
/// record. An untouched trail has none.
pub fn verify(dir: &Path, signer: &dyn Signer) -> std::io::Result<Vec<String>> {
    let mut findings = Vec::new();
    let numbers = file_numbers(dir)?;
    let mut expected_seq = 1u64;
    let mut prev_hash = GENESIS.to_owned();
    let mut prev_digest = GENESIS.to_owned();
    let mut expected_number = numbers.first().copied().unwrap_or(1);
    if expected_number != 1 {
        findings.push(format!(
            "{}: missing (the trail starts at {})",
            file_name(1),
            file_name(expected_number)
        ));
        expected_number = 1;
    }
    for (i, &n) in numbers.iter().enumerate() {
        let name = file_name(n);
        for missing in expected_number..n {
            findings.push(format!("{}: missing (deleted file)", file_name(missing)));
        }
        expected_number = n + 1;
        let bytes = std::fs::read(dir.join(&name))?;
        let first_in_file = expected_seq;
        for (ln, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            if raw.is_empty() {
                continue;
            }
            let at = format!("{name} line {}", ln + 1);
            let line = match serde_json::from_slice::<Line<'_>>(raw) {
                Ok(l) => l,
                Err(e) => {
                    findings.push(format!("{at}: not a trail record ({e})"));
                    continue;
                }
            };
            let at = format!("{at} (sequence {})", line.sequence);
            if line.sequence != expected_seq {
                if line.sequence > expected_seq {
                    findings.push(format!(
                        "{at}: records {expected_seq}..{} are missing (deleted) or out of order",
                        line.sequence - 1
                    ));
                } else {
                    findings.push(format!(
                        "{at}: sequence {} repeats or goes back (inserted or reordered record; expected {expected_seq})",
                        line.sequence
                    ));
                }
            }
            if line.previous_hash != prev_hash {
                findings.push(format!(
                    "{at}: does not follow the record before it (inserted, deleted or reordered)"
                ));
            }
            if line_hash(line.sequence, &line.previous_hash, line.record.get()) != line.hash {
                findings.push(format!("{at}: modified (hash mismatch)"));
            }
            expected_seq = line.sequence + 1;
            prev_hash = line.hash;
        }
        let dpath = dir.join(digest_name(n));
        match std::fs::read(&dpath) {
            Ok(dbytes) => {
                let dname = digest_name(n);
                match serde_json::from_slice::<Digest>(&dbytes) {
                    Err(e) => findings.push(format!("{dname}: unreadable ({e})")),
                    Ok(d) => {
                        if d.file_sha256 != sha256(&bytes) {
                            findings.push(format!(
                                "{name}: does not match its digest (the file was modified)"
                            ));
                        }
                        if d.digest_file != name
                            || d.first_sequence != first_in_file
                            || d.last_sequence + 1 != expected_seq
                            || d.last_record_hash != prev_hash
                        {
                            findings.push(format!(
                                "{dname}: does not describe {name} (records {}..{} expected, file has {}..{})",
                                d.first_sequence,
                                d.last_sequence,
                                first_in_file,
                                expected_seq.saturating_sub(1)
                            ));
                        }
                        if d.previous_digest_sha256 != prev_digest {
                            findings.push(format!(
                                "{dname}: the digest chain is broken (a digest before it was changed or removed)"
                            ));
                        }
                        match signer.verify(d.signed_text().as_bytes(), &d.signature) {
                            Ok(true) => {}
                            Ok(false) => findings.push(format!("{dname}: bad signature")),
                            Err(e) => {
                                findings.push(format!("{dname}: signature not checkable ({e})"))
                            }
                        }
                    }
                }
                prev_digest = sha256(&dbytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if i + 1 != numbers.len() {
                    findings.push(format!(
                        "{name}: has no digest but is not the newest file (digest deleted)"
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(findings)
}
