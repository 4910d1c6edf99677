//! UpdateObjectEncryption: moves an SSE-S3 or SSE-KMS object under another KMS key (or
//! onto a bucket key) by re-wrapping its object key. The stored bytes, ETag, checksums and
//! dates are untouched; only the encryption record changes, and only if the object was
//! not replaced meanwhile.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use coffer_kms::Caller;
use coffer_storage::{SseKind, SseRecord};

use crate::sse::{
    BUCKET_KEY_INFO, bucket_arn, client_context, crypto, object_arn, random16, wrap_object_key,
};
use crate::{Error, Objects, Result};

/// The new encryption an UpdateObjectEncryption request asks for (only SSE-KMS exists).
#[derive(Debug, Clone)]
pub struct Rekey {
    /// The KMS key, as an ARN (AWS accepts nothing else here).
    pub kms_key_arn: String,
    pub bucket_key: bool,
}

impl Objects {
    /// Re-wraps the object key of a version of `bucket/key` (the latest unless
    /// `version_id` names one) under `to`; returns the new record.
    pub async fn update_object_encryption(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        to: &Rekey,
        now: OffsetDateTime,
    ) -> Result<SseRecord> {
        if !to.kms_key_arn.starts_with("arn:") || !to.kms_key_arn.contains(":key/") {
            return Err(Error::InvalidRequest(
                "Requests that modify an object's encryption type to SSE-KMS require a valid AWS KMS key Amazon Resource Name (ARN). Confirm that you have a correctly formatted KMS key ARN in your request, and then try again.".into(),
            ));
        }
        let object = self.object_version(bucket, key, version_id).await?;
        let old = match &object.meta.sse {
            None => {
                return Err(Error::InvalidRequest(
                    "The UpdateObjectEncryption operation doesn't supported unencrypted source objects. Only source objects encrypted with SSE-S3 or SSE-KMS are supported.".into(),
                ));
            }
            Some(s) if s.kind() == SseKind::Customer => {
                return Err(Error::InvalidRequest(
                    "The UpdateObjectEncryption operation doesn't support source objects with the encryption type DSSE-KMS or SSE-C. Only source objects encrypted with SSE-S3 or SSE-KMS are supported.".into(),
                ));
            }
            Some(s) => s,
        };
        // Unwrapping needs Decrypt on the old key (and its state), as a GET does.
        let object_key = self.object_key(caller, old, None, now).await?;
        let kms = self.kms()?;
        let object_id = old.object_id();
        let mut client: BTreeMap<String, String> = match old.client_context() {
            Some(c) => client_context(c)?,
            None => BTreeMap::new(),
        };
        let new = if to.bucket_key {
            let (bk, blob, arn) = self
                .bucket_key(caller, bucket, &to.kms_key_arn, now)
                .await?;
            let salt = random16()?;
            let derived = coffer_crypto::derive_key(&bk, &salt, BUCKET_KEY_INFO).map_err(crypto)?;
            SseRecord::BucketKey {
                key_arn: arn,
                encrypted_bucket_key: blob,
                context: [("aws:s3:arn".to_owned(), bucket_arn(bucket))].into(),
                client_context: old.client_context().map(str::to_owned),
                salt,
                object_id,
                wrapped_object_key: Some(wrap_object_key(&derived, &object_id, &object_key)?),
            }
        } else {
            client.insert("aws:s3:arn".into(), object_arn(bucket, key));
            let (blob, arn) = kms
                .encrypt(caller, &to.kms_key_arn, &object_key, &client, now)
                .await
                .map_err(Error::Kms)?;
            SseRecord::DataKey {
                kind: SseKind::Kms,
                key_arn: arn,
                encrypted_key: blob,
                context: client,
                client_context: old.client_context().map(str::to_owned),
                object_id,
            }
        };
        match self
            .meta
            .set_object_sse(
                bucket,
                key,
                coffer_storage::VersionRef::of(object.version_id.as_deref()),
                &object_id,
                &new,
            )
            .await
        {
            Ok(()) => Ok(new),
            // Overwritten between our read and our write: the new object keeps its own
            // encryption, as a conflicting concurrent write on AWS would.
            Err(coffer_storage::Error::PreconditionFailed) => {
                Err(Error::ConditionalRequestConflict)
            }
            Err(e) => Err(e.into()),
        }
    }
}
