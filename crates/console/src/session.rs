//! Console sessions. Signing in gives the browser a random token in an HttpOnly,
//! SameSite=Strict cookie (Secure over TLS); the server keeps, under the token's SHA-256,
//! the principal's credentials (to sign its API calls), the session's CSRF token and when
//! it was last used. The secret never goes back to the browser. A session unused for the
//! idle timeout is gone; signing out ends it at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The session cookie's name.
pub const COOKIE: &str = "coffer-console";

/// Most sessions kept at once; beyond it, signing in refuses until some expire.
const MAX_SESSIONS: usize = 10_000;

/// Most sessions of one access key: signing in once more ends its oldest (so one
/// credential signing in in a loop cannot fill the table for everyone).
const MAX_PER_KEY: usize = 20;

/// A signed-in principal.
pub struct Session {
    pub access_key_id: String,
    pub secret: Zeroizing<String>,
    /// For temporary credentials (a role session).
    pub session_token: Option<Zeroizing<String>>,
    /// `arn:aws:iam::ACCOUNT:user/NAME`, `...:root`, or an assumed role's ARN.
    pub arn: String,
    pub account: String,
    /// Every state-changing request carries it (a form field or a header).
    pub csrf: String,
    last_used: Mutex<Instant>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_key_id", &self.access_key_id)
            .field("arn", &self.arn)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Credentials to be checked before a session is started (kept nowhere).
    pub fn trial(who: Credentials) -> Self {
        Self {
            access_key_id: who.access_key_id,
            secret: who.secret,
            session_token: who.session_token,
            arn: String::new(),
            account: String::new(),
            csrf: String::new(),
            last_used: Mutex::new(Instant::now()),
        }
    }

    /// Whether `token` is this session's CSRF token.
    pub fn csrf_ok(&self, token: &str) -> bool {
        !token.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }

    fn last_used(&self) -> Instant {
        self.last_used
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|_| Instant::now())
    }

    /// The principal's short name: the user or role session, or `root`.
    pub fn name(&self) -> &str {
        self.arn.rsplit(['/', ':']).next().unwrap_or(&self.arn)
    }
}

/// What a new session is made of.
pub struct Credentials {
    pub access_key_id: String,
    pub secret: Zeroizing<String>,
    pub session_token: Option<Zeroizing<String>>,
}

pub struct Sessions {
    idle: Duration,
    by_hash: Mutex<HashMap<[u8; 32], Arc<Session>>>,
    rng: SystemRandom,
}

impl Sessions {
    pub fn new(idle: Duration) -> Self {
        Self {
            idle,
            by_hash: Mutex::new(HashMap::new()),
            rng: SystemRandom::new(),
        }
    }

    fn token(&self) -> Option<String> {
        let mut b = [0u8; 32];
        self.rng.fill(&mut b).ok()?;
        Some(base64_simd::URL_SAFE_NO_PAD.encode_to_string(b))
    }

    /// Starts a session; returns its cookie token, or `None` if there are too many.
    pub fn start(&self, who: Credentials, arn: String, account: String) -> Option<String> {
        let token = self.token()?;
        let csrf = self.token()?;
        let session = Arc::new(Session {
            access_key_id: who.access_key_id,
            secret: who.secret,
            session_token: who.session_token,
            arn,
            account,
            csrf,
            last_used: Mutex::new(Instant::now()),
        });
        let mut map = self.by_hash.lock().ok()?;
        // Expired sessions (and the secrets they hold) go at every sign-in.
        let idle = self.idle;
        map.retain(|_, s| !expired(s, idle));
        let mut mine: Vec<([u8; 32], Instant)> = map
            .iter()
            .filter(|(_, s)| s.access_key_id == session.access_key_id)
            .map(|(h, s)| (*h, s.last_used()))
            .collect();
        if mine.len() >= MAX_PER_KEY {
            mine.sort_by_key(|(_, t)| *t);
            for (h, _) in mine.iter().take(mine.len() + 1 - MAX_PER_KEY) {
                map.remove(h);
            }
        }
        if map.len() >= MAX_SESSIONS {
            return None;
        }
        map.insert(hash(&token), session);
        Some(token)
    }

    /// The live session of a cookie token (its idle clock restarts), if any.
    pub fn find(&self, token: &str) -> Option<Arc<Session>> {
        let key = hash(token);
        let mut map = self.by_hash.lock().ok()?;
        let s = map.get(&key)?.clone();
        if expired(&s, self.idle) {
            map.remove(&key);
            return None;
        }
        if let Ok(mut t) = s.last_used.lock() {
            *t = Instant::now();
        }
        Some(s)
    }

    pub fn end(&self, token: &str) {
        if let Ok(mut map) = self.by_hash.lock() {
            map.remove(&hash(token));
        }
    }
}

fn expired(s: &Session, idle: Duration) -> bool {
    s.last_used
        .lock()
        .map(|t| t.elapsed() > idle)
        .unwrap_or(true)
}

fn hash(token: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// The session token in a request's `Cookie` headers, if any.
pub fn cookie_token(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The `Set-Cookie` value of a session (or, with `None`, of its removal).
pub fn set_cookie(token: Option<&str>, tls: bool, idle: Duration) -> String {
    let secure = if tls { "; Secure" } else { "" };
    match token {
        Some(t) => format!(
            "{COOKIE}={t}; Path={}; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            crate::PREFIX,
            idle.as_secs().max(1) * 4
        ),
        None => format!(
            "{COOKIE}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
            crate::PREFIX
        ),
    }
}

impl Sessions {
    pub fn idle(&self) -> Duration {
        self.idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIA".into(),
            secret: Zeroizing::new("s".into()),
            session_token: None,
        }
    }

    #[test]
    fn a_session_is_found_by_its_token_only_and_ends() {
        let s = Sessions::new(Duration::from_secs(60));
        let t = s
            .start(creds(), "arn:aws:iam::1:root".into(), "1".into())
            .expect("started");
        let found = s.find(&t).expect("found");
        assert_eq!(found.name(), "root");
        assert!(s.find("other").is_none());
        assert!(found.csrf_ok(&found.csrf.clone()));
        assert!(!found.csrf_ok(""));
        assert!(!found.csrf_ok("x"));
        s.end(&t);
        assert!(s.find(&t).is_none());
    }

    #[test]
    fn one_key_keeps_a_bounded_number_of_sessions() {
        let s = Sessions::new(Duration::from_secs(60));
        let first = s
            .start(creds(), "arn:aws:iam::1:root".into(), "1".into())
            .expect("started");
        for _ in 0..MAX_PER_KEY {
            s.start(creds(), "arn:aws:iam::1:root".into(), "1".into())
                .expect("started");
        }
        assert!(s.find(&first).is_none(), "the oldest session made way");
        assert_eq!(s.by_hash.lock().map(|m| m.len()).unwrap_or(0), MAX_PER_KEY);
    }

    #[test]
    fn an_idle_session_expires() {
        let s = Sessions::new(Duration::from_millis(0));
        let t = s
            .start(creds(), "arn:aws:iam::1:user/u".into(), "1".into())
            .expect("started");
        std::thread::sleep(Duration::from_millis(2));
        assert!(s.find(&t).is_none());
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            http::HeaderValue::from_static("a=b; coffer-console=TOK; c=d"),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("TOK"));
        assert!(set_cookie(Some("T"), true, Duration::from_secs(60)).contains("Secure"));
        assert!(set_cookie(Some("T"), false, Duration::from_secs(60)).contains("HttpOnly"));
    }
}
