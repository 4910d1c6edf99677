//! The console's API calls. Each is an ordinary AWS request, signed with SigV4 by the
//! signed-in principal's credentials and handed to the server's own dispatcher (the
//! [`Loopback`]): the same authentication, authorizer, errors and audit trail as any
//! client's call, with the console's user agent and the browser's address.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response};

use coffer_api::Body;
use coffer_sigv4::{CanonicalInput, Scope, uri_encode, uri_encode_path};

use crate::Loopback;
use crate::session::Session;

/// Payload hash of a body that is not signed (streamed object data).
const UNSIGNED: &str = "UNSIGNED-PAYLOAD";

/// Largest API reply the console reads whole (listings, key descriptions, events).
const MAX_REPLY: usize = 16 << 20;

/// A failed call, as the API answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    /// The status the API answered, for the page that shows the error.
    pub fn http_status(&self) -> http::StatusCode {
        http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn internal(message: &str) -> Self {
        Self {
            status: 500,
            code: "InternalError".into(),
            message: message.into(),
        }
    }
}

/// One signed-in user's calls, made for one browser request.
pub struct Caller<'a> {
    pub session: &'a Session,
    pub region: &'a str,
    /// The `Host` the browser used (path-style S3 requests are addressed to it).
    pub host: String,
    pub user_agent: String,
    pub loopback: &'a dyn Loopback,
}

/// What to send: everything but the credentials.
pub struct Call<'a> {
    pub service: &'a str,
    pub method: Method,
    /// The URI path as sent (already encoded); also the canonical URI for S3.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// The body's SHA-256 in hex, or [`UNSIGNED`].
    pub payload_hash: String,
}

impl Caller<'_> {
    /// Signs and sends a call; the raw response.
    pub async fn send(&self, mut call: Call<'_>) -> Response<Body> {
        let now = time::OffsetDateTime::now_utc();
        let scope = Scope {
            access_key_id: &self.session.access_key_id,
            secret_access_key: &self.session.secret,
            region: self.region,
            service: call.service,
            time: now,
        };
        call.headers.push(("host".into(), self.host.clone()));
        call.headers.push(("x-amz-date".into(), scope.amz_date()));
        if call.service == "s3" {
            call.headers
                .push(("x-amz-content-sha256".into(), call.payload_hash.clone()));
        }
        if let Some(t) = &self.session.session_token {
            call.headers
                .push(("x-amz-security-token".into(), t.as_str().to_owned()));
        }
        // S3 signs the path as sent; every other service encodes it once more.
        let canonical_uri = if call.service == "s3" {
            call.path.clone()
        } else {
            uri_encode_path(&call.path)
        };
        let authorization = coffer_sigv4::authorization_header(
            &scope,
            &CanonicalInput {
                method: call.method.as_str(),
                canonical_uri: &canonical_uri,
                query: &call.query,
                headers: &call.headers,
                payload_hash: &call.payload_hash,
            },
        );
        let query = call
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
            .collect::<Vec<_>>()
            .join("&");
        let uri = if query.is_empty() {
            call.path.clone()
        } else {
            format!("{}?{query}", call.path)
        };
        let mut req = Request::new(call.body);
        *req.method_mut() = call.method;
        match uri.parse() {
            Ok(u) => *req.uri_mut() = u,
            Err(_) => {
                return error_response(&ApiError::internal("The request could not be built."));
            }
        }
        for (n, v) in call.headers.iter().chain(
            [
                ("authorization".to_owned(), authorization),
                ("user-agent".to_owned(), self.user_agent.clone()),
            ]
            .iter(),
        ) {
            let (Ok(name), Ok(value)) = (
                http::header::HeaderName::from_bytes(n.as_bytes()),
                HeaderValue::from_str(v),
            ) else {
                return error_response(&ApiError::internal("The request could not be built."));
            };
            req.headers_mut().append(name, value);
        }
        self.loopback.call(req).await
    }

    /// An S3 call with a small body (signed); the status, headers and whole body, or the
    /// error S3 answered.
    pub async fn s3(
        &self,
        method: Method,
        path: String,
        query: &[(&str, &str)],
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> Result<(http::response::Parts, Bytes), ApiError> {
        let hash = coffer_sigv4::sha256_hex(&body);
        let mut headers = headers;
        if !body.is_empty() {
            headers.push(("content-length".into(), body.len().to_string()));
        }
        let resp = self
            .send(Call {
                service: "s3",
                method,
                path,
                query: owned(query),
                headers,
                body: coffer_api::full(body),
                payload_hash: hash,
            })
            .await;
        read(resp).await
    }

    /// An S3 call whose body streams through unread (object data).
    pub async fn s3_stream(
        &self,
        method: Method,
        path: String,
        query: &[(&str, &str)],
        headers: Vec<(String, String)>,
        body: Body,
    ) -> Response<Body> {
        self.send(Call {
            service: "s3",
            method,
            path,
            query: owned(query),
            headers,
            body,
            payload_hash: UNSIGNED.into(),
        })
        .await
    }

    /// A JSON API call (`kms`: `TrentService.OP`; `cloudtrail`: its target prefix).
    pub async fn json(
        &self,
        service: &str,
        target: &str,
        input: &serde_json::Value,
    ) -> Result<serde_json::Value, ApiError> {
        let body = Bytes::from(input.to_string());
        let resp = self
            .send(Call {
                service,
                method: Method::POST,
                path: "/".into(),
                query: Vec::new(),
                headers: vec![
                    ("content-type".into(), "application/x-amz-json-1.1".into()),
                    ("x-amz-target".into(), target.into()),
                    ("content-length".into(), body.len().to_string()),
                ],
                payload_hash: coffer_sigv4::sha256_hex(&body),
                body: coffer_api::full(body),
            })
            .await;
        let (_, bytes) = read(resp).await?;
        serde_json::from_slice(&bytes)
            .map_err(|_| ApiError::internal("The API answered something that is not JSON."))
    }

    /// A KMS call.
    pub async fn kms(
        &self,
        op: &str,
        input: serde_json::Value,
    ) -> Result<serde_json::Value, ApiError> {
        self.json("kms", &format!("TrentService.{op}"), &input)
            .await
    }

    /// An IAM or STS Query call; the reply document.
    pub async fn query(&self, service: &str, params: &[(&str, &str)]) -> Result<Xml, ApiError> {
        let version = if service == "sts" {
            "2011-06-15"
        } else {
            "2010-05-08"
        };
        let mut form: Vec<(&str, &str)> = vec![("Version", version)];
        form.extend_from_slice(params);
        let body = Bytes::from(
            form.iter()
                .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
                .collect::<Vec<_>>()
                .join("&"),
        );
        let resp = self
            .send(Call {
                service,
                method: Method::POST,
                path: "/".into(),
                query: Vec::new(),
                headers: vec![
                    (
                        "content-type".into(),
                        "application/x-www-form-urlencoded; charset=utf-8".into(),
                    ),
                    ("content-length".into(), body.len().to_string()),
                ],
                payload_hash: coffer_sigv4::sha256_hex(&body),
                body: coffer_api::full(body),
            })
            .await;
        let (_, bytes) = read(resp).await?;
        Xml::parse(&bytes).ok_or_else(|| ApiError::internal("The API answered malformed XML."))
    }
}

