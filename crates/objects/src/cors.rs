//! Cross-origin resource sharing: a bucket's CORS rules (PutBucketCors), their checks as S3
//! makes them, and the one matching rule that answers a browser's preflight or decorates an
//! actual request (AWS's "Using cross-origin resource sharing (CORS)" and "How Amazon S3
//! evaluates the CORS configuration on a bucket": the first rule whose origin, method and —
//! for a preflight — every requested header match, wins).

use serde::{Deserialize, Serialize};

use crate::settings::CORS;
use crate::{Error, Objects, Result};

/// At most this many rules per bucket, as on S3.
pub const MAX_RULES: usize = 100;

/// The methods a rule may allow.
const METHODS: &[&str] = &["GET", "PUT", "HEAD", "POST", "DELETE"];

/// One `CORSRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    #[serde(default)]
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub max_age_seconds: Option<i32>,
}

/// A bucket's `CORSConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsConfiguration {
    pub rules: Vec<CorsRule>,
}

/// What a browser asks: the request's `Origin`, its method (for a preflight, the
/// `Access-Control-Request-Method`), and for a preflight the headers it means to send.
#[derive(Debug, Clone, Copy)]
pub struct CorsRequest<'a> {
    pub origin: &'a str,
    pub method: &'a str,
    /// `Access-Control-Request-Headers`, split; empty for an actual request.
    pub headers: &'a [&'a str],
}

impl CorsConfiguration {
    /// S3's checks of a configuration, in S3's words.
    pub fn check(&self) -> Result<()> {
        if self.rules.is_empty() {
            return Err(Error::MalformedXml(
                "a CORS configuration needs at least one rule".into(),
            ));
        }
        if self.rules.len() > MAX_RULES {
            return Err(Error::InvalidRequest(format!(
                "The number of CORS rules should not exceed allowed limit of {MAX_RULES} rules."
            )));
        }
        for r in &self.rules {
            if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
                return Err(Error::MalformedXml(
                    "every CORSRule needs an AllowedOrigin and an AllowedMethod".into(),
                ));
            }
            if r.id.as_ref().is_some_and(|id| id.chars().count() > 255) {
                return Err(Error::InvalidArgument(
                    "The ID of a CORSRule must be no longer than 255 characters".into(),
                ));
            }
            if let Some(m) = r
                .allowed_methods
                .iter()
                .find(|m| !METHODS.contains(&m.as_str()))
            {
                return Err(Error::InvalidRequest(format!(
                    "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
                )));
            }
            if let Some(o) = r
                .allowed_origins
                .iter()
                .find(|o| o.matches('*').count() > 1)
            {
                return Err(Error::InvalidRequest(format!(
                    "AllowedOrigin \"{o}\" can not have more than one wildcard."
                )));
            }
            if let Some(h) = r
                .allowed_headers
                .iter()
                .find(|h| h.matches('*').count() > 1)
            {
                return Err(Error::InvalidRequest(format!(
                    "AllowedHeader \"{h}\" can not have more than one wildcard."
                )));
            }
            if let Some(h) = r.expose_headers.iter().find(|h| h.contains('*')) {
                return Err(Error::InvalidRequest(format!(
                    "ExposeHeader \"{h}\" contains wildcard. We currently do not support wildcard for ExposeHeader."
                )));
            }
        }
        Ok(())
    }

    /// The first rule that allows the request, if any.
    pub fn matching(&self, req: &CorsRequest<'_>) -> Option<&CorsRule> {
        self.rules.iter().find(|r| {
            r.allowed_origins
                .iter()
                .any(|o| wildcard(o, req.origin, false))
                && r.allowed_methods.iter().any(|m| m == req.method)
                && req.headers.iter().all(|h| {
                    r.allowed_headers
                        .iter()
                        .any(|pattern| wildcard(pattern, h, true))
                })
        })
    }
}

impl CorsRule {
    /// Whether the rule lets every origin in (`AllowedOrigin: *`): S3 then answers
    /// `Access-Control-Allow-Origin: *` without credentials.
    pub fn any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }
}

