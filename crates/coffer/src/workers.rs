//! The time-based work of a node: lifecycle passes and the KMS's scheduled step, each on
//! its timer while this node leads that work (`lead.rs`), and at once when the test clock
//! moves (`clock.rs`); what they do on their own is recorded as AWS records service events.

use std::sync::Arc;
use std::time::Duration;

use coffer_audit::trail::Trail;
use coffer_audit::{Sink, record::Resource};

use crate::{App, clock, lead};

/// Records each action of the lifecycle worker as S3 would have it seen: an
/// `AwsServiceEvent` in the trail (named as S3's server access logs name lifecycle
/// actions), and a count in the metrics.
struct LifecycleRecorder {
    app: Arc<App>,
}

impl coffer_objects::LifecycleSink for LifecycleRecorder {
    fn acted(&self, a: &coffer_objects::LifecycleAction) {
        let name = a.kind.name(a.marker_version_id.is_some());
        self.app
            .metrics
            .lifecycle_action(&a.bucket, &a.rule_id, a.kind.label());
        self.app.audit.service(coffer_audit::service_event(
            &self.app.objects.config().region,
            "s3.amazonaws.com",
            name,
            &a.owner,
            Resource {
                arn: format!("arn:aws:s3:::{}/{}", a.bucket, a.key),
                account_id: Some(a.owner.clone()),
                kind: "AWS::S3::Object".into(),
            },
            serde_json::json!({
                "bucketName": a.bucket,
                "key": a.key,
                "versionId": a.version_id,
                "deleteMarkerVersionId": a.marker_version_id,
                "lifecycleRuleId": a.rule_id,
                "action": a.kind.label(),
            }),
        ));
    }
}

/// Waits for the next tick of `every` or a kick (a clock advance), whichever is first;
/// a kick's answer is returned, to be sent once the work has run.
async fn next_run(
    every: &mut tokio::time::Interval,
    kicked: &mut clock::Kicked,
) -> Option<tokio::sync::oneshot::Sender<()>> {
    tokio::select! {
        _ = every.tick() => None,
        Some(done) = kicked.recv() => Some(done),
    }
}

/// Runs lifecycle passes every `period` while this node leads lifecycle work, and at
/// once when the test clock moves.
pub(crate) fn spawn_lifecycle(
    app: Arc<App>,
    period: Duration,
    lead: lead::Lead,
    mut kicked: clock::Kicked,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let sink = LifecycleRecorder { app: app.clone() };
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let kick = next_run(&mut every, &mut kicked).await;
            if lead.holds().await {
                match app.objects.lifecycle_pass(app.objects.now(), &sink).await {
                    Ok(_) => app.metrics.pass("lifecycle"),
                    Err(e) => tracing::warn!(error = %e, "lifecycle pass failed; will retry"),
                }
            }
            if let Some(done) = kick {
                let _ = done.send(());
            }
        }
    })
}

/// Runs the KMS background step (scheduled deletions, rotations, last-usage records)
/// about once a second, or more often when a KMS day is very short. Scheduled work runs
/// only while this node leads it; every node writes its own last-usage records.
pub(crate) fn spawn_kms_ticker(
    kms: Arc<coffer_kms::Kms>,
    audit: Arc<Trail>,
    day: Duration,
    lead: lead::Lead,
    mut kicked: clock::Kicked,
) -> tokio::task::JoinHandle<()> {
    let period = (day / 8).clamp(Duration::from_millis(100), Duration::from_secs(1));
    tokio::spawn(async move {
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let kick = next_run(&mut every, &mut kicked).await;
            kms_step(&kms, &audit, &lead).await;
            if let Some(done) = kick {
                let _ = done.send(());
            }
        }
    })
}

/// One KMS background step (see [`spawn_kms_ticker`]).
async fn kms_step(kms: &coffer_kms::Kms, audit: &Trail, lead: &lead::Lead) {
    if !lead.holds().await {
        if let Err(e) = kms.flush_usage().await {
            tracing::warn!(error = %e, "writing KMS key usage failed; retrying");
        }
        return;
    }
    match kms.tick(kms.now()).await {
        Ok(t) => {
            // AWS records what KMS does on its own as service events.
            let done = t.rotated.iter().map(|k| ("RotateKey", k));
            let done = done.chain(t.deleted.iter().map(|k| ("DeleteKey", k)));
            let expired = t.expired.iter().map(|k| ("DeleteExpiredKeyMaterial", k));
            for (name, arn) in done.chain(expired) {
                let account = arn.split(':').nth(4).unwrap_or_default();
                audit.service(coffer_audit::service_event(
                    &kms.config().region,
                    "kms.amazonaws.com",
                    name,
                    account,
                    Resource {
                        arn: arn.clone(),
                        account_id: Some(account.to_owned()),
                        kind: "AWS::KMS::Key".into(),
                    },
                    serde_json::json!({ "keyId": arn }),
                ));
            }
        }
        Err(e) => tracing::warn!(error = %e, "KMS background step failed; retrying"),
    }
}
