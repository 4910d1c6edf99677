//! The S3 requests the benchmark makes, signed with SigV4.

use std::convert::Infallible;

use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use coffer_sigv4::{CanonicalInput, EMPTY_SHA256, Scope, UNSIGNED_PAYLOAD, uri_encode_path};

use crate::Args;

type Body = BoxBody<Bytes, Infallible>;

/// Bodies are cut from one 1 MiB buffer of incompressible bytes.
const PATTERN_LEN: usize = 1 << 20;

/// One PUT's body, made ready before its clock starts: how its bytes are made, the whole
/// body when it is at most 1 MiB, and the payload hash to sign.
pub struct Upload {
    /// Mixed into every 8 bytes of the pool, per MiB (`--data random`); `None` sends the
    /// pattern itself.
    nonce: Option<u64>,
    whole: Option<Bytes>,
    payload_hash: String,
}

/// splitmix64: a different, well-mixed word for every input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// MiB-block `index` of an object: the pool, with (for random data) a word of its own
/// XORed into every 8 bytes.
fn block(pool: &Bytes, nonce: Option<u64>, index: u64, len: usize) -> Bytes {
    let Some(nonce) = nonce else {
        return pool.slice(..len);
    };
    let word = mix(nonce ^ mix(index)).to_le_bytes();
    let mut out = pool[..len].to_vec();
    for lane in out.chunks_mut(8) {
        for (b, w) in lane.iter_mut().zip(word) {
            *b ^= w;
        }
    }
    Bytes::from(out)
}

pub struct Client {
    http: HyperClient<HttpConnector, Body>,
    base: String,
    host: String,
    bucket: String,
    access_key: String,
    secret_key: String,
    region: String,
    size: u64,
    sse_headers: Vec<(String, String)>,
    pattern: Bytes,
    data: crate::Data,
    payload: crate::Payload,
    /// Makes this run's objects differ from every other run's.
    salt: u64,
}

/// Which keys the workload touches.
#[derive(Clone)]
pub struct KeySpace {
    prefix: String,
    size: u64,
    read_set: usize,
    overwrite: Option<u64>,
    /// Tells this run's fresh keys from an earlier run's, so that they are really new.
    run: u32,
}

impl KeySpace {
    pub fn new(args: &Args) -> Self {
        let sse: String = args
            .sse
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        // Keep what the read set occupies on disk bounded (about 2 GiB).
        let fit = usize::try_from((2u64 << 30) / args.size().max(1)).unwrap_or(usize::MAX);
        Self {
            prefix: format!(
                "coffer-bench/{}-{sse}{}",
                args.size(),
                if args.bucket_key { "-bk" } else { "" }
            ),
            size: args.size(),
            read_set: args.read_keys.unwrap_or(args.concurrency).min(fit).max(1),
            overwrite: args.overwrite_keys.filter(|n| *n > 0),
            run: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
                .unwrap_or(0),
        }
    }

    pub fn read_set(&self) -> usize {
        self.read_set
    }

    /// Small objects get fresh keys (unless `--overwrite-keys`); large ones reuse a few
    /// keys per worker so that long runs do not fill the disk.
    pub fn write_key(&self, worker: usize, seq: u64) -> String {
        match self.overwrite {
            Some(n) => format!("{}/w{worker}-{}", self.prefix, seq % n),
            None if self.size >= 1 << 20 => format!("{}/w{worker}-{}", self.prefix, seq % 4),
            // Fresh keys: new in every run too, not the previous run's keys again.
            None => format!("{}/{:08x}-w{worker}-{seq}", self.prefix, self.run),
        }
    }

    pub fn read_key(&self, worker: usize, seq: u64) -> String {
        let i = (worker as u64 + seq) % self.read_set as u64;
        self.read_name(i as usize)
    }

    fn read_name(&self, i: usize) -> String {
        format!("{}/r{i}", self.prefix)
    }
}

fn sse_headers(args: &Args) -> anyhow::Result<Vec<(String, String)>> {
    let mut h = Vec::new();
    match args.sse.as_str() {
        "none" => {}
        "AES256" => h.push(("x-amz-server-side-encryption".into(), "AES256".into())),
        s if s == "aws:kms" || s.starts_with("aws:kms:") => {
            h.push(("x-amz-server-side-encryption".into(), "aws:kms".into()));
            if let Some(key) = s.strip_prefix("aws:kms:") {
                h.push((
                    "x-amz-server-side-encryption-aws-kms-key-id".into(),
                    key.into(),
                ));
            }
        }
        other => {
            anyhow::bail!("--sse must be none, AES256, aws:kms or aws:kms:KEY (got {other:?})")
        }
    }
    if args.bucket_key {
        h.push((
            "x-amz-server-side-encryption-bucket-key-enabled".into(),
            "true".into(),
        ));
    }
    Ok(h)
}

