//! `coffer-bench`: a SigV4 load generator for any S3 endpoint (Coffer or another store),
//! and for Coffer's KMS.
//!
//! N workers, each with its own keep-alive connection, issue PUTs or GETs of one object
//! size (or KMS Encrypt, Decrypt or GenerateDataKey calls) for a duration or a count; the tool prints progress each second, then ops/s, MB/s
//! (10^6 bytes) and p50/p99 latency, or exactly one JSON line with `--json`. Bodies are
//! fresh bytes per object by default (`--data random`: a 1 MiB random pool with a
//! per-object, per-MiB word XORed in, so that no two MiB-blocks repeat and a store that
//! deduplicates blocks stores every byte), or one shared 1 MiB pattern (`--data
//! pattern`); sent as `UNSIGNED-PAYLOAD`, or with their SHA-256 signed (`--payload
//! signed`). Objects up to 1 MiB, and every signed body's hash, are prepared before the
//! operation's clock starts; memory stays flat whatever the object size.

mod kms;
mod s3;
mod stats;
mod units;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};

use stats::{Recorder, Summary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Op {
    Put,
    Get,
    KmsEncrypt,
    KmsDecrypt,
    KmsGenerateDataKey,
}

#[derive(Debug, Parser)]
#[command(name = "coffer-bench", about = "Load generator for S3 endpoints")]
pub struct Args {
    /// Endpoint URL, e.g. http://127.0.0.1:7373
    #[arg(long)]
    pub endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Bucket to use; created if absent (S3 workloads).
    #[arg(long, default_value = "coffer-bench")]
    pub bucket: String,
    #[arg(long, value_enum)]
    pub op: Op,
    /// Object size: bytes, or with a unit (4KiB, 256MiB, 1GiB, 4KB, 1MB). Needed for
    /// put and get; for kms-* workloads the plaintext size (default 32 B).
    #[arg(long = "size", value_parser = units::parse_size)]
    pub size_arg: Option<u64>,
    /// Object bodies: fresh bytes per object (random), or one shared 1 MiB pattern that a
    /// deduplicating store stores once (pattern).
    #[arg(long, value_enum, default_value = "random")]
    pub data: Data,
    /// How PUT bodies are signed: UNSIGNED-PAYLOAD, or their SHA-256 (so the server
    /// checks it).
    #[arg(long, value_enum, default_value = "unsigned")]
    pub payload: Payload,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// How long to run (10s, 1m, 500ms); ignored when --count is given.
    #[arg(long, value_parser = units::parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Stop after this many operations instead of after --duration.
    #[arg(long)]
    pub count: Option<u64>,
    /// Server-side encryption of the requests: none (no SSE header: the bucket's default
    /// applies, SSE-S3 unless the server runs with `--default-encryption none`), AES256,
    /// aws:kms or aws:kms:KEY.
    #[arg(long, default_value = "none")]
    pub sse: String,
    /// Ask for an S3 Bucket Key with SSE-KMS.
    #[arg(long)]
    pub bucket_key: bool,
    /// The KMS key for kms-* workloads (key id, key ARN or alias).
    #[arg(long)]
    pub key: Option<String>,
    /// Set the bucket's versioning first (Enabled or Suspended).
    #[arg(long)]
    pub versioning: Option<String>,
    /// PUT workloads: overwrite this many keys per worker, round robin, instead of fresh
    /// keys (in a versioned bucket every overwrite adds a version).
    #[arg(long)]
    pub overwrite_keys: Option<u64>,
    /// GET workloads: how many objects the read set has (default: one per connection).
    #[arg(long)]
    pub read_keys: Option<usize>,
    /// GET workloads: give each object of the read set this many versions before the run
    /// (in a versioned bucket), so that reads of the latest version face a long history.
    #[arg(long, default_value_t = 1)]
    pub versions: u64,
    /// Print exactly one JSON line with the results.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Data {
    Random,
    Pattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Payload {
    Unsigned,
    Signed,
}

impl Args {
    /// The object (or KMS plaintext) size.
    pub fn size(&self) -> u64 {
        self.size_arg.unwrap_or(32)
    }
}

/// What the workers drive.
#[derive(Clone)]
enum Target {
    S3(Arc<s3::Client>, s3::KeySpace),
    Kms(Arc<kms::Client>),
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("coffer-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coffer-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let target = match args.op {
        Op::Put | Op::Get => {
            anyhow::ensure!(args.size_arg.is_some(), "put and get need --size");
            let client = Arc::new(s3::Client::new(&args)?);
            client
                .ensure_bucket()
                .await
                .context("creating the bucket")?;
            if let Some(v) = &args.versioning {
                client
                    .set_versioning(v)
                    .await
                    .context("setting the bucket's versioning")?;
            }
            let keys = s3::KeySpace::new(&args);
            if args.op == Op::Get {
                eprintln!(
                    "preparing {} object(s) of {} bytes to read",
                    keys.read_set(),
                    args.size()
                );
                client
                    .prepare_reads(&keys, args.concurrency, args.versions)
                    .await
                    .context("writing the objects to read")?;
            }
            Target::S3(client, keys)
        }
        Op::KmsEncrypt | Op::KmsDecrypt | Op::KmsGenerateDataKey => {
            let client = Arc::new(kms::Client::new(&args)?);
            client
                .prepare(args.op)
                .await
                .context("preparing the KMS workload")?;
            Target::Kms(client)
        }
    };

    let stop = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(AtomicU64::new(0));
    let done_ops = Arc::new(AtomicU64::new(0));
    let done_bytes = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();

    let mut workers = Vec::with_capacity(args.concurrency);
    for w in 0..args.concurrency {
        let target = target.clone();
        let (stop, issued, done_ops, done_bytes, errors) = (
            stop.clone(),
            issued.clone(),
            done_ops.clone(),
            done_bytes.clone(),
            errors.clone(),
        );
        let count = args.count;
        let op = args.op;
        workers.push(tokio::spawn(async move {
            let mut rec = Recorder::default();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Some(c) = count
                    && issued.fetch_add(1, Ordering::Relaxed) >= c
                {
                    break;
                }
                // A PUT's body (or its hash) is made before its clock starts.
                let upload = match (&target, op) {
                    // (Hashing a large signed body must not hold up other workers.)
                    (Target::S3(c, _), Op::Put) => {
                        Some(tokio::task::block_in_place(|| c.prepare(w, seq)))
                    }
                    _ => None,
                };
                let t = Instant::now();
                let result = match (&target, op, upload) {
                    (Target::S3(c, keys), Op::Put, Some(up)) => {
                        c.put(&keys.write_key(w, seq), up).await
                    }
                    (Target::S3(c, keys), Op::Put, None) => {
                        c.put(&keys.write_key(w, seq), c.prepare(w, seq)).await
                    }
                    (Target::S3(c, keys), _, _) => c.get(&keys.read_key(w, seq)).await,
                    (Target::Kms(c), op, _) => c.run(op).await,
                };
                seq += 1;
                match result {
                    Ok(bytes) => {
                        rec.record(t.elapsed());
                        done_ops.fetch_add(1, Ordering::Relaxed);
                        done_bytes.fetch_add(bytes, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("request failed: {e:#}");
                        }
                    }
                }
            }
            rec
        }));
    }

    let progress = {
        let (done_ops, done_bytes, errors, stop) = (
            done_ops.clone(),
            done_bytes.clone(),
            errors.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let (mut last_ops, mut last_bytes) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let (ops, bytes) = (
                    done_ops.load(Ordering::Relaxed),
                    done_bytes.load(Ordering::Relaxed),
                );
                eprintln!(
                    "[{:>4.0}s] {ops} ops  {:.0} ops/s  {:.1} MB/s  errors {}",
                    started.elapsed().as_secs_f64(),
                    (ops - last_ops) as f64,
                    (bytes - last_bytes) as f64 / 1e6,
                    errors.load(Ordering::Relaxed)
                );
                (last_ops, last_bytes) = (ops, bytes);
            }
        })
    };

    if args.count.is_none() {
        tokio::time::sleep(args.duration).await;
        stop.store(true, Ordering::Relaxed);
    }
    let mut all = Recorder::default();
    for w in workers {
        all.merge(w.await.context("a worker panicked")?);
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    progress.abort();

    let summary = Summary::new(
        &args,
        &all,
        done_bytes.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        elapsed,
    );
    if args.json {
        println!("{}", summary.json());
    } else {
        println!("{}", summary.human());
    }
    Ok(())
}
