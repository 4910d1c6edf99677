//! Contract checks of lifecycle's one write, `MetaStore::expire`: it acts on the version a
//! listing showed only while that version is still as listed, so a write that raced the
//! listing is never expired by it, and it never removes a locked version.

use std::collections::BTreeMap;

use time::Duration;

use super::objects::{bucket, now};
use super::versions::{object, versions};
use crate::{Authority, Entry, Error, Listed, MetaStore, Precondition, VersionRef, Versioning};

async fn mtime(
    store: &dyn MetaStore,
    b: &str,
    key: &str,
    v: VersionRef<'_>,
) -> time::OffsetDateTime {
    match store.get_entry(b, key, v).await.expect("get") {
        Some(Entry::Object(o)) => o.last_modified,
        Some(Entry::Marker(m)) => m.last_modified,
        None => panic!("no such version"),
    }
}

static NO_TAGS: BTreeMap<String, String> = BTreeMap::new();

fn listed<'a>(
    version: VersionRef<'a>,
    last_modified: time::OffsetDateTime,
    current: bool,
) -> Listed<'a> {
    // The contract's objects are named by version and carry the ETag of their body.
    let etag = match version {
        VersionRef::Id("v1") => "etag-one",
        VersionRef::Id("v2") => "etag-two",
        VersionRef::Id("vh") => "etag-held",
        VersionRef::Null => "etag-old",
        _ => "",
    };
    Listed {
        version,
        last_modified,
        current,
        etag,
        tags: &NO_TAGS,
        marker_id: "marker",
    }
}

pub async fn expire_acts_only_on_the_version_listed(store: &dyn MetaStore) {
    let by = Authority::now();
    store.create_bucket(&bucket("b")).await.expect("bucket");
    store
        .set_versioning("b", Versioning::Enabled)
        .await
        .expect("enable");
    let mut one = object("b", "k", "v1", "one");
    one.last_modified = now() - Duration::seconds(10);
    store
        .put_object(&one, &Precondition::None)
        .await
        .expect("put");
    store
        .put_object(&object("b", "k", "v2", "two"), &Precondition::None)
        .await
        .expect("put");
    let t1 = mtime(store, "b", "k", VersionRef::Id("v1")).await;
    let t2 = mtime(store, "b", "k", VersionRef::Id("v2")).await;

    // Stale views change nothing: wrong time, or current-ness not as listed.
    for stale in [
        listed(VersionRef::Id("v1"), t1 + Duration::milliseconds(1), false),
        listed(VersionRef::Id("v1"), t1, true),
        listed(VersionRef::Id("v2"), t2, false),
        listed(VersionRef::Id("gone"), t2, false),
    ] {
        assert!(
            store
                .expire("b", "k", &stale, &by)
                .await
                .expect("expire")
                .is_none(),
            "{stale:?}"
        );
    }
    assert_eq!(versions(store, "b", "").await.len(), 2);
    // Tags changed since the listing (a rule may filter on them): not the version listed.
    let tagged: BTreeMap<String, String> = [("keep".to_string(), "yes".to_string())].into();
    store
        .set_object_tags("b", "k", VersionRef::Id("v2"), &tagged)
        .await
        .expect("tag");
    assert!(
        store
            .expire("b", "k", &listed(VersionRef::Id("v2"), t2, true), &by)
            .await
            .expect("expire")
            .is_none()
    );
    store
        .set_object_tags("b", "k", VersionRef::Id("v2"), &BTreeMap::new())
        .await
        .expect("untag");

    // The current object expires into a delete marker; listed again, it is stale.
    let d = store
        .expire("b", "k", &listed(VersionRef::Id("v2"), t2, true), &by)
        .await
        .expect("expire")
        .expect("acted");
    assert_eq!(
        d.marker.expect("a marker").version_id.as_deref(),
        Some("marker")
    );
    assert!(d.removed.is_none());
    assert!(
        store
            .expire("b", "k", &listed(VersionRef::Id("v2"), t2, true), &by)
            .await
            .expect("expire")
            .is_none()
    );
    // A noncurrent version is removed for good.
    let d = store
        .expire("b", "k", &listed(VersionRef::Id("v1"), t1, false), &by)
        .await
        .expect("expire")
        .expect("acted");
    assert!(matches!(d.removed, Some(Entry::Object(ref o)) if o.etag == "etag-one"));
    // The current delete marker is removed (its version comes back).
    let tm = mtime(store, "b", "k", VersionRef::Id("marker")).await;
    store
        .expire("b", "k", &listed(VersionRef::Id("marker"), tm, true), &by)
        .await
        .expect("expire")
        .expect("acted");
    let left = versions(store, "b", "").await;
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].1.as_deref(), left[0].2), (Some("v2"), true));

    // A locked version stays: expiring it as the current object only writes a delete
    // marker over it (always allowed, as on S3); removing it is refused.
    let mut held = object("b", "h", "vh", "held");
    held.meta.legal_hold = Some(true);
    store
        .put_object(&held, &Precondition::None)
        .await
        .expect("put");
    let th = mtime(store, "b", "h", VersionRef::Id("vh")).await;
    let d = store
        .expire("b", "h", &listed(VersionRef::Id("vh"), th, true), &by)
        .await
        .expect("expire")
        .expect("acted");
    assert!(d.marker.is_some() && d.removed.is_none());
    assert!(matches!(
        store
            .expire("b", "h", &listed(VersionRef::Id("vh"), th, false), &by)
            .await,
        Err(Error::ObjectLocked { .. })
    ));
    assert_eq!(versions(store, "b", "h").await.len(), 2);

    // A null version replaced after it was listed (suspended bucket) is not expired.
    store.create_bucket(&bucket("s")).await.expect("bucket");
    let mut old = object("s", "k", "x", "old");
    old.last_modified = now() - Duration::seconds(10);
    store
        .put_object(&old, &Precondition::None)
        .await
        .expect("put");
    let t_old = mtime(store, "s", "k", VersionRef::Null).await;
    store
        .set_versioning("s", Versioning::Suspended)
        .await
        .expect("suspend");
    store
        .put_object(&object("s", "k", "y", "new"), &Precondition::None)
        .await
        .expect("overwrite the null version");
    assert!(
        store
            .expire("s", "k", &listed(VersionRef::Null, t_old, true), &by)
            .await
            .expect("expire")
            .is_none()
    );
    let left = versions(store, "s", "").await;
    assert_eq!((left.len(), left[0].4.as_str()), (1, "etag-new"));
}

