//! The storage contract suite against the embedded backend.

use coffer_storage_local::LocalStore;

fn open() -> (LocalStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::open(dir.path()).expect("open store");
    (store, dir)
}

fn meta() -> (
    coffer_storage_local::SqliteMeta,
    (LocalStore, tempfile::TempDir),
) {
    let (store, dir) = open();
    (store.meta.clone(), (store, dir))
}

fn blobs() -> (
    coffer_storage_local::FileBlobs,
    (LocalStore, tempfile::TempDir),
) {
    let (store, dir) = open();
    (store.blobs.clone(), (store, dir))
}

coffer_storage::meta_contract!(meta());
coffer_storage::blob_contract!(blobs());
coffer_storage::kms_contract!(meta());
coffer_storage::iam_contract!(meta());

#[test]
fn a_data_dir_is_opened_by_one_process_at_a_time() {
    let (_store, dir) = open();
    match LocalStore::open(dir.path()) {
        Err(coffer_storage_local::OpenError::Locked(_)) => {}
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a second open of a locked data dir succeeded"),
    }
}
