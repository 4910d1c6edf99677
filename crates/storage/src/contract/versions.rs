//! Contract checks of versioning: every version kept and read back by id, delete markers,
//! the null version of suspended buckets, listings of versions with their markers and
//! pages, and a property test of random versioned operations against a small model that
//! states S3's rules independently of any backend.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use super::objects::{bucket, now};
use crate::{
    Authority, BlobId, Entry, Error, Extent, ListedVersion, MetaStore, ObjectMeta, ObjectRecord,
    Precondition, VersionListQuery, VersionRef, VersionStart, VersionSummary, Versioning,
};

pub(crate) fn object(bucket: &str, key: &str, candidate: &str, body: &str) -> ObjectRecord {
    ObjectRecord {
        bucket: bucket.into(),
        key: key.into(),
        version_id: Some(candidate.into()),
        size: body.len() as u64,
        etag: format!("etag-{body}"),
        last_modified: now(),
        meta: ObjectMeta::default(),
        extents: vec![Extent::Inline(Bytes::from(body.as_bytes().to_vec()))],
    }
}

/// What a listing of versions shows: (key, version id, latest, marker, etag).
pub(crate) type Row = (String, Option<String>, bool, bool, String);

fn row(v: &ListedVersion) -> Row {
    match &v.version {
        VersionSummary::Object(o) => (
            o.key.clone(),
            o.version_id.clone(),
            v.is_latest,
            false,
            o.etag.clone(),
        ),
        VersionSummary::Marker(m) => (
            m.key.clone(),
            m.version_id.clone(),
            v.is_latest,
            true,
            String::new(),
        ),
    }
}

pub(crate) async fn versions(store: &dyn MetaStore, bucket: &str, prefix: &str) -> Vec<Row> {
    let page = store
        .list_versions(
            bucket,
            &VersionListQuery {
                prefix,
                start: VersionStart::Beginning,
                limit: 10_000,
            },
        )
        .await
        .expect("list versions");
    assert!(!page.truncated);
    page.items.iter().map(row).collect()
}

async fn current_keys(store: &dyn MetaStore, bucket: &str) -> Vec<String> {
    store
        .list_objects(bucket, "", Bound::Unbounded, 10_000)
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|o| o.key)
        .collect()
}

async fn body_of(store: &dyn MetaStore, bucket: &str, key: &str, v: VersionRef<'_>) -> String {
    match store.get_entry(bucket, key, v).await.expect("get entry") {
        Some(Entry::Object(o)) => o.etag.trim_start_matches("etag-").to_owned(),
        Some(Entry::Marker(_)) => "<marker>".into(),
        None => "<none>".into(),
    }
}

pub async fn buckets_keep_their_versioning(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    let got = store.get_bucket("b").await.expect("get").expect("exists");
    assert_eq!(got.versioning, Versioning::Unversioned);
    for v in [Versioning::Enabled, Versioning::Suspended] {
        store.set_versioning("b", v).await.expect("set");
        let got = store.get_bucket("b").await.expect("get").expect("exists");
        assert_eq!(got.versioning, v);
        let listed = store.list_buckets().await.expect("list");
        assert_eq!(listed[0].versioning, v);
    }
    assert!(matches!(
        store.set_versioning("nope", Versioning::Enabled).await,
        Err(Error::NoSuchBucket(_))
    ));
}

