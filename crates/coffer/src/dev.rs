//! Development mode (`coffer serve --dev`): any access key and secret are accepted, as
//! moto and LocalStack accept them. A key the directory knows (the operator's, an IAM
//! user's, a role session's; active or not) is checked as always; any other is served as
//! the root of an account: the account a 12-digit key id names (LocalStack's rule),
//! created on first use so that users made in it can sign in too, else the default
//! account, whose root is the operator. The signature is still parsed and everything but
//! its value checked (`coffer_iam::auth`, `coffer_api_s3`'s `dev.rs`).

use std::sync::Arc;

use coffer_iam::{Account, Credentials, Directory, Principal, PrincipalKind, SecretKey};

pub(crate) struct DevCredentials {
    pub directory: Arc<Directory>,
    /// The default account: every key that names no account is its root.
    pub default: Account,
}

/// The account id a 12-digit numeric access key id names.
fn account_of(key: &str) -> Option<&str> {
    (key.len() == 12 && key.bytes().all(|b| b.is_ascii_digit())).then_some(key)
}

impl DevCredentials {
    /// Makes the account a request's access key names, if it names one that does not
    /// exist yet; before the request is routed, so that the request sees it.
    pub async fn adopt(&self, headers: &http::HeaderMap, query: Option<&str>) {
        let Some(key) = access_key_id(headers, query) else {
            return;
        };
        let Some(id) = account_of(&key) else {
            return;
        };
        if self.directory.knows_key(&key) || self.directory.account(id).is_some() {
            return;
        }
        if let Err(e) = self.directory.adopt_account(id).await {
            tracing::warn!(error = %e, account = id, "creating a development account failed");
        }
    }
}

/// The access key id of a signed request: from its `Authorization` header or a presigned
/// URL's `X-Amz-Credential`.
fn access_key_id(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(auth) = headers.get(http::header::AUTHORIZATION) {
        let auth = auth.to_str().ok()?;
        // Signature version 2: `AWS KEY:SIGNATURE`.
        if let Some(v2) = auth.strip_prefix("AWS ") {
            return v2.split_once(':').map(|(k, _)| k.to_owned());
        }
        let credential = auth.split("Credential=").nth(1)?;
        return credential.split('/').next().map(str::to_owned);
    }
    let decoded = |v: &str| {
        percent_encoding::percent_decode_str(v)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    let query = query?;
    query.split('&').find_map(|p| {
        if let Some(c) = p.strip_prefix("X-Amz-Credential=") {
            decoded(c).and_then(|c| c.split('/').next().map(str::to_owned))
        } else {
            p.strip_prefix("AWSAccessKeyId=").and_then(decoded)
        }
    })
}

impl Credentials for DevCredentials {
    fn lookup(&self, access_key_id: &str) -> Option<(SecretKey, Principal)> {
        self.directory.lookup(access_key_id)
    }

    fn account_by_canonical_id(&self, canonical_id: &str) -> Option<Account> {
        self.directory.account_by_canonical_id(canonical_id)
    }

    fn find_account(&self, id: &str) -> Option<Account> {
        self.directory.find_account(id)
    }

    fn unverified(&self, access_key_id: &str) -> Option<Principal> {
        if access_key_id.is_empty() || self.directory.knows_key(access_key_id) {
            return None;
        }
        let account = match account_of(access_key_id) {
            // Made by `adopt` before the request was routed.
            Some(id) => self.directory.account(id)?,
            None => self.default.clone(),
        };
        Some(Principal {
            account,
            kind: PrincipalKind::Root,
            access_key_id: access_key_id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_twelve_digits_name_an_account() {
        assert_eq!(account_of("111122223333"), Some("111122223333"));
        for k in [
            "test",
            "AKIAIOSFODNN7EXAMPLE",
            "11112222333",
            "1111222233334",
            "11112222333a",
        ] {
            assert_eq!(account_of(k), None, "{k}");
        }
    }

    #[test]
    fn the_key_comes_from_the_header_or_a_presigned_url() {
        let mut h = http::HeaderMap::new();
        assert_eq!(
            access_key_id(
                &h,
                Some(
                    "a=b&X-Amz-Credential=123456789012%2F20261206%2Fus-east-1%2Fs3%2Faws4_request"
                )
            )
            .as_deref(),
            Some("123456789012")
        );
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=test/20261206/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"),
        );
        assert_eq!(access_key_id(&h, None).as_deref(), Some("test"));
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("AWS 111122223333:c2lnbmF0dXJl"),
        );
        assert_eq!(access_key_id(&h, None).as_deref(), Some("111122223333"));
        assert_eq!(
            access_key_id(
                &http::HeaderMap::new(),
                Some("AWSAccessKeyId=444455556666&Signature=x&Expires=1")
            )
            .as_deref(),
            Some("444455556666")
        );
        assert_eq!(access_key_id(&http::HeaderMap::new(), None), None);
    }
}
