//! KMS workloads: Encrypt, Decrypt and GenerateDataKey against one key, over the JSON API
//! with SigV4 for service `kms`. The signing key is derived once per run (per day).

use std::convert::Infallible;
use std::sync::Mutex;

use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use coffer_sigv4::{CanonicalInput, Scope, SigningKey, sha256_hex};

use crate::{Args, Op};

type Body = BoxBody<Bytes, Infallible>;

pub struct Client {
    http: HyperClient<HttpConnector, Body>,
    url: String,
    host: String,
    access_key: String,
    secret_key: String,
    region: String,
    key_id: String,
    plaintext_b64: String,
    size: u64,
    /// A ciphertext to decrypt, made once before a decrypt run.
    blob_b64: Mutex<Option<String>>,
    signing: Mutex<Option<(String, std::sync::Arc<SigningKey>)>>,
}

fn b64(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
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
        let key_id = args
            .key
            .clone()
            .context("KMS workloads need --key KEY (a key id, key ARN or alias)")?;
        anyhow::ensure!(
            (1..=4096).contains(&args.size()),
            "for KMS workloads --size is the plaintext size, 1 B to 4 KiB"
        );
        let plaintext: Vec<u8> = (0..args.size()).map(|i| (i * 131 % 251) as u8).collect();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(args.concurrency.max(1) * 2)
            .build(connector);
        Ok(Self {
            http,
            url: format!("{}/", args.endpoint.trim_end_matches('/')),
            host,
            access_key: args.access_key.clone(),
            secret_key: args.secret_key.clone(),
            region: args.region.clone(),
            key_id,
            plaintext_b64: b64(&plaintext),
            size: args.size(),
            blob_b64: Mutex::new(None),
            signing: Mutex::new(None),
        })
    }

    fn signing_key(&self, scope: &Scope<'_>) -> std::sync::Arc<SigningKey> {
        let day = scope.amz_date()[..8].to_owned();
        let mut g = self.signing.lock().unwrap_or_else(|e| e.into_inner());
        match &*g {
            Some((d, k)) if *d == day => k.clone(),
            _ => {
                let k = std::sync::Arc::new(scope.signing_key());
                *g = Some((day, k.clone()));
                k
            }
        }
    }

    async fn call(&self, target: &str, body: String) -> anyhow::Result<serde_json::Value> {
        let scope = Scope {
            access_key_id: &self.access_key,
            secret_access_key: &self.secret_key,
            region: &self.region,
            service: "kms",
            time: time::OffsetDateTime::now_utc(),
        };
        let headers: Vec<(String, String)> = vec![
            ("content-type".into(), "application/x-amz-json-1.1".into()),
            ("host".into(), self.host.clone()),
            ("x-amz-date".into(), scope.amz_date()),
            ("x-amz-target".into(), format!("TrentService.{target}")),
        ];
        let payload_hash = sha256_hex(body.as_bytes());
        let input = CanonicalInput {
            method: "POST",
            canonical_uri: "/",
            query: &[],
            headers: &headers,
            payload_hash: &payload_hash,
        };
        let sts = coffer_sigv4::string_to_sign(&scope, &input.canonical_request());
        let signature = self.signing_key(&scope).sign(&sts);
        let auth = format!(
            "{} Credential={}/{}, SignedHeaders={}, Signature={signature}",
            coffer_sigv4::ALGORITHM,
            scope.access_key_id,
            scope.credential_scope(),
            input.signed_headers()
        );
        let mut b = Request::builder().method(Method::POST).uri(&self.url);
        for (k, v) in &headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let req = b
            .header("authorization", auth)
            .body(BodyExt::boxed(Full::new(Bytes::from(body))))?;
        let resp = self.http.request(req).await.context("request failed")?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            anyhow::bail!(
                "{target}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Makes the ciphertext a decrypt run reads.
    pub async fn prepare(&self, op: Op) -> anyhow::Result<()> {
        if op == Op::KmsDecrypt {
            let v = self.encrypt_body().await?;
            let blob = v["CiphertextBlob"]
                .as_str()
                .context("Encrypt returned no CiphertextBlob")?
                .to_owned();
            *self.blob_b64.lock().unwrap_or_else(|e| e.into_inner()) = Some(blob);
        }
        Ok(())
    }

    async fn encrypt_body(&self) -> anyhow::Result<serde_json::Value> {
        let body = serde_json::json!({ "KeyId": self.key_id, "Plaintext": self.plaintext_b64 });
        self.call("Encrypt", body.to_string()).await
    }

    /// One operation; returns the plaintext bytes it covered.
    pub async fn run(&self, op: Op) -> anyhow::Result<u64> {
        match op {
            Op::KmsEncrypt => {
                self.encrypt_body().await?;
                Ok(self.size)
            }
            Op::KmsDecrypt => {
                let blob = self
                    .blob_b64
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
                    .context("no ciphertext prepared")?;
                let v = self
                    .call(
                        "Decrypt",
                        serde_json::json!({ "CiphertextBlob": blob }).to_string(),
                    )
                    .await?;
                anyhow::ensure!(
                    v["Plaintext"].as_str() == Some(self.plaintext_b64.as_str()),
                    "Decrypt returned the wrong plaintext"
                );
                Ok(self.size)
            }
            Op::KmsGenerateDataKey => {
                let v = self
                    .call(
                        "GenerateDataKey",
                        serde_json::json!({ "KeyId": self.key_id, "KeySpec": "AES_256" })
                            .to_string(),
                    )
                    .await?;
                anyhow::ensure!(
                    v["Plaintext"].is_string(),
                    "GenerateDataKey returned no Plaintext"
                );
                Ok(32)
            }
            Op::Put | Op::Get => anyhow::bail!("not a KMS operation"),
        }
    }
}