pub async fn versions_are_kept_and_read_by_id(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    store
        .set_versioning("b", Versioning::Enabled)
        .await
        .expect("enable");
    let mut ids = Vec::new();
    for (i, body) in ["one", "two", "three"].into_iter().enumerate() {
        let w = store
            .put_object(
                &object("b", "k", &format!("id{i}"), body),
                &Precondition::None,
            )
            .await
            .expect("put");
        assert_eq!(w.version_id.as_deref(), Some(format!("id{i}").as_str()));
        assert_eq!(w.versioning, Versioning::Enabled);
        assert!(
            w.replaced.is_none(),
            "nothing is replaced in a versioned bucket"
        );
        ids.push(w.version_id.expect("id"));
    }
    assert_eq!(body_of(store, "b", "k", VersionRef::Latest).await, "three");
    for (id, body) in ids.iter().zip(["one", "two", "three"]) {
        assert_eq!(body_of(store, "b", "k", VersionRef::Id(id)).await, body);
    }
    assert_eq!(body_of(store, "b", "k", VersionRef::Null).await, "<none>");
    assert_eq!(
        body_of(store, "b", "k", VersionRef::Id("nope")).await,
        "<none>"
    );
    assert_eq!(
        versions(store, "b", "").await,
        vec![
            (
                "k".into(),
                Some("id2".into()),
                true,
                false,
                "etag-three".into()
            ),
            (
                "k".into(),
                Some("id1".into()),
                false,
                false,
                "etag-two".into()
            ),
            (
                "k".into(),
                Some("id0".into()),
                false,
                false,
                "etag-one".into()
            ),
        ]
    );
    assert!(
        garbage_is_empty(store).await,
        "no version's data is freed by a write"
    );

    // A delete writes a marker: the key reads as deleted, its versions stay.
    let d = store
        .delete_object("b", "k", "m1", &Authority::now(), &Precondition::None)
        .await
        .expect("delete");
    let marker = d.marker.expect("a marker");
    assert_eq!(marker.version_id.as_deref(), Some("m1"));
    assert!(d.removed.is_none());
    assert!(store.get_object("b", "k").await.expect("get").is_none());
    assert_eq!(
        body_of(store, "b", "k", VersionRef::Latest).await,
        "<marker>"
    );
    assert!(current_keys(store, "b").await.is_empty());
    assert_eq!(versions(store, "b", "").await.len(), 4);
    assert!(matches!(
        store
            .set_object_tags("b", "k", VersionRef::Id("m1"), &BTreeMap::new())
            .await,
        Err(Error::IsDeleteMarker { .. })
    ));
    // Tags of an old version are its own.
    let tags: BTreeMap<String, String> = [("t".to_string(), "1".to_string())].into();
    store
        .set_object_tags("b", "k", VersionRef::Id("id0"), &tags)
        .await
        .expect("tag an old version");
    match store
        .get_entry("b", "k", VersionRef::Id("id0"))
        .await
        .expect("get")
    {
        Some(Entry::Object(o)) => assert_eq!(o.meta.tags, tags),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store
            .set_object_tags("b", "k", VersionRef::Id("gone"), &tags)
            .await,
        Err(Error::NoSuchVersion { .. })
    ));

    // Removing the marker brings the newest version back.
    let removed = store
        .delete_version("b", "k", VersionRef::Id("m1"), &Authority::now())
        .await
        .expect("delete marker");
    assert!(matches!(removed, Some(Entry::Marker(_))));
    assert_eq!(body_of(store, "b", "k", VersionRef::Latest).await, "three");
    assert_eq!(current_keys(store, "b").await, ["k"]);

    // Removing a version for good frees its data; removing the current one promotes
    // the next newest.
    let removed = store
        .delete_version("b", "k", VersionRef::Id("id2"), &Authority::now())
        .await
        .expect("delete version");
    assert!(matches!(removed, Some(Entry::Object(ref o)) if o.etag == "etag-three"));
    assert_eq!(body_of(store, "b", "k", VersionRef::Latest).await, "two");
    assert!(
        store
            .delete_version("b", "k", VersionRef::Id("id2"), &Authority::now())
            .await
            .expect("again")
            .is_none()
    );
    // A bucket with versions left cannot be deleted; without them it can.
    store
        .delete_object("b", "k", "m2", &Authority::now(), &Precondition::None)
        .await
        .expect("marker");
    assert!(current_keys(store, "b").await.is_empty());
    assert!(matches!(
        store.delete_bucket("b").await,
        Err(Error::BucketNotEmpty(_))
    ));
    for id in ["m2", "id1", "id0"] {
        assert!(
            store
                .delete_version("b", "k", VersionRef::Id(id), &Authority::now())
                .await
                .expect("delete")
                .is_some()
        );
    }
    store.delete_bucket("b").await.expect("empty now");
}

async fn garbage_is_empty(store: &dyn MetaStore) -> bool {
    store.take_garbage(10).await.expect("garbage").is_empty()
}

