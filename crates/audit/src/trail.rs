//! The trail on disk: append-only, rotated files under `DATA_DIR/audit/`, each record
//! chained to the one before, each sealed file covered by a signed digest chained to the
//! digest before, like CloudTrail's log file integrity validation.
//!
//! Format (see `docs/formats.md`): `trail-NNNNNNNN.jsonl` holds one line per record,
//! `{"sequence":N,"previousHash":P,"hash":H,"record":R}` where `R` is the CloudTrail
//! record's JSON and `H = hex(SHA-256("N\nP\nR"))`; sequences run on across files, the
//! first `P` is 64 zeros. When a file is sealed (size, age, or shutdown)
//! `trail-NNNNNNNN.digest.json` records the file's SHA-256, its first and last sequence
//! and last hash, the SHA-256 of the previous digest file, and a signature by a key the
//! KMS holds ([`Signer`]). So modifying, deleting, inserting or reordering a record breaks
//! a hash or a sequence; deleting, replacing or reordering files breaks the digest chain.
//!
//! Durability: one writer thread appends; a record that must be durable before its
//! response (management calls) is acknowledged after `fdatasync`; everything else is
//! synced within [`Config::sync_every`] (one second by default).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::record::Record;
use crate::{Event, Sink};

mod read;
pub use read::{node_trails, read_deployment, read_file, read_records, verify};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// How long the writer pauses after a batch that nobody waits on.
const BATCH_PAUSE: Duration = Duration::from_millis(2);
/// Records waiting for the writer; senders wait when it is full.
const QUEUE: usize = 65_536;

/// Signs digests with a key the KMS holds.
pub trait Signer: Send + Sync + 'static {
    /// The signature of `data` (text, naming the key version it used).
    fn sign(&self, data: &[u8]) -> Result<String, String>;
    fn verify(&self, data: &[u8], signature: &str) -> Result<bool, String>;
}

#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    pub region: String,
    /// The operator's account: records of unauthenticated calls are filed under it.
    pub operator_account: String,
    pub rotate_bytes: u64,
    pub rotate_after: Duration,
    pub sync_every: Duration,
    /// `false` only to measure what the audit path costs (`scripts/bench-audit`): then
    /// nothing is recorded.
    pub enabled: bool,
    /// Told the number of each file once it is sealed (log file delivery).
    pub sealed: Option<tokio::sync::mpsc::UnboundedSender<u64>>,
    /// The nodes of a scale-out deployment write a trail each, in subdirectories of one
    /// directory they share: then this is that directory (`dir` is one of its
    /// subdirectories), and [`Trail::records`] reads every node's trail.
    pub deployment: Option<PathBuf>,
}

