//! CloudTrail's record format (eventVersion 1.11): what one audited call looks like on
//! disk, in LookupEvents' `CloudTrailEvent`, and in delivered log files.
//!
//! Invariant: a record is built only from identifiers, names, outcomes and the request
//! parameters an API layer chose to expose ([`crate::Filled`]); the types that hold
//! secrets (`SecretKey`, `Secret`) implement neither `Serialize` nor `Display`, so they
//! cannot be put into one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub const EVENT_VERSION: &str = "1.11";

/// `userIdentity`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// `Root`, `IAMUser`, `AssumedRole`, `AWSService`, `Unknown`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The service that made the call for the principal (`s3.amazonaws.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_context: Option<Value>,
}

/// One entry of `resources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(rename = "ARN")]
    pub arn: String,
    #[serde(rename = "accountId", skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// `AWS::S3::Bucket`, `AWS::S3::Object`, `AWS::KMS::Key`, `AWS::IAM::User`, ...
    #[serde(rename = "type")]
    pub kind: String,
}

/// `tlsDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsDetails {
    pub tls_version: String,
    pub cipher_suite: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_provided_host_header: Option<String>,
}

/// One CloudTrail record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub event_version: String,
    pub user_identity: UserIdentity,
    /// `2026-11-27T12:00:00Z`
    pub event_time: String,
    pub event_source: String,
    pub event_name: String,
    pub aws_region: String,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub request_parameters: Option<Value>,
    pub response_elements: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<Value>,
    #[serde(rename = "requestID", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub read_only: bool,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub resources: Vec<Resource>,
    /// `AwsApiCall` or `AwsServiceEvent`.
    pub event_type: String,
    pub management_event: bool,
    pub recipient_account_id: String,
    #[serde(rename = "sharedEventID", skip_serializing_if = "Option::is_none")]
    pub shared_event_id: Option<String>,
    /// `Management` or `Data`.
    pub event_category: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_details: Option<TlsDetails>,
}

impl Record {
    /// Seconds-precision UTC time, as CloudTrail writes it.
    pub fn time(t: OffsetDateTime) -> String {
        t.replace_nanosecond(0)
            .unwrap_or(t)
            .format(&Rfc3339)
            .unwrap_or_default()
    }

    pub fn parsed_time(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(&self.event_time, &Rfc3339).ok()
    }

    /// The account whose trail the record belongs to.
    pub fn account(&self) -> &str {
        &self.recipient_account_id
    }
}

/// A fresh event id (a UUID, as CloudTrail's).
pub fn event_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// Builds request parameters from (name, value) pairs, skipping absent ones.
pub fn params<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<Value>)>) -> Option<Value> {
    let m: BTreeMap<&str, Value> = pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    if m.is_empty() {
        None
    } else {
        serde_json::to_value(m).ok()
    }
}