pub async fn suspended_versioning_writes_the_null_version(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    let blob = BlobId::generate();
    let mut before = object("b", "k", "unused", "before");
    before.extents = vec![Extent::Blob {
        id: blob.clone(),
        len: 6,
    }];
    let w = store
        .put_object(&before, &Precondition::None)
        .await
        .expect("put");
    assert_eq!(w.version_id, None, "written unversioned: the null version");
    store
        .set_versioning("b", Versioning::Enabled)
        .await
        .expect("enable");
    store
        .put_object(&object("b", "k", "v1", "enabled"), &Precondition::None)
        .await
        .expect("put");
    assert_eq!(body_of(store, "b", "k", VersionRef::Null).await, "before");
    store
        .set_versioning("b", Versioning::Suspended)
        .await
        .expect("suspend");
    // A write while suspended is the null version, replacing the old one (noncurrent).
    let w = store
        .put_object(&object("b", "k", "v2", "suspended"), &Precondition::None)
        .await
        .expect("put");
    assert_eq!(w.version_id, None);
    assert!(matches!(w.replaced, Some(Entry::Object(ref o)) if o.etag == "etag-before"));
    assert_eq!(store.take_garbage(10).await.expect("garbage"), vec![blob]);
    assert_eq!(
        versions(store, "b", "").await,
        vec![
            ("k".into(), None, true, false, "etag-suspended".into()),
            (
                "k".into(),
                Some("v1".into()),
                false,
                false,
                "etag-enabled".into()
            ),
        ]
    );
    // ...and again, replacing the current null version.
    let w = store
        .put_object(&object("b", "k", "v3", "again"), &Precondition::None)
        .await
        .expect("put");
    assert!(matches!(w.replaced, Some(Entry::Object(ref o)) if o.etag == "etag-suspended"));
    // A delete while suspended writes a null marker in the null version's place.
    let d = store
        .delete_object("b", "k", "m", &Authority::now(), &Precondition::None)
        .await
        .expect("delete");
    assert_eq!(d.marker.expect("marker").version_id, None);
    assert!(matches!(d.removed, Some(Entry::Object(ref o)) if o.etag == "etag-again"));
    assert_eq!(
        versions(store, "b", "").await,
        vec![
            ("k".into(), None, true, true, String::new()),
            (
                "k".into(),
                Some("v1".into()),
                false,
                false,
                "etag-enabled".into()
            ),
        ]
    );
    // Preconditions see a marker as no object.
    store
        .put_object(&object("b", "k", "v4", "new"), &Precondition::NotExists)
        .await
        .expect("the key is deleted");
}

pub async fn listing_versions_pages(store: &dyn MetaStore) {
    store.create_bucket(&bucket("b")).await.expect("bucket");
    store
        .set_versioning("b", Versioning::Enabled)
        .await
        .expect("enable");
    let mut n = 0;
    for key in ["a", "b/1", "b/2", "c"] {
        for _ in 0..3 {
            n += 1;
            store
                .put_object(
                    &object("b", key, &format!("v{n:03}"), &format!("{key}{n}")),
                    &Precondition::None,
                )
                .await
                .expect("put");
        }
        n += 1;
        if key != "c" {
            store
                .delete_object(
                    "b",
                    key,
                    &format!("v{n:03}"),
                    &Authority::now(),
                    &Precondition::None,
                )
                .await
                .expect("marker");
        }
    }
    let all = versions(store, "b", "").await;
    assert_eq!(all.len(), 15);
    // Keys ascending; versions newest first within a key, the first one latest.
    for w in all.windows(2) {
        assert!(w[0].0 <= w[1].0);
        if w[0].0 == w[1].0 {
            assert!(w[0].1 > w[1].1, "newest first: {w:?}");
            assert!(!w[1].2, "only the first is latest: {w:?}");
        } else {
            assert!(w[1].2, "a key's first version is its latest: {w:?}");
        }
    }
    assert_eq!(versions(store, "b", "b/").await, all[4..12].to_vec());
    for limit in [1, 2, 3, 5, 7] {
        let mut got = Vec::new();
        let (mut key_marker, mut version_marker): (Option<String>, Option<Option<String>>) =
            (None, None);
        loop {
            let vm = version_marker.clone();
            let page = store
                .list_versions(
                    "b",
                    &VersionListQuery {
                        prefix: "",
                        start: match (&key_marker, &vm) {
                            (Some(k), Some(Some(id))) => {
                                VersionStart::AfterVersion(k, VersionRef::Id(id))
                            }
                            (Some(k), Some(None)) => {
                                VersionStart::AfterVersion(k, VersionRef::Null)
                            }
                            _ => VersionStart::Beginning,
                        },
                        limit,
                    },
                )
                .await
                .expect("page");
            assert!(page.items.len() <= limit);
            got.extend(page.items.iter().map(row));
            if !page.truncated {
                break;
            }
            let last = page.items.last().expect("a truncated page has items");
            key_marker = Some(last.key().to_owned());
            version_marker = Some(last.version_id().map(str::to_owned));
        }
        assert_eq!(got, all, "pages of {limit}");
    }
    // A key marker alone starts after all of that key's versions.
    let page = store
        .list_versions(
            "b",
            &VersionListQuery {
                prefix: "",
                start: VersionStart::AfterKey("b/1"),
                limit: 100,
            },
        )
        .await
        .expect("after key");
    assert_eq!(
        page.items.iter().map(row).collect::<Vec<_>>(),
        all[8..].to_vec()
    );
    // From a key: all of its versions, then the rest; from a key that is not there: the
    // keys after it.
    for (from, rest) in [("b/1", 4), ("b/10", 8)] {
        let page = store
            .list_versions(
                "b",
                &VersionListQuery {
                    prefix: "",
                    start: VersionStart::FromKey(from),
                    limit: 100,
                },
            )
            .await
            .expect("from key");
        assert_eq!(
            page.items.iter().map(row).collect::<Vec<_>>(),
            all[rest..].to_vec(),
            "from {from}"
        );
    }
    assert!(matches!(
        store
            .list_versions(
                "b",
                &VersionListQuery {
                    prefix: "",
                    start: VersionStart::AfterVersion("a", VersionRef::Id("nope")),
                    limit: 100,
                },
            )
            .await,
        Err(Error::NoSuchVersion { .. })
    ));
    // Current objects only: "c" (the others' latest versions are markers).
    assert_eq!(current_keys(store, "b").await, ["c"]);
}