impl Config {
    pub fn new(dir: PathBuf, region: &str, operator_account: &str) -> Self {
        Self {
            dir,
            region: region.to_owned(),
            operator_account: operator_account.to_owned(),
            rotate_bytes: 16 << 20,
            rotate_after: Duration::from_secs(3600),
            sync_every: Duration::from_secs(1),
            enabled: true,
            sealed: None,
            deployment: None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Line<'a> {
    sequence: u64,
    #[serde(rename = "previousHash")]
    previous_hash: String,
    hash: String,
    #[serde(borrow)]
    record: &'a serde_json::value::RawValue,
}

/// A sealed file's digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    pub digest_file: String,
    pub file_sha256: String,
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub last_record_hash: String,
    pub previous_digest_sha256: String,
    pub digest_end_time: String,
    pub signature_algorithm: String,
    pub signature: String,
}

impl Digest {
    fn signed_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.digest_file,
            self.file_sha256,
            self.first_sequence,
            self.last_sequence,
            self.last_record_hash,
            self.previous_digest_sha256,
            self.digest_end_time
        )
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256(b: &[u8]) -> String {
    hex(&coffer_crypto::sha256(b))
}

fn line_hash(seq: u64, prev: &str, raw: &str) -> String {
    sha256(format!("{seq}\n{prev}\n{raw}").as_bytes())
}

fn file_name(n: u64) -> String {
    format!("trail-{n:08}.jsonl")
}

fn digest_name(n: u64) -> String {
    format!("trail-{n:08}.digest.json")
}

/// The trail files' numbers, ascending.
fn file_numbers(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_prefix("trail-")
            .and_then(|r| r.strip_suffix(".jsonl"))
            .and_then(|n| n.parse().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

enum Msg {
    Records(Vec<String>, Option<oneshot::Sender<()>>, Instant),
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// The trail: a [`Sink`] that writes CloudTrail records.
pub struct Trail {
    tx: SyncSender<Msg>,
    config: Config,
    /// Microseconds the newest batch waited in the queue.
    lag: Arc<AtomicU64>,
    health: Arc<Health>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct Writer {
    config: Config,
    signer: Box<dyn Signer>,
    /// The open trail file; `None` after a seal whose next file could not be created yet
    /// (created before the next write).
    file: Option<File>,
    number: u64,
    seq: u64,
    last_hash: String,
    first_in_file: u64,
    file_bytes: u64,
    opened: Instant,
    previous_digest: String,
    unsynced: bool,
    last_sync: Instant,
    waiters: Vec<oneshot::Sender<()>>,
    lag: Arc<AtomicU64>,
    /// Lines appended but not yet written: one write per batch of messages. After a failed
    /// write they stay here (nothing of them is left in the file) and are written again.
    pending: Vec<u8>,
    /// The open file's length with every written line: where a failed write is cut back to.
    on_disk: u64,
    /// A failed write's cut failed too: the file must be cut back before the next write.
    cut_pending: bool,
    /// Shared with the [`Trail`]: whether the last write succeeded, and what waits unwritten.
    health: Arc<Health>,
}

/// Whether the trail can be written, as the server needs to know before it serves.
#[derive(Debug, Default)]
struct Health {
    failing: AtomicBool,
    unwritten: AtomicU64,
    /// Records not kept because the memory bound was reached.
    dropped: AtomicU64,
}

/// What the trail can take now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writable {
    /// Records are written.
    Yes,
    /// The last write failed (a full disk, say): records wait in memory and are written
    /// once it succeeds again. Calls that must be in the trail before they are answered
    /// cannot be served.
    Failing,
    /// Failing, and the records waiting in memory reached their bound: nothing more can
    /// be recorded.
    Full,
}

/// Most bytes of records kept in memory while the trail cannot be written.
const MAX_UNWRITTEN: u64 = 64 << 20;

/// How often a failed write is tried again.
const RETRY: Duration = Duration::from_millis(250);

/// Most bytes written to the trail at once (whole lines; a longer line goes alone).
const WRITE_PIECE: usize = 1 << 20;

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Trail {
    /// Opens (or creates) the trail in `config.dir`, resuming after the last record; a
    /// torn last line (a crash mid-write, never acknowledged) is cut off.
    pub fn open(config: Config, signer: Box<dyn Signer>) -> std::io::Result<Self> {
        std::fs::create_dir_all(&config.dir)?;
        let numbers = file_numbers(&config.dir)?;
        let (mut number, mut seq, mut last_hash, mut previous_digest) =
            (1u64, 0u64, GENESIS.to_owned(), GENESIS.to_owned());
        if let Some(&last) = numbers.last() {
            let prior = numbers.iter().rev().nth(1).copied();
            let digest_of = |n: u64| -> std::io::Result<Option<(Digest, String)>> {
                let p = config.dir.join(digest_name(n));
                match std::fs::read(&p) {
                    Ok(bytes) => {
                        let d: Digest = serde_json::from_slice(&bytes)
                            .map_err(|e| std::io::Error::other(format!("{}: {e}", p.display())))?;
                        Ok(Some((d, sha256(&bytes))))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                }
            };
            if let Some((d, sha)) = digest_of(last)? {
                // The last file was sealed: start the next one.
                number = last + 1;
                seq = d.last_sequence;
                last_hash = d.last_record_hash;
                previous_digest = sha;
            } else {
                number = last;
                if let Some(p) = prior
                    && let Some((d, sha)) = digest_of(p)?
                {
                    seq = d.last_sequence;
                    last_hash = d.last_record_hash;
                    previous_digest = sha;
                }
                let path = config.dir.join(file_name(last));
                let mut good_len = 0u64;
                let mut text = Vec::new();
                File::open(&path)?.read_to_end(&mut text)?;
                for raw in text.split_inclusive(|b| *b == b'\n') {
                    if raw.last() != Some(&b'\n') {
                        break;
                    }
                    let Ok(line) = serde_json::from_slice::<Line<'_>>(raw) else {
                        break;
                    };
                    seq = line.sequence;
                    last_hash = line.hash.clone();
                    good_len += raw.len() as u64;
                }
                if good_len < text.len() as u64 {
                    tracing::warn!(file = %path.display(), "cutting a torn last record left by a crash");
                    let f = OpenOptions::new().write(true).open(&path)?;
                    f.set_len(good_len)?;
                    f.sync_all()?;
                }
            }
        }
        let path = config.dir.join(file_name(number));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let file_bytes = file.metadata()?.len();
        sync_dir(&config.dir)?;
        let first_in_file = if file_bytes == 0 {
            seq + 1
        } else {
            first_sequence(&path)?.unwrap_or(seq + 1)
        };
        let mut w = Writer {
            config: config.clone(),
            signer,
            file: Some(file),
            number,
            seq,
            last_hash,
            first_in_file,
            file_bytes,
            opened: Instant::now(),
            previous_digest,
            unsynced: false,
            last_sync: Instant::now(),
            waiters: Vec::new(),
            lag: Arc::new(AtomicU64::new(0)),
            pending: Vec::with_capacity(1 << 16),
            on_disk: file_bytes,
            cut_pending: false,
            health: Arc::new(Health::default()),
        };
        let lag = w.lag.clone();
        let health = w.health.clone();
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("coffer-audit".into())
            .spawn(move || w.run(&rx))?;
        Ok(Self {
            tx,
            config,
            lag,
            health,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether records are being written (see [`Writable`]).
    pub fn writable(&self) -> Writable {
        if !self.config.enabled || !self.health.failing.load(Ordering::Relaxed) {
            Writable::Yes
        } else if self.health.unwritten.load(Ordering::Relaxed) >= MAX_UNWRITTEN {
            Writable::Full
        } else {
            Writable::Failing
        }
    }

    /// How long the newest batch of records waited before the writer took it.
    pub fn write_lag(&self) -> Duration {
        Duration::from_micros(self.lag.load(Ordering::Relaxed))
    }

    fn send(&self, records: &[Record], ack: Option<oneshot::Sender<()>>) {
        // Beyond the bound the server refuses every call (the dispatcher); the records of
        // those refusals are counted and logged, not kept.
        if self.writable() == Writable::Full {
            let n = self
                .health
                .dropped
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            if n.is_multiple_of(1000) {
                tracing::error!(
                    dropped = n + records.len() as u64,
                    "the audit trail cannot be written and its memory is full: records of refused calls are not kept"
                );
            }
            return;
        }
        let lines: Vec<String> = records
            .iter()
            .filter_map(|r| serde_json::to_string(r).ok())
            .collect();
        if self
            .tx
            .send(Msg::Records(lines, ack, Instant::now()))
            .is_err()
        {
            tracing::error!("the audit writer has stopped; a record was lost");
        }
    }

    /// Waits until everything queued so far is written (not necessarily synced), so a
    /// reader sees it.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Syncs and seals the open file, and stops the writer.
    pub fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(tx)).is_ok() {
            let _ = rx.blocking_recv();
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }

    /// Every record, newest first: this node's, or with [`Config::deployment`] every
    /// node's.
    pub fn records(&self) -> std::io::Result<Vec<Record>> {
        match &self.config.deployment {
            None => read_records(&self.config.dir),
            Some(root) => read_deployment(root),
        }
    }
}

impl Sink for Trail {
    fn record(&self, event: Event) -> Option<oneshot::Receiver<()>> {
        if !self.config.enabled {
            return None;
        }
        let records = event.records(&self.config.region, &self.config.operator_account);
        if event.needs_durability() {
            let (tx, rx) = oneshot::channel();
            self.send(&records, Some(tx));
            Some(rx)
        } else {
            self.send(&records, None);
            None
        }
    }

    fn service(&self, record: Record) {
        if !self.config.enabled {
            return;
        }
        let (tx, _rx) = oneshot::channel();
        self.send(&[record], Some(tx));
    }
}

fn first_sequence(path: &Path) -> std::io::Result<Option<u64>> {
    let mut r = BufReader::new(File::open(path)?);
    let mut first = String::new();
    r.read_line(&mut first)?;
    Ok(serde_json::from_str::<Line<'_>>(&first)
        .ok()
        .map(|l| l.sequence))
}

impl Writer {
    fn run(&mut self, rx: &Receiver<Msg>) {
        loop {
            let wait = if !self.pending.is_empty() {
                RETRY
            } else if self.unsynced {
                self.config
                    .sync_every
                    .saturating_sub(self.last_sync.elapsed())
            } else {
                Duration::from_secs(1)
            };
            match rx.recv_timeout(wait) {
                Ok(msg) => {
                    if self.handle(msg) {
                        return;
                    }
                    while let Ok(more) = rx.try_recv() {
                        if self.handle(more) {
                            return;
                        }
                    }
                    self.write_pending();
                    if self.waiters.is_empty() {
                        // Let records gather instead of waking this thread for each one
                        // (on a busy server that wake-up is most of what auditing costs).
                        std::thread::sleep(BATCH_PAUSE);
                    } else {
                        self.sync();
                    }
                }
                // Records a failed write left behind are tried again.
                Err(RecvTimeoutError::Timeout) => self.sync(),
                Err(RecvTimeoutError::Disconnected) => {
                    // Dropped without a shutdown: leave the file open for the next start.
                    self.sync();
                    return;
                }
            }
            if self.unsynced && self.last_sync.elapsed() >= self.config.sync_every {
                self.sync();
            }
            if self.seq >= self.first_in_file
                && (self.file_bytes >= self.config.rotate_bytes
                    || self.opened.elapsed() >= self.config.rotate_after)
            {
                self.sync();
                self.seal();
            }
        }
    }

    /// Handles one message; true when the writer should stop.
    fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Records(lines, ack, queued) => {
                let waited = u64::try_from(queued.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.lag.store(waited, Ordering::Relaxed);
                for raw in lines {
                    self.append(&raw);
                }
                if let Some(a) = ack {
                    self.waiters.push(a);
                }
                false
            }
            Msg::Flush(done) => {
                self.write_pending();
                let _ = done.send(());
                false
            }
            Msg::Shutdown(done) => {
                self.sync();
                if !self.pending.is_empty() {
                    tracing::error!(
                        bytes = self.pending.len(),
                        "stopping with audit records that could not be written"
                    );
                }
                self.seal();
                let _ = done.send(());
                true
            }
        }
    }

    fn append(&mut self, raw: &str) {
        let seq = self.seq + 1;
        let hash = line_hash(seq, &self.last_hash, raw);
        let start = self.pending.len();
        let _ = writeln!(
            self.pending,
            "{{\"sequence\":{seq},\"previousHash\":\"{}\",\"hash\":\"{hash}\",\"record\":{raw}}}",
            self.last_hash
        );
        self.file_bytes += (self.pending.len() - start) as u64;
        self.seq = seq;
        self.last_hash = hash;
    }

    /// Writes the batch appended so far, in line-aligned pieces of at most [`WRITE_PIECE`]
    /// bytes. A piece that fails (a full disk) is cut back off the file, so no torn line
    /// stays, and it and the rest are kept to be written again: the chain never has a gap,
    /// and no record is dropped. Whatever space comes back is used a piece at a time.
    fn write_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Err(e) = self.write_pieces() {
            if !self.health.failing.swap(true, Ordering::Relaxed) {
                tracing::error!(error = %e, "cannot append to the audit trail; keeping records in memory and refusing calls that must be recorded first");
            }
            self.health
                .unwritten
                .store(self.pending.len() as u64, Ordering::Relaxed);
            return;
        }
        if self.health.failing.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "the audit trail can be written again; the records kept meanwhile are written"
            );
        }
        self.health.unwritten.store(0, Ordering::Relaxed);
    }

    fn write_pieces(&mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(self.open_current()?);
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        // A failed write may have left part of itself behind, and the cut may have failed
        // too: the file must end where the last written line does before anything follows.
        if self.cut_pending {
            file.set_len(self.on_disk)?;
            self.cut_pending = false;
        }
        while !self.pending.is_empty() {
            let end = if self.pending.len() <= WRITE_PIECE {
                self.pending.len()
            } else {
                self.pending[..WRITE_PIECE]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(self.pending.len(), |i| i + 1)
            };
            if let Err(e) = file.write_all(&self.pending[..end]) {
                self.cut_pending = file.set_len(self.on_disk).is_err();
                return Err(e);
            }
            self.unsynced = true;
            self.on_disk += end as u64;
            self.pending.drain(..end);
        }
        Ok(())
    }

    /// Opens (creating) the trail file currently written.
    fn open_current(&self) -> std::io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.config.dir.join(file_name(self.number)))
    }

