//! The storage contract suite against a real PostgreSQL server: the one in
//! `COFFER_TEST_POSTGRES_URL` (scripts/test sets it, starting a server if the machine has
//! none), else `postgres://postgres@127.0.0.1:5432/test`. Each test gets a schema of its
//! own (the URL's `search_path`), dropped when the test ends.

mod common;

use coffer_storage_postgres::{ConnectError, PgStore, SCHEMA_VERSION};
use common::{Schema, store, url_in};

coffer_storage::kms_contract!(store().await);
coffer_storage::iam_contract!(store().await);
coffer_storage::meta_contract!(store().await);

async fn version(schema: &str) -> i32 {
    let (client, conn) = tokio_postgres::connect(&url_in(schema), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .query_one("SELECT version FROM coffer_schema", &[])
        .await
        .expect("version")
        .get(0)
}

#[tokio::test]
async fn nodes_starting_together_migrate_once() {
    let schema = Schema::create().await;
    let url = url_in(&schema.0);
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgStore::connect(&url).await.map(|_| ()) })
        })
        .collect();
    for s in starts {
        s.await.expect("join").expect("every node starts");
    }
    assert_eq!(version(&schema.0).await, SCHEMA_VERSION);
    // A restart finds nothing to do.
    PgStore::connect(&url).await.expect("restart");
    assert_eq!(version(&schema.0).await, SCHEMA_VERSION);
}

