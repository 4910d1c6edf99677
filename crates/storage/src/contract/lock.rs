//! Contract checks of Object Lock: the store itself refuses to remove a locked version or
//! to weaken its lock, whoever asks, and a refusal changes nothing.

use time::Duration;

use super::objects::{bucket, now};
use super::versions::{object, versions};
use crate::{
    Authority, Entry, Error, LockChange, LockMode, MetaStore, Precondition, Refusal, Retention,
    VersionRef, Versioning,
};

fn retention(mode: LockMode, hours: i64) -> Retention {
    Retention {
        mode,
        until: now() + Duration::hours(hours),
    }
}

fn by(hours_from_now: i64, bypass_governance: bool) -> Authority {
    Authority {
        now: now() + Duration::hours(hours_from_now),
        bypass_governance,
    }
}

async fn lock_of(store: &dyn MetaStore, key: &str, id: &str) -> (Option<Retention>, Option<bool>) {
    match store
        .get_entry("b", key, VersionRef::Id(id))
        .await
        .expect("get")
    {
        Some(Entry::Object(o)) => (o.meta.retention, o.meta.legal_hold),
        other => panic!("{other:?}"),
    }
}

fn locked(r: crate::Result<impl std::fmt::Debug>, want: Refusal) {
    match r {
        Err(Error::ObjectLocked { refusal, .. }) => assert_eq!(refusal, want),
        other => panic!("expected ObjectLocked({want:?}), got {other:?}"),
    }
}

pub async fn object_lock_is_enforced_by_the_store(store: &dyn MetaStore) {
    use LockMode::*;
    store.create_bucket(&bucket("b")).await.expect("bucket");
    store
        .set_versioning("b", Versioning::Enabled)
        .await
        .expect("enable");
    let mut c = object("b", "k", "vc", "compliance");
    c.meta.retention = Some(retention(Compliance, 1));
    let mut g = object("b", "k", "vg", "governance");
    g.meta.retention = Some(retention(Governance, 1));
    let mut h = object("b", "k", "vh", "held");
    h.meta.legal_hold = Some(true);
    for o in [&c, &g, &h] {
        store.put_object(o, &Precondition::None).await.expect("put");
    }
    let all = versions(store, "b", "").await;
    assert_eq!(all.len(), 3);

    // COMPLIANCE: nobody removes it, bypass or not, until its date.
    for bypass in [false, true] {
        locked(
            store
                .delete_version("b", "k", VersionRef::Id("vc"), &by(0, bypass))
                .await,
            Refusal::Retention(Compliance),
        );
    }
    // Nor weakens it.
    for change in [
        LockChange::Retention(None),
        LockChange::Retention(Some(retention(Compliance, -1))),
        LockChange::Retention(Some(retention(Governance, 5))),
    ] {
        locked(
            store
                .set_object_lock("b", "k", VersionRef::Id("vc"), change, &by(0, true))
                .await,
            Refusal::Retention(Compliance),
        );
    }
    assert_eq!(lock_of(store, "k", "vc").await, (c.meta.retention, None));
    // GOVERNANCE: only with the bypass.
    locked(
        store
            .delete_version("b", "k", VersionRef::Id("vg"), &by(0, false))
            .await,
        Refusal::Retention(Governance),
    );
    // A legal hold: nobody, until it is lifted.
    locked(
        store
            .delete_version("b", "k", VersionRef::Id("vh"), &by(100, true))
            .await,
        Refusal::LegalHold,
    );
    // Refusals changed nothing.
    assert_eq!(versions(store, "b", "").await, all);

    // A delete marker can always be written over locked versions.
    let d = store
        .delete_object("b", "k", "m1", &by(0, false), &Precondition::None)
        .await
        .expect("a delete marker");
    assert!(d.marker.is_some() && d.removed.is_none());
    assert_eq!(versions(store, "b", "").await.len(), 4);
    // Locks belong to objects, not markers.
    assert!(matches!(
        store
            .set_object_lock(
                "b",
                "k",
                VersionRef::Id("m1"),
                LockChange::LegalHold(true),
                &by(0, false)
            )
            .await,
        Err(Error::IsDeleteMarker { .. })
    ));
    assert!(matches!(
        store
            .set_object_lock(
                "b",
                "k",
                VersionRef::Id("nope"),
                LockChange::LegalHold(true),
                &by(0, false)
            )
            .await,
        Err(Error::NoSuchVersion { .. })
    ));

    // Lengthening is allowed; the bypass removes GOVERNANCE; lifting the hold frees.
    let longer = retention(Compliance, 2);
    store
        .set_object_lock(
            "b",
            "k",
            VersionRef::Id("vc"),
            LockChange::Retention(Some(longer)),
            &by(0, false),
        )
        .await
        .expect("lengthen");
    assert_eq!(lock_of(store, "k", "vc").await, (Some(longer), None));
    store
        .delete_version("b", "k", VersionRef::Id("vg"), &by(0, true))
        .await
        .expect("bypassed");
    store
        .set_object_lock(
            "b",
            "k",
            VersionRef::Id("vh"),
            LockChange::LegalHold(false),
            &by(0, false),
        )
        .await
        .expect("lift the hold");
    store
        .delete_version("b", "k", VersionRef::Id("vh"), &by(0, false))
        .await
        .expect("no longer held");
    // After its date, COMPLIANCE gives way.
    locked(
        store
            .delete_version("b", "k", VersionRef::Id("vc"), &by(1, false))
            .await,
        Refusal::Retention(Compliance),
    );
    store
        .delete_version("b", "k", VersionRef::Id("vc"), &by(3, false))
        .await
        .expect("retention passed");
    assert_eq!(
        versions(store, "b", "").await.len(),
        1,
        "the marker is left"
    );

    // A write that would replace a locked null version fails and changes nothing.
    store.create_bucket(&bucket("s")).await.expect("bucket");
    let mut n = object("s", "k", "unused", "null");
    n.meta.retention = Some(retention(Governance, 1));
    store
        .put_object(&n, &Precondition::None)
        .await
        .expect("put");
    store
        .set_versioning("s", Versioning::Suspended)
        .await
        .expect("suspend");
    locked(
        store
            .put_object(&object("s", "k", "x", "over"), &Precondition::None)
            .await,
        Refusal::Retention(Governance),
    );
    locked(
        store
            .delete_object("s", "k", "m", &by(0, false), &Precondition::None)
            .await,
        Refusal::Retention(Governance),
    );
    let left = versions(store, "s", "").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].4, "etag-null");
    store
        .delete_object("s", "k", "m", &by(0, true), &Precondition::None)
        .await
        .expect("bypassed: the null marker replaces it");
    assert!(matches!(
        store.delete_bucket("b").await,
        Err(Error::BucketNotEmpty(_))
    ));
}
