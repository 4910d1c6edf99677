//! Group commit for PutObject, the PostgreSQL store's answer to the embedded store's
//! group-committing writer: concurrent writes of new current versions are taken in
//! batches, and each batch costs the database two statements, however many writes it
//! holds. A statement round (parse, snapshot, executor, commit) costs the server far
//! more than the row work of one write, so batching is what lets one node approach the
//! embedded store's small-object write rate (`scripts/bench-scale-out`).
//!
//! For a batch, one statement reads every key's current version and its bucket's
//! versioning, without locks; each write is then decided as the locked path would
//! decide it ([`decide`]); and one call of `coffer_put_many` (schema version 5) applies
//! the decisions, each under its key's locks and only if the bucket's versioning and the
//! key's current version (its `xmin`) are still what was read, in one transaction. The
//! writes are applied in the order of their lock keys, so that two batches on two nodes
//! take their locks in one order and cannot deadlock.
//!
//! What a batch does not apply (a busy key, the key moved since the read, a suspended
//! bucket, a precondition or an Object Lock refusal, a batch the server refused) changed
//! nothing: its writer takes the locked path ([`crate::versions::put_version`] in a
//! transaction of its own), which waits for the lock and decides again under it. A
//! connection lost while the batch was applied leaves its outcome unknown: those
//! writers get an error, as a write of their own would, and are not written again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use deadpool_postgres::Pool;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::Row;

use coffer_storage::{
    Authority, Error, Fate, NewVersion, ObjectRecord, Precondition, Result, Versioning, Written,
};

use crate::rows::*;
use crate::versions::{current_from, next_seq};
use crate::{backend, ms};

/// Writes applied per statement, at most.
const MAX_BATCH: usize = 64;

/// Batches in flight at once: while one is in the database, the next one gathers.
const WORKERS: usize = 2;

/// One write waiting for its batch; answered with its `Written`, or `None` for the
/// locked path.
struct Job {
    object: ObjectRecord,
    precondition: Precondition,
    reply: oneshot::Sender<Result<Option<Written>>>,
}

/// The writers' side of the batches.
#[derive(Clone)]
pub(crate) struct Batcher {
    jobs: mpsc::UnboundedSender<Job>,
    stats: Arc<Stats>,
}

/// How many batches were applied, and how many writes they applied in all.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) batches: AtomicU64,
    pub(crate) writes: AtomicU64,
}

impl Batcher {
    /// Starts the workers; they end when the last `Batcher` is dropped.
    pub(crate) fn start(pool: Pool, schema: Arc<str>) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        let stats = Arc::new(Stats::default());
        for _ in 0..WORKERS {
            let (rx, pool, schema, stats) =
                (rx.clone(), pool.clone(), schema.clone(), stats.clone());
            tokio::spawn(async move {
                let mut hints = Hints::new();
                while let Some(batch) = gather(&rx).await {
                    run(&pool, &schema, &stats, &mut hints, batch).await;
                }
            });
        }
        Self { jobs, stats }
    }

    /// (batches applied, writes they applied).
    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.stats.batches.load(Ordering::Relaxed),
            self.stats.writes.load(Ordering::Relaxed),
        )
    }

    /// Writes `object` as the key's new current version in the next batch. `None`: the
    /// batch did not apply it, and changed nothing for it; take the locked path.
    pub(crate) async fn put(
        &self,
        object: &ObjectRecord,
        precondition: &Precondition,
    ) -> Result<Option<Written>> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            object: object.clone(),
            precondition: precondition.clone(),
            reply,
        };
        if self.jobs.send(job).is_err() {
            return Ok(None);
        }
        answer.await.unwrap_or(Ok(None))
    }
}

/// The next batch: the first job to come, and whatever else is waiting then.
async fn gather(rx: &Mutex<mpsc::UnboundedReceiver<Job>>) -> Option<Vec<Job>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Every key's bucket versioning, current version and its `xmin` (the columns of
/// [`current_from`], then `xmin` at 11), and the job's position in the batch (12,
/// 1-based). No row for a job whose bucket does not exist. (Only `key` needs its table
/// named: the other columns are the lookup's alone.) Each key is one index lookup
/// (`OFFSET 0` keeps the planner from turning the lookups into a join that scans the
/// table, which a plan made while the table was small would do).
static READ: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT b.versioning, o.{OBJECT_COLUMNS}, o.xmin, i.ord
         FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS i(bucket, key, ord)
         JOIN LATERAL (SELECT versioning FROM buckets WHERE name = i.bucket OFFSET 0) b ON true
         LEFT JOIN LATERAL (
             SELECT {OBJECT_COLUMNS}, xmin::text AS xmin FROM objects
             WHERE bucket = i.bucket AND key = i.key OFFSET 0
         ) o ON true"
    )
});

