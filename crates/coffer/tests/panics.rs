//! A panic inside a protocol's handler is answered in that protocol's own error shape (a
//! 500 a real client can read, with the request id), is counted, and leaves the server
//! serving. The real server loop and dispatcher run here over a real socket; each of the
//! four protocols is wrapped so that its `handle` panics while its `accepts` and
//! `internal_error` stay its own.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use clap::Parser;
use coffer::cli::{Cli, Command};
use coffer_api::{ApiHandler, Reply};
use coffer_audit::RequestContext;

struct Panicking(Arc<dyn ApiHandler>);

#[async_trait::async_trait]
impl ApiHandler for Panicking {
    fn accepts(&self, req: &http::Request<coffer_api::Body>) -> bool {
        self.0.accepts(req)
    }

    async fn handle(
        &self,
        _req: http::Request<coffer_api::Body>,
        _cx: &Arc<RequestContext>,
    ) -> Reply {
        panic!("planted panic")
    }

    fn internal_error(&self, request_id: &str) -> Reply {
        self.0.internal_error(request_id)
    }
}

/// One HTTP/1.1 exchange on a fresh connection: (status, lower-cased headers, body).
fn exchange(port: u16, head: &str, body: &str) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let req = format!(
        "{head}\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let (head, body) = out.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_answered_in_the_protocols_own_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path").to_owned();
    let Command::Serve(args) = Cli::try_parse_from([
        "coffer",
        "serve",
        "--data-dir",
        &data,
        "--listen",
        "127.0.0.1:0",
    ])
    .expect("arguments")
    .command
    else {
        panic!("not a serve command");
    };
    let config = args.config().expect("config");
    let (mut app, _identity) = coffer::App::open(&config).await.expect("open");
    app.protocols = app
        .protocols
        .into_iter()
        .map(|h| Arc::new(Panicking(h)) as Arc<dyn ApiHandler>)
        .collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        coffer::serve(listener, Arc::new(app), &config, async {
            let _ = stopped.await;
        })
        .await
    });

    let cases: [(&str, &str, &str, &str); 4] = [
        (
            "KMS",
            "POST / HTTP/1.1\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Type: application/x-amz-json-1.1",
            "{}",
            "application/x-amz-json-1.1",
        ),
        (
            "CloudTrail",
            "POST / HTTP/1.1\r\nX-Amz-Target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents\r\nContent-Type: application/x-amz-json-1.1",
            "{}",
            "application/x-amz-json-1.1",
        ),
        (
            "IAM",
            "POST / HTTP/1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261205/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00\r\nContent-Type: application/x-www-form-urlencoded",
            "Action=ListUsers&Version=2010-05-08",
            "text/xml",
        ),
        ("S3", "GET /some-bucket HTTP/1.1", "", "application/xml"),
    ];
    let answers: Vec<_> = tokio::task::spawn_blocking(move || {
        cases
            .iter()
            .map(|(name, head, body, ty)| (*name, *ty, exchange(port, head, body)))
            .collect()
    })
    .await
    .expect("client");
    for (name, content_type, (status, headers, body)) in answers {
        assert_eq!(status, 500, "{name}: {body}");
        let id = header(&headers, "x-amz-request-id")
            .unwrap_or_else(|| panic!("{name}: no request id in {headers:?}"))
            .to_owned();
        assert!(
            header(&headers, "content-type").is_some_and(|t| t.starts_with(content_type)),
            "{name}: {headers:?}"
        );
        match name {
            "KMS" => {
                let v: serde_json::Value = serde_json::from_str(&body).expect("KMS JSON");
                assert_eq!(v["__type"], "KMSInternalException", "{body}");
            }
            "CloudTrail" => {
                let v: serde_json::Value = serde_json::from_str(&body).expect("CloudTrail JSON");
                assert!(
                    v["__type"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("InternalServerException")
                            || t.ends_with("InternalFailure")),
                    "{body}"
                );
            }
            "IAM" => {
                assert!(
                    body.contains("<ErrorResponse")
                        && body.contains("<Code>ServiceFailure</Code>")
                        && body.contains(&format!("<RequestId>{id}</RequestId>")),
                    "{body}"
                );
            }
            _ => {
                assert!(
                    body.contains("<Error><Code>InternalError</Code>")
                        && body.contains(&format!("<RequestId>{id}</RequestId>")),
                    "{body}"
                );
            }
        }
    }

    // The server still answers, and counted the four failures.
    let metrics = tokio::task::spawn_blocking(move || {
        let (status, _, health) = exchange(port, "GET /_coffer/health HTTP/1.1", "");
        assert_eq!((status, health.as_str()), (200, "ok\n"));
        exchange(port, "GET /_coffer/metrics HTTP/1.1", "").2
    })
    .await
    .expect("client");
    let failures: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("coffer_requests_total") && l.contains("status=\"500\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(failures, 4, "500s counted in:\n{metrics}");

    let _ = stop.send(());
    server.await.expect("join").expect("serve");
}
