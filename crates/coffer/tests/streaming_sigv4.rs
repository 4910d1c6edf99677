//! `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` against the real binary. No installed client sends
//! this payload mode (aws-chunked with a signature per chunk), so these tests sign it with
//! Coffer's own SigV4 crate and speak HTTP/1.1 over a plain socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use coffer_sigv4::{CanonicalInput, ChunkSigner, EMPTY_SHA256, STREAMING_PAYLOAD, Scope};

const ACCESS_KEY: &str = "AKIASTREAMINGTEST001";
const SECRET_KEY: &str = "streaming/test/secret/0123456789abcdefghij";

struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("COFFER_ROOT_ACCESS_KEY_ID", ACCESS_KEY)
            .env("COFFER_ROOT_SECRET_ACCESS_KEY", SECRET_KEY);
        Self::spawn(cmd, dir)
    }

    /// `serve --dev`, to which `ACCESS_KEY` is a key it does not know, whose requests it
    /// serves whatever secret signed them.
    fn start_dev() -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
        cmd.args(["serve", "--dev", "--listen", "127.0.0.1:0"])
            .env_remove("COFFER_ROOT_ACCESS_KEY_ID")
            .env_remove("COFFER_ROOT_SECRET_ACCESS_KEY")
            .env_remove("COFFER_DATA_DIR");
        Self::spawn(cmd, tempfile::tempdir().expect("temp dir"))
    }

    fn spawn(mut cmd: Command, dir: tempfile::TempDir) -> Self {
        let mut child = cmd
            .env("COFFER_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start coffer");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines.next().expect("coffer exited").expect("read stdout");
            if let Some(url) = line.strip_prefix("listening on http://") {
                break url.trim().to_owned();
            }
        };
        Self {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Server {
    /// SIGTERM first, as a supervisor stops it: a `--dev` server removes its temporary
    /// state only on a clean exit. SIGKILL if it has not exited in 10 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..1000 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Response {
    status: u16,
    body: Vec<u8>,
}

impl Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Sends one request; `headers` must already include everything to sign.
fn send(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write head");
    s.write_all(body).expect("write body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Response { status, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..line_end]).expect("hex").trim(),
            16,
        )
        .expect("chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn scope(t: time::OffsetDateTime) -> Scope<'static> {
    Scope {
        access_key_id: ACCESS_KEY,
        secret_access_key: SECRET_KEY,
        region: "us-east-1",
        service: "s3",
        time: t,
    }
}

/// Signs a request with the given payload hash and returns the headers plus the seed
/// signature.
fn signed(
    addr: &str,
    method: &str,
    path: &str,
    payload_hash: &str,
    extra: &[(&str, String)],
) -> (Vec<(String, String)>, String) {
    let sc = scope(now());
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), addr.to_owned()),
        ("x-amz-date".into(), sc.amz_date()),
        ("x-amz-content-sha256".into(), payload_hash.to_owned()),
    ];
    headers.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let input = CanonicalInput {
        method,
        canonical_uri: path,
        query: &[],
        headers: &headers,
        payload_hash,
    };
    let sig = coffer_sigv4::signature(&sc, &input);
    let auth = coffer_sigv4::authorization_header(&sc, &input);
    headers.push(("authorization".into(), auth));
    (headers, sig)
}

fn simple(addr: &str, method: &str, path: &str) -> Response {
    let (mut headers, _) = signed(addr, method, path, EMPTY_SHA256, &[]);
    headers.push(("content-length".into(), "0".into()));
    send(addr, method, path, &headers, b"")
}

