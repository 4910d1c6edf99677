//! The S3 REST API over Coffer's object domain. This is the only crate that knows s3s (the
//! S3 routing, XML and SigV4 framework we build on), S3's XML shapes and S3 error codes.
//!
//! [`service`] builds the hyper service: s3s verifies SigV4 (header, presigned, chunked and
//! trailer forms) against the [`coffer_iam::Credentials`] seam, [`access`] asks the one
//! authorization point (`coffer_policy`) and records the principal and operation in the
//! request's [`coffer_audit::RequestContext`], and [`S3Api`] turns each S3 operation into
//! a call on [`coffer_objects::Objects`]. Domain errors become S3 errors in exactly one
//! place, `error.rs`. API boundary: nothing here stores data or decides access; it only
//! translates.

mod access;
mod access_log;
mod convert;
mod cors;
mod dev;
mod error;
mod front;
#[doc(hidden)]
pub mod fuzz;
mod operation;
mod ops;
mod precheck;
mod rfc2047;
mod route;
mod wide_checksum;
mod xml;

use std::sync::Arc;

use coffer_iam::Credentials;
use coffer_objects::Objects;
use s3s::service::S3ServiceBuilder;

pub use access_log::AccessLogs;
pub use error::to_s3_error;
pub use front::S3Front;
pub use operation::Operation;

/// The S3 operations, implemented over [`Objects`].
pub struct S3Api {
    objects: Arc<Objects>,
    config: Config,
    /// The access step, for the one operation whose resource is known only once its body
    /// is read: a POST form names its key in the form.
    access: access::Access,
}

/// Settings of the S3 front end.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Base domain for virtual-hosted-style requests (`bucket.DOMAIN`).
    pub domain: Option<String>,
    /// Accept SSE-C over plain HTTP (local development only; AWS requires TLS).
    pub allow_insecure_sse_c: bool,
    /// Development mode: requests signed with keys `Credentials::unverified` takes are
    /// signed again before s3s checks them (`dev.rs`).
    pub dev: bool,
}

/// Builds the S3 front end.
pub fn service(
    objects: Arc<Objects>,
    credentials: Arc<dyn Credentials>,
    authorizer: Arc<coffer_authz::Authorizer>,
    config: &Config,
) -> S3Front {
    let access = access::Access {
        objects: objects.clone(),
        credentials: credentials.clone(),
        authorizer,
        policies: Default::default(),
    };
    let mut b = S3ServiceBuilder::new(S3Api {
        objects: objects.clone(),
        config: config.clone(),
        access: access.clone(),
    });
    b.set_auth(access::Auth {
        credentials: credentials.clone(),
    });
    b.set_access(access.clone());
    b.set_route(route::Routes {
        objects: objects.clone(),
        access: access.clone(),
        domain: config.domain.as_deref().map(access::Domain::new),
    });
    if let Some(domain) = &config.domain {
        b.set_host(access::Domain::new(domain));
    }
    S3Front::new(
        b.build(),
        cors::Cors {
            objects: objects.clone(),
            domain: config.domain.as_deref().map(access::Domain::new),
        },
        std::sync::Arc::new(AccessLogs::new(objects, access)),
        config.dev.then_some(credentials),
    )
}
