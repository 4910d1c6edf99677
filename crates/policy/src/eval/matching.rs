//! Matching of the Action, Resource and Principal elements, the `*`/`?` glob they share with
//! `StringLike` and the ARN operators, and policy-variable substitution.

use super::{Env, Query, Reach};
use crate::document::{Negatable, Principal};

/// One element of a pattern after variable substitution. Wildcards are kept apart from literal
/// characters so that a `*` coming from `${*}` or from a variable's value stays literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tok {
    Lit(char),
    /// `*`: any run of characters, including none (and including `/` and `:`).
    Any,
    /// `?`: exactly one character.
    One,
}

/// Tokens of `s` with no variable substitution; `*` and `?` are wildcards when `glob`.
pub(super) fn tokens(s: &str, glob: bool) -> Vec<Tok> {
    s.chars().map(|c| tok(c, glob)).collect()
}

fn tok(c: char, glob: bool) -> Tok {
    match c {
        '*' if glob => Tok::Any,
        '?' if glob => Tok::One,
        c => Tok::Lit(c),
    }
}

/// `s` with policy variables substituted (when the document's version allows them), as tokens.
/// `None` when a variable cannot be resolved: AWS then treats the element as not matching.
///
/// Supported: `${key}` for any single-valued key of the request context (case-insensitive
/// lookup, including the derived `aws:username`, `aws:userid`, `aws:PrincipalAccount`,
/// `aws:PrincipalArn`), a default value `${key, 'text'}` used when the key is absent, and the
/// escapes `${*}`, `${?}`, `${$}` for the literal characters.
pub(super) fn expand(s: &str, env: &Env<'_, '_>, glob: bool) -> Option<Vec<Tok>> {
    if !env.variables {
        return Some(tokens(s, glob));
    }
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.extend(rest[..start].chars().map(|c| tok(c, glob)));
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            // An unterminated `${` is literal text.
            out.extend(rest[start..].chars().map(|c| tok(c, glob)));
            return Some(out);
        };
        let inner = after[..end].trim();
        match inner {
            "*" | "?" | "$" => out.extend(inner.chars().map(Tok::Lit)),
            _ => out.extend(variable(inner, env.q)?.chars().map(Tok::Lit)),
        }
        rest = &after[end + 1..];
    }
    out.extend(rest.chars().map(|c| tok(c, glob)));
    Some(out)
}

/// The value of `name` or `name, 'default'`. Multivalued keys cannot be policy variables
/// (AWS: "you can't use multivalued context keys as policy variables").
fn variable(inner: &str, q: &Query<'_>) -> Option<String> {
    let (name, default) = match inner.split_once(',') {
        Some((name, default)) => {
            let default = default.trim();
            let text = default.strip_prefix('\'')?.strip_suffix('\'')?;
            (name.trim(), Some(text))
        }
        None => (inner, None),
    };
    match q.lookup(&name.to_lowercase()).as_deref() {
        Some([one]) => Some(one.clone()),
        // A present but multivalued (or empty) key does not resolve, default or not.
        Some(_) => None,
        None => default.map(str::to_owned),
    }
}