/// A streaming upload of `data` in chunks of `chunk`; `tamper` may corrupt the framed body.
fn streaming_put(
    addr: &str,
    path: &str,
    data: &[u8],
    chunk: usize,
    tamper: impl FnOnce(&mut Vec<u8>),
) -> Response {
    let t = now();
    let sc = scope(t);
    let encoded_len = coffer_sigv4::encoded_length(data.len(), chunk);
    let extra = [
        ("content-encoding", "aws-chunked".to_owned()),
        ("x-amz-decoded-content-length", data.len().to_string()),
        ("content-length", encoded_len.to_string()),
    ];
    let (headers, seed) = signed(addr, "PUT", path, STREAMING_PAYLOAD, &extra);
    let mut signer = ChunkSigner::new(&sc, &seed);
    let mut body = Vec::with_capacity(encoded_len);
    for c in data.chunks(chunk) {
        body.extend(signer.frame(c));
    }
    body.extend(signer.frame(&[]));
    assert_eq!(body.len(), encoded_len);
    tamper(&mut body);
    send(addr, "PUT", path, &headers, &body)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn signed_chunks_upload_round_trips() {
    let server = Server::start();
    let addr = &server.addr;
    assert_eq!(simple(addr, "PUT", "/stream-ok").status, 200);
    // 200 KiB in 64 KiB chunks: three full chunks, one partial, one final empty chunk.
    let data = pattern(200 * 1024 + 17);
    let r = streaming_put(addr, "/stream-ok/obj", &data, 64 * 1024, |_| {});
    assert_eq!(r.status, 200, "{}", r.text());
    let got = simple(addr, "GET", "/stream-ok/obj");
    assert_eq!(got.status, 200);
    assert_eq!(got.body, data);
}

#[test]
fn a_tampered_chunk_is_signature_does_not_match_and_stores_nothing() {
    let server = Server::start();
    let addr = &server.addr;
    assert_eq!(simple(addr, "PUT", "/stream-bad").status, 200);
    let data = pattern(150 * 1024);
    // Flip one byte of the second chunk's data (after its header line).
    let r = streaming_put(addr, "/stream-bad/obj", &data, 64 * 1024, |body| {
        let frame = 64 * 1024 + "10000;chunk-signature=".len() + 64 + 4;
        let i = frame + 200;
        body[i] ^= 0x01;
    });
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text().contains("<Code>SignatureDoesNotMatch</Code>"),
        "{}",
        r.text()
    );
    assert_eq!(simple(addr, "HEAD", "/stream-bad/obj").status, 404);
}

#[test]
fn a_forged_chunk_signature_is_refused() {
    let server = Server::start();
    let addr = &server.addr;
    assert_eq!(simple(addr, "PUT", "/stream-forged").status, 200);
    let data = pattern(10_000);
    let r = streaming_put(addr, "/stream-forged/obj", &data, 64 * 1024, |body| {
        // The first chunk's signature starts right after "2710;chunk-signature=".
        let at = "2710;chunk-signature=".len();
        body[at] = if body[at] == b'0' { b'1' } else { b'0' };
    });
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(simple(addr, "HEAD", "/stream-forged/obj").status, 404);
}

/// CRC32 (IEEE), as `x-amz-checksum-crc32` carries it: base64 of the big-endian value.
fn crc32_b64(data: &[u8]) -> String {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    let b = (!crc).to_be_bytes();
    let n = u32::from_be_bytes([b[0], b[1], b[2], 0]);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let six = |v: u32| char::from(alphabet[(v & 63) as usize]);
    let m = u32::from(b[3]) << 16;
    [
        six(n >> 26),
        six(n >> 20),
        six(n >> 14),
        six(n >> 8),
        six(m >> 18),
        six(m >> 12),
        '=',
        '=',
    ]
    .iter()
    .collect()
}

/// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` (what aws-sdk-rust sends): signed chunks,
/// then the final chunk, the trailer `x-amz-checksum-crc32:VALUE` and its signature, which
/// chains from the final chunk's. `trailer_value` is what the trailer claims.
fn streaming_put_with_trailer(
    addr: &str,
    path: &str,
    data: &[u8],
    trailer_value: &str,
) -> Response {
    const MODE: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
    let sc = scope(now());
    let chunk = 64 * 1024;
    let mut body = Vec::new();
    let trailer = format!("x-amz-checksum-crc32:{trailer_value}");
    // The length is known only once framed: sign over the headers with it, so frame first
    // with a placeholder seed to measure, then for real.
    let frame_all = |seed: &str| -> Vec<u8> {
        let mut signer = ChunkSigner::new(&sc, seed);
        let mut out = Vec::new();
        for c in data.chunks(chunk) {
            out.extend(signer.frame(c));
        }
        out.extend(signer.finish_with_trailer(&trailer));
        out
    };
    let encoded_len = frame_all(&"0".repeat(64)).len();
    let extra = [
        ("content-encoding", "aws-chunked".to_owned()),
        ("x-amz-decoded-content-length", data.len().to_string()),
        ("content-length", encoded_len.to_string()),
        ("x-amz-trailer", "x-amz-checksum-crc32".to_owned()),
    ];
    let (headers, seed) = signed(addr, "PUT", path, MODE, &extra);
    body.extend(frame_all(&seed));
    assert_eq!(body.len(), encoded_len);
    send(addr, "PUT", path, &headers, &body)
}

