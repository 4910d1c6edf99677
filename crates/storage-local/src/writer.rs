//! Group commit: one thread owns the write connection and commits every write that is
//! waiting as one transaction, so N concurrent small PUTs cost one WAL fsync, not N.
//!
//! Each write runs in its own SAVEPOINT; a write that fails is rolled back alone and the
//! others in the batch still commit. A caller hears back only after COMMIT returned, so an
//! `Ok` is durable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

use rusqlite::Connection;
use tokio::sync::oneshot;

use coffer_storage::{Error, Result};

/// Most writes folded into one transaction; bounds the latency one fsync adds to a batch.
const MAX_BATCH: usize = 512;

type Completion = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Completion + Send>;

pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub fn start(conn: Connection) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("coffer-meta-writer".into())
            .spawn(move || run(&conn, &rx))
            .expect("spawning the metadata writer thread");
        Self { tx }
    }

    /// Runs `f` inside the next group transaction and returns its result once committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn: &Connection| {
            let result = match conn.execute_batch("SAVEPOINT w") {
                Ok(()) => {
                    let r = f(conn);
                    let end = if r.is_ok() {
                        "RELEASE w"
                    } else {
                        "ROLLBACK TO w; RELEASE w"
                    };
                    match conn.execute_batch(end) {
                        Ok(()) => r,
                        Err(e) => Err(crate::error::backend(e)),
                    }
                }
                Err(e) => Err(crate::error::backend(e)),
            };
            Box::new(move |commit: std::result::Result<(), String>| {
                let outcome = match commit {
                    Ok(()) => result,
                    Err(e) => Err(Error::Backend(format!("commit failed: {e}"))),
                };
                // The caller may have gone away (client hung up); the write stands anyway.
                let _ = done_tx.send(outcome);
            })
        });
        self.tx
            .send(job)
            .map_err(|_| Error::Backend("metadata writer has stopped".into()))?;
        done_rx
            .await
            .map_err(|_| Error::Backend("metadata writer dropped a write".into()))?
    }
}

/// How often the WAL is copied back into the database.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
/// Past this size the WAL is rewound even if that briefly holds up the writer.
const WAL_LIMIT: u64 = 64 << 20;

/// Checkpoints the WAL beside the writer. Normally PASSIVE (never blocks anyone); under
/// sustained writes a passive checkpoint never gets to rewind the WAL, so once it passes
/// [`WAL_LIMIT`] a RESTART checkpoint waits for the writer's current batch, copies
/// everything and lets the next batch start the WAL from the beginning.
///
/// When `scrub` is set (a plaintext object was deleted or replaced), the next checkpoint
/// is TRUNCATE: it copies every frame into the database, whose freed pages
/// `secure_delete` has zeroed, and truncates the WAL to nothing, so that no old page
/// image holding the freed bytes is left in either file. The flag is cleared only when a
/// TRUNCATE completed; a busy one is tried again at the next tick. The thread ends with
/// the process.
pub fn start_checkpointer(conn: Connection, wal_path: std::path::PathBuf, scrub: Arc<AtomicBool>) {
    let spawned = thread::Builder::new()
        .name("coffer-meta-checkpoint".into())
        .spawn(move || {
            loop {
                thread::sleep(CHECKPOINT_INTERVAL);
                let wal_len = std::fs::metadata(&wal_path).map(|m| m.len()).unwrap_or(0);
                let mode = if scrub.swap(false, Ordering::AcqRel) {
                    "TRUNCATE"
                } else if wal_len > WAL_LIMIT {
                    "RESTART"
                } else {
                    "PASSIVE"
                };
                // (busy, frames in the log, frames checkpointed); busy = 1 means the
                // checkpoint could not finish.
                let done = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                    r.get::<_, i64>(0)
                });
                match done {
                    Ok(0) => {}
                    Ok(_) if mode == "TRUNCATE" => scrub.store(true, Ordering::Release),
                    Ok(_) => {}
                    Err(e) => {
                        if mode == "TRUNCATE" {
                            scrub.store(true, Ordering::Release);
                        }
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the WAL checkpoint thread");
    }
}

fn run(conn: &Connection, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let msg = e.to_string();
            for job in batch {
                // Run nothing: answer every caller with the failure.
                drop(job);
                tracing::error!(error = %msg, "cannot begin metadata transaction");
            }
            continue;
        }
        let completions: Vec<Completion> = batch.into_iter().map(|job| job(conn)).collect();
        let commit = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for c in completions {
            c(commit.clone());
        }
    }
}
