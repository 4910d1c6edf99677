//! `coffer audit verify`: checks a data directory's audit trail with the KMS's audit key
//! (opened read-only in effect: nothing is created or changed).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use coffer_storage_local::LocalStore;

use crate::KmsSigner;
use crate::identity::Identity;

/// Returns the findings (empty for an intact trail).
/// Where the trail to check is, besides the data directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrailAt<'a> {
    /// A scale-out deployment's metadata store: its KMS holds the audit key, and every
    /// node's trail is checked.
    pub meta: Option<&'a str>,
    /// The trail's directory (default `DATA_DIR/audit`).
    pub audit_dir: Option<&'a Path>,
}

pub async fn verify(
    data_dir: &Path,
    root_key: &crate::cli::RootKeyArgs,
    at: TrailAt<'_>,
) -> anyhow::Result<Vec<String>> {
    use crate::rootkey::RootSource;
    let source = root_key.source(data_dir)?;
    match &source {
        RootSource::Local(coffer_crypto::RootKeySource::File(path)) if !path.exists() => {
            bail!("no root key at {} (pass --root-key-file)", path.display());
        }
        RootSource::Hsm { .. } if !data_dir.join("root-key-hsm.json").exists() => {
            bail!("{} has no HSM root key", data_dir.display());
        }
        _ => {}
    }
    let account = Identity::account_id(data_dir)?;
    let dir = at
        .audit_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| data_dir.join("audit"));
    if !dir.exists() {
        bail!("{} has no audit trail", dir.display());
    }
    // The KMS that holds the audit key: the data directory's, or the deployment's.
    let (kms_store, _open): (Arc<dyn coffer_storage::KmsStore>, Box<dyn std::any::Any>) =
        match at.meta {
            None => {
                let store = LocalStore::open(data_dir)
                    .with_context(|| format!("opening data directory {}", data_dir.display()))?;
                (Arc::new(store.meta.clone()), Box::new(store))
            }
            Some(url) => {
                // A verifier changes nothing, the schema included.
                let pg = coffer_storage_postgres::PgStore::connect_without_migrating(url)
                    .await
                    .context("opening the PostgreSQL metadata store (--meta)")?;
                (Arc::new(pg), Box::new(()))
            }
        };
    let (root, _) = crate::rootkey::RootKeys::load(&source, data_dir)?;
    let kms = Arc::new(
        coffer_kms::Kms::open(kms_store, root.root(), coffer_kms::Config::default())
            .await
            .context("opening the KMS")?,
    );
    let Some(key_id) = kms.existing_audit_key(&account).await? else {
        bail!("the KMS holds no audit key: this trail cannot be checked");
    };
    let signer = KmsSigner { kms, key_id };
    if at.meta.is_none() {
        return Ok(coffer_audit::trail::verify(&dir, &signer)?);
    }
    // One chain per node, each in its own subdirectory; a finding names its node.
    let nodes = coffer_audit::trail::node_trails(&dir)?;
    if nodes.is_empty() {
        bail!("{} holds no node's trail", dir.display());
    }
    let mut findings = Vec::new();
    for node in nodes {
        let name = node
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for f in coffer_audit::trail::verify(&node, &signer)? {
            findings.push(format!("{name}: {f}"));
        }
    }
    Ok(findings)
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Usage {
    pub account_id: String,
    pub event_source: String,
    pub operation: String,
    /// The KMS key for KMS operations (what AWS bills per), else empty.
    pub key: String,
    pub requests: u64,
}

/// Counts the trail's records in `[start, end]` (RFC 3339; open-ended when absent).
/// Metering is read from the audit trail, so it counts exactly what was audited,
/// including the KMS calls S3 made for callers.
pub fn usage(
    data_dir: &Path,
    start: Option<&str>,
    end: Option<&str>,
) -> anyhow::Result<Vec<Usage>> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let parse = |s: Option<&str>| -> anyhow::Result<Option<OffsetDateTime>> {
        s.map(|s| {
            OffsetDateTime::parse(s, &Rfc3339)
                .with_context(|| format!("{s} is not an RFC 3339 time (2026-11-27T00:00:00Z)"))
        })
        .transpose()
    };
    let (start, end) = (parse(start)?, parse(end)?);
    let dir = data_dir.join("audit");
    let mut counts: std::collections::BTreeMap<(String, String, String, String), u64> =
        std::collections::BTreeMap::new();
    for r in coffer_audit::trail::read_records(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
    {
        let Some(t) = r.parsed_time() else { continue };
        if start.is_some_and(|s| t < s) || end.is_some_and(|e| t > e) {
            continue;
        }
        let key = if r.event_source == "kms.amazonaws.com" {
            r.resources
                .iter()
                .find(|x| x.kind == "AWS::KMS::Key")
                .map(|x| x.arn.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        *counts
            .entry((r.recipient_account_id, r.event_source, r.event_name, key))
            .or_default() += 1;
    }
    Ok(counts
        .into_iter()
        .map(
            |((account_id, event_source, operation, key), requests)| Usage {
                account_id,
                event_source,
                operation,
                key,
                requests,
            },
        )
        .collect())
}

/// `coffer usage` as a table.
pub fn usage_table(rows: &[Usage]) -> String {
    let mut out = format!(
        "{:<12}  {:<22}  {:<32}  {:>9}  KEY\n",
        "ACCOUNT", "SOURCE", "OPERATION", "REQUESTS"
    );
    for r in rows {
        out += &format!(
            "{:<12}  {:<22}  {:<32}  {:>9}  {}\n",
            r.account_id,
            r.event_source,
            r.operation,
            r.requests,
            if r.key.is_empty() { "-" } else { &r.key }
        );
    }
    out
}
