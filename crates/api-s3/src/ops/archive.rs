//! RestoreObject and the `x-amz-restore` header of archived versions.

use s3s::dto::*;
use s3s::{S3Request, S3Response, s3_error};

use coffer_objects::{RestoreStatus, Restored};

use super::R;
use crate::S3Api;
use crate::convert::{http_date, timestamp};
use crate::error::to_s3_error;

pub async fn restore(api: &S3Api, req: S3Request<RestoreObjectInput>) -> R<RestoreObjectOutput> {
    let i = req.input;
    let malformed = || {
        s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        )
    };
    let r = i.restore_request.ok_or_else(malformed)?;
    if r.type_.is_some() || r.select_parameters.is_some() || r.output_location.is_some() {
        return Err(s3_error!(
            NotImplemented,
            "Restores of type SELECT are not implemented by this server."
        ));
    }
    let days = r
        .days
        .and_then(|d| u32::try_from(d).ok())
        .ok_or_else(malformed)?;
    // The tier is given inside GlacierJobParameters (or, newer, on the request itself).
    let tier = r
        .glacier_job_parameters
        .map(|g| g.tier)
        .or(r.tier)
        .map_or(Some(coffer_objects::Tier::Standard), |t| {
            coffer_objects::Tier::parse(t.as_str())
        })
        .ok_or_else(malformed)?;
    let outcome = api
        .objects
        .restore_object(&i.bucket, &i.key, i.version_id.as_deref(), days, tier)
        .await
        .map_err(to_s3_error)?;
    let mut resp = S3Response::new(RestoreObjectOutput::default());
    if outcome == Restored::Started {
        resp.extensions
            .insert(crate::front::Status(http::StatusCode::ACCEPTED));
    }
    Ok(resp)
}

/// `x-amz-restore` of a version whose restore is under way or done.
pub fn header(meta: &coffer_objects::ObjectMeta, now: time::OffsetDateTime) -> Option<String> {
    match coffer_objects::restore_status(meta, now)? {
        RestoreStatus::Ongoing => Some("ongoing-request=\"true\"".to_owned()),
        RestoreStatus::Done { expires } => Some(format!(
            "ongoing-request=\"false\", expiry-date=\"{}\"",
            http_date(&timestamp(expires))?
        )),
    }
}