    fn sync(&mut self) {
        self.write_pending();
        if !self.pending.is_empty() {
            // Not written: whoever waits for these records to be durable is told so (its
            // sender dropped), and answers an error.
            self.waiters.clear();
            return;
        }
        if self.unsynced {
            if let Some(file) = &self.file
                && let Err(e) = file.sync_data()
            {
                tracing::error!(error = %e, "cannot sync the audit trail");
                return;
            }
            self.unsynced = false;
        }
        self.last_sync = Instant::now();
        for w in self.waiters.drain(..) {
            let _ = w.send(());
        }
    }

    /// Writes the open file's digest and starts the next file (nothing to do for an
    /// empty file).
    fn seal(&mut self) {
        // A digest describes the file's records: none may still be waiting to be written.
        if self.seq < self.first_in_file || !self.pending.is_empty() {
            return;
        }
        if let Err(e) = self.try_seal() {
            tracing::error!(error = %e, "cannot seal the audit trail file");
        }
    }

    fn try_seal(&mut self) -> std::io::Result<()> {
        let name = file_name(self.number);
        let bytes = std::fs::read(self.config.dir.join(&name))?;
        let mut d = Digest {
            digest_file: name,
            file_sha256: sha256(&bytes),
            first_sequence: self.first_in_file,
            last_sequence: self.seq,
            last_record_hash: self.last_hash.clone(),
            previous_digest_sha256: self.previous_digest.clone(),
            digest_end_time: Record::time(time::OffsetDateTime::now_utc()),
            signature_algorithm: "HMAC-SHA256".into(),
            signature: String::new(),
        };
        d.signature = self
            .signer
            .sign(d.signed_text().as_bytes())
            .map_err(std::io::Error::other)?;
        let json = serde_json::to_vec_pretty(&d).map_err(std::io::Error::other)?;
        let final_path = self.config.dir.join(digest_name(self.number));
        let tmp = self
            .config
            .dir
            .join(format!("{}.tmp", digest_name(self.number)));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &final_path)?;
        // The file is sealed from here on, whatever fails next: the writer moves to the next
        // file at once (created now, or before the next write if that fails), so no record
        // ever lands after a digest.
        if let Some(tx) = &self.config.sealed {
            let _ = tx.send(self.number);
        }
        self.previous_digest = sha256(&json);
        self.number += 1;
        self.first_in_file = self.seq + 1;
        self.file_bytes = 0;
        self.on_disk = 0;
        self.cut_pending = false;
        self.opened = Instant::now();
        self.file = None;
        self.file = Some(self.open_current()?);
        sync_dir(&self.config.dir)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TestSigner;