const APPLY: &str = "SELECT coffer_put_many($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                     $13, $14, $15, $16, $17)";

async fn run(pool: &Pool, schema: &str, stats: &Stats, hints: &mut Hints, batch: Vec<Job>) {
    let answers = match apply(pool, schema, hints, &batch).await {
        Ok(answers) => answers,
        Err(e) => {
            // Nothing of the batch was applied: every writer takes the locked path,
            // which reports the failure if it persists.
            tracing::warn!(error = %e, writes = batch.len(), "a batch of writes failed; retrying them one by one");
            batch.iter().map(|_| Ok(None)).collect()
        }
    };
    let applied = answers.iter().filter(|a| matches!(a, Ok(Some(_)))).count();
    if applied > 0 {
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.writes.fetch_add(applied as u64, Ordering::Relaxed);
    }
    for (job, answer) in batch.into_iter().zip(answers) {
        let _ = job.reply.send(answer);
    }
}

/// Per bucket, what the last batches saw: its versioning, and whether its writes were
/// mostly of keys that did not exist yet.
type Hints = HashMap<String, (Versioning, bool)>;

/// Decides, applies and answers a batch; returns each job's answer, in order. `Err`
/// only if nothing of the batch was applied.
///
/// Writes to buckets whose recent writes were mostly of new keys are first decided as
/// writes of a new key under the bucket's last seen versioning, and applied without a
/// read: `coffer_put` refuses any whose key exists or whose bucket's versioning changed,
/// and those, with the rest, are read, decided and applied ([`read_round`]). A workload
/// of new keys costs one statement per batch; one of overwrites, two.
async fn apply(
    pool: &Pool,
    schema: &str,
    hints: &mut Hints,
    batch: &[Job],
) -> Result<Vec<Result<Option<Written>>>> {
    let client = pool
        .get()
        .await
        .map_err(|e| Error::Backend(e.to_string()))?;
    let mut answers: Vec<Result<Option<Written>>> = batch.iter().map(|_| Ok(None)).collect();
    let mut counts = NewKeys::new();
    let mut guessed = Vec::new();
    let mut rest = Vec::new();
    for (i, job) in batch.iter().enumerate() {
        let guess = match hints.get(&job.object.bucket) {
            Some((versioning, true)) => decide(
                schema,
                &job.object,
                &job.precondition,
                (*versioning, None, None),
            ),
            _ => Ok(None),
        };
        match guess {
            Ok(Some(d)) => guessed.push((i, d)),
            Ok(None) => rest.push(i),
            Err(e) => answers[i] = Err(e),
        }
    }
    if !guessed.is_empty() {
        let applied = match write(&client, &mut guessed).await {
            Ok(applied) => applied,
            // Refused: nothing applied; decided again below.
            Err(Failed::Refused(_)) => vec![false; guessed.len()],
            Err(Failed::Unknown(e)) => return Ok(unknown(answers, &guessed, &e)),
        };
        for ((i, d), ok) in guessed.into_iter().zip(applied) {
            if ok {
                count(&mut counts, &batch[i].object.bucket, true);
                answers[i] = Ok(Some(d.written));
            } else {
                rest.push(i);
            }
        }
        rest.sort_unstable();
    }
    if !rest.is_empty() {
        // Whatever fails here applied nothing of `rest` (an unknown outcome is answered
        // inside): those writers take the locked path; the guesses applied stand.
        let read = read_round(
            &client,
            schema,
            batch,
            &rest,
            &mut answers,
            &mut counts,
            hints,
        );
        if let Err(e) = read.await {
            tracing::warn!(error = %e, writes = rest.len(), "a batch of writes failed; retrying them one by one");
            for &i in &rest {
                answers[i] = Ok(None);
            }
        }
    }
    for (bucket, (versioning, new, of)) in counts {
        match versioning {
            Some(v) => {
                hints.insert(bucket.to_owned(), (v, 2 * new > of));
            }
            None => {
                if let Some(hint) = hints.get_mut(bucket) {
                    hint.1 = 2 * new > of;
                }
            }
        }
    }
    Ok(answers)
}

/// Per bucket of a batch: the versioning read (if it was), and how many of its writes
/// were of new keys, of how many.
type NewKeys<'a> = HashMap<&'a str, (Option<Versioning>, usize, usize)>;

fn count<'a>(counts: &mut NewKeys<'a>, bucket: &'a str, new: bool) {
    let c = counts.entry(bucket).or_default();
    c.1 += usize::from(new);
    c.2 += 1;
}