/// Whether `value` matches `pattern`, where one `*` stands for any run of characters.
/// Origins compare exactly (an origin is scheme, host and port, as the browser sent it);
/// header names compare without regard to case.
fn wildcard(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let eq = |a: &str, b: &str| {
        if ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    let starts = |v: &str, p: &str| {
        v.len() >= p.len() && v.is_char_boundary(p.len()) && eq(&v[..p.len()], p)
    };
    let ends = |v: &str, s: &str| {
        v.len() >= s.len()
            && v.is_char_boundary(v.len() - s.len())
            && eq(&v[v.len() - s.len()..], s)
    };
    match pattern.split_once('*') {
        None => eq(pattern, value),
        Some((prefix, suffix)) => {
            value.len() >= prefix.len() + suffix.len()
                && starts(value, prefix)
                && ends(value, suffix)
        }
    }
}

impl Objects {
    /// The bucket's CORS configuration, `None` if it has none (S3's
    /// `NoSuchCORSConfiguration`).
    pub async fn get_bucket_cors(&self, bucket: &str) -> Result<Option<CorsConfiguration>> {
        match self.setting(bucket, CORS).await? {
            Some(j) => serde_json::from_str(&j)
                .map(Some)
                .map_err(|e| Error::Internal(format!("stored CORS configuration: {e}"))),
            None => Ok(None),
        }
    }

    /// PutBucketCors: checked, then stored whole in place of any earlier configuration.
    pub async fn put_bucket_cors(&self, bucket: &str, cfg: &CorsConfiguration) -> Result<()> {
        cfg.check()?;
        let json = serde_json::to_string(cfg).map_err(|e| Error::Internal(e.to_string()))?;
        self.set_setting(bucket, CORS, Some(&json)).await
    }

    pub async fn delete_bucket_cors(&self, bucket: &str) -> Result<()> {
        self.set_setting(bucket, CORS, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        CorsRule {
            allowed_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            allowed_methods: methods.iter().map(|s| (*s).to_owned()).collect(),
            allowed_headers: headers.iter().map(|s| (*s).to_owned()).collect(),
            ..CorsRule::default()
        }
    }

    #[test]
    fn wildcards_match_one_run_of_characters() {
        assert!(wildcard("*", "http://a.example", false));
        assert!(wildcard(
            "http://*.example.com",
            "http://app.example.com",
            false
        ));
        assert!(!wildcard(
            "http://*.example.com",
            "http://example.com",
            false
        ));
        assert!(!wildcard(
            "http://*.example.com",
            "https://app.example.com",
            false
        ));
        assert!(wildcard(
            "https://example.com",
            "https://example.com",
            false
        ));
        assert!(!wildcard(
            "https://example.com",
            "https://Example.com",
            false
        ));
        assert!(wildcard("x-amz-*", "X-Amz-Date", true));
        assert!(wildcard("Content-Type", "content-type", true));
        assert!(
            !wildcard("ab*ba", "aba", false),
            "prefix and suffix may not overlap"
        );
        assert!(!wildcard("é*", "e", false));
    }

    #[test]
    fn the_first_rule_that_allows_origin_method_and_headers_wins() {
        let cfg = CorsConfiguration {
            rules: vec![
                rule(&["http://a.example"], &["PUT"], &["content-type"]),
                rule(&["*"], &["GET", "HEAD"], &[]),
                rule(&["http://a.example"], &["PUT", "GET"], &["*"]),
            ],
        };
        let ask = |origin, method, headers: &[&str]| {
            let r = CorsRequest {
                origin,
                method,
                headers,
            };
            cfg.matching(&r)
                .map(|r| cfg.rules.iter().position(|x| x == r))
        };
        assert_eq!(
            ask("http://a.example", "PUT", &["Content-Type"]),
            Some(Some(0))
        );
        assert_eq!(
            ask("http://a.example", "PUT", &["x-amz-meta-a"]),
            Some(Some(2))
        );
        assert_eq!(ask("http://b.example", "GET", &[]), Some(Some(1)));
        assert_eq!(ask("http://b.example", "GET", &["x-amz-date"]), None);
        assert_eq!(ask("http://b.example", "DELETE", &[]), None);
        assert_eq!(
            ask("http://a.example", "put", &[]),
            None,
            "methods are exact"
        );
    }

    #[test]
    fn configurations_are_checked_as_s3_checks_them() {
        let ok = CorsConfiguration {
            rules: vec![rule(&["*"], &["GET"], &["*"])],
        };
        assert!(ok.check().is_ok());
        let bad = |r: CorsRule| CorsConfiguration { rules: vec![r] }.check();
        assert!(matches!(
            bad(rule(&["*"], &["PATCH"], &[])),
            Err(Error::InvalidRequest(m)) if m.ends_with("Unsupported method is PATCH")
        ));
        assert!(matches!(
            bad(rule(&["http://*.*.example"], &["GET"], &[])),
            Err(Error::InvalidRequest(m)) if m.contains("more than one wildcard")
        ));
        assert!(matches!(
            bad(rule(&["*"], &["GET"], &["*-*"])),
            Err(Error::InvalidRequest(_))
        ));
        let mut expose = rule(&["*"], &["GET"], &[]);
        expose.expose_headers = vec!["*".into()];
        assert!(matches!(bad(expose), Err(Error::InvalidRequest(_))));
        assert!(matches!(
            bad(rule(&[], &["GET"], &[])),
            Err(Error::MalformedXml(_))
        ));
        assert!(matches!(
            CorsConfiguration::default().check(),
            Err(Error::MalformedXml(_))
        ));
        let many = CorsConfiguration {
            rules: vec![rule(&["*"], &["GET"], &[]); MAX_RULES + 1],
        };
        assert!(matches!(many.check(), Err(Error::InvalidRequest(_))));
    }
}
