//! Log file delivery, as CloudTrail does it: when a trail file is sealed, its records are
//! written into a bucket as gzip JSON `{"Records": [...]}` objects, one per account, under
//! `AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/`, and the file's signed digest under
//! `AWSLogs/ACCOUNT/CloudTrail-Digest/REGION/YYYY/MM/DD/`. The objects are written like
//! any other (the bucket's default encryption applies); a failed delivery is logged and
//! the trail on disk stays the record.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use time::OffsetDateTime;

use coffer_audit::record::Record;
use coffer_objects::{ChecksumRequest, Objects, PutObject, SseRequest};
use coffer_storage::{ObjectMeta, Precondition};

pub struct Delivery {
    pub objects: Arc<Objects>,
    pub bucket: String,
    pub region: String,
    pub dir: PathBuf,
    /// Starts the unique part of the delivered files' names: empty for one node, the
    /// node's name and a `-` in a scale-out deployment, whose nodes number their files
    /// each from 1.
    pub node: String,
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data)?;
    e.finish()
}

impl Delivery {
    /// Delivers each sealed file as it is announced.
    pub fn spawn(
        self,
        mut sealed: tokio::sync::mpsc::UnboundedReceiver<u64>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            while let Some(n) = sealed.recv().await {
                if let Err(e) = self.deliver(n).await {
                    tracing::warn!(file = n, bucket = %self.bucket, error = %e, "audit log delivery failed; the trail on disk is intact");
                }
            }
        })
    }

    async fn put(&self, owner: &str, key: String, body: Vec<u8>) -> anyhow::Result<()> {
        let len = body.len() as u64;
        let stream: coffer_objects::BodyStream =
            Box::pin(futures::stream::once(async move { Ok(Bytes::from(body)) }));
        self.objects
            .put_object(
                PutObject {
                    caller: coffer_kms::Caller::trusted(owner, "audit-delivery"),
                    bucket: self.bucket.clone(),
                    key,
                    meta: ObjectMeta {
                        content_type: Some("application/x-gzip".into()),
                        ..ObjectMeta::default()
                    },
                    tags: Vec::new(),
                    declared_len: Some(len),
                    // Stored with a SHA-256 of its bytes; this also meets Object Lock's
                    // demand for an integrity check, so a trail can go to a WORM bucket.
                    checksums: ChecksumRequest {
                        algorithm: Some(coffer_objects::ChecksumAlgorithm::Sha256),
                        ..ChecksumRequest::default()
                    },
                    precondition: Precondition::None,
                    sse: SseRequest::Default,
                    lock: Default::default(),
                },
                stream,
            )
            .await?;
        Ok(())
    }

    async fn deliver(&self, n: u64) -> anyhow::Result<()> {
        let (records, digest) = coffer_audit::trail::read_file(&self.dir, n)?;
        let owner = self.objects.bucket(&self.bucket).await?.owner;
        let now = OffsetDateTime::now_utc();
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute()
        );
        let day = format!(
            "{:04}/{:02}/{:02}",
            now.year(),
            u8::from(now.month()),
            now.day()
        );
        let mut by_account: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
        for r in &records {
            by_account.entry(r.account()).or_default().push(r);
        }
        let (region, node) = (&self.region, &self.node);
        for (account, recs) in &by_account {
            let body = serde_json::to_vec(&serde_json::json!({ "Records": recs }))?;
            let key = format!(
                "AWSLogs/{account}/CloudTrail/{region}/{day}/{account}_CloudTrail_{region}_{stamp}_{node}{n:08}.json.gz"
            );
            self.put(&owner, key, gzip(&body)?).await?;
        }
        if let Some(d) = digest {
            for account in by_account.keys() {
                let key = format!(
                    "AWSLogs/{account}/CloudTrail-Digest/{region}/{day}/{account}_CloudTrail-Digest_{region}_{stamp}_{node}{n:08}.json.gz"
                );
                self.put(&owner, key, gzip(d.as_bytes())?).await?;
            }
        }
        Ok(())
    }
}
