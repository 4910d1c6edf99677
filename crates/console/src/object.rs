//! One object: its details (size, class, ETag, metadata, tags, encryption, versions),
//! its download and deletion, and uploads (one PUT, or a multipart upload for large
//! files; the browser's bytes stream through to S3, never held whole).

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use maud::html;

use coffer_api::Body;

use crate::buckets::escape_xml;
use crate::call::{ApiError, Xml, error_of, read, s3_path};
use crate::page::{Nav, csrf, error_box, json, json_error, q, see_other, size};
use crate::{Cx, PREFIX};

fn status(e: &ApiError) -> StatusCode {
    e.http_status()
}

fn header<'a>(h: &'a http::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// One object's details: size, class, ETag, metadata, tags, encryption, versions.
pub async fn object(cx: &Cx<'_>, bucket: &str) -> Response<Body> {
    let key = match object_key(cx) {
        Ok(k) => k,
        Err(e) => return cx.page(status(&e), bucket, Nav::Buckets, error_box(&e)),
    };
    let caller = cx.caller();
    let path = s3_path(bucket, Some(&key));
    let head = match caller
        .s3(Method::HEAD, path.clone(), &[], Vec::new(), Bytes::new())
        .await
    {
        Ok((parts, _)) => parts.headers,
        Err(e) => return cx.page(status(&e), &key, Nav::Buckets, error_box(&e)),
    };
    let tags = caller
        .s3(
            Method::GET,
            path.clone(),
            &[("tagging", "")],
            Vec::new(),
            Bytes::new(),
        )
        .await;
    let versions = caller
        .s3(
            Method::GET,
            s3_path(bucket, None),
            &[
                ("versions", ""),
                ("prefix", key.as_str()),
                ("max-keys", "50"),
            ],
            Vec::new(),
            Bytes::new(),
        )
        .await;
    let base = format!("{PREFIX}/buckets/{bucket}");
    let kms_key = header(&head, "x-amz-server-side-encryption-aws-kms-key-id");
    let meta: Vec<(&str, &str)> = head
        .iter()
        .filter_map(|(n, v)| {
            n.as_str()
                .strip_prefix("x-amz-meta-")
                .map(|n| (n, v.to_str().unwrap_or("")))
        })
        .collect();
    let folder = match key.rfind('/') {
        Some(i) => &key[..=i],
        None => "",
    };
    cx.page(
        StatusCode::OK,
        &key,
        Nav::Buckets,
        html! {
            p { a href={ (base) "?prefix=" (q(folder)) } { "Back to " (bucket) "/" (folder) } }
            dl.details {
                dt { "Size" } dd { (size(header(&head, "content-length").parse().unwrap_or(0))) " (" (header(&head, "content-length")) " bytes)" }
                dt { "Storage class" } dd { @let c = header(&head, "x-amz-storage-class"); @if c.is_empty() { "STANDARD" } @else { (c) } }
                dt { "ETag" } dd { code { (header(&head, "etag")) } }
                dt { "Content type" } dd { (header(&head, "content-type")) }
                dt { "Last modified" } dd { (header(&head, "last-modified")) }
                @let version = header(&head, "x-amz-version-id");
                @if !version.is_empty() { dt { "Version" } dd { code { (version) } } }
                dt { "Encryption" } dd.encryption {
                    @let alg = header(&head, "x-amz-server-side-encryption");
                    @if alg.is_empty() { @if head.contains_key("x-amz-server-side-encryption-customer-algorithm") { "SSE-C (customer-provided key)" } @else { "None" } }
                    @else if alg == "aws:kms" { "SSE-KMS" } @else if alg == "AES256" { "SSE-S3" } @else { (alg) }
                    @if !kms_key.is_empty() {
                        " with key " a.key href={ (PREFIX) "/keys/" (q(kms_key)) } { (kms_key) }
                    }
                    @if header(&head, "x-amz-server-side-encryption-bucket-key-enabled") == "true" { ", S3 Bucket Key" }
                }
            }
            h2 { "Metadata" }
            @if meta.is_empty() { p { "None." } } @else {
                table { tbody { @for (n, v) in &meta { tr { th scope="row" { (n) } td { (v) } } } } }
            }
            h2 { "Tags" }
            @match &tags {
                Ok((_, b)) => {
                    @let x = Xml::parse(b).unwrap_or_default();
                    @let list = x.list("Tag");
                    @if list.is_empty() { p { "None." } } @else {
                        table { tbody { @for t in &list { tr { th scope="row" { (t.get("Key")) } td { (t.get("Value")) } } } } }
                    }
                }
                Err(e) => (error_box(e)),
            }
            @if let Ok((_, b)) = &versions {
                @let x = Xml::parse(b).unwrap_or_default();
                @let list: Vec<&Xml> = x.children.iter().filter(|c| (c.name == "Version" || c.name == "DeleteMarker") && c.get("Key") == key).collect();
                @if list.len() > 1 || list.iter().any(|v| v.get("VersionId") != "null") {
                    h2 { "Versions" }
                    @if x.get("IsTruncated") == "true" { p.hint { "The newest versions; the list goes on." } }
                    table { thead { tr { th scope="col" { "Version" } th scope="col" { "Kind" } th scope="col" { "Size" } th scope="col" { "Last modified" } } }
                        tbody { @for v in &list { tr {
                            td { code { (v.get("VersionId")) } @if v.get("IsLatest") == "true" { " (current)" } }
                            td { @if v.name == "DeleteMarker" { "delete marker" } @else { "object" } }
                            td { (v.get("Size")) }
                            td { (v.get("LastModified")) }
                        } } }
                    }
                }
            }
            p.actions {
                a.button href={ (base) "/download?key=" (q(&key)) } download { "Download" }
            }
            form method="post" action={ (base) "/delete-object" } {
                (csrf(&cx.session))
                input type="hidden" name="key" value=(key);
                button.danger type="submit" { "Delete object" }
            }
        },
    )
}