/// The glob match of `text` against `pat`: iterative, with one backtrack point (the last `*`),
/// so it runs in O(len(pat) × len(text)) at worst on any input.
pub(super) fn glob(pat: &[Tok], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // (index of the last `*` in pat, position in text it currently absorbs up to)
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(t) {
        match pat.get(p) {
            Some(Tok::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Tok::One) => {
                p += 1;
                t += 1;
            }
            Some(Tok::Lit(l)) if *l == c => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat.get(p..)
        .is_some_and(|tail| tail.iter().all(|t| *t == Tok::Any))
}

/// Tokens compared literally (no wildcards) as a string.
pub(super) fn literal(toks: &[Tok]) -> String {
    toks.iter()
        .map(|t| match t {
            Tok::Lit(c) => *c,
            Tok::Any => '*',
            Tok::One => '?',
        })
        .collect()
}

/// Action element: `service:Name` with `*` and `?`, case-insensitive. No variables.
pub(super) fn action(pattern: &str, action: &str) -> bool {
    glob(
        &tokens(&pattern.to_lowercase(), true),
        &action.to_lowercase(),
    )
}

/// Resource element: an ARN glob, case-sensitive, `*` matching across `/` and `:`.
pub(super) fn resource(pattern: &str, env: &Env<'_, '_>) -> bool {
    expand(pattern, env, true).is_some_and(|p| glob(&p, env.q.resource))
}

/// Components of an ARN: `arn:partition:service:region:account:resource`.
fn arn_parts(arn: &str) -> Option<[&str; 6]> {
    let mut it = arn.splitn(6, ':');
    let parts = [
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    ];
    (parts[0] == "arn").then_some(parts)
}

/// The account field of an ARN, if it is an ARN with one.
pub(super) fn arn_account(arn: &str) -> Option<&str> {
    arn_parts(arn).map(|p| p[4]).filter(|a| !a.is_empty())
}

/// The account whose root user `arn` (`arn:aws:iam::ACCOUNT:root`) is.
pub(super) fn root_account(arn: &str) -> Option<&str> {
    match arn_parts(arn)? {
        [_, _, "iam", "", account, "root"] if !account.is_empty() => Some(account),
        _ => None,
    }
}

/// The user name of an IAM user ARN (`arn:aws:iam::ACCOUNT:user/path/NAME` → `NAME`).
pub(super) fn user_name(arn: &str) -> Option<&str> {
    match arn_parts(arn)? {
        [_, _, "iam", "", _, res] => res.strip_prefix("user/")?.rsplit('/').next(),
        _ => None,
    }
}

/// For an assumed-role session `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`:
/// (account, role name).
fn assumed_role(arn: &str) -> Option<(&str, &str)> {
    match arn_parts(arn)? {
        [_, _, "sts", "", account, res] => {
            let (role, _session) = res.strip_prefix("assumed-role/")?.split_once('/')?;
            Some((account, role))
        }
        _ => None,
    }
}

/// Whether `id` is the ARN of the role the caller's session assumed. The session ARN carries
/// no role path, so `arn:aws:iam::ACCOUNT:role/path/ROLE` matches by account and last segment.
fn names_callers_role(id: &str, q: &Query<'_>) -> bool {
    let Some((account, role)) = assumed_role(q.principal_arn) else {
        return false;
    };
    match arn_parts(id) {
        Some([_, _, "iam", "", acct, res]) if acct == account => res
            .strip_prefix("role/")
            .and_then(|r| r.rsplit('/').next())
            .is_some_and(|name| name == role),
        _ => false,
    }
}

/// The account an `AWS` principal entry stands for: a bare account id or the account's root
/// ARN. (Both name the account, not only its root user: see [`super::Outcome::AllowAccount`].)
fn names_account(id: &str) -> Option<&str> {
    if !id.is_empty() && !id.contains(':') && id != "*" {
        return Some(id);
    }
    root_account(id)
}

/// How much of the caller one principal list names: `Caller` (the caller itself, its role, or
/// everyone), `Account` (the caller's account), or `None`.
fn reach_of(list: &Principal, q: &Query<'_>) -> Option<Reach> {
    let entries = match list {
        Principal::Any => return Some(Reach::Caller),
        Principal::Typed(entries) => entries,
    };
    let mut best = None;
    for (kind, ids) in entries {
        for id in ids {
            let reach = match kind.as_str() {
                "AWS" => aws_reach(id, q),
                "Service" => is_calling_service(id, q).then_some(Reach::Caller),
                // Federated and CanonicalUser principals are never Coffer callers.
                _ => None,
            };
            best = best.max(reach);
        }
    }
    best
}

/// Service principals: the request is made by an AWS service on the caller's behalf, named in
/// the context key `aws:PrincipalServiceName`.
fn is_calling_service(id: &str, q: &Query<'_>) -> bool {
    q.lookup("aws:principalservicename")
        .is_some_and(|names| names.iter().any(|n| n.eq_ignore_ascii_case(id)))
}

fn aws_reach(id: &str, q: &Query<'_>) -> Option<Reach> {
    // Wildcards are not allowed in principals except the bare "*", which means everyone.
    let is_caller = !id.is_empty() && id == q.principal_arn;
    if id == "*" || is_caller || names_callers_role(id, q) {
        return Some(Reach::Caller);
    }
    if names_account(id) == Some(q.principal_account) {
        // Naming its own account grants the root user directly; anyone else in the account
        // needs its identity policies too.
        return Some(if q.caller_is_account_root() {
            Reach::Caller
        } else {
            Reach::Account
        });
    }
    None
}

/// Whether NotPrincipal `list` excepts the caller. AWS checks a principal's whole chain (the
/// account first, then the user; for an assumed role the account, the role, then the
/// session), and the Deny applies at the first link that is not excepted. So a user is
/// excepted only when both its account and its own ARN are listed, and a role session only
/// when its account and its role are listed (its session ARN alone is not enough): AWS's
/// NotPrincipal page recommends listing "the ARN for the role and the ARN for the account".
fn excepts(list: &Principal, q: &Query<'_>) -> bool {
    let entries = match list {
        Principal::Any => return true,
        Principal::Typed(entries) => entries,
    };
    let aws: Vec<&str> = entries
        .iter()
        .filter(|(kind, _)| kind == "AWS")
        .flat_map(|(_, ids)| ids.iter().map(String::as_str))
        .collect();
    let service = entries
        .iter()
        .filter(|(kind, _)| kind == "Service")
        .flat_map(|(_, ids)| ids)
        .any(|id| is_calling_service(id, q));
    if service || aws.contains(&"*") {
        return true;
    }
    let account = aws
        .iter()
        .any(|id| names_account(id) == Some(q.principal_account));
    if !account {
        return false;
    }
    if q.caller_is_account_root() {
        return true;
    }
    if assumed_role(q.principal_arn).is_some() {
        return aws.iter().any(|id| names_callers_role(id, q));
    }
    !q.principal_arn.is_empty() && aws.contains(&q.principal_arn)
}

/// The Principal/NotPrincipal element of a resource-policy statement.
pub(super) fn principal(element: &Negatable<Principal>, q: &Query<'_>) -> Option<Reach> {
    match element {
        Negatable::Is(list) => reach_of(list, q),
        // NotPrincipal applies to everyone it does not except, as if they were named.
        Negatable::Not(list) => (!excepts(list, q)).then_some(Reach::Caller),
    }
}
