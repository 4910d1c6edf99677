//! The contract suite: what every backend must do, written once against the traits.
//!
//! A backend runs it with one macro call per trait it implements, each given an
//! expression that builds a fresh store (and anything that must live as long as it, such
//! as a temp dir):
//!
//! ```text
//! coffer_storage::meta_contract!(make_meta());   // -> (impl MetaStore, guard)
//! coffer_storage::blob_contract!(make_blobs());  // -> (impl BlobStore, guard)
//! coffer_storage::kms_contract!(make_kms());     // -> (impl KmsStore, guard)
//! ```

mod blobs;
mod iam;
mod kms;
mod lifecycle;
mod lock;
mod objects;
mod versions;

pub use blobs::*;
pub use iam::*;
pub use kms::*;
pub use lifecycle::*;
pub use lock::*;
pub use objects::*;
pub use versions::*;

/// Expands to one `#[tokio::test]` per metadata check.
#[macro_export]
macro_rules! meta_contract {
    ($make:expr) => {
        mod meta_contract {
            #[allow(unused_imports)]
            use super::*;
            $crate::contract_tests!($make;
                buckets, objects_round_trip, replacing_queues_garbage, preconditions,
                listing_is_ordered_bytewise, listing_bounds_and_pages, tags, uploads,
                complete_checks_parts, abort_queues_parts, listing_uploads,
                writes_need_a_bucket, bucket_settings, account_settings,
                buckets_are_created_with_their_settings,
                sse_records_round_trip,
                sse_records_are_replaced_in_place,
                buckets_keep_their_versioning, versions_are_kept_and_read_by_id,
                suspended_versioning_writes_the_null_version, listing_versions_pages,
                versioned_operations_match_a_model, object_lock_is_enforced_by_the_store,
                bucket_usage_counts_every_version,
                expire_acts_only_on_the_version_listed,
                transition_moves_a_listed_version_and_frees_its_old_bytes);
        }
    };
}

/// Expands to one `#[tokio::test]` per blob check.
#[macro_export]
macro_rules! blob_contract {
    ($make:expr) => {
        mod blob_contract {
            #[allow(unused_imports)]
            use super::*;
            $crate::contract_tests!($make;
                blob_round_trip, blob_ranges, blob_staging, abandoned_writer_leaves_nothing,
                abandoned_staged_blobs_are_found_once_idle);
        }
    };
}

/// Expands to one `#[tokio::test]` per KMS store check.
#[macro_export]
macro_rules! kms_contract {
    ($make:expr) => {
        mod kms_contract {
            #[allow(unused_imports)]
            use super::*;
            $crate::contract_tests!($make;
                kms_keys_round_trip, kms_rotation_adds_versions, kms_materials_can_be_absent_and_removed, kms_listing_keys,
                kms_aliases, kms_delete_key_destroys_everything, kms_settings,
                kms_conditional_updates);
        }
    };
}

/// Expands to one `#[tokio::test]` per IAM store check.
#[macro_export]
macro_rules! iam_contract {
    ($make:expr) => {
        mod iam_contract {
            #[allow(unused_imports)]
            use super::*;
            $crate::contract_tests!($make; iam_records_round_trip);
        }
    };
}

/// One `#[tokio::test]` per named check, each on a fresh store from `$make`.
#[doc(hidden)]
#[macro_export]
macro_rules! contract_tests {
    ($make:expr; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _guard) = $make;
                $crate::contract::$name(&store).await;
            }
        )*
    };
}
