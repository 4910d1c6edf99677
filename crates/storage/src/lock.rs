//! Object Lock: the retention and legal hold a version carries, and the one rule every
//! backend applies, inside the transaction that would remove a version or change its
//! lock, so that no caller above the store (an API handler, a lifecycle worker, an
//! operator's command) can get around it.
//!
//! - A version under a legal hold, or whose retention has not yet passed, cannot be
//!   removed; GOVERNANCE retention gives way to an [`Authority`] that may bypass it,
//!   COMPLIANCE retention to nobody.
//! - An active retention can be lengthened (and GOVERNANCE made COMPLIANCE) by anyone
//!   allowed to set retention; shortening or removing GOVERNANCE needs the bypass;
//!   COMPLIANCE cannot be shortened, removed or weakened to GOVERNANCE.
//! - A legal hold can be placed or lifted at any time (by whoever may).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Entry, Error, ObjectMeta, Result};

/// S3's Object Lock retention modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockMode {
    #[serde(rename = "GOVERNANCE")]
    Governance,
    #[serde(rename = "COMPLIANCE")]
    Compliance,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [LockMode::Governance, LockMode::Compliance]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// A version's retention: protected in `mode` until `until` (server clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub mode: LockMode,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

/// Who asks to remove a version or change its lock, and when: the time the rule compares
/// retention dates with, and whether the caller may bypass GOVERNANCE retention (asked
/// for it with `x-amz-bypass-governance-retention` and holds
/// `s3:BypassGovernanceRetention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authority {
    pub now: OffsetDateTime,
    pub bypass_governance: bool,
}

impl Authority {
    /// Now, without bypass: what every removal the store makes on its own (an overwrite
    /// that replaces a version) and every lifecycle action acts as.
    pub fn now() -> Self {
        Self::at(OffsetDateTime::now_utc())
    }

    /// At `now` (a write's own time, on the business clock), without bypass.
    pub fn at(now: OffsetDateTime) -> Self {
        Self {
            now,
            bypass_governance: false,
        }
    }
}

/// A change of a version's lock (PutObjectRetention, PutObjectLegalHold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockChange {
    /// The new retention; `None` removes it.
    Retention(Option<Retention>),
    LegalHold(bool),
}

/// Why the rule refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    LegalHold,
    Retention(LockMode),
}

impl ObjectMeta {
    /// The version's retention if it has not passed at `now`.
    pub fn active_retention(&self, now: OffsetDateTime) -> Option<Retention> {
        self.retention.filter(|r| r.until > now)
    }

    /// Whether `by` may remove the version.
    pub fn check_removal(&self, by: &Authority) -> Result<(), Refusal> {
        if self.legal_hold == Some(true) {
            return Err(Refusal::LegalHold);
        }
        match self.active_retention(by.now) {
            None => Ok(()),
            Some(r) if r.mode == LockMode::Governance && by.bypass_governance => Ok(()),
            Some(r) => Err(Refusal::Retention(r.mode)),
        }
    }

    /// Applies `change` if the rule lets `by` make it.
    pub fn change_lock(&mut self, change: LockChange, by: &Authority) -> Result<(), Refusal> {
        match change {
            LockChange::LegalHold(on) => self.legal_hold = Some(on),
            LockChange::Retention(new) => {
                if let Some(cur) = self.active_retention(by.now) {
                    let keeps = new.is_some_and(|n| {
                        n.until >= cur.until
                            && (n.mode == LockMode::Compliance || cur.mode == LockMode::Governance)
                    });
                    let bypassed = cur.mode == LockMode::Governance && by.bypass_governance;
                    if !keeps && !bypassed {
                        return Err(Refusal::Retention(cur.mode));
                    }
                }
                self.retention = new;
            }
        }
        Ok(())
    }
}

impl Entry {
    /// `ObjectLocked` unless `by` may remove this version (a delete marker always may be
    /// removed).
    pub fn check_removal(&self, by: &Authority) -> Result<()> {
        match self {
            Entry::Marker(_) => Ok(()),
            Entry::Object(o) => o
                .meta
                .check_removal(by)
                .map_err(|refusal| Error::ObjectLocked {
                    key: o.key.clone(),
                    version_id: o.version_id.clone().unwrap_or_else(|| "null".into()),
                    refusal,
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::seconds(secs)
    }

    fn locked(mode: LockMode, until: i64) -> ObjectMeta {
        ObjectMeta {
            retention: Some(Retention {
                mode,
                until: at(until),
            }),
            ..ObjectMeta::default()
        }
    }

    fn by(now: i64, bypass: bool) -> Authority {
        Authority {
            now: at(now),
            bypass_governance: bypass,
        }
    }

    #[test]
    fn removal_waits_for_retention_and_legal_hold() {
        use LockMode::*;
        let free = ObjectMeta::default();
        assert_eq!(free.check_removal(&by(0, false)), Ok(()));
        for (mode, bypass, allowed) in [
            (Governance, false, false),
            (Governance, true, true),
            (Compliance, false, false),
            (Compliance, true, false),
        ] {
            let m = locked(mode, 100);
            assert_eq!(
                m.check_removal(&by(99, bypass)).is_ok(),
                allowed,
                "{mode:?}"
            );
            // At and after the date, anyone may.
            assert_eq!(m.check_removal(&by(100, false)), Ok(()));
        }
        let mut held = locked(Governance, 10);
        held.legal_hold = Some(true);
        // A legal hold outlives retention and bypass.
        assert_eq!(held.check_removal(&by(50, true)), Err(Refusal::LegalHold));
    }

    #[test]
    fn retention_can_grow_but_only_governance_can_shrink_and_only_with_bypass() {
        use LockMode::*;
        let r = |mode, until| {
            Some(Retention {
                mode,
                until: at(until),
            })
        };
        for (cur, new, bypass, allowed) in [
            // Lengthening is always allowed; so is hardening GOVERNANCE to COMPLIANCE.
            (Governance, r(Governance, 200), false, true),
            (Governance, r(Compliance, 100), false, true),
            (Compliance, r(Compliance, 200), false, true),
            // Shortening or removing GOVERNANCE needs the bypass.
            (Governance, r(Governance, 50), false, false),
            (Governance, r(Governance, 50), true, true),
            (Governance, None, false, false),
            (Governance, None, true, true),
            // COMPLIANCE gives way to nobody.
            (Compliance, r(Compliance, 50), true, false),
            (Compliance, r(Governance, 300), true, false),
            (Compliance, None, true, false),
        ] {
            let mut m = locked(cur, 100);
            let got = m.change_lock(LockChange::Retention(new), &by(10, bypass));
            assert_eq!(got.is_ok(), allowed, "{cur:?} -> {new:?} bypass {bypass}");
            let want = if allowed { new } else { r(cur, 100) };
            assert_eq!(m.retention, want, "a refused change changes nothing");
        }
        // Once passed, retention is no lock: anything may replace it.
        let mut m = locked(Compliance, 100);
        assert_eq!(
            m.change_lock(LockChange::Retention(None), &by(100, false)),
            Ok(())
        );
        let mut m = locked(Compliance, 100);
        assert_eq!(
            m.change_lock(LockChange::LegalHold(true), &by(10, false)),
            Ok(())
        );
        assert_eq!(m.legal_hold, Some(true));
    }
}
