//! The blob contract suite against a real S3 server: another `coffer` process on loopback
//! (the workspace's debug binary, next to this test's executable; `scripts/test` builds it
//! first), with a bucket made by the aws CLI. Each test has a server of its own.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use coffer_storage::{BlobStore, BlobWriter};
use coffer_storage_s3::{PART_SIZE, S3Blobs, S3Location};
use futures::StreamExt;

const ACCESS_KEY: &str = "AKIASTORAGES3TEST001";
const SECRET_KEY: &str = "storage-s3-test-secret";

/// A coffer server in a temp dir, killed when dropped.
struct Server {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn coffer_bin() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("COFFER_BIN") {
        return p.into();
    }
    // target/debug/deps/contract-HASH -> target/debug/coffer
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|debug| debug.join("coffer"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (cargo build; scripts/test does)",
        bin.display()
    );
    bin
}

fn aws(endpoint: &str, args: &[&str]) -> String {
    let out = Command::new("aws")
        .arg("--endpoint-url")
        .arg(endpoint)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("run the aws CLI");
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(coffer_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("COFFER_ROOT_ACCESS_KEY_ID", ACCESS_KEY)
        .env("COFFER_ROOT_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("COFFER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start coffer");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let endpoint = lines
        .by_ref()
        .map_while(std::result::Result::ok)
        .find_map(|line| {
            line.strip_prefix("listening on ")
                .map(|u| u.trim().to_owned())
        })
        .expect("the server says where it listens");
    // Keep reading, so that the server never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    aws(&endpoint, &["s3api", "create-bucket", "--bucket", "blobs"]);
    Server {
        child,
        endpoint,
        _dir: dir,
    }
}

fn store() -> (S3Blobs, Server) {
    let s = server();
    let url = format!("s3://blobs/tier/one?endpoint={}", s.endpoint);
    let location = S3Location::parse(&url).expect("url");
    let store = S3Blobs::new(&location, ACCESS_KEY, SECRET_KEY, None).expect("store");
    (store, s)
}

coffer_storage::blob_contract!(store());

async fn write(store: &S3Blobs, data: &[u8]) -> Box<dyn BlobWriter> {
    let mut w = store.create().await.expect("create");
    for chunk in data.chunks(1024 * 1024) {
        w.write(Bytes::copy_from_slice(chunk)).await.expect("write");
    }
    w
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

#[tokio::test]
async fn blobs_larger_than_a_part_are_multipart_uploads() {
    let (store, s) = store();
    let data = pattern(2 * PART_SIZE + 12_345);
    let w = write(&store, &data).await;
    let id = w.id().clone();
    assert_eq!(w.finish().await.expect("finish"), data.len() as u64);
    store.publish(&id).await.expect("publish");
    let mut r = store.read(&id, 0, data.len() as u64).await.expect("read");
    let mut back = Vec::new();
    while let Some(c) = r.next().await {
        back.extend_from_slice(&c.expect("chunk"));
    }
    assert!(back == data, "the bytes read back differ");
    // Stored where the layout says, as one object of the whole size.
    let listed = aws(
        &s.endpoint,
        &[
            "s3api",
            "list-objects-v2",
            "--bucket",
            "blobs",
            "--prefix",
            "tier/one/blobs/",
        ],
    );
    assert!(listed.contains(id.as_str()), "{listed}");
    assert!(
        listed.contains(&format!("\"Size\": {}", data.len())),
        "{listed}"
    );
}

fn uploads(s: &Server) -> String {
    aws(
        &s.endpoint,
        &["s3api", "list-multipart-uploads", "--bucket", "blobs"],
    )
}

/// No multipart upload left open in the store (the abort runs in the background: it gets
/// five seconds), and nothing staged.
async fn assert_nothing_left(store: &S3Blobs, s: &Server) {
    let mut open = String::new();
    for _ in 0..50 {
        open = uploads(s);
        if !open.contains("UploadId") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!open.contains("UploadId"), "{open}");
    assert!(store.staged().await.expect("staged").is_empty());
}

#[tokio::test]
async fn an_abandoned_multipart_upload_is_aborted() {
    let (store, s) = store();
    let w = write(&store, &pattern(PART_SIZE + 1)).await;
    let open = uploads(&s);
    assert!(open.contains("UploadId"), "the blob outgrew a part: {open}");
    drop(w);
    assert_nothing_left(&store, &s).await;
}

#[tokio::test]
async fn a_finish_cut_off_midway_aborts_the_upload() {
    use futures::FutureExt;
    let (store, s) = store();
    let w = write(&store, &pattern(2 * PART_SIZE + 1)).await;
    // Polled once, then dropped (a client that hangs up while the blob is finishing).
    assert!(
        w.finish().now_or_never().is_none(),
        "finishing needs the network"
    );
    assert_nothing_left(&store, &s).await;
}
