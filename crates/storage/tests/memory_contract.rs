//! The contract suite against the in-memory model, so the suite itself is known to pass
//! on a straightforward implementation.

use coffer_storage::memory::{MemoryBlobs, MemoryIam, MemoryKms, MemoryMeta};

coffer_storage::meta_contract!((MemoryMeta::new(), ()));
coffer_storage::blob_contract!((MemoryBlobs::new(), ()));
coffer_storage::kms_contract!((MemoryKms::new(), ()));
coffer_storage::iam_contract!((MemoryIam::new(), ()));