/// GetObject, streamed to the browser as an attachment; a refusal (a disabled key, a
/// denied caller) is a page with the API's reason.
pub async fn download(cx: &Cx<'_>, bucket: &str) -> Response<Body> {
    let key = match object_key(cx) {
        Ok(k) => k,
        Err(e) => return cx.page(status(&e), bucket, Nav::Buckets, error_box(&e)),
    };
    let resp = cx
        .caller()
        .s3_stream(
            Method::GET,
            s3_path(bucket, Some(&key)),
            &[],
            Vec::new(),
            coffer_api::full(Bytes::new()),
        )
        .await;
    if !resp.status().is_success() {
        let e = match read(resp).await {
            Err(e) => e,
            Ok(_) => ApiError {
                status: 500,
                code: "InternalError".into(),
                message: "The download failed.".into(),
            },
        };
        return cx.page(
            status(&e),
            &format!("Download of {key} failed"),
            Nav::Buckets,
            html! {
                (error_box(&e))
                p { a href={ (PREFIX) "/buckets/" (bucket) "/object?key=" (q(&key)) } { "Back to the object" } }
            },
        );
    }
    let (parts, body) = resp.into_parts();
    let mut r = Response::new(body);
    for name in [
        http::header::CONTENT_LENGTH,
        http::header::CONTENT_TYPE,
        http::header::ETAG,
        http::header::LAST_MODIFIED,
    ] {
        if let Some(v) = parts.headers.get(&name) {
            r.headers_mut().insert(name, v.clone());
        }
    }
    let file = key.rsplit('/').next().unwrap_or(&key);
    let encoded =
        percent_encoding::utf8_percent_encode(file, percent_encoding::NON_ALPHANUMERIC).to_string();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{encoded}")) {
        r.headers_mut().insert(http::header::CONTENT_DISPOSITION, v);
    }
    crate::page::secure_headers(r.headers_mut());
    r
}

