//! Coffer's one authorization decision point, above the IAM directory and the pure policy
//! engine. [`Authorizer`] gathers what bears on a request (the caller's identity policies
//! from the [`coffer_iam::Directory`], parsed once per directory generation; key policies,
//! parsed once per text; the global condition keys) and asks [`coffer_policy::eval`];
//! [`PrincipalGate`] carries a caller's authorization into the KMS, which asks it per key.
//! Invariant: every S3, KMS, IAM and STS request is decided here, and nothing here
//! evaluates a policy itself.

mod authorizer;
mod gate;

pub use authorizer::{Ask, Authorizer};
pub use gate::PrincipalGate;