/// Reads the keys of `rest`, decides their writes and applies them, answering each.
async fn read_round<'a>(
    client: &deadpool_postgres::Client,
    schema: &str,
    batch: &'a [Job],
    rest: &[usize],
    answers: &mut [Result<Option<Written>>],
    counts: &mut NewKeys<'a>,
    hints: &mut Hints,
) -> Result<()> {
    let buckets: Vec<&str> = rest
        .iter()
        .map(|&i| batch[i].object.bucket.as_str())
        .collect();
    let keys: Vec<&[u8]> = rest
        .iter()
        .map(|&i| batch[i].object.key.as_bytes())
        .collect();
    let mut found: Vec<Option<Row>> = rest.iter().map(|_| None).collect();
    for r in rows(client, &READ, &[&buckets, &keys]).await? {
        let ord: i64 = col(&r, 12)?;
        if let Some(slot) = usize::try_from(ord - 1).ok().and_then(|i| found.get_mut(i)) {
            *slot = Some(r);
        }
    }
    let mut decided = Vec::new();
    for (&i, found) in rest.iter().zip(found) {
        let job = &batch[i];
        let xmin: Option<String> = match &found {
            Some(r) => col(r, 11)?,
            None => None,
        };
        let state = match current_from(&job.object.bucket, found) {
            Ok((versioning, current)) => {
                count(counts, &job.object.bucket, current.is_none());
                if let Some(c) = counts.get_mut(job.object.bucket.as_str()) {
                    c.0 = Some(versioning);
                }
                (versioning, current, xmin)
            }
            Err(e) => {
                // The bucket is gone: forget what was known of it.
                hints.remove(&job.object.bucket);
                answers[i] = Err(e);
                continue;
            }
        };
        match decide(schema, &job.object, &job.precondition, state) {
            Ok(Some(d)) => decided.push((i, d)),
            Ok(None) => {}
            Err(e) => answers[i] = Err(e),
        }
    }
    if decided.is_empty() {
        return Ok(());
    }
    let applied = match write(client, &mut decided).await {
        Ok(applied) => applied,
        // The server refused the statement: nothing of it was applied.
        Err(Failed::Refused(e)) => return Err(e),
        Err(Failed::Unknown(e)) => {
            for (i, _) in &decided {
                answers[*i] = Err(unknown_error(&e));
            }
            return Ok(());
        }
    };
    for ((i, d), ok) in decided.into_iter().zip(applied) {
        if ok {
            answers[i] = Ok(Some(d.written));
        }
    }
    Ok(())
}

/// Why `coffer_put_many` failed.
enum Failed {
    /// The server refused the statement: its transaction rolled back, nothing of it was
    /// applied.
    Refused(Error),
    /// The connection failed: the batch may or may not have committed.
    Unknown(Error),
}

/// Applies decisions (sorted here, into lock-key order); which were applied.
async fn write(
    client: &deadpool_postgres::Client,
    decided: &mut [(usize, Decision)],
) -> std::result::Result<Vec<bool>, Failed> {
    decided.sort_by_key(|(_, d)| d.locks);
    let p = Params::of(decided.iter().map(|(_, d)| d));
    let apply = client
        .prepare_cached(APPLY)
        .await
        .map_err(|e| Failed::Refused(backend(e)))?;
    let row = client
        .query_one(
            &apply,
            &[
                &p.bucket,
                &p.key,
                &p.lock_bucket,
                &p.lock_key,
                &p.versioning,
                &p.xmin,
                &p.keep,
                &p.freed,
                &p.refs,
                &p.size,
                &p.etag,
                &p.mtime_ms,
                &p.meta,
                &p.extents,
                &p.inline,
                &p.version_id,
                &p.seq,
            ],
        )
        .await
        .map_err(|e| {
            if e.as_db_error().is_some() {
                Failed::Refused(backend(e))
            } else {
                Failed::Unknown(backend(e))
            }
        })?;
    row.try_get(0).map_err(|e| Failed::Unknown(backend(e)))
}

/// The answers of writes whose batch's outcome is unknown: each is told so, as a write
/// of its own would be, rather than written again.
fn unknown(
    mut answers: Vec<Result<Option<Written>>>,
    decided: &[(usize, Decision)],
    e: &Error,
) -> Vec<Result<Option<Written>>> {
    for (i, _) in decided {
        answers[*i] = Err(unknown_error(e));
    }
    answers
}

fn unknown_error(e: &Error) -> Error {
    Error::OutcomeUnknown(format!(
        "the connection to PostgreSQL failed while a batch of writes was committed: {e}"
    ))
}