#[tokio::test]
async fn a_schema_from_a_newer_release_is_refused_and_left_alone() {
    let (_store, schema) = store().await;
    let (client, conn) = tokio_postgres::connect(&url_in(&schema.0), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .execute(
            "UPDATE coffer_schema SET version = $1",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .expect("pretend a newer release migrated");
    match PgStore::connect(&url_in(&schema.0)).await {
        Err(ConnectError::SchemaTooNew { found, known }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
    assert_eq!(
        version(&schema.0).await,
        SCHEMA_VERSION + 1,
        "left as it was"
    );
}

#[tokio::test]
async fn a_bad_url_or_an_unreachable_server_is_a_clear_error() {
    assert!(matches!(
        PgStore::connect("not a url").await,
        Err(ConnectError::Url(_))
    ));
    // Port 1 on loopback: nothing listens there.
    assert!(matches!(
        PgStore::connect("postgres://postgres@127.0.0.1:1/test?connect_timeout=2").await,
        Err(ConnectError::Unreachable(_))
    ));
}

#[tokio::test]
async fn one_node_leads_each_kind_of_work_and_another_takes_over() {
    let schema = Schema::create().await;
    let url = url_in(&schema.0);
    let (a, b) = (
        PgStore::connect(&url).await.expect("node a"),
        PgStore::connect(&url).await.expect("node b"),
    );
    let lead = a
        .try_lease("lifecycle")
        .await
        .expect("lease")
        .expect("nobody leads yet");
    assert!(lead.is_held().await);
    assert!(b.try_lease("lifecycle").await.expect("lease").is_none());
    assert!(
        b.try_lease("kms").await.expect("lease").is_some(),
        "other work is led separately"
    );
    // The leader goes away (as when its node dies, its session ends): b takes over.
    drop(lead);
    let started = std::time::Instant::now();
    let taken = loop {
        if let Some(l) = b.try_lease("lifecycle").await.expect("lease") {
            break l;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "no takeover"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(taken.is_held().await);
    assert!(a.try_lease("lifecycle").await.expect("lease").is_none());
}

#[tokio::test]
async fn a_change_on_one_node_reaches_the_others_within_a_second() {
    use coffer_storage_postgres::Notice;
    use std::time::Duration;
    let schema = Schema::create().await;
    let url = url_in(&schema.0);
    let (a, b) = (
        PgStore::connect(&url).await.expect("node a"),
        PgStore::connect(&url).await.expect("node b"),
    );
    let mut heard = b.listen(&["kms_keys", "iam"]).await.expect("listen");
    a.notify("buckets", "not listened to")
        .await
        .expect("notify");
    a.notify("kms_keys", "1234abcd").await.expect("notify");
    a.notify("iam", "user/alice").await.expect("notify");
    for want in [("kms_keys", "1234abcd"), ("iam", "user/alice")] {
        let got = tokio::time::timeout(Duration::from_secs(1), heard.next())
            .await
            .expect("within a second");
        assert_eq!(
            got,
            Some(Notice {
                channel: want.0.into(),
                payload: want.1.into()
            })
        );
    }
    assert!(a.notify("Bad Channel", "x").await.is_err());
    // The listener's session ends (as when the database restarts): it says so.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .query_one("SELECT pg_terminate_backend($1)", &[&heard.backend_pid()])
        .await
        .expect("terminate");
    let ended = tokio::time::timeout(Duration::from_secs(2), heard.next())
        .await
        .expect("the end is noticed");
    assert_eq!(ended, None);
}

#[tokio::test]
async fn committed_changes_are_announced_to_every_node_of_the_deployment() {
    use coffer_storage::{BucketRecord, IamRecord, IamStore, KmsKeyRecord, KmsStore, MetaStore};
    use coffer_storage_postgres::Change;
    use std::time::Duration;
    let schema = Schema::create().await;
    let url = url_in(&schema.0);
    let (a, b) = (
        PgStore::connect(&url).await.expect("node a"),
        PgStore::connect(&url).await.expect("node b"),
    );
    // Another deployment in the same database: its changes are not ours.
    let (other, _other_schema) = store().await;
    let mut heard = b.listen_changes().await.expect("listen");
    let now = time::OffsetDateTime::now_utc();
    other
        .create_bucket(&BucketRecord {
            name: "theirs".into(),
            owner: "1".into(),
            region: "r".into(),
            created: now,
            versioning: coffer_storage::Versioning::Unversioned,
        })
        .await
        .expect("their bucket");
    a.create_bucket(&BucketRecord {
        name: "ours".into(),
        owner: "1".into(),
        region: "r".into(),
        created: now,
        versioning: coffer_storage::Versioning::Unversioned,
    })
    .await
    .expect("bucket");
    // A change that fails changes nothing and announces nothing.
    assert!(
        a.put_bucket_setting("missing", "policy", "{}")
            .await
            .is_err()
    );
    a.put_bucket_setting("ours", "policy", "{}")
        .await
        .expect("setting");
    a.kms_create_key(
        &KmsKeyRecord {
            key_id: "k1".into(),
            account_id: "1".into(),
            created: now,
            doc: "{}".into(),
        },
        None,
    )
    .await
    .expect("key");
    a.iam_create(&IamRecord {
        account_id: "111122223333".into(),
        kind: "user".into(),
        name: "alice".into(),
        doc: "{}".into(),
    })
    .await
    .expect("user");
    let want = [
        Change::Bucket("ours".into()),
        Change::Bucket("ours".into()),
        Change::KmsKey("k1".into()),
        Change::Iam("111122223333".into()),
    ];
    for w in want {
        let got = tokio::time::timeout(Duration::from_secs(1), heard.next())
            .await
            .expect("within a second")
            .expect("listening");
        assert_eq!(Change::parse(&got.payload), w);
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), heard.next())
            .await
            .is_err(),
        "nothing else"
    );
}

#[tokio::test]
async fn a_tool_that_must_not_migrate_refuses_an_unmigrated_database_and_creates_nothing() {
    let schema = Schema::create().await;
    let url = url_in(&schema.0);
    match PgStore::connect_without_migrating(&url).await {
        Err(ConnectError::Migration(m)) => assert!(m.contains("version 0"), "{m}"),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("an unmigrated database was accepted"),
    }
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let tables: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema.0],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(tables, 0, "nothing was created");
    // Once a node has migrated it, the tool opens it.
    PgStore::connect(&url).await.expect("a node migrates");
    PgStore::connect_without_migrating(&url)
        .await
        .expect("then the tool opens it");
}