fn owned(q: &[(&str, &str)]) -> Vec<(String, String)> {
    q.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The path of a bucket, or of an object in it, as S3 signs it.
pub fn s3_path(bucket: &str, key: Option<&str>) -> String {
    match key {
        None => format!("/{bucket}"),
        Some(k) => format!("/{bucket}/{}", uri_encode(k, false)),
    }
}

/// Reads a reply whole: its head and body if it succeeded, else the AWS error in it.
pub async fn read(resp: Response<Body>) -> Result<(http::response::Parts, Bytes), ApiError> {
    let (parts, body) = resp.into_parts();
    let bytes = match coffer_api::read_body(body, MAX_REPLY).await {
        Ok(b) => b,
        Err(_) => return Err(ApiError::internal("The API's answer could not be read.")),
    };
    if parts.status.is_success() || parts.status.is_redirection() {
        return Ok((parts, bytes));
    }
    Err(error_of(parts.status.as_u16(), &parts.headers, &bytes))
}

/// The AWS error in a failed reply's body: S3's and IAM's XML, or the JSON protocols'.
pub fn error_of(status: u16, headers: &http::HeaderMap, body: &[u8]) -> ApiError {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let code = v["__type"].as_str().unwrap_or("");
        let code = code.rsplit('#').next().unwrap_or(code);
        let message = v["message"]
            .as_str()
            .or_else(|| v["Message"].as_str())
            .unwrap_or("");
        return ApiError {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
        };
    }
    if let Some(x) = Xml::parse(body) {
        let code = x.find("Code").map(|n| n.text.clone()).unwrap_or_default();
        let message = x
            .find("Message")
            .map(|n| n.text.clone())
            .unwrap_or_default();
        if !code.is_empty() {
            return ApiError {
                status,
                code,
                message,
            };
        }
    }
    // A HEAD's error has no body: S3 names its code in no header, so say what the
    // status means.
    let _ = headers;
    ApiError {
        status,
        code: match status {
            403 => "AccessDenied",
            404 => "NotFound",
            _ => "Error",
        }
        .into(),
        message: http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
            .into(),
    }
}