/// What the locked path would do for one write, decided from an unlocked read:
/// `coffer_put`'s arguments, and the answer once it is applied.
struct Decision {
    /// The bucket's and the key's advisory locks.
    locks: (i64, i64),
    bucket: String,
    key: Vec<u8>,
    versioning: Versioning,
    xmin: Option<String>,
    /// Keep the current version as noncurrent.
    keep: bool,
    freed: Vec<String>,
    refs: Vec<String>,
    size: i64,
    etag: String,
    mtime_ms: i64,
    meta: String,
    extents: String,
    inline: Option<Vec<u8>>,
    version_id: String,
    seq: i64,
    written: Written,
}

/// Decides a write from its bucket's versioning, its key's current version and that
/// row's `xmin` (what [`READ`] found, or a guess: none), as `put_version` would under the
/// lock. `None` for what only the locked path decides: a suspended bucket (its null
/// version may be noncurrent), a precondition that fails now, a version whose Object
/// Lock forbids replacing it (each decided again, and answered, under the lock).
fn decide(
    schema: &str,
    object: &ObjectRecord,
    precondition: &Precondition,
    (versioning, current, xmin): (Versioning, Option<ObjectRow>, Option<String>),
) -> Result<Option<Decision>> {
    let (bucket, key) = (object.bucket.as_str(), object.key.as_str());
    if versioning == Versioning::Suspended {
        return Ok(None);
    }
    let current_etag = current
        .as_ref()
        .filter(|r| !r.marker)
        .map(|r| r.etag.as_str());
    if precondition.check(current_etag, bucket, key).is_err() {
        return Ok(None);
    }
    let candidate = object.version_id.clone().unwrap_or_default();
    let plan = NewVersion::plan(
        versioning,
        &candidate,
        current.as_ref().map(|r| version_id(&r.version_id)),
    );
    if plan.replaces_noncurrent_null {
        return Ok(None);
    }
    let seq = next_seq(current.as_ref().map(|r| r.seq));
    let keep_blobs = blob_set(&object.extents);
    let (keep, replaced, freed) = match (current, plan.current) {
        (None, _) => (false, None, Vec::new()),
        (Some(_), Fate::Kept) => (true, None, Vec::new()),
        (Some(row), Fate::Replaced) => {
            let freed = stored_blobs(&row.extents, &keep_blobs)?;
            let old = entry(bucket, row)?;
            if old
                .check_removal(&Authority::at(object.last_modified))
                .is_err()
            {
                return Ok(None);
            }
            (false, Some(old), freed)
        }
    };
    let (extents, inline, refs) = encode_extents(&object.extents)?;
    Ok(Some(Decision {
        locks: key_locks(schema, bucket, key),
        bucket: bucket.to_owned(),
        key: key.as_bytes().to_vec(),
        versioning,
        xmin,
        keep,
        freed,
        refs,
        size: to_i64(object.size),
        etag: object.etag.clone(),
        mtime_ms: ms(object.last_modified),
        meta: json(&object.meta)?,
        extents,
        inline,
        version_id: plan.version_id.clone().unwrap_or_default(),
        seq,
        written: Written {
            version_id: plan.version_id,
            versioning,
            replaced,
        },
    }))
}

/// `coffer_put_many`'s arguments: one array per argument of `coffer_put`, the blob ids
/// of each write joined by spaces.
#[derive(Default)]
struct Params<'a> {
    bucket: Vec<&'a str>,
    key: Vec<&'a [u8]>,
    lock_bucket: Vec<i64>,
    lock_key: Vec<i64>,
    versioning: Vec<&'static str>,
    xmin: Vec<Option<&'a str>>,
    keep: Vec<bool>,
    freed: Vec<String>,
    refs: Vec<String>,
    size: Vec<i64>,
    etag: Vec<&'a str>,
    mtime_ms: Vec<i64>,
    meta: Vec<&'a str>,
    extents: Vec<&'a str>,
    inline: Vec<Option<&'a [u8]>>,
    version_id: Vec<&'a str>,
    seq: Vec<i64>,
}

impl<'a> Params<'a> {
    fn of(decisions: impl Iterator<Item = &'a Decision>) -> Self {
        let mut p = Params::default();
        for d in decisions {
            p.bucket.push(&d.bucket);
            p.key.push(&d.key);
            p.lock_bucket.push(d.locks.0);
            p.lock_key.push(d.locks.1);
            p.versioning.push(d.versioning.as_str());
            p.xmin.push(d.xmin.as_deref());
            p.keep.push(d.keep);
            p.freed.push(d.freed.join(" "));
            p.refs.push(d.refs.join(" "));
            p.size.push(d.size);
            p.etag.push(&d.etag);
            p.mtime_ms.push(d.mtime_ms);
            p.meta.push(&d.meta);
            p.extents.push(&d.extents);
            p.inline.push(d.inline.as_deref());
            p.version_id.push(&d.version_id);
            p.seq.push(d.seq);
        }
        p
    }
}