impl Client {
    pub fn new(args: &Args) -> anyhow::Result<Self> {
        let uri: Uri = args.endpoint.parse().context("--endpoint is not a URL")?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http"),
            "only http:// endpoints are supported"
        );
        let host = uri
            .authority()
            .context("--endpoint has no host")?
            .as_str()
            .to_owned();
        let mut pattern = vec![0u8; PATTERN_LEN];
        // xorshift: cheap, incompressible, deterministic.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for chunk in pattern.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(args.concurrency.max(1) * 2)
            .build(connector);
        Ok(Self {
            http,
            base: args.endpoint.trim_end_matches('/').to_owned(),
            host,
            bucket: args.bucket.clone(),
            access_key: args.access_key.clone(),
            secret_key: args.secret_key.clone(),
            region: args.region.clone(),
            size: args.size(),
            sse_headers: sse_headers(args)?,
            pattern: Bytes::from(pattern),
            data: args.data,
            payload: args.payload,
            salt: mix(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
                ^ u64::from(std::process::id())),
        })
    }

    /// The blocks of an object, made as they are sent.
    fn blocks(&self, nonce: Option<u64>) -> impl Iterator<Item = Bytes> + Send + 'static {
        let (mut left, mut index) = (self.size, 0u64);
        let pattern = self.pattern.clone();
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let n = left.min(PATTERN_LEN as u64) as usize;
            left -= n as u64;
            index += 1;
            Some(block(&pattern, nonce, index - 1, n))
        })
    }

    /// Readies the body of worker `worker`'s PUT number `seq` (`usize::MAX`: the read
    /// set's preparation).
    pub fn prepare(&self, worker: usize, seq: u64) -> Upload {
        let nonce = (self.data == crate::Data::Random)
            .then(|| mix(self.salt ^ mix((worker as u64) << 40 ^ seq)));
        let whole = (self.size <= PATTERN_LEN as u64)
            .then(|| self.blocks(nonce).next().unwrap_or_default());
        let payload_hash = match self.payload {
            crate::Payload::Unsigned => UNSIGNED_PAYLOAD.to_owned(),
            crate::Payload::Signed => {
                use sha2::Digest as _;
                let mut h = sha2::Sha256::new();
                match &whole {
                    Some(b) => h.update(b),
                    None => self.blocks(nonce).for_each(|b| h.update(&b)),
                }
                hex_lower(&h.finalize())
            }
        };
        Upload {
            nonce,
            whole,
            payload_hash,
        }
    }

    fn body(&self, up: &Upload) -> Body {
        match &up.whole {
            Some(b) => BodyExt::boxed(http_body_util::Full::new(b.clone())),
            None => BodyExt::boxed(StreamBody::new(futures::stream::iter(
                self.blocks(up.nonce)
                    .map(|b| Ok::<_, Infallible>(Frame::data(b))),
            ))),
        }
    }

    fn empty() -> Body {
        BodyExt::boxed(Empty::<Bytes>::new())
    }

    /// Builds a signed request for `path` (already starting with `/`).
    fn request(
        &self,
        method: Method,
        path: &str,
        extra: &[(String, String)],
        payload_hash: &str,
        body: Body,
        content_length: Option<u64>,
    ) -> anyhow::Result<Request<Body>> {
        self.request_with_query(method, path, &[], extra, payload_hash, body, content_length)
    }

    /// [`Client::request`] with query parameters (sub-resources such as `versioning`).
    #[allow(clippy::too_many_arguments)]
    fn request_with_query(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        extra: &[(String, String)],
        payload_hash: &str,
        body: Body,
        content_length: Option<u64>,
    ) -> anyhow::Result<Request<Body>> {
        let canonical_uri = uri_encode_path(path);
        let scope = Scope {
            access_key_id: &self.access_key,
            secret_access_key: &self.secret_key,
            region: &self.region,
            service: "s3",
            time: time::OffsetDateTime::now_utc(),
        };
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), self.host.clone()),
            ("x-amz-date".into(), scope.amz_date()),
            ("x-amz-content-sha256".into(), payload_hash.into()),
        ];
        headers.extend(extra.iter().cloned());
        let auth = coffer_sigv4::authorization_header(
            &scope,
            &CanonicalInput {
                method: method.as_str(),
                canonical_uri: &canonical_uri,
                query,
                headers: &headers,
                payload_hash,
            },
        );
        let query_string: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        let uri = if query.is_empty() {
            format!("{}{canonical_uri}", self.base)
        } else {
            format!("{}{canonical_uri}?{}", self.base, query_string.join("&"))
        };
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in &headers {
            b = b.header(k.as_str(), v.as_str());
        }
        b = b.header("authorization", auth);
        if let Some(len) = content_length {
            b = b.header("content-length", len);
        }
        Ok(b.body(body)?)
    }

    async fn send(&self, req: Request<Body>) -> anyhow::Result<(StatusCode, u64, Bytes)> {
        let resp = self.http.request(req).await.context("request failed")?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut n = 0u64;
        let mut err_body = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.context("reading the response body")?;
            if let Some(d) = frame.data_ref() {
                n += d.len() as u64;
                if !status.is_success() && err_body.len() < 4096 {
                    err_body.extend_from_slice(d);
                }
            }
        }
        Ok((status, n, err_body.freeze()))
    }

    fn check(status: StatusCode, body: &Bytes, what: &str) -> anyhow::Result<()> {
        if status.is_success() {
            Ok(())
        } else {
            anyhow::bail!("{what}: HTTP {status}: {}", String::from_utf8_lossy(body))
        }
    }

    pub async fn ensure_bucket(&self) -> anyhow::Result<()> {
        let path = format!("/{}", self.bucket);
        let req = self.request(Method::HEAD, &path, &[], EMPTY_SHA256, Self::empty(), None)?;
        let (status, _, _) = self.send(req).await?;
        if status.is_success() {
            return Ok(());
        }
        let req = self.request(
            Method::PUT,
            &path,
            &[],
            EMPTY_SHA256,
            Self::empty(),
            Some(0),
        )?;
        let (status, _, body) = self.send(req).await?;
        if status == StatusCode::CONFLICT {
            return Ok(()); // created concurrently, or already ours
        }
        Self::check(status, &body, "CreateBucket")
    }

    /// PutBucketVersioning (`Enabled` or `Suspended`).
    pub async fn set_versioning(&self, status: &str) -> anyhow::Result<()> {
        let body = format!(
            "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>{status}</Status></VersioningConfiguration>"
        );
        let len = body.len() as u64;
        let req = self.request_with_query(
            Method::PUT,
            &format!("/{}", self.bucket),
            &[("versioning".into(), String::new())],
            &[],
            UNSIGNED_PAYLOAD,
            BodyExt::boxed(http_body_util::Full::new(Bytes::from(body))),
            Some(len),
        )?;
        let (status, _, body) = self.send(req).await?;
        Self::check(status, &body, "PutBucketVersioning")
    }

    /// PUTs one object; returns the bytes sent.
    pub async fn put(&self, key: &str, up: Upload) -> anyhow::Result<u64> {
        let path = format!("/{}/{key}", self.bucket);
        let req = self.request(
            Method::PUT,
            &path,
            &self.sse_headers,
            &up.payload_hash,
            self.body(&up),
            Some(self.size),
        )?;
        let (status, _, body) = self.send(req).await?;
        Self::check(status, &body, "PutObject")?;
        Ok(self.size)
    }

    /// GETs one object; returns the bytes received (checked against the object size).
    pub async fn get(&self, key: &str) -> anyhow::Result<u64> {
        let path = format!("/{}/{key}", self.bucket);
        let req = self.request(Method::GET, &path, &[], EMPTY_SHA256, Self::empty(), None)?;
        let (status, n, body) = self.send(req).await?;
        Self::check(status, &body, "GetObject")?;
        anyhow::ensure!(
            n == self.size,
            "GetObject returned {n} bytes, expected {}",
            self.size
        );
        Ok(n)
    }

    /// Makes sure every object of the read set exists with the right size; with
    /// `versions` > 1, writes each that many times (a versioned bucket keeps them all).
    pub async fn prepare_reads(
        &self,
        keys: &KeySpace,
        concurrency: usize,
        versions: u64,
    ) -> anyhow::Result<()> {
        use futures::StreamExt;
        if versions > 1 {
            let n = keys.read_set() as u64;
            let results: Vec<anyhow::Result<u64>> = futures::stream::iter(0..n * versions)
                .map(|i| async move {
                    self.put(
                        &keys.read_name((i % n) as usize),
                        self.prepare(usize::MAX, i),
                    )
                    .await
                })
                .buffer_unordered(concurrency.max(1))
                .collect()
                .await;
            return results.into_iter().try_for_each(|r| r.map(|_| ()));
        }
        let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..keys.read_set())
            .map(|i| async move {
                let key = keys.read_name(i);
                let path = format!("/{}/{key}", self.bucket);
                let req =
                    self.request(Method::HEAD, &path, &[], EMPTY_SHA256, Self::empty(), None)?;
                let resp = self.http.request(req).await.context("HEAD failed")?;
                let len = resp
                    .headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if resp.status().is_success() && len == Some(self.size) {
                    return Ok(());
                }
                self.put(&key, self.prepare(usize::MAX, i as u64))
                    .await
                    .map(|_| ())
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect()
    }
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Bytes {
        Bytes::from(
            (0..PATTERN_LEN)
                .map(|i| (i * 7 % 251) as u8)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn random_blocks_never_repeat_and_patterns_always_do() {
        let p = pool();
        let a0 = block(&p, Some(1), 0, PATTERN_LEN);
        let a1 = block(&p, Some(1), 1, PATTERN_LEN);
        let b0 = block(&p, Some(2), 0, PATTERN_LEN);
        assert_ne!(a0, a1);
        assert_ne!(a0, b0);
        assert_ne!(a0, p);
        // Not even one 4 KiB block in common: a deduplicating store keeps every byte.
        let blocks = |b: &Bytes| {
            b.chunks(4096)
                .map(<[u8]>::to_vec)
                .collect::<std::collections::HashSet<_>>()
        };
        assert!(blocks(&a0).is_disjoint(&blocks(&b0)));
        assert_eq!(block(&p, Some(1), 0, 10), a0.slice(..10));
        assert_eq!(block(&p, None, 5, PATTERN_LEN), p);
    }
}
