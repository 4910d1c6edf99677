//! The CloudTrail LookupEvents API (`POST /`, `X-Amz-Target:
//! com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`, awsJson1.1, SigV4
//! service `cloudtrail`) over the audit [`Trail`], so `aws cloudtrail lookup-events`
//! works. A tenant sees only its own account's events; the operator sees every account's.
//! API boundary: this crate reads the trail; it never writes it.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use coffer_api::Reply;
use coffer_audit::RequestContext;
use coffer_audit::record::Record;
use coffer_audit::trail::Trail;
use coffer_authz::{Ask, Authorizer};
use coffer_iam::auth::{ApiRequest, Authenticator, Failure};
use coffer_iam::{Credentials, Directory, Principal};
use coffer_policy::Decision;

use crate::error::Error;

mod error;

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";

/// Whether a request is for this API.
pub fn is_cloudtrail(target: Option<&str>) -> bool {
    target.is_some_and(|t| t.starts_with(TARGET_PREFIX))
}

#[async_trait::async_trait]
impl coffer_api::ApiHandler for CloudTrailApi {
    fn accepts(&self, req: &http::Request<coffer_api::Body>) -> bool {
        is_cloudtrail(coffer_api::header(req, "x-amz-target"))
    }

    async fn handle(
        &self,
        req: http::Request<coffer_api::Body>,
        cx: &Arc<RequestContext>,
    ) -> Reply {
        let result = match coffer_api::read_small(req).await {
            Ok((parts, body)) => self.run(&coffer_api::api_request(&parts, body), cx).await,
            Err(_) => Err(Error::Serialization(
                "The request body is too large or could not be read".into(),
            )),
        };
        match result {
            Ok(v) => Reply::document(200, CONTENT_TYPE, v.to_string(), &cx.request_id, None),
            Err(e) => e.reply(&cx.request_id),
        }
    }

    fn internal_error(&self, request_id: &str) -> Reply {
        Error::Internal("An internal error occurred.".into()).reply(request_id)
    }
}