pub async fn delete_object(cx: &Cx<'_>, bucket: &str, form: &[(String, String)]) -> Response<Body> {
    let key = crate::form::field(form, "key").unwrap_or("").to_owned();
    if key.is_empty() {
        let e = ApiError {
            status: 400,
            code: "InvalidArgument".into(),
            message: "An object key must be given and not be empty.".into(),
        };
        return cx.page(status(&e), bucket, Nav::Buckets, error_box(&e));
    }
    match cx
        .caller()
        .s3(
            Method::DELETE,
            s3_path(bucket, Some(&key)),
            &[],
            Vec::new(),
            Bytes::new(),
        )
        .await
    {
        Ok(_) => {
            let folder = match key.rfind('/') {
                Some(i) => &key[..=i],
                None => "",
            };
            see_other(&format!("{PREFIX}/buckets/{bucket}?prefix={}", q(folder)))
        }
        Err(e) => cx.page(status(&e), &key, Nav::Buckets, error_box(&e)),
    }
}

/// The object key a request names; an empty one names no object (and would make an
/// object call a bucket call).
fn object_key(cx: &Cx<'_>) -> Result<String, ApiError> {
    match cx.param("key") {
        Some(k) if !k.is_empty() => Ok(k.to_owned()),
        _ => Err(ApiError {
            status: 400,
            code: "InvalidArgument".into(),
            message: "An object key must be given and not be empty.".into(),
        }),
    }
}

/// The declared length of an upload's body: S3 needs it, and the browser sends it.
fn length(req: &Request<Body>) -> Option<String> {
    req.headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.parse::<u64>().is_ok())
        .map(str::to_owned)
}

fn length_required() -> Response<Body> {
    json(
        StatusCode::LENGTH_REQUIRED,
        &serde_json::json!({"code": "MissingContentLength", "message": "You must provide the Content-Length HTTP header."}),
    )
}

/// One PUT of a whole (small) file, its bytes streamed through.
pub async fn upload(cx: &Cx<'_>, bucket: &str, req: Request<Body>) -> Response<Body> {
    let key = match object_key(cx) {
        Ok(k) => k,
        Err(e) => return json_error(&e),
    };
    let Some(len) = length(&req) else {
        return length_required();
    };
    let mut headers = vec![("content-length".into(), len)];
    if let Some(t) = cx.param("type").filter(|t| !t.is_empty()) {
        headers.push(("content-type".into(), t.to_owned()));
    }
    let resp = cx
        .caller()
        .s3_stream(
            Method::PUT,
            s3_path(bucket, Some(&key)),
            &[],
            headers,
            req.into_body(),
        )
        .await;
    match read(resp).await {
        Ok((parts, _)) => json(
            StatusCode::OK,
            &serde_json::json!({"etag": header(&parts.headers, "etag")}),
        ),
        Err(e) => json_error(&e),
    }
}

pub async fn multipart_create(cx: &Cx<'_>, bucket: &str) -> Response<Body> {
    let key = match object_key(cx) {
        Ok(k) => k,
        Err(e) => return json_error(&e),
    };
    let mut headers = Vec::new();
    if let Some(t) = cx.param("type").filter(|t| !t.is_empty()) {
        headers.push(("content-type".into(), t.to_owned()));
    }
    match cx
        .caller()
        .s3(
            Method::POST,
            s3_path(bucket, Some(&key)),
            &[("uploads", "")],
            headers,
            Bytes::new(),
        )
        .await
    {
        Ok((_, body)) => match Xml::parse(&body).map(|x| x.get("UploadId").to_owned()) {
            Some(id) if !id.is_empty() => {
                json(StatusCode::OK, &serde_json::json!({"uploadId": id}))
            }
            _ => json_error(&ApiError {
                status: 500,
                code: "InternalError".into(),
                message: "S3 answered no upload id.".into(),
            }),
        },
        Err(e) => json_error(&e),
    }
}

