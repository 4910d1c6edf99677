//! Usage over time, for the console's charts: the calls come from the audit trail (what
//! was audited is what is counted, the KMS calls S3 made for callers included); the bytes
//! stored per bucket come from samples of each bucket's usage taken every
//! `--usage-sample-seconds` (an hour by default) and appended to
//! `DATA_DIR/usage-samples.jsonl`, one versioned record per bucket and sample, trimmed to
//! the last month (or its newest half) once it passes [`MAX_FILE`].

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use coffer_audit::trail::Trail;
use coffer_console::{Call, Sample};
use coffer_objects::Objects;

const FILE: &str = "usage-samples.jsonl";

/// Largest the samples file grows before samples older than [`KEEP_SECONDS`] are dropped
/// (and, if that is not enough, the older half): about 300,000 samples, 400 buckets
/// sampled hourly for a month.
const MAX_FILE: u64 = 32 << 20;

/// How far back samples are kept once the file is full: the longest chart, and a day.
const KEEP_SECONDS: i64 = 31 * 86_400;

/// One stored sample. Versioned: a record written by any release is read by every later
/// one (pinned by `golden/usage-sample-v1.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "v")]
enum Stored {
    #[serde(rename = "1")]
    V1 {
        /// Seconds since the epoch.
        t: i64,
        account: String,
        bucket: String,
        objects: u64,
        /// Current and noncurrent versions' bytes.
        bytes: u64,
    },
}

pub struct History {
    file: PathBuf,
    audit: Arc<Trail>,
    lock: tokio::sync::Mutex<()>,
}

impl History {
    pub fn new(data_dir: &std::path::Path, audit: Arc<Trail>) -> Self {
        Self {
            file: data_dir.join(FILE),
            audit,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Takes one sample of every bucket and appends it.
    pub async fn sample(&self, objects: &Objects) -> anyhow::Result<()> {
        let usage = objects.usage().await?;
        let owners: std::collections::HashMap<String, String> = objects
            .all_buckets()
            .await?
            .into_iter()
            .map(|b| (b.name, b.owner))
            .collect();
        let t = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut lines = String::new();
        for (bucket, u) in usage {
            let Some(account) = owners.get(&bucket).cloned() else {
                continue;
            };
            let record = Stored::V1 {
                t,
                account,
                bucket,
                objects: u.objects + u.noncurrent_versions,
                bytes: u.object_bytes + u.noncurrent_bytes,
            };
            lines.push_str(&serde_json::to_string(&record)?);
            lines.push('\n');
        }
        let _guard = self.lock.lock().await;
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)?;
            f.write_all(lines.as_bytes())?;
            if f.metadata()?.len() > MAX_FILE {
                // Samples older than the longest chart go first; if that is not enough,
                // the older half.
                let text = std::fs::read_to_string(&file)?;
                let oldest = t - KEEP_SECONDS;
                let mut all: Vec<&str> = text
                    .lines()
                    .filter(|l| match serde_json::from_str::<Stored>(l) {
                        Ok(Stored::V1 { t, .. }) => t >= oldest,
                        Err(_) => false,
                    })
                    .collect();
                if all.iter().map(|l| l.len() as u64 + 1).sum::<u64>() > MAX_FILE / 2 {
                    all.drain(..all.len() / 2);
                }
                let keep = all.join("\n") + "\n";
                let tmp = file.with_extension("jsonl.tmp");
                std::fs::write(&tmp, keep)?;
                std::fs::rename(&tmp, &file)?;
            }
            Ok(())
        })
        .await??;
        Ok(())
    }

    /// Samples every `every`, for as long as the server runs.
    pub fn spawn(
        self: Arc<Self>,
        objects: Arc<Objects>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.sample(&objects).await {
                    tracing::warn!(error = %e, "sampling bucket usage failed");
                }
            }
        })
    }
}

fn read_samples(file: &std::path::Path, since: i64) -> Vec<Sample> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Stored>(l).ok())
        .filter_map(|s| match s {
            Stored::V1 {
                t,
                account,
                bucket,
                objects,
                bytes,
            } => (t >= since).then_some(Sample {
                time: t,
                account,
                bucket,
                objects,
                bytes,
            }),
        })
        .collect()
}

#[async_trait::async_trait]
impl coffer_console::History for History {
    async fn samples(&self, since: i64) -> Vec<Sample> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || read_samples(&file, since))
            .await
            .unwrap_or_default()
    }

    async fn calls(&self, since: i64) -> Vec<Call> {
        self.audit.flush().await;
        let audit = self.audit.clone();
        tokio::task::spawn_blocking(move || {
            let records = audit.records().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "reading the audit trail for usage failed");
                Vec::new()
            });
            records
                .into_iter()
                .filter_map(|r| {
                    let time = r.parsed_time()?.unix_timestamp();
                    (time >= since).then(|| Call {
                        time,
                        key: (r.event_source == "kms.amazonaws.com")
                            .then(|| {
                                r.resources
                                    .iter()
                                    .find(|x| x.kind == "AWS::KMS::Key")
                                    .map(|x| x.arn.clone())
                            })
                            .flatten(),
                        account: r.recipient_account_id,
                        source: r.event_source,
                        operation: r.event_name,
                    })
                })
                .collect()
        })
        .await
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_of_version_1_decode_forever() {
        let golden = include_str!("../golden/usage-sample-v1.json");
        let got: Stored = serde_json::from_str(golden.trim()).expect("decodes");
        assert_eq!(
            got,
            Stored::V1 {
                t: 1_796_428_800,
                account: "111122223333".into(),
                bucket: "photos".into(),
                objects: 12,
                bytes: 3_145_728,
            }
        );
        assert_eq!(serde_json::to_string(&got).expect("encodes"), golden.trim());
    }

    #[test]
    fn samples_are_read_from_a_time_on_and_bad_lines_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(FILE);
        std::fs::write(
            &file,
            "{\"v\":\"1\",\"t\":10,\"account\":\"a\",\"bucket\":\"b\",\"objects\":1,\"bytes\":5}\n\
             not json\n\
             {\"v\":\"1\",\"t\":20,\"account\":\"a\",\"bucket\":\"b\",\"objects\":2,\"bytes\":9}\n",
        )
        .expect("write");
        let got = read_samples(&file, 15);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].time, got[0].bytes), (20, 9));
    }
}
