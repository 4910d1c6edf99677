//! `coffer audit verify`: checks a data directory's audit trail with the KMS's audit key
//! (opened read-only in effect: nothing is created or changed).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use coffer_storage_local::LocalStore;

use crate::KmsSigner;
use crate::identity::Identity;

/// Returns the findings (empty for an intact trail).
pub async fn verify(data_dir: &Path, root_key_file: Option<&Path>) -> anyhow::Result<Vec<String>> {
    let source = match std::env::var("COFFER_ROOT_KEY") {
        Ok(b64) if !b64.is_empty() => coffer_crypto::RootKeySource::Base64(b64),
        _ => {
            let path = root_key_file
                .map(Path::to_path_buf)
                .unwrap_or_else(|| data_dir.join("root.key"));
            if !path.exists() {
                bail!("no root key at {} (pass --root-key-file)", path.display());
            }
            coffer_crypto::RootKeySource::File(path)
        }
    };
    let account = Identity::account_id(data_dir)?;
    let store = LocalStore::open(data_dir)
        .with_context(|| format!("opening data directory {}", data_dir.display()))?;
    let (root, _) = coffer_crypto::LocalRootKey::load(&source).context("loading the root key")?;
    let kms = Arc::new(
        coffer_kms::Kms::open(
            Arc::new(store.meta.clone()),
            Arc::new(root),
            coffer_kms::Config::default(),
        )
        .await
        .context("opening the KMS")?,
    );
    let dir = data_dir.join("audit");
    if !dir.exists() {
        bail!("{} has no audit trail", data_dir.display());
    }
    let Some(key_id) = kms.existing_audit_key(&account).await? else {
        bail!("the KMS holds no audit key: this trail cannot be checked");
    };
    let signer = KmsSigner { kms, key_id };
    Ok(coffer_audit::trail::verify(&dir, &signer)?)
}
