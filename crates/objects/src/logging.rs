//! Server access logging's configuration (PutBucketLogging): where a bucket's access log
//! records go, and the key of each delivered log object (AWS's "Enabling Amazon S3 server
//! access logging": `SimplePrefix` or `PartitionedPrefix` keys). The records themselves
//! are written by the S3 front end, which sees the requests.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::settings::LOGGING;
use crate::{Error, Objects, Result};

/// `PartitionDateSource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DateSource {
    EventTime,
    DeliveryTime,
}

/// `TargetObjectKeyFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyFormat {
    /// `[DestinationPrefix][YYYY]-[MM]-[DD]-[hh]-[mm]-[ss]-[UniqueString]`
    Simple,
    /// `[DestinationPrefix][SourceAccountId]/[SourceRegion]/[SourceBucket]/[YYYY]/[MM]/[DD]/[YYYY]-[MM]-[DD]-[hh]-[mm]-[ss]-[UniqueString]`
    Partitioned(DateSource),
}

/// `LoggingEnabled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggingConfiguration {
    pub target_bucket: String,
    pub target_prefix: String,
    pub key_format: KeyFormat,
}

impl LoggingConfiguration {
    /// The key of a log object delivered at `delivered` holding records from
    /// `first_event` on (EventTime partitions name the records' day, at 00:00:00).
    pub fn object_key(
        &self,
        source_account: &str,
        region: &str,
        source_bucket: &str,
        first_event: OffsetDateTime,
        delivered: OffsetDateTime,
        unique: &str,
    ) -> String {
        let stamp = |t: OffsetDateTime| {
            format!(
                "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        };
        let prefix = &self.target_prefix;
        match self.key_format {
            KeyFormat::Simple => format!("{prefix}{}-{unique}", stamp(delivered)),
            KeyFormat::Partitioned(source) => {
                let (day, t) = match source {
                    DateSource::EventTime => {
                        let midnight = first_event.replace_time(time::Time::MIDNIGHT);
                        (first_event, midnight)
                    }
                    DateSource::DeliveryTime => (delivered, delivered),
                };
                format!(
                    "{prefix}{source_account}/{region}/{source_bucket}/{:04}/{:02}/{:02}/{}-{unique}",
                    day.year(),
                    u8::from(day.month()),
                    day.day(),
                    stamp(t)
                )
            }
        }
    }
}

impl Objects {
    /// The bucket's logging configuration, `None` when logging is off.
    pub async fn get_bucket_logging(&self, bucket: &str) -> Result<Option<LoggingConfiguration>> {
        match self.setting(bucket, LOGGING).await? {
            Some(j) => serde_json::from_str(&j)
                .map(Some)
                .map_err(|e| Error::Internal(format!("stored logging configuration: {e}"))),
            None => Ok(None),
        }
    }

    /// PutBucketLogging (`None` turns logging off). The target bucket must exist and
    /// belong to the same account, as S3 requires; whether it lets the logging service
    /// write is checked at delivery, as on AWS.
    pub async fn put_bucket_logging(
        &self,
        bucket: &str,
        cfg: Option<&LoggingConfiguration>,
    ) -> Result<()> {
        let Some(cfg) = cfg else {
            return self.set_setting(bucket, LOGGING, None).await;
        };
        let source = self.bucket(bucket).await?;
        let target = match self.bucket(&cfg.target_bucket).await {
            Ok(t) => t,
            Err(Error::NoSuchBucket(_)) => {
                return Err(Error::InvalidTargetBucketForLogging(
                    "The target bucket for logging does not exist".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        if target.owner != source.owner {
            return Err(Error::InvalidTargetBucketForLogging(
                "The owner for the bucket to be logged and the target bucket must be the same."
                    .into(),
            ));
        }
        let json = serde_json::to_string(cfg).map_err(|e| Error::Internal(e.to_string()))?;
        self.set_setting(bucket, LOGGING, Some(&json)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn log_object_keys_follow_the_documented_formats() {
        let mut c = LoggingConfiguration {
            target_bucket: "logs".into(),
            target_prefix: "access/".into(),
            key_format: KeyFormat::Simple,
        };
        let event = datetime!(2026-12-04 23:59:58 UTC);
        let delivered = datetime!(2026-12-05 00:10:07 UTC);
        let key = |c: &LoggingConfiguration| {
            c.object_key(
                "111122223333",
                "us-east-1",
                "photos",
                event,
                delivered,
                "ABC",
            )
        };
        assert_eq!(key(&c), "access/2026-12-05-00-10-07-ABC");
        c.key_format = KeyFormat::Partitioned(DateSource::EventTime);
        assert_eq!(
            key(&c),
            "access/111122223333/us-east-1/photos/2026/12/04/2026-12-04-00-00-00-ABC"
        );
        c.key_format = KeyFormat::Partitioned(DateSource::DeliveryTime);
        assert_eq!(
            key(&c),
            "access/111122223333/us-east-1/photos/2026/12/05/2026-12-05-00-10-07-ABC"
        );
    }
}
