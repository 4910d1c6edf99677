//! Targets over the KMS JSON API after authentication: every operation's input parsing,
//! validation and domain code, on an in-memory KMS holding one key of each kind; and the
//! import token, which must never be accepted once changed.

use std::cell::RefCell;
use std::sync::Arc;

use coffer_api_kms::fuzz::{Outcome, call};
use coffer_kms::{Caller, Config, Kms};
use coffer_storage::memory::MemoryKms;

use crate::input::tamper;

/// The keys every KMS world holds, by alias, with the CreateKey body that made them.
pub const KEYS: &[(&str, &str)] = &[
    ("alias/fuzz-sym", "{}"),
    (
        "alias/fuzz-hmac",
        r#"{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC"}"#,
    ),
    (
        "alias/fuzz-rsa",
        r#"{"KeySpec":"RSA_2048","KeyUsage":"SIGN_VERIFY"}"#,
    ),
    (
        "alias/fuzz-rsa-enc",
        r#"{"KeySpec":"RSA_2048","KeyUsage":"ENCRYPT_DECRYPT"}"#,
    ),
    (
        "alias/fuzz-ecc",
        r#"{"KeySpec":"ECC_NIST_P256","KeyUsage":"SIGN_VERIFY"}"#,
    ),
    (
        "alias/fuzz-ecdh",
        r#"{"KeySpec":"ECC_NIST_P256","KeyUsage":"KEY_AGREEMENT"}"#,
    ),
    ("alias/fuzz-ext", r#"{"Origin":"EXTERNAL"}"#),
];

/// Calls a world answers before it is built again (the state fuzzed calls make grows).
const CALLS_PER_WORLD: u32 = 2_000;

const ACCOUNT: &str = "111122223333";
const WRAPPING: &str = "RSA_AES_KEY_WRAP_SHA_256";

struct World {
    rt: tokio::runtime::Runtime,
    kms: Kms,
    calls: u32,
    /// Values a seed names by placeholder, made fresh in each world.
    placeholders: Vec<(String, String)>,
    /// An import token for `alias/fuzz-ext`'s key and material wrapped for it.
    import: (Vec<u8>, Vec<u8>),
}

fn b64(data: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(data)
}

/// The string at `pointer` (`/KeyMetadata/KeyId`) in a reply.
fn field(o: &Outcome, pointer: &str) -> String {
    let body = o.body.as_deref().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    v.pointer(pointer)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

fn caller() -> Caller {
    Caller::trusted(ACCOUNT, "FUZZ")
}

fn t0() -> time::OffsetDateTime {
    crate::parsers::now()
}

impl World {
    fn new() -> Self {
        let (rt, root) = crate::world();
        let config = Config {
            region: "us-east-1".into(),
            day: time::Duration::seconds(1),
            ..Config::default()
        };
        let kms = rt
            .block_on(Kms::open(
                Arc::new(MemoryKms::new()),
                Arc::new(root),
                config,
            ))
            .expect("an in-memory KMS");
        let mut placeholders = Vec::new();
        let mut import = (Vec::new(), Vec::new());
        rt.block_on(async {
            let c = caller();
            for (alias, body) in KEYS {
                let made = call(&kms, "CreateKey", body.as_bytes(), &c, t0()).await;
                let id = field(&made, "/KeyMetadata/KeyId");
                let alias_body = serde_json::json!({ "AliasName": alias, "TargetKeyId": id });
                let aliased = call(
                    &kms,
                    "CreateAlias",
                    alias_body.to_string().as_bytes(),
                    &c,
                    t0(),
                )
                .await;
                assert_eq!(aliased.status, 200, "the fuzz world's alias {alias}");
                placeholders.push((alias.replace("alias/fuzz-", "@") + "@", id));
            }
            let enc = call(
                &kms,
                "Encrypt",
                br#"{"KeyId":"alias/fuzz-sym","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}"#,
                &c,
                t0(),
            )
            .await;
            placeholders.push(("@CIPHERTEXT@".into(), field(&enc, "/CiphertextBlob")));
            let external = placeholders
                .iter()
                .find(|(n, _)| n == "@ext@")
                .map(|(_, id)| id.clone())
                .unwrap_or_default();
            let params_body = serde_json::json!({
                "KeyId": external,
                "WrappingAlgorithm": WRAPPING,
                "WrappingKeySpec": "RSA_2048",
            });
            let params = call(
                &kms,
                "GetParametersForImport",
                params_body.to_string().as_bytes(),
                &c,
                t0(),
            )
            .await;
            let token = base64_simd::STANDARD
                .decode_to_vec(field(&params, "/ImportToken"))
                .expect("an import token");
            let public = base64_simd::STANDARD
                .decode_to_vec(field(&params, "/PublicKey"))
                .expect("a wrapping key");
            let wrapped = coffer_crypto::import::wrap_for_import(&public, WRAPPING, &[0x5a; 32])
                .expect("wrap material");
            placeholders.push(("@TOKEN@".into(), b64(&token)));
            placeholders.push(("@WRAPPED@".into(), b64(&wrapped)));
            import = (token, wrapped);
        });
        Self {
            rt,
            kms,
            calls: 0,
            placeholders,
            import,
        }
    }
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

fn with_world<T>(f: impl FnOnce(&mut World) -> T) -> T {
    WORLD.with(|cell| {
        let mut cell = cell.borrow_mut();
        let fresh = cell.as_ref().is_none_or(|w| w.calls >= CALLS_PER_WORLD);
        if fresh {
            *cell = Some(World::new());
        }
        let world = cell.as_mut().expect("a world");
        world.calls += 1;
        f(world)
    })
}

/// `OperationName` on the first line, the JSON body after it. In the body, `@sym@`,
/// `@hmac@` and the other names of [`KEYS`] become the ids of this world's keys, and
/// `@CIPHERTEXT@` (of `aGVsbG8=` under `@sym@`, context `a=b`), `@TOKEN@` and `@WRAPPED@`
/// (an import token for `@ext@` and 32 bytes wrapped for it) its values. Every answer is a
/// 200 with a JSON object or a 4xx with an AWS error code.
pub fn kms_api(data: &[u8]) {
    let (op, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(op) = std::str::from_utf8(op) else {
        return;
    };
    with_world(|w| {
        let mut body = body.to_vec();
        for (name, value) in &w.placeholders {
            body = replace(&body, name.as_bytes(), value.as_bytes());
        }
        let o = w.rt.block_on(call(&w.kms, op, &body, &caller(), t0()));
        if std::env::var_os("COFFER_FUZZ_SHOW").is_some() {
            eprintln!("{op}: {} {:?}", o.status, o.code);
        }
        assert!(
            o.status < 500,
            "{op} answered {} {:?} to a fuzzed body",
            o.status,
            o.code
        );
        if o.status == 200 {
            let reply = o.body.as_deref().unwrap_or_default();
            let v: serde_json::Value = serde_json::from_slice(reply).expect("a JSON reply");
            assert!(v.is_object(), "{op}'s reply is a JSON object");
        } else {
            assert!(o.code.is_some(), "a refusal names its error code");
        }
    });
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// The first byte picks what to change (even: the import token; odd: the wrapped
/// material), the rest says how. ImportKeyMaterial must refuse every changed token and
/// every changed wrapping, for that reason (AWS answers `InvalidCiphertextException` for
/// wrapped material it cannot decrypt).
pub fn import_token(data: &[u8]) {
    let Some((which, edits)) = data.split_first() else {
        return;
    };
    with_world(|w| {
        let (token, wrapped) = &w.import;
        let (t, m) = if which % 2 == 0 {
            (tamper(token, edits), wrapped.clone())
        } else {
            (token.clone(), tamper(wrapped, edits))
        };
        if &t == token && &m == wrapped {
            return;
        }
        let external = w
            .placeholders
            .iter()
            .find(|(n, _)| n == "@ext@")
            .map(|(_, id)| id.clone())
            .unwrap_or_default();
        let body = serde_json::json!({
            "KeyId": external,
            "ImportToken": b64(&t),
            "EncryptedKeyMaterial": b64(&m),
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        });
        let o = w.rt.block_on(call(
            &w.kms,
            "ImportKeyMaterial",
            body.to_string().as_bytes(),
            &caller(),
            t0(),
        ));
        let refused_for_what_changed = matches!(
            o.code,
            Some(
                "InvalidImportTokenException"
                    | "InvalidCiphertextException"
                    | "IncorrectKeyMaterialException"
            )
        );
        assert!(
            o.status == 400 && refused_for_what_changed,
            "a changed import was not refused for it: {} {:?}",
            o.status,
            o.code
        );
    });
}
