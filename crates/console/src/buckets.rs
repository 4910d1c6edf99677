//! Buckets: the bucket list (create, delete), a bucket's objects by folder with paged
//! listings and the upload form, and the bucket's settings (default encryption, policy,
//! Block Public Access). One object's pages and uploads are in `object.rs`.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use maud::{Markup, html};

use coffer_api::Body;

use crate::call::{ApiError, Xml, s3_path};
use crate::page::{Nav, csrf, error_box, notice, q, see_other, size};
use crate::{Cx, PREFIX};

/// Objects per listing page.
const PAGE: &str = "100";

/// Most buckets probed one by one for a caller who may not list them all.
const MAX_PROBED: usize = 100;

fn status(e: &ApiError) -> StatusCode {
    e.http_status()
}

pub(crate) fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn md5_header(body: &[u8]) -> (String, String) {
    use md5::Digest as _;
    (
        "content-md5".into(),
        base64_simd::STANDARD.encode_to_string(md5::Md5::digest(body)),
    )
}

/// The bucket list, with the form that creates one.
pub async fn list(cx: &Cx<'_>) -> Response<Body> {
    let caller = cx.caller();
    let listed = caller
        .s3(Method::GET, "/".into(), &[], Vec::new(), Bytes::new())
        .await;
    let mut probed_all = true;
    let (names, refusal) = match listed {
        Ok((_, body)) => {
            let x = Xml::parse(&body).unwrap_or_default();
            let names: Vec<(String, String)> = x
                .list("Bucket")
                .iter()
                .map(|b| (b.get("Name").to_owned(), b.get("CreationDate").to_owned()))
                .collect();
            (names, None)
        }
        Err(e) if e.code == "AccessDenied" => {
            // A caller who may not list every bucket sees the ones it may open: each of
            // the account's buckets is asked with its own credentials (HeadBucket).
            let mut names = Vec::new();
            let owned = cx
                .objects()
                .list_buckets(&cx.session.account)
                .await
                .unwrap_or_default();
            if owned.len() > MAX_PROBED {
                probed_all = false;
            }
            for b in owned.iter().take(MAX_PROBED) {
                if caller
                    .s3(
                        Method::HEAD,
                        s3_path(&b.name, None),
                        &[],
                        Vec::new(),
                        Bytes::new(),
                    )
                    .await
                    .is_ok()
                {
                    names.push((b.name.clone(), String::new()));
                }
            }
            (names, Some(e))
        }
        Err(e) => {
            return cx.page(status(&e), "Buckets", Nav::Buckets, error_box(&e));
        }
    };
    let keys = key_choices(cx).await;
    cx.page(
        StatusCode::OK,
        "Buckets",
        Nav::Buckets,
        html! {
            @if let Some(e) = &refusal {
                (error_box(e))
                (notice("You may not list all buckets; these are the ones you can open."))
                @if !probed_all { (notice("Only the account's first 100 buckets were tried.")) }
            }
            table.buckets {
                caption { (names.len()) " buckets" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Created" } } }
                tbody {
                    @for (name, created) in &names {
                        tr {
                            td { a href={ (PREFIX) "/buckets/" (name) } { (name) } }
                            td { (created) }
                        }
                    }
                }
            }
            details open[names.is_empty()] {
                summary { "Create a bucket" }
                form.create method="post" action={ (PREFIX) "/buckets" } {
                    (csrf(&cx.session))
                    label for="bucket-name" { "Name" }
                    input id="bucket-name" name="name" required pattern="[a-z0-9][a-z0-9.\\-]{1,61}[a-z0-9]" spellcheck="false";
                    (encryption_fields("aws:kms", "", true, &keys))
                    label { input type="checkbox" name="versioning" value="on"; " Versioning" }
                    label { input type="checkbox" name="object_lock" value="on"; " Object Lock (turns versioning on)" }
                    button type="submit" { "Create bucket" }
                }
            }
        },
    )
}

/// The KMS keys the caller may name, for the default-encryption field: (id, label).
async fn key_choices(cx: &Cx<'_>) -> Vec<(String, String)> {
    let caller = cx.caller();
    let Ok(aliases) = caller
        .kms("ListAliases", serde_json::json!({"Limit": 100}))
        .await
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(list) = aliases["Aliases"].as_array() {
        for a in list {
            if let (Some(name), Some(key)) = (a["AliasName"].as_str(), a["TargetKeyId"].as_str())
                && !name.starts_with("alias/aws/")
            {
                out.push((key.to_owned(), format!("{name} ({key})")));
            }
        }
    }
    if let Ok(keys) = caller
        .kms("ListKeys", serde_json::json!({"Limit": 100}))
        .await
        && let Some(list) = keys["Keys"].as_array()
    {
        for k in list {
            if let Some(id) = k["KeyId"].as_str()
                && !out.iter().any(|(i, _)| i == id)
            {
                out.push((id.to_owned(), id.to_owned()));
            }
        }
    }
    out
}

fn encryption_fields(
    algorithm: &str,
    key: &str,
    bucket_key: bool,
    keys: &[(String, String)],
) -> Markup {
    html! {
        fieldset {
            legend { "Default encryption" }
            label { input type="radio" name="sse" value="AES256" checked[algorithm == "AES256"]; " SSE-S3 (keys managed by Coffer)" }
            label { input type="radio" name="sse" value="aws:kms" checked[algorithm == "aws:kms"]; " SSE-KMS" }
            label for="kms-key" { "KMS key (id, ARN or alias; empty for the account's default)" }
            input id="kms-key" name="kms_key" list="kms-keys" value=(key) spellcheck="false";
            datalist id="kms-keys" {
                @for (id, label) in keys { option value=(id) { (label) } }
            }
            label { input type="checkbox" name="bucket_key" value="on" checked[bucket_key]; " S3 Bucket Key" }
        }
    }
}

fn encryption_xml(form: &[(String, String)]) -> String {
    let algorithm = crate::form::field(form, "sse").unwrap_or("AES256");
    let key = crate::form::field(form, "kms_key").unwrap_or("").trim();
    let bucket_key = crate::form::field(form, "bucket_key") == Some("on");
    let key_el = if algorithm == "aws:kms" && !key.is_empty() {
        format!("<KMSMasterKeyID>{}</KMSMasterKeyID>", escape_xml(key))
    } else {
        String::new()
    };
    format!(
        "<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>{}</SSEAlgorithm>{key_el}\
         </ApplyServerSideEncryptionByDefault><BucketKeyEnabled>{bucket_key}</BucketKeyEnabled>\
         </Rule></ServerSideEncryptionConfiguration>",
        escape_xml(algorithm)
    )
}

async fn put_document(cx: &Cx<'_>, bucket: &str, sub: &str, body: String) -> Result<(), ApiError> {
    let body = Bytes::from(body);
    cx.caller()
        .s3(
            Method::PUT,
            s3_path(bucket, None),
            &[(sub, "")],
            vec![md5_header(&body)],
            body,
        )
        .await
        .map(|_| ())
}

/// CreateBucket, then its default encryption and versioning, as the form asks.
pub async fn create(cx: &Cx<'_>, form: &[(String, String)]) -> Response<Body> {
    let name = crate::form::field(form, "name")
        .unwrap_or("")
        .trim()
        .to_owned();
    let lock = crate::form::field(form, "object_lock") == Some("on");
    let mut headers = Vec::new();
    if lock {
        headers.push(("x-amz-bucket-object-lock-enabled".into(), "true".into()));
    }
    let caller = cx.caller();
    if let Err(e) = caller
        .s3(
            Method::PUT,
            s3_path(&name, None),
            &[],
            headers,
            Bytes::new(),
        )
        .await
    {
        return cx.page(
            status(&e),
            "Buckets",
            Nav::Buckets,
            html! { (error_box(&e)) p { a href={ (PREFIX) "/buckets" } { "Back to the buckets" } } },
        );
    }
    let mut failed = Vec::new();
    if let Err(e) = put_document(cx, &name, "encryption", encryption_xml(form)).await {
        failed.push(e);
    }
    if crate::form::field(form, "versioning") == Some("on") && !lock {
        let doc = "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status></VersioningConfiguration>";
        if let Err(e) = put_document(cx, &name, "versioning", doc.into()).await {
            failed.push(e);
        }
    }
    match failed.first() {
        None => see_other(&format!("{PREFIX}/buckets/{name}")),
        Some(e) => settings(cx, &name, Some(Err(e.clone()))).await,
    }
}

pub async fn delete(cx: &Cx<'_>, bucket: &str) -> Response<Body> {
    match cx
        .caller()
        .s3(Method::DELETE, s3_path(bucket, None), &[], Vec::new(), Bytes::new())
        .await
    {
        Ok(_) => see_other(&format!("{PREFIX}/buckets")),
        Err(e) => cx.page(
            status(&e),
            bucket,
            Nav::Buckets,
            html! { (error_box(&e)) p { a href={ (PREFIX) "/buckets/" (bucket) } { "Back to the bucket" } } },
        ),
    }
}

/// A bucket's objects under a prefix, one folder level at a time, a page at a time.
pub async fn objects(cx: &Cx<'_>, bucket: &str) -> Response<Body> {
    let prefix = cx.param("prefix").unwrap_or("").to_owned();
    let token = cx.param("token").unwrap_or("").to_owned();
    let mut query = vec![
        ("list-type", "2"),
        ("delimiter", "/"),
        ("max-keys", PAGE),
        ("prefix", prefix.as_str()),
    ];
    if !token.is_empty() {
        query.push(("continuation-token", token.as_str()));
    }
    let listed = cx
        .caller()
        .s3(
            Method::GET,
            s3_path(bucket, None),
            &query,
            Vec::new(),
            Bytes::new(),
        )
        .await;
    let x = match listed {
        Ok((_, body)) => Xml::parse(&body).unwrap_or_default(),
        Err(e) => {
            return cx.page(status(&e), bucket, Nav::Buckets, error_box(&e));
        }
    };
    let folders: Vec<String> = x
        .list("CommonPrefixes")
        .iter()
        .map(|p| p.get("Prefix").to_owned())
        .collect();
    let objects = x.list("Contents");
    let next = x.get("NextContinuationToken").to_owned();
    let base = format!("{PREFIX}/buckets/{bucket}");
    // Breadcrumbs: the bucket, then each folder of the prefix.
    let mut crumbs = vec![(bucket.to_owned(), String::new())];
    let mut acc = String::new();
    for part in prefix.split_inclusive('/') {
        acc.push_str(part);
        crumbs.push((part.trim_end_matches('/').to_owned(), acc.clone()));
    }
    cx.page(
        StatusCode::OK,
        bucket,
        Nav::Buckets,
        html! {
            nav.crumbs aria-label="Folder" {
                @for (label, p) in &crumbs {
                    a href={ (base) "?prefix=" (q(p)) } { (label) } " / "
                }
            }
            p.actions {
                a href={ (base) "/settings" } { "Bucket settings" }
            }
            section.upload aria-labelledby="upload-h" {
                h2 id="upload-h" { "Upload" }
                form id="upload" data-bucket=(bucket) data-csrf=(cx.session.csrf) data-base=(base) {
                    label for="upload-file" { "File" }
                    input id="upload-file" type="file" required;
                    label for="upload-key" { "Object key" }
                    input id="upload-key" name="key" value=(prefix) spellcheck="false";
                    button type="submit" { "Upload" }
                    progress id="upload-progress" max="100" value="0" aria-label="Upload progress" {}
                    span id="upload-status" role="status" aria-live="polite" {}
                }
            }
            table.objects {
                caption { "Objects under “" (prefix) "”" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Size" } th scope="col" { "Last modified" } th scope="col" { "Storage class" } } }
                tbody {
                    @for f in &folders {
                        tr.folder {
                            td { a href={ (base) "?prefix=" (q(f)) } { (f.strip_prefix(prefix.as_str()).unwrap_or(f)) } }
                            td { "folder" } td {} td {}
                        }
                    }
                    @for o in &objects {
                        @let key = o.get("Key");
                        tr {
                            td { a href={ (base) "/object?key=" (q(key)) } { (key.strip_prefix(prefix.as_str()).unwrap_or(key)) } }
                            td { (size(o.get("Size").parse().unwrap_or(0))) }
                            td { (o.get("LastModified")) }
                            td { (o.get("StorageClass")) }
                        }
                    }
                }
            }
            @if !next.is_empty() {
                p { a rel="next" href={ (base) "?prefix=" (q(&prefix)) "&token=" (q(&next)) } { "Next page" } }
            }
            @if folders.is_empty() && objects.is_empty() && prefix.is_empty() {
                form method="post" action={ (base) "/delete" } {
                    (csrf(&cx.session))
                    button.danger type="submit" { "Delete this empty bucket" }
                }
            }
        },
    )
}

/// The bucket's settings, with the outcome of a change if one was just made.
pub async fn settings(
    cx: &Cx<'_>,
    bucket: &str,
    outcome: Option<Result<&str, ApiError>>,
) -> Response<Body> {
    settings_with(cx, bucket, outcome, None).await
}

/// Where a policy parser's message places its error: `line L column C` (serde_json's
/// words, which the server's own parser passes on), 1-based.
fn position(message: &str) -> Option<(usize, usize)> {
    let rest = &message[message.find("line ")? + 5..];
    let (line, rest) = rest.split_once(' ')?;
    let col = rest.strip_prefix("column ")?;
    let col: String = col.chars().take_while(char::is_ascii_digit).collect();
    Some((line.parse().ok()?, col.parse().ok()?))
}

/// The line of `text` an error is on, with a caret under its column.
fn excerpt(text: &str, (line, col): (usize, usize)) -> Markup {
    let Some(l) = text.lines().nth(line.saturating_sub(1)) else {
        return html! {};
    };
    let caret = format!(
        "{}^",
        " ".repeat(col.saturating_sub(1).min(l.chars().count()))
    );
    html! {
        div.position {
            p { "Line " (line) ", column " (col) ":" }
            pre.excerpt { (l) "\n" (caret) }
        }
    }
}

/// The settings page; `draft` is a policy that failed to save, shown again for editing.
async fn settings_with(
    cx: &Cx<'_>,
    bucket: &str,
    outcome: Option<Result<&str, ApiError>>,
    draft: Option<&str>,
) -> Response<Body> {
    let caller = cx.caller();
    let get = |sub: &'static str| {
        let caller = &caller;
        async move {
            caller
                .s3(
                    Method::GET,
                    s3_path(bucket, None),
                    &[(sub, "")],
                    Vec::new(),
                    Bytes::new(),
                )
                .await
        }
    };
    let encryption = get("encryption").await;
    let policy = get("policy").await;
    let pab = get("publicAccessBlock").await;
    let versioning = get("versioning").await;
    let (algorithm, key, bucket_key) = match &encryption {
        Ok((_, b)) => {
            let x = Xml::parse(b).unwrap_or_default();
            (
                x.find("SSEAlgorithm")
                    .map(|n| n.text.clone())
                    .unwrap_or_default(),
                x.find("KMSMasterKeyID")
                    .map(|n| n.text.clone())
                    .unwrap_or_default(),
                x.find("BucketKeyEnabled").is_some_and(|n| n.text == "true"),
            )
        }
        Err(_) => (String::new(), String::new(), false),
    };
    let keys = key_choices(cx).await;
    let base = format!("{PREFIX}/buckets/{bucket}");
    let (code, banner) = match &outcome {
        None => (StatusCode::OK, html! {}),
        Some(Ok(m)) => (StatusCode::OK, notice(m)),
        Some(Err(e)) => (status(e), error_box(e)),
    };
    let flag = |x: &Xml, name: &str| x.find(name).is_some_and(|n| n.text == "true");
    let pab_x = pab
        .as_ref()
        .ok()
        .and_then(|(_, b)| Xml::parse(b))
        .unwrap_or_default();
    cx.page(
        code,
        &format!("{bucket}: settings"),
        Nav::Buckets,
        html! {
            (banner)
            p { a href=(base) { "Back to the objects" } }
            section aria-labelledby="enc-h" {
                h2 id="enc-h" { "Default encryption" }
                @if let Err(e) = &encryption { (error_box(e)) }
                @if !algorithm.is_empty() {
                    p.current { "Now: " strong { (algorithm) } @if !key.is_empty() { " with " a href={ (PREFIX) "/keys/" (q(&key)) } { (key) } } @if bucket_key { ", S3 Bucket Key on" } }
                }
                form method="post" action={ (base) "/settings" } {
                    (csrf(&cx.session))
                    input type="hidden" name="what" value="encryption";
                    (encryption_fields(&algorithm, &key, bucket_key, &keys))
                    button type="submit" { "Save default encryption" }
                }
            }
            section aria-labelledby="ver-h" {
                h2 id="ver-h" { "Versioning" }
                @match &versioning {
                    Ok((_, b)) => {
                        @let s = Xml::parse(b).map(|x| x.get("Status").to_owned()).unwrap_or_default();
                        p { @if s.is_empty() { "Never enabled" } @else { (s) } }
                    }
                    Err(e) => (error_box(e)),
                }
            }
            section aria-labelledby="pol-h" {
                h2 id="pol-h" { "Bucket policy" }
                @let text = match (draft, &policy) { (Some(d), _) => d.to_owned(), (None, Ok((_, b))) => String::from_utf8_lossy(b).into_owned(), (None, Err(_)) => String::new() };
                @if let (Some(d), Some(Err(e))) = (draft, &outcome) {
                    @if let Some(at) = position(&e.message) { (excerpt(d, at)) }
                }
                @if let Err(e) = &policy { @if e.code != "NoSuchBucketPolicy" { (error_box(e)) } @else { p { "No policy." } } }
                form method="post" action={ (base) "/settings" } {
                    (csrf(&cx.session))
                    input type="hidden" name="what" value="policy";
                    label for="policy" { "Policy (JSON); checked by the server's own parser when saved" }
                    textarea id="policy" name="policy" rows="16" spellcheck="false" { (text) }
                    button type="submit" { "Save policy" }
                }
                @if policy.is_ok() {
                    form method="post" action={ (base) "/settings" } {
                        (csrf(&cx.session))
                        input type="hidden" name="what" value="delete-policy";
                        button.danger type="submit" { "Delete policy" }
                    }
                }
            }
            section aria-labelledby="pab-h" {
                h2 id="pab-h" { "Block Public Access" }
                @if let Err(e) = &pab { @if e.code != "NoSuchPublicAccessBlockConfiguration" { (error_box(e)) } }
                form method="post" action={ (base) "/settings" } {
                    (csrf(&cx.session))
                    input type="hidden" name="what" value="public-access-block";
                    @for (name, label) in [("BlockPublicAcls", "Block public ACLs"), ("IgnorePublicAcls", "Ignore public ACLs"), ("BlockPublicPolicy", "Block public bucket policies"), ("RestrictPublicBuckets", "Restrict public buckets")] {
                        label { input type="checkbox" name=(name) value="on" checked[flag(&pab_x, name)]; " " (label) }
                    }
                    button type="submit" { "Save Block Public Access" }
                }
            }
        },
    )
}

pub async fn change_settings(
    cx: &Cx<'_>,
    bucket: &str,
    form: &[(String, String)],
) -> Response<Body> {
    let field = |n: &str| crate::form::field(form, n).unwrap_or("");
    let outcome = match field("what") {
        "encryption" => put_document(cx, bucket, "encryption", encryption_xml(form))
            .await
            .map(|_| "Default encryption saved."),
        "policy" => {
            let text = field("policy");
            let saved = put_document(cx, bucket, "policy", text.to_owned())
                .await
                .map(|_| "Bucket policy saved.");
            if saved.is_err() {
                return settings_with(cx, bucket, Some(saved), Some(text)).await;
            }
            saved
        }
        "delete-policy" => cx
            .caller()
            .s3(
                Method::DELETE,
                s3_path(bucket, None),
                &[("policy", "")],
                Vec::new(),
                Bytes::new(),
            )
            .await
            .map(|_| "Bucket policy deleted."),
        "public-access-block" => {
            let on = |n: &str| crate::form::field(form, n) == Some("on");
            let doc = format!(
                "<PublicAccessBlockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <BlockPublicAcls>{}</BlockPublicAcls><IgnorePublicAcls>{}</IgnorePublicAcls>\
                 <BlockPublicPolicy>{}</BlockPublicPolicy><RestrictPublicBuckets>{}</RestrictPublicBuckets>\
                 </PublicAccessBlockConfiguration>",
                on("BlockPublicAcls"),
                on("IgnorePublicAcls"),
                on("BlockPublicPolicy"),
                on("RestrictPublicBuckets")
            );
            put_document(cx, bucket, "publicAccessBlock", doc)
                .await
                .map(|_| "Block Public Access saved.")
        }
        _ => Err(ApiError {
            status: 400,
            code: "InvalidRequest".into(),
            message: "Unknown setting.".into(),
        }),
    };
    settings(cx, bucket, Some(outcome)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_errors_point_at_their_place() {
        let m =
            "Policies must be valid JSON: not valid JSON: expected `,` or `}` at line 3 column 7";
        assert_eq!(position(m), Some((3, 7)));
        assert_eq!(position("no place"), None);
        let x = excerpt("{\n  \"a\": 1\n  \"b\"\n}", (3, 3)).into_string();
        assert!(x.contains("Line 3, column 3"), "{x}");
        assert!(x.contains("  &quot;b&quot;\n  ^"), "{x}");
    }

    #[test]
    fn encryption_documents_name_the_key_escaped() {
        let form = vec![
            ("sse".to_owned(), "aws:kms".to_owned()),
            ("kms_key".to_owned(), "alias/a&b".to_owned()),
            ("bucket_key".to_owned(), "on".to_owned()),
        ];
        let doc = encryption_xml(&form);
        assert!(doc.contains("<SSEAlgorithm>aws:kms</SSEAlgorithm>"));
        assert!(doc.contains("<KMSMasterKeyID>alias/a&amp;b</KMSMasterKeyID>"));
        assert!(doc.contains("<BucketKeyEnabled>true</BucketKeyEnabled>"));
        let s3 = encryption_xml(&[("sse".to_owned(), "AES256".to_owned())]);
        assert!(!s3.contains("KMSMasterKeyID"));
    }
}
