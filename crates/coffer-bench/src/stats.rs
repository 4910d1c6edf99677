//! Latency recording and the final report.

use std::time::Duration;

use crate::{Args, Op};

/// Per-worker latencies in microseconds; merged at the end and sorted once.
#[derive(Default)]
pub struct Recorder {
    micros: Vec<u32>,
}

impl Recorder {
    pub fn record(&mut self, d: Duration) {
        self.micros
            .push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
    }

    pub fn merge(&mut self, other: Recorder) {
        self.micros.extend(other.micros);
    }

    fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * (sorted.len() as f64)).ceil() as usize;
        let idx = rank.clamp(1, sorted.len()) - 1;
        f64::from(sorted[idx]) / 1000.0
    }
}

pub struct Summary {
    op: &'static str,
    size: u64,
    concurrency: usize,
    sse: String,
    bucket_key: bool,
    ops: u64,
    secs: f64,
    ops_per_s: f64,
    mb_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

impl Summary {
    pub fn new(args: &Args, rec: &Recorder, bytes: u64, errors: u64, elapsed: Duration) -> Self {
        let mut sorted = rec.micros.clone();
        sorted.sort_unstable();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let ops = sorted.len() as u64;
        Self {
            op: match args.op {
                Op::Put => "put",
                Op::Get => "get",
                Op::KmsEncrypt => "kms-encrypt",
                Op::KmsDecrypt => "kms-decrypt",
                Op::KmsGenerateDataKey => "kms-generate-data-key",
            },
            size: args.size(),
            concurrency: args.concurrency,
            sse: args.sse.clone(),
            bucket_key: args.bucket_key,
            ops,
            secs,
            ops_per_s: ops as f64 / secs,
            mb_per_s: bytes as f64 / 1e6 / secs,
            p50_ms: Recorder::percentile_ms(&sorted, 50.0),
            p99_ms: Recorder::percentile_ms(&sorted, 99.0),
            errors,
        }
    }

    pub fn json(&self) -> String {
        serde_json::json!({
            "op": self.op,
            "size": self.size,
            "concurrency": self.concurrency,
            "sse": self.sse,
            "bucket_key": self.bucket_key,
            "ops": self.ops,
            "seconds": round(self.secs, 3),
            "ops_per_s": round(self.ops_per_s, 1),
            "mb_per_s": round(self.mb_per_s, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "errors": self.errors,
        })
        .to_string()
    }

    pub fn human(&self) -> String {
        format!(
            "{} {} B x{} (sse {}): {} ops in {:.1}s  {:.1} ops/s  {:.1} MB/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
            self.op,
            self.size,
            self.concurrency,
            self.sse,
            self.ops,
            self.secs,
            self.ops_per_s,
            self.mb_per_s,
            self.p50_ms,
            self.p99_ms,
            self.errors
        )
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let sorted: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(Recorder::percentile_ms(&sorted, 50.0), 50.0);
        assert_eq!(Recorder::percentile_ms(&sorted, 99.0), 99.0);
        assert_eq!(Recorder::percentile_ms(&[], 99.0), 0.0);
    }
}
