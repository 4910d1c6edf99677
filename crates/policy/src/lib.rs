//! The AWS IAM policy engine, pure. [`document`] parses the
//! policy language into a typed [`document::Document`]; [`eval`] evaluates it as AWS does:
//! [`eval::evaluate`] gives one document's verdict on a [`eval::Query`] (action, resource ARN,
//! caller, condition-key [`eval::Context`]) through Action/NotAction, Resource/NotResource,
//! Principal/NotPrincipal, every condition operator with `...IfExists` and the
//! `ForAllValues`/`ForAnyValue` set operators, and policy variables; [`eval::decide`] combines
//! identity and bucket policies (an explicit deny wins; in the same account either side may
//! allow, across accounts both must) and [`eval::decide_kms`] applies KMS's rule that the key
//! policy is primary and IAM policies count only where it delegates to the account. Invariant:
//! evaluation is pure (no I/O, no clock: the caller supplies `aws:CurrentTime`), never panics,
//! and adding a Deny never grants access. It depends on nothing but its inputs: the decision
//! point that gathers them (identity policies, condition keys) is `coffer-authz`. A
//! [`KeyGate`] carries a caller's authorization into the KMS, which asks it per key.

pub mod document;
pub mod eval;
mod gate;

pub use gate::{KeyGate, KeyGrant, KeyUse};

/// What authorization concluded, and why (for the audit trail and error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(&'static str),
}