/// One operation of the property test.
#[derive(Debug, Clone)]
enum Op {
    Put(usize),
    Delete(usize),
    /// The `n`th version of the key (modulo how many it has), or a missing id.
    DeleteVersion(usize, usize),
    DeleteNull(usize),
    Set(Versioning),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize).prop_map(Op::Put),
        2 => (0..3usize).prop_map(Op::Delete),
        2 => (0..3usize, 0..6usize).prop_map(|(k, n)| Op::DeleteVersion(k, n)),
        1 => (0..3usize).prop_map(Op::DeleteNull),
        1 => prop_oneof![Just(Versioning::Enabled), Just(Versioning::Suspended)].prop_map(Op::Set),
    ]
}

/// A version in the model: (version id, `Some(body)`, or `None` for a delete marker).
type ModelVersion = (Option<String>, Option<String>);

/// S3's versioning rules, stated on their own: each key's versions, newest first.
#[derive(Default)]
struct Model {
    versioning: Versioning,
    keys: BTreeMap<String, Vec<ModelVersion>>,
}

impl Model {
    fn add(&mut self, key: &str, id: String, body: Option<String>) {
        let versions = self.keys.entry(key.to_owned()).or_default();
        match self.versioning {
            Versioning::Unversioned => *versions = vec![(None, body)],
            Versioning::Enabled => versions.insert(0, (Some(id), body)),
            Versioning::Suspended => {
                versions.retain(|(v, _)| v.is_some());
                versions.insert(0, (None, body));
            }
        }
    }

    fn delete(&mut self, key: &str, id: String) {
        if self.versioning == Versioning::Unversioned {
            self.keys.remove(key);
        } else {
            self.add(key, id, None);
        }
    }

    fn delete_version(&mut self, key: &str, id: Option<&str>) -> bool {
        let Some(versions) = self.keys.get_mut(key) else {
            return false;
        };
        let Some(i) = versions.iter().position(|(v, _)| v.as_deref() == id) else {
            return false;
        };
        versions.remove(i);
        if versions.is_empty() {
            self.keys.remove(key);
        }
        true
    }

    fn rows(&self) -> Vec<Row> {
        let mut out = Vec::new();
        for (key, versions) in &self.keys {
            for (i, (id, body)) in versions.iter().enumerate() {
                out.push((
                    key.clone(),
                    id.clone(),
                    i == 0,
                    body.is_none(),
                    body.as_ref()
                        .map(|b| format!("etag-{b}"))
                        .unwrap_or_default(),
                ));
            }
        }
        out
    }
}