#[test]
fn signed_chunks_with_a_checksum_trailer_round_trip_and_a_wrong_one_stores_nothing() {
    let server = Server::start();
    let addr = &server.addr;
    // The helper agrees with zlib: base64(crc32(pattern(10))) computed by Python.
    assert_eq!(crc32_b64(&pattern(10)), "Hi1i6w==");
    assert_eq!(simple(addr, "PUT", "/stream-trailer").status, 200);
    let data = pattern(150 * 1024 + 3);
    let r = streaming_put_with_trailer(addr, "/stream-trailer/obj", &data, &crc32_b64(&data));
    assert_eq!(r.status, 200, "{}", r.text());
    let got = simple(addr, "GET", "/stream-trailer/obj");
    assert_eq!(got.body, data);
    // A trailer naming another checksum: refused, nothing stored.
    let wrong = crc32_b64(b"other bytes");
    let r = streaming_put_with_trailer(addr, "/stream-trailer/bad", &data, &wrong);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("<Code>BadDigest</Code>"), "{}", r.text());
    assert_eq!(simple(addr, "HEAD", "/stream-trailer/bad").status, 404);
}

#[test]
fn a_streaming_body_longer_than_its_declared_length_stores_nothing() {
    let server = Server::start();
    let addr = &server.addr;
    assert_eq!(simple(addr, "PUT", "/stream-long").status, 200);
    let data = pattern(100 * 1024);
    let t = now();
    let sc = scope(t);
    let chunk = 64 * 1024;
    let encoded_len = coffer_sigv4::encoded_length(data.len(), chunk);
    // The chunks carry 100 KiB; the request says 10 bytes fewer.
    let extra = [
        ("content-encoding", "aws-chunked".to_owned()),
        (
            "x-amz-decoded-content-length",
            (data.len() - 10).to_string(),
        ),
        ("content-length", encoded_len.to_string()),
    ];
    let (headers, seed) = signed(addr, "PUT", "/stream-long/obj", STREAMING_PAYLOAD, &extra);
    let mut signer = ChunkSigner::new(&sc, &seed);
    let mut body = Vec::new();
    for c in data.chunks(chunk) {
        body.extend(signer.frame(c));
    }
    body.extend(signer.frame(&[]));
    let r = send(addr, "PUT", "/stream-long/obj", &headers, &body);
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.text());
    assert_eq!(simple(addr, "HEAD", "/stream-long/obj").status, 404);
}

#[test]
fn a_dev_server_takes_signed_chunks_from_a_key_it_does_not_know() {
    // Every chunk's and the trailer's signature is the client's, made with a secret the
    // server has never seen; it signs them again as they stream through.
    let server = Server::start_dev();
    let addr = &server.addr;
    assert_eq!(simple(addr, "PUT", "/dev-stream").status, 200);
    let data = pattern(300 * 1024 + 5);
    let r = streaming_put(addr, "/dev-stream/obj", &data, 64 * 1024, |_| {});
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(simple(addr, "GET", "/dev-stream/obj").body, data);
    // One chunk larger than the body is sent in pieces: still one chunk.
    let r = streaming_put(addr, "/dev-stream/one", &data, 1024 * 1024, |_| {});
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(simple(addr, "GET", "/dev-stream/one").body, data);
    let r = streaming_put_with_trailer(addr, "/dev-stream/trailer", &data, &crc32_b64(&data));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(simple(addr, "GET", "/dev-stream/trailer").body, data);
    // The checksum the trailer names is still checked.
    let r = streaming_put_with_trailer(addr, "/dev-stream/bad", &data, &crc32_b64(b"other"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("<Code>BadDigest</Code>"), "{}", r.text());
    // Broken framing is refused, not passed off as data.
    let r = streaming_put(addr, "/dev-stream/broken", &data, 64 * 1024, |body| {
        body[0] = b'z';
    });
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.text());
    assert_eq!(simple(addr, "HEAD", "/dev-stream/broken").status, 404);
}