/// A response carrying an API error (for calls that could not even be built).
pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = Response::new(coffer_api::full(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{}</Code><Message>{}</Message></Error>",
        e.code, e.message
    )));
    *r.status_mut() =
        http::StatusCode::from_u16(e.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r
}

/// An XML element: its name (without namespace prefix), text and children.
#[derive(Debug, Clone, Default)]
pub struct Xml {
    pub name: String,
    pub text: String,
    pub children: Vec<Xml>,
}

impl Xml {
    /// Parses a document into its root element.
    pub fn parse(bytes: &[u8]) -> Option<Xml> {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_reader(bytes);
        let mut stack: Vec<Xml> = vec![Xml::default()];
        loop {
            match reader.read_event().ok()? {
                Event::Start(e) => stack.push(Xml {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Xml::default()
                }),
                Event::Empty(e) => {
                    let node = Xml {
                        name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                        ..Xml::default()
                    };
                    stack.last_mut()?.children.push(node);
                }
                Event::Text(t) => {
                    let s = t.xml10_content().ok()?;
                    stack.last_mut()?.text.push_str(&s);
                }
                Event::GeneralRef(r) => {
                    let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                    let ch = match name.as_str() {
                        "amp" => "&".to_owned(),
                        "lt" => "<".to_owned(),
                        "gt" => ">".to_owned(),
                        "quot" => "\"".to_owned(),
                        "apos" => "'".to_owned(),
                        n => n
                            .strip_prefix("#x")
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .or_else(|| n.strip_prefix('#').and_then(|d| d.parse().ok()))
                            .and_then(char::from_u32)
                            .map(String::from)?,
                    };
                    stack.last_mut()?.text.push_str(&ch);
                }
                Event::CData(c) => {
                    stack
                        .last_mut()?
                        .text
                        .push_str(&String::from_utf8_lossy(&c));
                }
                Event::End(_) => {
                    let done = stack.pop()?;
                    stack.last_mut()?.children.push(done);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        stack.pop()?.children.into_iter().next()
    }

    /// The first descendant (or this element) named `name`, depth first.
    pub fn find(&self, name: &str) -> Option<&Xml> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// Every descendant named `name`, in document order (not inside one another).
    pub fn all<'a>(&'a self, name: &str, out: &mut Vec<&'a Xml>) {
        for c in &self.children {
            if c.name == name {
                out.push(c);
            } else {
                c.all(name, out);
            }
        }
    }

    pub fn list(&self, name: &str) -> Vec<&Xml> {
        let mut out = Vec::new();
        self.all(name, &mut out);
        out
    }

    /// The text of the first child named `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.children
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.text.as_str())
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_is_read_with_entities_and_namespaces() {
        let x = Xml::parse(
            br#"<?xml version="1.0"?><R xmlns="x"><A>1 &amp; 2</A><B><C>c&#65;</C></B><B/></R>"#,
        )
        .expect("parsed");
        assert_eq!(x.name, "R");
        assert_eq!(x.get("A"), "1 & 2");
        assert_eq!(x.find("C").map(|c| c.text.as_str()), Some("cA"));
        assert_eq!(x.list("B").len(), 2);
    }

    #[test]
    fn errors_are_read_from_each_protocol() {
        let h = http::HeaderMap::new();
        let s3 = error_of(
            403,
            &h,
            b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
        );
        assert_eq!(
            (s3.code.as_str(), s3.message.as_str()),
            ("AccessDenied", "Access Denied")
        );
        let kms = error_of(
            400,
            &h,
            br#"{"__type":"DisabledException","message":"k is disabled."}"#,
        );
        assert_eq!(
            (kms.code.as_str(), kms.message.as_str()),
            ("DisabledException", "k is disabled.")
        );
        let iam = error_of(
            403,
            &h,
            b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>m</Message></Error></ErrorResponse>",
        );
        assert_eq!(iam.code, "AccessDenied");
        let head = error_of(404, &h, b"");
        assert_eq!(head.code, "NotFound");
    }

    #[test]
    fn object_paths_are_encoded_once_keeping_slashes() {
        assert_eq!(s3_path("b", Some("a b/c+d")), "/b/a%20b/c%2Bd");
        assert_eq!(s3_path("b", None), "/b");
    }
}