    impl Signer for TestSigner {
        fn sign(&self, data: &[u8]) -> Result<String, String> {
            Ok(format!(
                "v1:{}",
                hex(&coffer_crypto::hmac_sha256(b"k", data))
            ))
        }
        fn verify(&self, data: &[u8], signature: &str) -> Result<bool, String> {
            Ok(self.sign(data)? == signature)
        }
    }

    fn config(dir: &Path) -> Config {
        Config::new(dir.to_owned(), "us-east-1", "111111111111")
    }

    fn record(name: &str) -> Record {
        crate::service_event(
            "us-east-1",
            "kms.amazonaws.com",
            name,
            "111111111111",
            crate::record::Resource {
                arn: "arn:aws:kms:us-east-1:111111111111:key/k".into(),
                account_id: None,
                kind: "AWS::KMS::Key".into(),
            },
            serde_json::json!({}),
        )
    }

    fn write(dir: &Path, names: &[&str], seal_each: bool) {
        for n in names {
            let t = Trail::open(config(dir), Box::new(TestSigner)).expect("open");
            t.send(&[record(n)], None);
            if seal_each {
                t.shutdown();
            } else {
                let (tx, rx) = oneshot::channel();
                t.send(&[], Some(tx));
                let _ = rx.blocking_recv();
                drop(t);
            }
        }
    }