/// Random sequences of versioned operations (put, delete, delete a version, delete the
/// null version, enable and suspend) leave the store exactly as the model says, checked
/// after every step: every version in order, which keys list, what each key reads as.
pub async fn versioned_operations_match_a_model(store: &dyn MetaStore) {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strategy = proptest::collection::vec(op(), 1..40);
    let keys = ["k", "k/a", "l"];
    for case in 0..48 {
        let ops = strategy.new_tree(&mut runner).expect("a case").current();
        let b = format!("p{case}");
        store.create_bucket(&bucket(&b)).await.expect("bucket");
        let mut model = Model::default();
        for (step, op) in ops.iter().enumerate() {
            let id = format!("c{case}s{step:03}");
            match op {
                Op::Put(k) => {
                    let w = store
                        .put_object(&object(&b, keys[*k], &id, &id), &Precondition::None)
                        .await
                        .expect("put");
                    model.add(keys[*k], id.clone(), Some(id.clone()));
                    let expect = (model.versioning == Versioning::Enabled).then(|| id.clone());
                    assert_eq!(w.version_id, expect, "{ops:?} at {step}");
                }
                Op::Delete(k) => {
                    store
                        .delete_object(&b, keys[*k], &id, &Authority::now(), &Precondition::None)
                        .await
                        .expect("delete");
                    model.delete(keys[*k], id.clone());
                }
                Op::DeleteVersion(k, n) => {
                    let ids: Vec<Option<String>> = model
                        .keys
                        .get(keys[*k])
                        .map(|v| v.iter().map(|(id, _)| id.clone()).collect())
                        .unwrap_or_default();
                    let target = if ids.is_empty() || *n > ids.len() {
                        Some("missing".to_owned())
                    } else {
                        ids[*n % ids.len()].clone()
                    };
                    let version = match &target {
                        Some(id) => VersionRef::Id(id),
                        None => VersionRef::Null,
                    };
                    let removed = store
                        .delete_version(&b, keys[*k], version, &Authority::now())
                        .await
                        .expect("delete version");
                    let expected = model.delete_version(keys[*k], target.as_deref());
                    assert_eq!(removed.is_some(), expected, "{ops:?} at {step}");
                }
                Op::DeleteNull(k) => {
                    let removed = store
                        .delete_version(&b, keys[*k], VersionRef::Null, &Authority::now())
                        .await
                        .expect("delete null");
                    let expected = model.delete_version(keys[*k], None);
                    assert_eq!(removed.is_some(), expected, "{ops:?} at {step}");
                }
                Op::Set(v) => {
                    store.set_versioning(&b, *v).await.expect("set");
                    model.versioning = *v;
                }
            }
            assert_eq!(
                versions(store, &b, "").await,
                model.rows(),
                "{ops:?} after step {step}"
            );
            let listed: Vec<String> = model
                .keys
                .iter()
                .filter(|(_, v)| v.first().is_some_and(|(_, body)| body.is_some()))
                .map(|(k, _)| k.clone())
                .collect();
            assert_eq!(current_keys(store, &b).await, listed, "{ops:?} at {step}");
            for key in keys {
                let want = match model.keys.get(key).and_then(|v| v.first()) {
                    Some((_, Some(body))) => body.clone(),
                    Some((_, None)) => "<marker>".into(),
                    None => "<none>".into(),
                };
                assert_eq!(
                    body_of(store, &b, key, VersionRef::Latest).await,
                    want,
                    "{ops:?} at {step}"
                );
            }
        }
    }
}

pub async fn bucket_usage_counts_every_version(store: &dyn MetaStore) {
    use crate::BucketUsage;
    store.create_bucket(&bucket("b")).await.expect("bucket");
    store.create_bucket(&bucket("other")).await.expect("bucket");
    assert_eq!(
        store.bucket_usage("b").await.expect("usage"),
        BucketUsage::default()
    );
    store
        .put_object(&object("b", "a", "unused", "12345"), &Precondition::None)
        .await
        .expect("put");
    store
        .set_versioning("b", Versioning::Enabled)
        .await
        .expect("enable");
    store
        .put_object(&object("b", "a", "v1", "123"), &Precondition::None)
        .await
        .expect("put");
    store
        .put_object(&object("b", "k", "v2", "1"), &Precondition::None)
        .await
        .expect("put");
    store
        .delete_object("b", "k", "m1", &Authority::now(), &Precondition::None)
        .await
        .expect("marker");
    store
        .delete_object("b", "gone", "m2", &Authority::now(), &Precondition::None)
        .await
        .expect("marker");
    store
        .put_object(
            &object("other", "x", "unused", "ignored"),
            &Precondition::None,
        )
        .await
        .expect("put");
    assert_eq!(
        store.bucket_usage("b").await.expect("usage"),
        BucketUsage {
            objects: 1,
            object_bytes: 3,
            noncurrent_versions: 2,
            noncurrent_bytes: 6,
            delete_markers: 2,
        }
    );
    assert!(matches!(
        store.bucket_usage("nope").await,
        Err(Error::NoSuchBucket(_))
    ));
}
