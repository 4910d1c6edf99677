//! The test clock (`coffer serve --test-clock`, `coffer clock show|advance`): the operator
//! moves the server's business clock (`coffer_storage::Clock`) forward, and the time-based
//! work it made due (KMS rotations, deletions and material expiry; lifecycle actions) runs
//! before the call answers, so a test sees a 7-day deletion done in the same second.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use coffer_api_iam::ClockRefusal;
use coffer_storage::Clock;

/// How long an advance waits for a worker's run before answering anyway (the work then
/// finishes in the background, as it would on the worker's own timer).
const KICK_WAIT: Duration = Duration::from_secs(60);

/// Asks a background worker to run now.
#[derive(Clone)]
pub(crate) struct Kick(mpsc::UnboundedSender<oneshot::Sender<()>>);

/// What a worker listens on for kicks: each carries the sender it answers once it ran.
pub(crate) type Kicked = mpsc::UnboundedReceiver<oneshot::Sender<()>>;

pub(crate) fn kick() -> (Kick, Kicked) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Kick(tx), rx)
}

impl Kick {
    /// Runs the worker once and waits until it has (or has stopped, or `KICK_WAIT`).
    async fn run(&self) {
        let (done, ran) = oneshot::channel();
        if self.0.send(done).is_ok() {
            let _ = tokio::time::timeout(KICK_WAIT, ran).await;
        }
    }
}

/// The clock a server's records follow, whether the operator may move it, and the
/// workers that run when it moves.
pub(crate) struct TestClock {
    pub clock: Clock,
    pub enabled: bool,
    pub kms: Kick,
    pub lifecycle: Kick,
}

impl TestClock {
    /// `coffer clock show` (`advance` is `None`) and `coffer clock advance SPAN`.
    pub async fn call(
        &self,
        advance: Option<&str>,
    ) -> Result<Vec<(&'static str, String)>, ClockRefusal> {
        if !self.enabled {
            return Err(ClockRefusal::Off);
        }
        if let Some(text) = advance {
            let by = coffer_storage::clock::parse_span(text).ok_or_else(|| {
                ClockRefusal::BadSpan(format!(
                    "{text:?} is not a span to advance by: give a positive whole number and a unit, s, m, h or d (90d, 36h)"
                ))
            })?;
            self.clock.advance(by).map_err(|_| {
                ClockRefusal::BadSpan(format!(
                    "The clock may run at most {} days ahead of the system clock",
                    coffer_storage::clock::MAX_OFFSET.whole_days()
                ))
            })?;
            tracing::warn!(by = text, offset = %self.clock.offset(), "test clock advanced");
            // Both run to their end before the answer: what fell due is done.
            self.kms.run().await;
            self.lifecycle.run().await;
        }
        let rfc3339 = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        Ok(vec![
            ("Now", rfc3339(self.clock.now())),
            ("SystemTime", rfc3339(time::OffsetDateTime::now_utc())),
            (
                "OffsetSeconds",
                self.clock.offset().whole_seconds().to_string(),
            ),
        ])
    }
}
