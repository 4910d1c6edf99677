//! SigV4 for the JSON and Query services (KMS, IAM, STS): find the caller's secret, check
//! the signature, and keep the derived signing keys (four HMACs each) for the day, so a
//! request costs one HMAC. Each API maps [`Failure`] to its own wire errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

use bytes::Bytes;

use coffer_sigv4::{Received, Refusal, SigningKey};

use crate::{Credentials, Principal};

/// Requests more than this far from the server's clock are refused, as on AWS.
const MAX_SKEW: Duration = Duration::minutes(15);
/// Bound on cached signing keys (one per access key, day, region and service).
const CACHE_LIMIT: usize = 4096;

type CacheKey = (String, String, String, String);

/// A request to one of the JSON or Query APIs (KMS, IAM/STS, CloudTrail) as the
/// dispatcher read it, body whole.
pub struct ApiRequest<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl ApiRequest<'_> {
    /// The request as SigV4 verification reads it.
    pub fn received(&self) -> Received<'_> {
        Received {
            method: self.method,
            raw_path: self.raw_path,
            raw_query: self.raw_query,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug)]
pub enum Failure {
    /// The access key id is unknown (or inactive).
    UnknownKey,
    Signature(Refusal),
    /// Temporary credentials without their session token, or with another one.
    BadToken,
}

pub struct Authenticator {
    credentials: Arc<dyn Credentials>,
    keys: Mutex<HashMap<CacheKey, Arc<SigningKey>>>,
}

impl Authenticator {
    pub fn new(credentials: Arc<dyn Credentials>) -> Self {
        Self {
            credentials,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Authenticates a request signed for one of `services`; returns the caller and the
    /// service the signature was scoped to.
    pub fn authenticate(
        &self,
        received: &Received<'_>,
        services: &[&str],
        now: OffsetDateTime,
    ) -> Result<(Principal, String), Failure> {
        let auth = received.authorization().map_err(Failure::Signature)?;
        let service = services
            .iter()
            .find(|s| **s == auth.service)
            .or(services.first())
            .copied()
            .unwrap_or("");
        let Some((secret, principal)) = self.credentials.lookup(&auth.access_key_id) else {
            return match self.credentials.unverified(&auth.access_key_id) {
                // Development mode: everything is checked but the signature's value.
                Some(p) => {
                    coffer_sigv4::string_to_sign_of(received, &auth, service, now, MAX_SKEW)
                        .map_err(Failure::Signature)?;
                    Ok((p, service.to_owned()))
                }
                None => Err(Failure::UnknownKey),
            };
        };
        let cache_key = (
            auth.access_key_id.clone(),
            auth.date.clone(),
            auth.region.clone(),
            auth.service.clone(),
        );
        let key = {
            let mut cache = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() > CACHE_LIMIT {
                cache.clear();
            }
            cache
                .entry(cache_key)
                .or_insert_with(|| {
                    Arc::new(SigningKey::derive(
                        secret.expose(),
                        &auth.date,
                        &auth.region,
                        &auth.service,
                    ))
                })
                .clone()
        };
        coffer_sigv4::verify(received, &auth, &key, service, now, MAX_SKEW)
            .map_err(Failure::Signature)?;
        let token = received
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-security-token"))
            .map(|(_, v)| v.as_str());
        if !principal.session_token_matches(token) {
            return Err(Failure::BadToken);
        }
        Ok((principal, service.to_owned()))
    }
}