pub struct CloudTrailApi {
    trail: Arc<Trail>,
    directory: Arc<Directory>,
    authorizer: Arc<Authorizer>,
    auth: Authenticator,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attribute {
    attribute_key: String,
    attribute_value: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct LookupReq {
    lookup_attributes: Option<Vec<Attribute>>,
    start_time: Option<f64>,
    end_time: Option<f64>,
    max_results: Option<i64>,
    next_token: Option<String>,
    event_category: Option<String>,
}

fn epoch(t: OffsetDateTime) -> f64 {
    t.unix_timestamp() as f64
}

/// The user name LookupEvents shows: the IAM user, `root`, or the role session's name.
fn username(r: &Record) -> Option<String> {
    let u = &r.user_identity;
    match u.kind.as_str() {
        "Root" => Some("root".into()),
        "IAMUser" => u.user_name.clone(),
        "AssumedRole" => u
            .arn
            .as_deref()
            .and_then(|a| a.rsplit('/').next())
            .map(str::to_owned),
        _ => u.invoked_by.clone(),
    }
}

fn matches(r: &Record, key: &str, value: &str) -> bool {
    match key {
        "EventId" => r.event_id == value,
        "EventName" => r.event_name == value,
        "ReadOnly" => r.read_only.to_string() == value,
        "Username" => username(r).as_deref() == Some(value),
        "ResourceType" => r.resources.iter().any(|x| x.kind == value),
        "ResourceName" => r.resources.iter().any(|x| x.arn == value),
        "EventSource" => r.event_source == value,
        "AccessKeyId" => r.user_identity.access_key_id.as_deref() == Some(value),
        _ => false,
    }
}

fn event(r: &Record) -> Value {
    let mut v = json!({
        "EventId": r.event_id,
        "EventName": r.event_name,
        "ReadOnly": r.read_only.to_string(),
        "EventTime": r.parsed_time().map(epoch).unwrap_or_default(),
        "EventSource": r.event_source,
        "Resources": r.resources.iter().map(|x| json!({
            "ResourceType": x.kind,
            "ResourceName": x.arn,
        })).collect::<Vec<_>>(),
        "CloudTrailEvent": serde_json::to_string(r).unwrap_or_default(),
    });
    if let Some(k) = &r.user_identity.access_key_id {
        v["AccessKeyId"] = json!(k);
    }
    if let Some(u) = username(r) {
        v["Username"] = json!(u);
    }
    v
}

const LOOKUP_KEYS: &[&str] = &[
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
];

impl CloudTrailApi {
    pub fn new(
        trail: Arc<Trail>,
        directory: Arc<Directory>,
        credentials: Arc<dyn Credentials>,
        authorizer: Arc<Authorizer>,
    ) -> Self {
        Self {
            trail,
            directory,
            authorizer,
            auth: Authenticator::new(credentials),
        }
    }

    async fn run(&self, req: &ApiRequest<'_>, cx: &RequestContext) -> Result<Value, Error> {
        let op = req
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-target"))
            .and_then(|(_, v)| v.strip_prefix(TARGET_PREFIX))
            .unwrap_or("");
        let operation: &'static str = if op == "LookupEvents" {
            "LookupEvents"
        } else {
            "Unknown"
        };
        cx.fill(|f| {
            f.service = Some("cloudtrail.amazonaws.com");
            f.operation = Some(operation);
            f.read_only = Some(true);
        });
        let received = req.received();
        let caller =
            match self
                .auth
                .authenticate(&received, &["cloudtrail"], OffsetDateTime::now_utc())
            {
                Ok((p, _)) => p,
                Err(Failure::UnknownKey | Failure::BadToken) => {
                    return Err(Error::UnrecognizedClient(
                        "The security token included in the request is invalid.".into(),
                    ));
                }
                Err(Failure::Signature(r)) => return Err(Error::Refused(r)),
            };
        cx.fill(|f| f.identity = Some(caller.audit_identity()));
        if operation == "Unknown" {
            return Err(Error::UnknownOperation(format!("Unknown operation {op}")));
        }
        self.check(&caller, cx)?;
        let r: LookupReq = serde_json::from_slice(if req.body.is_empty() {
            b"{}"
        } else {
            &req.body
        })
        .map_err(|e| Error::Serialization(e.to_string()))?;
        self.lookup(&caller, r).await
    }

    fn check(&self, caller: &Principal, cx: &RequestContext) -> Result<(), Error> {
        let decision = self.authorizer.check(&Ask {
            principal: caller,
            action: "cloudtrail:LookupEvents",
            resource: "*",
            resource_account: Some(&caller.account.id),
            resource_policy: None,
            context: self
                .authorizer
                .base_context(caller, cx.tls, cx.source.map(|s| s.ip())),
        });
        match decision {
            Decision::Allow => Ok(()),
            Decision::Deny(_) => Err(Error::AccessDenied(format!(
                "User: {} is not authorized to perform: cloudtrail:LookupEvents because no identity-based policy allows the cloudtrail:LookupEvents action",
                caller.arn()
            ))),
        }
    }

    async fn lookup(&self, caller: &Principal, r: LookupReq) -> Result<Value, Error> {
        let attrs = r.lookup_attributes.unwrap_or_default();
        if attrs.len() > 1 {
            return Err(Error::InvalidLookupAttributes(
                "You cannot specify more than one lookup attribute.".into(),
            ));
        }
        if let Some(a) = attrs.first()
            && !LOOKUP_KEYS.contains(&a.attribute_key.as_str())
        {
            return Err(Error::InvalidLookupAttributes(format!(
                "{} is not a valid lookup attribute key.",
                a.attribute_key
            )));
        }
        if let (Some(s), Some(e)) = (r.start_time, r.end_time)
            && s > e
        {
            return Err(Error::InvalidTimeRange(
                "Start time must be before end time.".into(),
            ));
        }
        if r.event_category.as_deref().is_some_and(|c| c != "insight") {
            return Err(Error::InvalidEventCategory(
                "The only valid event category is insight.".into(),
            ));
        }
        let max = match r.max_results {
            None => 50,
            Some(n) if (1..=50).contains(&n) => usize::try_from(n).unwrap_or(50),
            Some(_) => {
                return Err(Error::InvalidMaxResults(
                    "MaxResults must be between 1 and 50.".into(),
                ));
            }
        };
        // Insights are not recorded: their category lists nothing.
        if r.event_category.is_some() {
            return Ok(json!({ "Events": [] }));
        }
        self.trail.flush().await;
        let records = self.trail.records().map_err(|e| {
            tracing::error!(error = %e, "cannot read the audit trail");
            Error::Internal("The audit trail could not be read.".into())
        })?;
        let operator = self.directory.is_operator(caller);
        let (start, end) = (r.start_time, r.end_time);
        let mut picked = records.iter().filter(|rec| {
            (operator || rec.recipient_account_id == caller.account.id)
                && attrs
                    .first()
                    .is_none_or(|a| matches(rec, &a.attribute_key, &a.attribute_value))
                && rec.parsed_time().is_some_and(|t| {
                    let t = epoch(t);
                    start.is_none_or(|s| t >= s.floor()) && end.is_none_or(|e| t <= e)
                })
        });
        if let Some(token) = &r.next_token {
            // The token is the id of the last event of the previous page.
            if !records.iter().any(|rec| &rec.event_id == token) {
                return Err(Error::InvalidNextToken("Invalid NextToken.".into()));
            }
            for rec in picked.by_ref() {
                if &rec.event_id == token {
                    break;
                }
            }
        }
        let page: Vec<&Record> = picked.by_ref().take(max).collect();
        let more = picked.next().is_some();
        let mut out = json!({ "Events": page.iter().map(|r| event(r)).collect::<Vec<_>>() });
        if more && let Some(last) = page.last() {
            out["NextToken"] = json!(last.event_id);
        }
        Ok(out)
    }
}
