//! The Condition element: every operator of AWS's "IAM JSON policy elements: Condition
//! operators" page, the `...IfExists` suffix, and the `ForAllValues:`/`ForAnyValue:` set
//! operators of "Single-valued vs. multivalued context keys".
//!
//! Logic (AWS, "Conditions with multiple context keys or values"): operators AND together,
//! keys under one operator AND together, several policy values for one key OR together — NOR
//! for the negated operators (`StringNotEquals` holds when the request value equals none of
//! them).
//!
//! Choices where AWS's documents leave room:
//! - An operator this engine does not know makes its statement not match, for Allow and Deny
//!   statements alike: it never grants, and a Deny written with it has no effect (AWS refuses
//!   such policies when they are stored, so only grammar drift reaches this). Operator names
//!   are matched case-insensitively.
//! - A policy or request value that does not parse for its operator (a number, date, IP
//!   address, CIDR or base64 value) matches nothing: positive operators are false for it,
//!   negated operators true (so `Deny` + `NotIpAddress` still denies a malformed source).

use std::cmp::Ordering;
use std::net::IpAddr;

use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use super::Env;
use super::matching::{self, Tok};
use crate::document::Condition;

/// Whether a statement's whole Condition element holds.
pub(super) fn hold(condition: &Condition, env: &Env<'_, '_>) -> bool {
    condition.iter().all(|(op, keys)| {
        let Some(op) = Operator::parse(op) else {
            return false;
        };
        keys.iter().all(|(key, policy_values)| {
            let request = env.q.lookup(&key.to_lowercase());
            op.holds(request.as_deref(), policy_values, env)
        })
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Compare {
    fn test(self, ord: Ordering) -> bool {
        match self {
            Compare::Eq => ord == Ordering::Equal,
            Compare::Lt => ord == Ordering::Less,
            Compare::Le => ord != Ordering::Greater,
            Compare::Gt => ord == Ordering::Greater,
            Compare::Ge => ord != Ordering::Less,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    String {
        ignore_case: bool,
        like: bool,
    },
    Numeric(Compare),
    Date(Compare),
    Bool,
    Binary,
    Ip,
    /// ArnEquals and ArnLike behave the same in AWS: both accept wildcards.
    Arn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    /// `ForAllValues:`: every request value matches; true when the key is absent or empty.
    All,
    /// `ForAnyValue:`: at least one request value matches; false when absent or empty.
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    /// `Null`: "true" holds when the key is absent (or empty), "false" when present.
    Null,
    Compare {
        family: Family,
        /// StringNotEquals, NotIpAddress, ArnNotLike, ...: holds when no policy value matches.
        negated: bool,
        /// `...IfExists`: an absent key makes the condition true.
        if_exists: bool,
        set: Option<SetOp>,
    },
}

/// Strips an ASCII prefix case-insensitively.
fn strip_prefix_ci<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

impl Operator {
    fn parse(name: &str) -> Option<Self> {
        let (set, rest) = if let Some(r) = strip_prefix_ci(name, "ForAllValues:") {
            (Some(SetOp::All), r)
        } else if let Some(r) = strip_prefix_ci(name, "ForAnyValue:") {
            (Some(SetOp::Any), r)
        } else {
            (None, name)
        };
        let lower = rest.to_ascii_lowercase();
        if lower == "null" {
            // Null takes neither IfExists nor a set operator.
            return set.is_none().then_some(Operator::Null);
        }
        let (base, if_exists) = match lower.strip_suffix("ifexists") {
            Some(base) => (base, true),
            None => (lower.as_str(), false),
        };
        let string = |ignore_case, like| Family::String { ignore_case, like };
        let (family, negated) = match base {
            "stringequals" => (string(false, false), false),
            "stringnotequals" => (string(false, false), true),
            "stringequalsignorecase" => (string(true, false), false),
            "stringnotequalsignorecase" => (string(true, false), true),
            "stringlike" => (string(false, true), false),
            "stringnotlike" => (string(false, true), true),
            "numericequals" => (Family::Numeric(Compare::Eq), false),
            "numericnotequals" => (Family::Numeric(Compare::Eq), true),
            "numericlessthan" => (Family::Numeric(Compare::Lt), false),
            "numericlessthanequals" => (Family::Numeric(Compare::Le), false),
            "numericgreaterthan" => (Family::Numeric(Compare::Gt), false),
            "numericgreaterthanequals" => (Family::Numeric(Compare::Ge), false),
            "dateequals" => (Family::Date(Compare::Eq), false),
            "datenotequals" => (Family::Date(Compare::Eq), true),
            "datelessthan" => (Family::Date(Compare::Lt), false),
            "datelessthanequals" => (Family::Date(Compare::Le), false),
            "dategreaterthan" => (Family::Date(Compare::Gt), false),
            "dategreaterthanequals" => (Family::Date(Compare::Ge), false),
            "bool" => (Family::Bool, false),
            "binaryequals" => (Family::Binary, false),
            "ipaddress" => (Family::Ip, false),
            "notipaddress" => (Family::Ip, true),
            "arnequals" | "arnlike" => (Family::Arn, false),
            "arnnotequals" | "arnnotlike" => (Family::Arn, true),
            _ => return None,
        };
        Some(Operator::Compare {
            family,
            negated,
            if_exists,
            set,
        })
    }

    /// Whether the condition holds for one key; `request` is `None` when the key is absent.
    fn holds(self, request: Option<&[String]>, policy: &[String], env: &Env<'_, '_>) -> bool {
        // AWS treats a key with an empty value set like an absent one for Null, IfExists and
        // the set operators ("missing context keys or context keys with empty values").
        let request = request.filter(|v| !v.is_empty());
        let (family, negated, if_exists, set) = match self {
            Operator::Null => {
                let absent = request.is_none();
                return policy.iter().any(|p| {
                    if p.eq_ignore_ascii_case("true") {
                        absent
                    } else if p.eq_ignore_ascii_case("false") {
                        !absent
                    } else {
                        false
                    }
                });
            }
            Operator::Compare {
                family,
                negated,
                if_exists,
                set,
            } => (family, negated, if_exists, set),
        };
        let Some(request) = request else {
            if if_exists {
                return true;
            }
            return match set {
                // AWS: "The ForAllValues set operator also returns true if there are no
                // context keys in the request"; ForAnyValue "returns false".
                Some(SetOp::All) => true,
                Some(SetOp::Any) => false,
                // AWS ("Condition operators", Important box): a key absent from the request
                // context makes the condition false, except that a negated operator such
                // as StringNotLike or ArnNotLike is then true.
                None => negated,
            };
        };
        let policy: Vec<Prepared> = policy.iter().map(|p| prepare(family, p, env)).collect();
        let hit = |value: &String| policy.iter().any(|p| pair_matches(family, value, p));
        match set {
            // Per request value: positive operators need a policy value to match, negated ones
            // need none to (AWS's ForAllValues:StringNotLike table: every tag key must be
            // unlike every pattern).
            Some(SetOp::All) => request.iter().all(|v| hit(v) != negated),
            Some(SetOp::Any) => request.iter().any(|v| hit(v) != negated),
            // Without a set operator a multivalued key is matched like ForAnyValue for the
            // positive operators; a negated operator holds only if no value matches.
            None if negated => !request.iter().any(hit),
            None => request.iter().any(hit),
        }
    }
}

/// A policy value made ready for comparison; `None` inside means it never matches (an
/// unresolvable variable or a malformed value).
enum Prepared {
    Pattern(Option<Vec<Tok>>),
    Number(Option<f64>),
    Time(Option<i128>),
    Bytes(Option<Vec<u8>>),
    Cidr(Option<(IpAddr, u8)>),
}

fn prepare(family: Family, value: &str, env: &Env<'_, '_>) -> Prepared {
    match family {
        // Policy variables are supported by the string, Boolean and ARN operators only.
        Family::String { like, .. } => Prepared::Pattern(matching::expand(value, env, like)),
        Family::Bool => Prepared::Pattern(matching::expand(value, env, false)),
        Family::Arn => Prepared::Pattern(matching::expand(value, env, true)),
        Family::Numeric(_) => Prepared::Number(number(value)),
        Family::Date(_) => Prepared::Time(date(value)),
        Family::Binary => Prepared::Bytes(base64(value)),
        Family::Ip => Prepared::Cidr(cidr(value)),
    }
}

/// Whether one request value matches one policy value (before any negation).
fn pair_matches(family: Family, request: &str, policy: &Prepared) -> bool {
    match (family, policy) {
        (Family::String { ignore_case, like }, Prepared::Pattern(Some(p))) => {
            match (ignore_case, like) {
                (_, true) => matching::glob(p, request),
                (false, false) => matching::literal(p) == request,
                (true, false) => matching::literal(p).to_lowercase() == request.to_lowercase(),
            }
        }
        (Family::Bool, Prepared::Pattern(Some(p))) => {
            let p = matching::literal(p);
            // Only the two Boolean words are values; anything else matches nothing.
            (p.eq_ignore_ascii_case("true") || p.eq_ignore_ascii_case("false"))
                && p.eq_ignore_ascii_case(request.trim())
        }
        (Family::Arn, Prepared::Pattern(Some(p))) => arn_like(p, request),
        (Family::Numeric(cmp), Prepared::Number(Some(p))) => number(request)
            .and_then(|r| r.partial_cmp(p))
            .is_some_and(|ord| cmp.test(ord)),
        (Family::Date(cmp), Prepared::Time(Some(p))) => {
            date(request).is_some_and(|r| cmp.test(r.cmp(p)))
        }
        (Family::Binary, Prepared::Bytes(Some(p))) => base64(request).is_some_and(|r| r == *p),
        (Family::Ip, Prepared::Cidr(Some((net, bits)))) => {
            ip(request).is_some_and(|addr| in_network(addr, *net, *bits))
        }
        _ => false,
    }
}

/// ArnEquals/ArnLike: "each of the six colon-delimited components of the ARN is checked
/// separately and each can include multi-character match wildcards (*) or single-character
/// match wildcards (?)". A value that is not a six-part ARN (such as a bare `*`) is matched
/// as one glob over the whole string.
fn arn_like(pattern: &[Tok], request: &str) -> bool {
    let parts: Vec<&[Tok]> = pattern.splitn(6, |t| *t == Tok::Lit(':')).collect();
    let req: Vec<&str> = request.splitn(6, ':').collect();
    if parts.len() == 6 && req.len() == 6 {
        parts.iter().zip(&req).all(|(p, r)| matching::glob(p, r))
    } else {
        matching::glob(pattern, request)
    }
}

/// A decimal number: optional sign, digits, optional fraction. (No exponent, NaN or infinity:
/// `f64::from_str` would take those, AWS's numeric values do not.)
fn number(s: &str) -> Option<f64> {
    let s = s.trim();
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    s.parse().ok()
}

/// A date as nanoseconds since the Unix epoch: epoch seconds, or ISO 8601 (RFC 3339
/// `2020-06-30T23:59:59Z`, other ISO 8601 forms, a date-time without offset read as UTC, or a
/// bare date at midnight UTC).
fn date(s: &str) -> Option<i128> {
    let s = s.trim();
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i128 = s.parse().ok()?;
        return secs.checked_mul(1_000_000_000);
    }
    let parsed = OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(s, &Iso8601::DEFAULT))
        .or_else(|_| PrimitiveDateTime::parse(s, &Iso8601::DEFAULT).map(|t| t.assume_utc()))
        .or_else(|_| {
            Date::parse(s, format_description!("[year]-[month]-[day]"))
                .map(|d| d.midnight().assume_utc())
        })
        .ok()?;
    Some(parsed.unix_timestamp_nanos())
}

fn base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    base64_simd::STANDARD
        .decode_to_vec(s)
        .or_else(|_| base64_simd::STANDARD_NO_PAD.decode_to_vec(s))
        .ok()
}

/// An IP address, with IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) read as IPv4.
fn ip(s: &str) -> Option<IpAddr> {
    let addr: IpAddr = s.trim().parse().ok()?;
    Some(match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    })
}

/// `192.0.2.0/24`, `2001:DB8::/32`, or a bare address (a /32 or /128).
fn cidr(s: &str) -> Option<(IpAddr, u8)> {
    let s = s.trim();
    let (addr, bits) = match s.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (s, None),
    };
    let raw: IpAddr = addr.parse().ok()?;
    let max = if raw.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) => b.parse().ok()?,
        Some(_) => return None,
        None => max,
    };
    if bits > max {
        return None;
    }
    // An IPv4-mapped network (::ffff:192.0.2.0/120) is the IPv4 network it maps.
    if let IpAddr::V6(v6) = raw
        && let Some(v4) = v6.to_ipv4_mapped()
        && bits >= 96
    {
        return Some((IpAddr::V4(v4), bits - 96));
    }
    Some((raw, bits))
}

fn in_network(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}