    #[test]
    fn an_untouched_trail_verifies_across_restarts_and_files() {
        let d = tempfile::tempdir().expect("tmp");
        write(d.path(), &["A", "B", "C"], true);
        write(d.path(), &["D"], false);
        assert_eq!(
            verify(d.path(), &TestSigner).expect("verify"),
            Vec::<String>::new()
        );
        let names: Vec<String> = read_records(d.path())
            .expect("read")
            .into_iter()
            .map(|r| r.event_name)
            .collect();
        assert_eq!(names, ["D", "C", "B", "A"]);
    }

    #[test]
    fn tampering_is_found_and_named() {
        let d = tempfile::tempdir().expect("tmp");
        write(d.path(), &["A", "B", "C"], true);
        // Modify a record inside a sealed file.
        let f1 = d.path().join(file_name(2));
        let text = std::fs::read_to_string(&f1).expect("read");
        std::fs::write(&f1, text.replace("\"B\"", "\"X\"")).expect("write");
        let found = verify(d.path(), &TestSigner).expect("verify");
        assert!(
            found
                .iter()
                .any(|f| f.contains("trail-00000002.jsonl line 1") && f.contains("modified")),
            "{found:?}"
        );
        // Delete a whole file and its digest.
        std::fs::write(&f1, text).expect("restore");
        std::fs::remove_file(d.path().join(file_name(2))).expect("rm");
        std::fs::remove_file(d.path().join(digest_name(2))).expect("rm");
        let found = verify(d.path(), &TestSigner).expect("verify");
        assert!(
            found
                .iter()
                .any(|f| f.contains("trail-00000002.jsonl: missing")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|f| f.contains("digest chain is broken")),
            "{found:?}"
        );
    }
}
