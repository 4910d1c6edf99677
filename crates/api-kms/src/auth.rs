//! SigV4 for JSON services: find the caller's secret, check the signature, and keep the
//! derived signing keys (four HMACs each) for the day, so a request costs one HMAC.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

use coffer_iam::{Credentials, Principal};
use coffer_sigv4::{Received, Refusal, SigningKey};

use crate::{KmsRequest, WireError};

/// Requests more than this far from the server's clock are refused, as on AWS.
const MAX_SKEW: Duration = Duration::minutes(15);
/// Bound on cached signing keys (one per access key, day, region and service).
const CACHE_LIMIT: usize = 4096;

type CacheKey = (String, String, String, String);

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

    pub fn authenticate(
        &self,
        req: &KmsRequest<'_>,
        now: OffsetDateTime,
    ) -> Result<Principal, WireError> {
        let received = Received {
            method: req.method,
            raw_path: req.raw_path,
            raw_query: req.raw_query,
            headers: &req.headers,
            body: &req.body,
        };
        let auth = received.authorization().map_err(refusal)?;
        let Some((secret, principal)) = self.credentials.lookup(&auth.access_key_id) else {
            return Err(WireError::new(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
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
        coffer_sigv4::verify(&received, &auth, &key, "kms", now, MAX_SKEW).map_err(refusal)?;
        Ok(principal)
    }
}

fn refusal(r: Refusal) -> WireError {
    match r {
        Refusal::Missing => WireError::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ),
        Refusal::Malformed(why) => WireError::new("IncompleteSignatureException", why),
        Refusal::Skewed { request } => WireError::new(
            "InvalidSignatureException",
            format!(
                "Signature expired: {request} is now earlier or later than the allowed 15 minutes of server time."
            ),
        ),
        Refusal::WrongService(s) => WireError::new(
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: 'kms', not '{s}'."),
        ),
        Refusal::Mismatch => WireError::new(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        ),
    }
}
