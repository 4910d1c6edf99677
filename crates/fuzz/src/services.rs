//! The IAM and STS Query APIs after authentication: the form decoder and every action's
//! parameter checks, on an in-memory directory, called by the operator (the root of the
//! default account, who may also call the account actions).

use std::cell::RefCell;
use std::sync::Arc;

use coffer_api_iam::{IamApi, Tenancy};
use coffer_iam::{Account, Directory, Principal, PrincipalKind, SecretKey};
use coffer_storage::memory::MemoryIam;

/// Calls a world answers before it is built again.
const CALLS_PER_WORLD: u32 = 2_000;

struct NoTenants;

#[async_trait::async_trait]
impl Tenancy for NoTenants {
    async fn owns_buckets(&self, _: &str) -> Result<bool, String> {
        Ok(false)
    }
    async fn rotate_root_key(&self) -> Result<Vec<(&'static str, String)>, String> {
        Ok(Vec::new())
    }
    async fn destroy_retired_root_keys(&self) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
    async fn clock(
        &self,
        _: Option<&str>,
    ) -> Result<Vec<(&'static str, String)>, coffer_api_iam::ClockRefusal> {
        Err(coffer_api_iam::ClockRefusal::Off)
    }
}

fn operator() -> Principal {
    Principal {
        account: Account {
            id: "111122223333".into(),
            name: "default".into(),
            canonical_id: "ab".repeat(32),
        },
        kind: PrincipalKind::Root,
        access_key_id: "AKIAOPERATOR".into(),
    }
}

struct World {
    rt: tokio::runtime::Runtime,
    api: IamApi,
    calls: u32,
}

impl World {
    fn new() -> Self {
        let (rt, root) = crate::world();
        let directory = rt
            .block_on(Directory::load(
                Arc::new(MemoryIam::new()),
                Arc::new(root),
                SecretKey::new("operator-secret".into()),
                operator(),
            ))
            .expect("an in-memory directory");
        let directory = Arc::new(directory);
        let authorizer = Arc::new(coffer_authz::Authorizer::new(directory.clone()));
        let api = IamApi::new(
            directory.clone(),
            directory,
            authorizer,
            Arc::new(NoTenants),
        );
        Self { rt, api, calls: 0 }
    }
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

/// The first byte's low bit says whether the call was signed for STS; the rest is the
/// form-encoded body. Every answer is a 200 or a 4xx with an AWS error code.
pub fn iam_api(data: &[u8]) {
    let Some((flags, body)) = data.split_first() else {
        return;
    };
    WORLD.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|w| w.calls >= CALLS_PER_WORLD) {
            *cell = Some(World::new());
        }
        let w = cell.as_mut().expect("a world");
        w.calls += 1;
        let (status, code) = w.rt.block_on(coffer_api_iam::fuzz::call(
            &w.api,
            &operator(),
            flags & 1 == 1,
            body,
        ));
        assert!(
            status < 500,
            "IAM answered {status} {code:?} to a fuzzed body"
        );
        assert!(status == 200 || code.is_some(), "a refusal names its code");
    });
}
