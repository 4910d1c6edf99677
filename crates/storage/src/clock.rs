//! The business clock: the time the records' dates are kept in and compared with (last
//! modified, retention, lifecycle ages, restores, KMS rotation and deletion, import
//! expiry). It is the system clock, moved forward by `offset` on a server started with
//! `--test-clock` when an operator advances it, so that a test of a 7-day deletion takes
//! no 7 days. It never moves back. Signature times, TLS, sessions and the audit trail keep
//! the real clock: they record what happened when, not what a record says.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

/// One clock shared by every part of a server (cheap to clone: clones move together).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds ahead of the system clock.
    offset_ms: Arc<AtomicI64>,
}

/// Why an advance was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdvanceError {
    /// The clock only moves forward.
    NotForward,
    /// The new time would be past what a record's date can hold.
    TooFar,
}

/// The furthest the business clock may be ahead of the system clock: 100 years, far
/// beyond any retention or rotation period a test needs, and far inside every date type.
pub const MAX_OFFSET: Duration = Duration::days(36_525);

impl Clock {
    /// The system clock, not (yet) moved.
    pub fn system() -> Self {
        Self::default()
    }

    /// Now, on this clock.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.offset()
    }

    /// How far ahead of the system clock this clock runs.
    pub fn offset(&self) -> Duration {
        Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Moves the clock forward by `by`; returns the new offset.
    pub fn advance(&self, by: Duration) -> Result<Duration, AdvanceError> {
        if by <= Duration::ZERO {
            return Err(AdvanceError::NotForward);
        }
        let by_ms = i64::try_from(by.whole_milliseconds()).map_err(|_| AdvanceError::TooFar)?;
        let max_ms = i64::try_from(MAX_OFFSET.whole_milliseconds()).unwrap_or(i64::MAX);
        let mut current = self.offset_ms.load(Ordering::SeqCst);
        loop {
            let next = current
                .checked_add(by_ms)
                .filter(|n| *n <= max_ms)
                .ok_or(AdvanceError::TooFar)?;
            match self
                .offset_ms
                .compare_exchange(current, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Ok(Duration::milliseconds(next)),
                Err(seen) => current = seen,
            }
        }
    }
}

/// Parses a span as `coffer clock advance` takes it: a whole number and a unit, `s`, `m`,
/// `h` or `d` (`90d`, `36h`, `15m`, `30s`).
pub fn parse_span(text: &str) -> Option<Duration> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    if n <= 0 {
        return None;
    }
    match unit {
        's' => Some(Duration::seconds(n)),
        'm' => n.checked_mul(60).map(Duration::seconds),
        'h' => n.checked_mul(3_600).map(Duration::seconds),
        'd' => n.checked_mul(86_400).map(Duration::seconds),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_move_together_and_only_forward() {
        let a = Clock::system();
        let b = a.clone();
        assert_eq!(a.offset(), Duration::ZERO);
        assert_eq!(a.advance(Duration::days(90)), Ok(Duration::days(90)));
        assert_eq!(b.offset(), Duration::days(90));
        assert!(b.now() - OffsetDateTime::now_utc() > Duration::days(89));
        assert_eq!(a.advance(Duration::ZERO), Err(AdvanceError::NotForward));
        assert_eq!(a.advance(-Duration::DAY), Err(AdvanceError::NotForward));
        assert_eq!(a.advance(MAX_OFFSET), Err(AdvanceError::TooFar));
        assert_eq!(
            b.offset(),
            Duration::days(90),
            "a refused advance moves nothing"
        );
    }

    #[test]
    fn spans_parse_as_the_cli_takes_them() {
        for (text, want) in [
            ("90d", Some(Duration::days(90))),
            ("36h", Some(Duration::hours(36))),
            ("15m", Some(Duration::minutes(15))),
            ("30s", Some(Duration::seconds(30))),
            (" 7d ", Some(Duration::days(7))),
            ("0d", None),
            ("-1d", None),
            ("d", None),
            ("7", None),
            ("7w", None),
            ("1.5d", None),
            ("99999999999999999d", None),
            ("", None),
        ] {
            assert_eq!(parse_span(text), want, "{text:?}");
        }
    }
}
