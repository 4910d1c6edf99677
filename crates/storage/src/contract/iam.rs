//! Checks every [`IamStore`] must pass.

use crate::{Error, IamRecord, IamStore};

fn rec(account: &str, kind: &str, name: &str, doc: &str) -> IamRecord {
    IamRecord {
        account_id: account.into(),
        kind: kind.into(),
        name: name.into(),
        doc: doc.into(),
    }
}

fn key(account: &str, kind: &str, name: &str) -> (String, String, String) {
    (account.into(), kind.into(), name.into())
}

pub async fn iam_records_round_trip(store: &dyn IamStore) {
    let alice = rec("111111111111", "user", "alice", "{\"a\":1}");
    store.iam_create(&alice).await.expect("create");
    assert!(matches!(
        store.iam_create(&alice).await,
        Err(Error::AlreadyExists(_))
    ));
    // The same name in another account or of another kind is another entity.
    let other = rec("222222222222", "user", "alice", "{}");
    store.iam_create(&other).await.expect("other account");
    let ak = rec(
        "111111111111",
        "access-key",
        "AKIA1",
        "{\"user\":\"alice\"}",
    );
    store.iam_create(&ak).await.expect("key");

    let updated = rec("111111111111", "user", "alice", "{\"a\":2}");
    store.iam_update(&updated).await.expect("update");
    assert!(matches!(
        store
            .iam_update(&rec("111111111111", "user", "bob", "{}"))
            .await,
        Err(Error::NotFound(_))
    ));
    let all = store.iam_all().await.expect("all");
    assert_eq!(all, vec![ak.clone(), updated.clone(), other.clone()]);

    // Deleting a user takes its keys with it; a missing first entity deletes nothing.
    assert!(matches!(
        store
            .iam_delete(&[
                key("111111111111", "user", "bob"),
                key("111111111111", "access-key", "AKIA1")
            ])
            .await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.iam_all().await.expect("all").len(), 3);
    store
        .iam_delete(&[
            key("111111111111", "user", "alice"),
            key("111111111111", "access-key", "AKIA1"),
            key("111111111111", "access-key", "gone-already"),
        ])
        .await
        .expect("delete");
    assert_eq!(store.iam_all().await.expect("all"), vec![other]);
}
