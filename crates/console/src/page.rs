//! The pages' frame and the pieces every page uses: the layout with its navigation, the
//! AWS error box, forms that carry the CSRF token, sizes and times. Pages are HTML
//! rendered here (maud escapes every value); the only script and style are the console's
//! own, served from the binary.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use maud::{DOCTYPE, Markup, html};

use coffer_api::Body;

use crate::PREFIX;
use crate::call::ApiError;
use crate::session::Session;

/// The console's one script.
pub const SCRIPT: &str = include_str!("assets/console.js");

/// Its SHA-256 as a CSP hash source and an `integrity` value: the pages run this script
/// and no other, not even one served from this origin (where anyone's S3 objects are).
static SCRIPT_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use sha2::Digest as _;
    format!(
        "sha256-{}",
        base64_simd::STANDARD.encode_to_string(sha2::Sha256::digest(SCRIPT.as_bytes()))
    )
});

/// The console's sections, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Buckets,
    Keys,
    Identities,
    Audit,
    Usage,
    None,
}

/// A whole page.
pub fn layout(title: &str, who: Option<&Session>, active: Nav, body: Markup) -> Markup {
    let link = |nav: Nav, href: &str, label: &str| {
        html! {
            @if nav == active {
                a href=(href) aria-current="page" { (label) }
            } @else {
                a href=(href) { (label) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Coffer" }
                // No icon: a browser would otherwise ask S3 for /favicon.ico.
                link rel="icon" href="data:,";
                link rel="stylesheet" href={ (PREFIX) "/assets/console.css" };
                script src={ (PREFIX) "/assets/console.js" } integrity=(*SCRIPT_HASH) defer {}
            }
            body {
                header {
                    a.brand href={ (PREFIX) "/" } { "Coffer" }
                    @if let Some(s) = who {
                        nav aria-label="Sections" {
                            (link(Nav::Buckets, &format!("{PREFIX}/buckets"), "Buckets"))
                            (link(Nav::Keys, &format!("{PREFIX}/keys"), "Keys"))
                            (link(Nav::Identities, &format!("{PREFIX}/identities"), "Identities"))
                            (link(Nav::Audit, &format!("{PREFIX}/audit"), "Audit"))
                            (link(Nav::Usage, &format!("{PREFIX}/usage"), "Usage"))
                        }
                        div.who {
                            span title=(s.arn) { (s.name()) " · " (s.account) }
                            form method="post" action={ (PREFIX) "/sign-out" } {
                                (csrf(s))
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field of a state-changing form.
pub fn csrf(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

/// An API's refusal, as AWS worded it.
pub fn error_box(e: &ApiError) -> Markup {
    html! {
        div.error role="alert" {
            strong.code { (e.code) }
            @if !e.message.is_empty() { ": " span.message { (e.message) } }
        }
    }
}

pub fn notice(text: &str) -> Markup {
    html! { div.notice role="status" { (text) } }
}

/// A page as a response.
pub fn respond(status: StatusCode, page: Markup) -> Response<Body> {
    let mut r = Response::new(coffer_api::full(Bytes::from(page.into_string())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    r
}

/// What every console response says about itself: no caching of pages that show a
/// user's data, no framing, only its own scripts, styles and connections.
pub fn secure_headers(h: &mut http::HeaderMap) {
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    let policy = format!(
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src '{}'; \
         object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        *SCRIPT_HASH
    );
    if let Ok(v) = HeaderValue::from_str(&policy) {
        h.insert("content-security-policy", v);
    }
}

/// A redirect after a form (303: the browser follows with a GET).
pub fn see_other(location: &str) -> Response<Body> {
    let mut r = Response::new(coffer_api::full(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    secure_headers(r.headers_mut());
    r
}

/// A JSON answer (the upload script's calls).
pub fn json(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(coffer_api::full(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    secure_headers(r.headers_mut());
    r
}

/// An API error as a JSON answer, with the API's status.
pub fn json_error(e: &ApiError) -> Response<Body> {
    json(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &serde_json::json!({"code": e.code, "message": e.message}),
    )
}

/// `1.5 MiB`
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// An epoch-seconds time as the JSON APIs answer it, in RFC 3339 ("" if it is none).
pub fn epoch_time(v: &serde_json::Value) -> String {
    v.as_f64()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t as i64).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// What a link's component keeps as is: RFC 3986's unreserved characters.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A link's path segment or query value, percent-encoded.
pub fn q(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(20 * 1024 * 1024), "20.0 MiB");
    }

    #[test]
    fn link_components_keep_unreserved_characters() {
        assert_eq!(q("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(q("a/b c+d&e=f"), "a%2Fb%20c%2Bd%26e%3Df");
    }

    #[test]
    fn values_are_escaped() {
        let e = ApiError {
            status: 400,
            code: "X".into(),
            message: "<script>alert(1)</script>".into(),
        };
        let s = error_box(&e).into_string();
        assert!(!s.contains("<script>"));
        assert!(s.contains("&lt;script&gt;"));
    }
}
