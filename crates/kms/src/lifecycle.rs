//! Key lifecycle over time: scheduled deletion with a pending window, automatic and
//! on-demand rotation, and [`Kms::tick`], the background step that carries them out.

use std::sync::Arc;

use time::OffsetDateTime;

use coffer_storage::KmsMaterialRecord;

use crate::keys::{list_limit, new_material_id, to_json};
use crate::model::{self, MaterialDoc};
use crate::{
    Caller, Error, KeyEntry, KeyState, Kms, Material, Op, Page, Result, RotationEntry,
    RotationStatus, RotationType, lock_write, material_aad,
};

/// Most on-demand rotations one key may have.
pub const MAX_ON_DEMAND_ROTATIONS: u32 = 25;
pub const DEFAULT_ROTATION_DAYS: u32 = 365;

/// What one [`Kms::tick`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tick {
    /// ARNs of the keys rotated on schedule.
    pub rotated: Vec<String>,
    /// ARNs of the keys deleted at the end of their pending window.
    pub deleted: Vec<String>,
    /// ARNs of the keys whose imported material expired (and was deleted).
    pub expired: Vec<String>,
}

impl Kms {
    /// ScheduleKeyDeletion: (key ARN, deletion date, window in days).
    pub async fn schedule_key_deletion(
        &self,
        caller: &Caller,
        key_id: &str,
        window_days: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<(String, OffsetDateTime, u32)> {
        let days = match window_days {
            None => 30,
            Some(d) if (7..=30).contains(&d) => u32::try_from(d).unwrap_or(30),
            Some(d) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{d}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30"
                )));
            }
        };
        let when = now + self.days(days);
        let e = self
            .change(caller, key_id, Op::ScheduleKeyDeletion, |d| {
                d.state = KeyState::PendingDeletion;
                d.deletion_date_ms = Some(model::ms(when));
                d.pending_window_days = Some(days);
                Ok(())
            })
            .await?;
        Ok((self.key_arn(&e.account, &e.id), when, days))
    }

    /// CancelKeyDeletion leaves the key Disabled, as AWS does.
    pub async fn cancel_key_deletion(&self, caller: &Caller, key_id: &str) -> Result<String> {
        let e = self
            .change_entry(caller, key_id, Op::CancelKeyDeletion, |e, d| {
                // A key without material (imported material expired or deleted) cannot be
                // disabled-but-usable: it waits for an import again.
                d.state = if e.materials.is_empty() {
                    KeyState::PendingImport
                } else {
                    KeyState::Disabled
                };
                d.deletion_date_ms = None;
                d.pending_window_days = None;
                Ok(())
            })
            .await?;
        Ok(self.key_arn(&e.account, &e.id))
    }

    pub async fn enable_key_rotation(
        &self,
        caller: &Caller,
        key_id: &str,
        period_days: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let days = match period_days {
            None => DEFAULT_ROTATION_DAYS,
            Some(d) if (90..=2560).contains(&d) => {
                u32::try_from(d).unwrap_or(DEFAULT_ROTATION_DAYS)
            }
            Some(d) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{d}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between 90 and 2560"
                )));
            }
        };
        let next = now + self.days(days);
        self.change(caller, key_id, Op::EnableKeyRotation, |d| {
            if d.spec != crate::KeySpec::SymmetricDefault {
                return Err(Error::UnsupportedOperation(
                    "Automatic rotation is supported only for symmetric encryption keys".into(),
                ));
            }
            d.rotation_period_days = Some(days);
            d.next_rotation_ms = Some(model::ms(next));
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub async fn disable_key_rotation(&self, caller: &Caller, key_id: &str) -> Result<()> {
        self.change(caller, key_id, Op::DisableKeyRotation, |d| {
            d.rotation_period_days = None;
            d.next_rotation_ms = None;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub async fn get_key_rotation_status(
        &self,
        caller: &Caller,
        key_id: &str,
    ) -> Result<RotationStatus> {
        let e = self
            .resolve(caller, key_id, false, Op::GetKeyRotationStatus.action())
            .await?;
        Op::GetKeyRotationStatus.check_origin(e.doc.origin, &self.key_arn(&e.account, &e.id))?;
        Op::GetKeyRotationStatus.check(e.doc.state, &self.key_arn(&e.account, &e.id))?;
        // A key pending deletion reports rotation as off; cancelling restores it.
        let pending = e.doc.state == KeyState::PendingDeletion;
        Ok(RotationStatus {
            key_id: self.key_arn(&e.account, &e.id),
            enabled: e.doc.rotation_period_days.is_some() && !pending,
            period_days: e.doc.rotation_period_days,
            next_rotation: e.doc.next_rotation_ms.map(model::from_ms),
        })
    }

    /// RotateKeyOnDemand: new material becomes current now; the automatic schedule is
    /// unchanged.
    pub async fn rotate_key_on_demand(
        &self,
        caller: &Caller,
        key_id: &str,
        now: OffsetDateTime,
    ) -> Result<String> {
        let e = self
            .resolve(caller, key_id, false, Op::RotateKeyOnDemand.action())
            .await?;
        let _guard = self.mutate.lock().await;
        let e = self.entry(&e.id).ok_or_else(|| {
            Error::NotFound(format!(
                "Key '{}' does not exist",
                self.key_arn(&e.account, &e.id)
            ))
        })?;
        let arn = self.key_arn(&e.account, &e.id);
        Op::RotateKeyOnDemand.check_origin(e.doc.origin, &arn)?;
        Op::RotateKeyOnDemand.check(e.doc.state, &arn)?;
        if e.doc.spec != crate::KeySpec::SymmetricDefault {
            return Err(Error::UnsupportedOperation(format!(
                "{arn} is not a symmetric encryption key: on-demand rotation is not supported"
            )));
        }
        if e.doc.on_demand_rotations >= MAX_ON_DEMAND_ROTATIONS {
            return Err(Error::LimitExceeded(format!(
                "{arn} has reached the limit of {MAX_ON_DEMAND_ROTATIONS} on-demand rotations"
            )));
        }
        self.rotate(&e, RotationType::OnDemand, now).await?;
        Ok(arn)
    }

    /// Adds a material version and makes it current. Call under `mutate`.
    async fn rotate(
        &self,
        e: &KeyEntry,
        kind: RotationType,
        now: OffsetDateTime,
    ) -> Result<Arc<KeyEntry>> {
        let version = e
            .materials
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| Error::LimitExceeded("too many key material versions".into()))?;
        let secret = coffer_crypto::random_secret(coffer_crypto::KEY_LEN)?;
        let mdoc = MaterialDoc {
            material_id: new_material_id()?,
            created_ms: model::ms(now),
            rotation: Some(kind),
        };
        let mut doc = e.doc.clone();
        doc.current_version = version;
        match kind {
            RotationType::OnDemand => doc.on_demand_rotations += 1,
            RotationType::Automatic => {
                if let Some(p) = doc.rotation_period_days {
                    doc.next_rotation_ms = Some(model::ms(now + self.days(p)));
                }
            }
        }
        let wrapped = self.root.wrap(&material_aad(&e.id, version), &secret)?;
        self.store
            .kms_add_material(
                &e.record(&doc)?,
                &KmsMaterialRecord {
                    key_id: e.id.clone(),
                    version,
                    wrapped,
                    doc: to_json(&mdoc)?,
                },
            )
            .await?;
        let mut materials: Vec<Material> = e
            .materials
            .iter()
            .map(|m| Material {
                version: m.version,
                doc: m.doc.clone(),
                secret: m.secret.clone(),
            })
            .collect();
        materials.push(Material {
            version,
            doc: mdoc,
            secret,
        });
        Ok(self.install(e.replaced(doc, Arc::new(materials))))
    }

    /// ListKeyRotations: the rotations (and, with `ALL_KEY_MATERIAL`, the original
    /// material), oldest first, `limit` (1-1000, default 100) after `marker`.
    pub async fn list_key_rotations(
        &self,
        caller: &Caller,
        key_id: &str,
        include: Option<&str>,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> Result<Page<RotationEntry>> {
        let limit = list_limit(limit, 100)?;
        let all = match include {
            None | Some("ROTATIONS_ONLY") => false,
            Some("ALL_KEY_MATERIAL") => true,
            Some(other) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{other}' at 'includeKeyMaterial' failed to satisfy constraint: Member must satisfy enum value set: [ALL_KEY_MATERIAL, ROTATIONS_ONLY]"
                )));
            }
        };
        let after = match marker {
            None => None,
            Some(m) => Some(m.parse::<u32>().map_err(|_| Error::InvalidMarker)?),
        };
        let e = self
            .resolve(caller, key_id, false, Op::ListKeyRotations.action())
            .await?;
        Op::ListKeyRotations.check(e.doc.state, &self.key_arn(&e.account, &e.id))?;
        let arn = self.key_arn(&e.account, &e.id);
        let mut entries: Vec<(u32, RotationEntry)> = e
            .materials
            .iter()
            .filter(|m| all || m.doc.rotation.is_some())
            .filter(|m| after.is_none_or(|a| m.version > a))
            .map(|m| {
                (
                    m.version,
                    RotationEntry {
                        key_id: arn.clone(),
                        material_id: m.doc.material_id.clone(),
                        rotation_date: model::from_ms(m.doc.created_ms),
                        rotation_type: m.doc.rotation,
                        current: m.version == e.doc.current_version,
                    },
                )
            })
            .collect();
        entries.sort_by_key(|(v, _)| *v);
        let truncated = entries.len() > limit;
        entries.truncate(limit);
        let next = if truncated {
            entries.last().map(|(v, _)| v.to_string())
        } else {
            None
        };
        Ok(Page {
            items: entries.into_iter().map(|(_, r)| r).collect(),
            next_marker: next,
        })
    }

    /// One background step at `now`: deletes keys whose pending window ended (their
    /// material is destroyed and their ciphertexts can never be decrypted), deletes
    /// imported material past its ValidTo (the key returns to PendingImport), rotates keys
    /// whose rotation period elapsed (only Enabled keys rotate; a key disabled past its
    /// date rotates when it is enabled again), and writes pending last-usage records.
    pub async fn tick(&self, now: OffsetDateTime) -> Result<Tick> {
        let mut report = Tick::default();
        let now_ms = model::ms(now);
        let due: Vec<Arc<KeyEntry>> = crate::lock_read(&self.keys).values().cloned().collect();
        for e in due {
            let delete = e.doc.state == KeyState::PendingDeletion
                && e.doc.deletion_date_ms.is_some_and(|d| d <= now_ms);
            let rotate = e.doc.state == KeyState::Enabled
                && e.doc.next_rotation_ms.is_some_and(|n| n <= now_ms);
            let expire = !e.materials.is_empty()
                && e.doc
                    .import
                    .as_ref()
                    .and_then(|i| i.valid_to_ms)
                    .is_some_and(|t| t <= now_ms);
            if !delete && !rotate && !expire {
                continue;
            }
            let _guard = self.mutate.lock().await;
            // Re-check under the lock: the key may have changed since the scan, here or
            // (with a shared store) on another node whose notice has not arrived yet.
            let Some(e) = self.entry(&e.id) else { continue };
            let in_store = self.store.kms_get_key(&e.id).await?.map(|r| r.doc);
            if in_store != e.stored {
                self.reload_entry(&e.id).await?;
                continue;
            }
            if e.doc.state == KeyState::PendingDeletion
                && e.doc.deletion_date_ms.is_some_and(|d| d <= now_ms)
            {
                self.store.kms_delete_key(&e.id).await?;
                lock_write(&self.keys).remove(&e.id);
                lock_write(&self.aliases).retain(|_, target| *target != e.id);
                self.usage
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&e.id);
                tracing::info!(key = %e.id, "deleted a KMS key whose pending window ended; its material is destroyed");
                report.deleted.push(self.key_arn(&e.account, &e.id));
            } else if self.expire_material(&e, now_ms).await? {
                tracing::info!(key = %e.id, "deleted imported key material at its ValidTo");
                report.expired.push(self.key_arn(&e.account, &e.id));
            } else if e.doc.state == KeyState::Enabled
                && e.doc.next_rotation_ms.is_some_and(|n| n <= now_ms)
            {
                self.rotate(&e, RotationType::Automatic, now).await?;
                tracing::info!(key = %e.id, "rotated a KMS key on schedule");
                report.rotated.push(self.key_arn(&e.account, &e.id));
            }
        }
        self.flush_usage().await?;
        Ok(report)
    }

    /// Writes last-usage records kept in memory into the keys' documents. The background
    /// step calls it; a clean shutdown calls it once more so nothing recorded is lost.
    pub async fn flush_usage(&self) -> Result<()> {
        // Entries leave memory only once their key's document holds them, so a reader
        // (GetKeyLastUsage) always finds the last use in one place or the other.
        let pending: Vec<(String, crate::LastUsage)> = {
            let u = self.usage.lock().unwrap_or_else(|p| p.into_inner());
            u.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        for (id, usage) in pending {
            let _guard = self.mutate.lock().await;
            if let Some(e) = self.entry(&id) {
                let mut doc = e.doc.clone();
                doc.last_usage = Some(usage.clone());
                self.commit_doc(&e, doc).await?;
            }
            let mut u = self.usage.lock().unwrap_or_else(|p| p.into_inner());
            if u.get(&id) == Some(&usage) {
                u.remove(&id);
            }
        }
        Ok(())
    }
}