pub async fn multipart_part(cx: &Cx<'_>, bucket: &str, req: Request<Body>) -> Response<Body> {
    let key = match object_key(cx) {
        Ok(k) => k,
        Err(e) => return json_error(&e),
    };
    let upload = cx.param("uploadId").unwrap_or("").to_owned();
    let part = cx.param("partNumber").unwrap_or("").to_owned();
    let Some(len) = length(&req) else {
        return length_required();
    };
    let resp = cx
        .caller()
        .s3_stream(
            Method::PUT,
            s3_path(bucket, Some(&key)),
            &[("partNumber", part.as_str()), ("uploadId", upload.as_str())],
            vec![("content-length".into(), len)],
            req.into_body(),
        )
        .await;
    match read(resp).await {
        Ok((parts, _)) => json(
            StatusCode::OK,
            &serde_json::json!({"etag": header(&parts.headers, "etag")}),
        ),
        Err(e) => json_error(&e),
    }
}

/// Completes an upload from the parts the script sends: `[{"partNumber": 1, "etag": ...}]`.
pub async fn multipart_complete(cx: &Cx<'_>, bucket: &str, req: Request<Body>) -> Response<Body> {
    let key = match object_key(cx) {
        Ok(k) => k,
        Err(e) => return json_error(&e),
    };
    let upload = cx.param("uploadId").unwrap_or("").to_owned();
    let bytes = match coffer_api::read_body(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({"code": "MalformedXML", "message": "The part list could not be read."}),
            );
        }
    };
    // Every part as the script listed it, or nothing: a part dropped here would complete
    // a shorter object.
    let parts: Option<Vec<(u64, String)>> = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .filter(|a| !a.is_empty())
        .and_then(|a| {
            a.iter()
                .map(|p| Some((p["partNumber"].as_u64()?, p["etag"].as_str()?.to_owned())))
                .collect()
        });
    let Some(parts) = parts else {
        return json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"code": "MalformedXML", "message": "The part list is not a list of {partNumber, etag}."}),
        );
    };
    let mut doc =
        String::from("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (n, etag) in &parts {
        doc.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>",
            escape_xml(etag)
        ));
    }
    doc.push_str("</CompleteMultipartUpload>");
    match cx
        .caller()
        .s3(
            Method::POST,
            s3_path(bucket, Some(&key)),
            &[("uploadId", upload.as_str())],
            Vec::new(),
            Bytes::from(doc),
        )
        .await
    {
        // CompleteMultipartUpload may fail after its 200: the error is then the body.
        Ok((parts, body)) => match Xml::parse(&body) {
            Some(x) if x.name == "Error" => json_error(&error_of(500, &parts.headers, &body)),
            Some(x) if x.name == "CompleteMultipartUploadResult" => {
                json(StatusCode::OK, &serde_json::json!({"etag": x.get("ETag")}))
            }
            _ => json_error(&ApiError {
                status: 500,
                code: "InternalError".into(),
                message: "S3 answered the completion with something else than its result.".into(),
            }),
        },
        Err(e) => json_error(&e),
    }
}

pub async fn multipart_abort(cx: &Cx<'_>, bucket: &str) -> Response<Body> {
    let key = match object_key(cx) {
        Ok(k) => k,
        Err(e) => return json_error(&e),
    };
    let upload = cx.param("uploadId").unwrap_or("").to_owned();
    match cx
        .caller()
        .s3(
            Method::DELETE,
            s3_path(bucket, Some(&key)),
            &[("uploadId", upload.as_str())],
            Vec::new(),
            Bytes::new(),
        )
        .await
    {
        Ok(_) => json(StatusCode::OK, &serde_json::json!({})),
        Err(e) => json_error(&e),
    }
}