pub async fn transition_moves_a_listed_version_and_frees_its_old_bytes(store: &dyn MetaStore) {
    use crate::{BlobId, Extent, Restore};
    store.create_bucket(&bucket("b")).await.expect("bucket");
    store
        .set_versioning("b", Versioning::Enabled)
        .await
        .expect("enable");
    let hot = BlobId::generate();
    let mut o = object("b", "k", "v1", "one");
    o.extents = vec![Extent::Blob {
        id: hot.clone(),
        len: 3,
    }];
    store
        .put_object(&o, &Precondition::None)
        .await
        .expect("put");
    let t = mtime(store, "b", "k", VersionRef::Id("v1")).await;
    let cold = BlobId::generate();
    let moved = vec![Extent::Blob {
        id: cold.clone(),
        len: 3,
    }];
    // A stale listing changes nothing.
    assert!(
        store
            .transition(
                "b",
                "k",
                &listed(VersionRef::Id("v1"), t, false),
                &o.extents,
                "GLACIER",
                &moved
            )
            .await
            .expect("transition")
            .is_none()
    );
    // Bytes other than those copied (the version was rewritten): nothing changes.
    assert!(
        store
            .transition(
                "b",
                "k",
                &listed(VersionRef::Id("v1"), t, true),
                &moved,
                "GLACIER",
                &moved
            )
            .await
            .expect("transition")
            .is_none()
    );
    let old = store
        .transition(
            "b",
            "k",
            &listed(VersionRef::Id("v1"), t, true),
            &o.extents,
            "GLACIER",
            &moved,
        )
        .await
        .expect("transition")
        .expect("acted");
    assert!(matches!(old, Entry::Object(ref o) if o.meta.storage_class.is_none()));
    match store
        .get_entry("b", "k", VersionRef::Id("v1"))
        .await
        .expect("get")
    {
        Some(Entry::Object(now)) => {
            assert_eq!(now.meta.storage_class.as_deref(), Some("GLACIER"));
            assert_eq!(now.extents, moved);
            assert_eq!(
                (now.etag, now.last_modified),
                (o.etag.clone(), t),
                "the same version"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.take_garbage(10).await.expect("garbage"), vec![hot]);
    assert!(store.blob_referenced(&cold).await.expect("referenced"));

    // A restore is recorded on the version; markers and missing versions are refused.
    let r = Restore {
        ready_at: now(),
        expires: now() + Duration::hours(1),
    };
    store
        .set_object_restore("b", "k", VersionRef::Id("v1"), &r)
        .await
        .expect("restore");
    match store
        .get_entry("b", "k", VersionRef::Latest)
        .await
        .expect("get")
    {
        Some(Entry::Object(o)) => assert_eq!(o.meta.restore, Some(r)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store
            .set_object_restore("b", "k", VersionRef::Id("nope"), &r)
            .await,
        Err(Error::NoSuchVersion { .. })
    ));
}
