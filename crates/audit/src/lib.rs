//! Audit: one CloudTrail [`record::Record`] per API call (and one per KMS call a service
//! made for a caller, and per background KMS action), written to a tamper-evident
//! [`trail::Trail`].
//!
//! The request context is created by the front dispatcher for every request (request id,
//! source IP, user agent, TLS) and filled in by the protocol layers once they know the
//! principal, the operation and its parameters; the dispatcher turns it into an [`Event`]
//! when the response is ready and hands it to a [`Sink`]. Invariant: events carry
//! identifiers, names, outcomes and the request parameters an API layer chose to expose,
//! never secret keys, plaintext or data keys: the types that hold those implement neither
//! `Serialize` nor `Display`, and a test scans the trail for the secrets it used.

pub mod record;
pub mod trail;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use serde_json::{Value, json};
use time::OffsetDateTime;

use record::{EVENT_VERSION, Record, Resource, TlsDetails, UserIdentity};

/// Who made a call, as the audit trail names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `Root`, `IAMUser`, `AssumedRole`.
    pub kind: &'static str,
    pub arn: String,
    pub account_id: String,
    pub principal_id: String,
    pub access_key_id: String,
    pub user_name: Option<String>,
    /// For a role session: the role's ARN.
    pub session_issuer: Option<String>,
}

/// A KMS call one service made for the caller while serving its request (S3's
/// GenerateDataKey on an SSE-KMS PUT, Decrypt on a GET).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsUse {
    pub operation: &'static str,
    pub key_arn: String,
    pub encryption_context: BTreeMap<String, String>,
    pub error_code: Option<String>,
    pub time: OffsetDateTime,
}

/// Facts about one request, shared by every layer it passes through.
#[derive(Debug)]
pub struct RequestContext {
    pub request_id: String,
    pub source: Option<SocketAddr>,
    pub user_agent: Option<String>,
    pub tls: bool,
    pub received: OffsetDateTime,
    filled: Mutex<Filled>,
}

/// What the protocol layers learn while handling the request.
#[derive(Debug, Default, Clone)]
pub struct Filled {
    pub identity: Option<Identity>,
    /// The API's event source (`s3.amazonaws.com`).
    pub service: Option<&'static str>,
    /// The operation name, as AWS spells it (`PutObject`).
    pub operation: Option<&'static str>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The object version the request names (S3's `versionId`).
    pub version_id: Option<String>,
    /// Whether the operation only reads (CloudTrail's `readOnly`), as the API's operation
    /// enum says; unset (a call refused before its operation was known) counts as false.
    pub read_only: Option<bool>,
    /// S3 object-level operations are data events; everything else is management.
    pub data_event: bool,
    pub request_parameters: Option<Value>,
    pub response_elements: Option<Value>,
    pub resources: Vec<Resource>,
    pub error_message: Option<String>,
    pub host: Option<String>,
    pub kms_uses: Vec<KmsUse>,
    /// The account whose trail records the call when the caller has none of its own (an
    /// anonymous request: the bucket owner, CloudTrail's `recipientAccountId`).
    pub recipient_account: Option<String>,
}

impl RequestContext {
    pub fn new(
        request_id: String,
        source: Option<SocketAddr>,
        user_agent: Option<String>,
        tls: bool,
    ) -> Self {
        Self {
            request_id,
            source,
            user_agent,
            tls,
            received: OffsetDateTime::now_utc(),
            filled: Mutex::new(Filled::default()),
        }
    }

    /// Records what the protocol layer learned.
    pub fn fill(&self, f: impl FnOnce(&mut Filled)) {
        let mut g = self.filled.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g);
    }

    pub fn filled(&self) -> Filled {
        self.filled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records a KMS call made for this request's caller.
    pub fn kms_use(&self, u: KmsUse) {
        self.fill(|f| f.kms_uses.push(u));
    }
}

/// One audited call.
#[derive(Debug, Clone)]
pub struct Event {
    pub request_id: String,
    pub time: OffsetDateTime,
    pub source: Option<SocketAddr>,
    pub user_agent: Option<String>,
    pub tls: bool,
    pub who: Filled,
    pub status: u16,
    /// The AWS error code, when the call failed.
    pub error_code: Option<String>,
}

impl Event {
    pub fn from_context(cx: &RequestContext, status: u16, error_code: Option<String>) -> Self {
        Self {
            request_id: cx.request_id.clone(),
            time: cx.received,
            source: cx.source,
            user_agent: cx.user_agent.clone(),
            tls: cx.tls,
            who: cx.filled(),
            status,
            error_code,
        }
    }

    /// Whether the response must wait until the event is durable: management calls (KMS
    /// key management, IAM changes, bucket configuration) that are not read-only.
    pub fn needs_durability(&self) -> bool {
        !self.who.data_event && !self.read_only()
    }

    /// Whether the call only read, as its protocol's operation says (each API fills it
    /// from its closed operation enum); a call that failed before its operation was known
    /// counts as not read-only.
    fn read_only(&self) -> bool {
        self.who.read_only.unwrap_or(false)
    }

    /// The event's CloudTrail records: the call itself, then one per KMS call a service
    /// made for it (linked by `additionalEventData.causedByEventId`).
    pub fn records(&self, region: &str, operator_account: &str) -> Vec<Record> {
        let w = &self.who;
        let identity = match &w.identity {
            Some(i) => user_identity(i, None),
            None => UserIdentity {
                kind: "Unknown".into(),
                ..UserIdentity::default()
            },
        };
        let account = w
            .recipient_account
            .clone()
            .or_else(|| w.identity.as_ref().map(|i| i.account_id.clone()))
            .unwrap_or_else(|| operator_account.to_owned());
        // A call to another account's resource is that account's record (CloudTrail
        // delivers it to both; Coffer files it under the caller and names the owner).
        let source = self
            .source
            .map(|s| s.ip().to_string())
            .unwrap_or_else(|| "127.0.0.1".into());
        let event_source = w.service.unwrap_or("s3.amazonaws.com");
        let mut resources = w.resources.clone();
        if resources.is_empty()
            && let Some(b) = &w.bucket
        {
            resources.push(Resource {
                arn: format!("arn:aws:s3:::{b}"),
                account_id: None,
                kind: "AWS::S3::Bucket".into(),
            });
            if let Some(k) = &w.key {
                resources.push(Resource {
                    arn: format!("arn:aws:s3:::{b}/{k}"),
                    account_id: None,
                    kind: "AWS::S3::Object".into(),
                });
            }
        }
        let request_parameters = w.request_parameters.clone().or_else(|| {
            w.bucket.as_ref().map(|b| {
                let mut p = json!({ "bucketName": b });
                if let Some(k) = &w.key {
                    p["key"] = json!(k);
                }
                if let Some(v) = &w.version_id {
                    p["versionId"] = json!(v);
                }
                if let Some(h) = &w.host {
                    p["Host"] = json!(h);
                }
                p
            })
        });
        let main = Record {
            event_version: EVENT_VERSION.into(),
            user_identity: identity,
            event_time: Record::time(self.time),
            event_source: event_source.into(),
            event_name: w.operation.unwrap_or("Unknown").into(),
            aws_region: region.into(),
            source_ip_address: source.clone(),
            user_agent: self.user_agent.clone(),
            error_code: self.error_code.clone(),
            error_message: self
                .error_code
                .as_ref()
                .map(|_| w.error_message.clone().unwrap_or_default()),
            request_parameters,
            response_elements: if self.error_code.is_some() {
                None
            } else {
                w.response_elements.clone()
            },
            additional_event_data: None,
            request_id: Some(self.request_id.clone()),
            event_id: record::event_id(),
            read_only: self.read_only(),
            resources,
            event_type: "AwsApiCall".into(),
            management_event: !w.data_event,
            recipient_account_id: account.clone(),
            shared_event_id: None,
            event_category: if w.data_event { "Data" } else { "Management" }.into(),
            tls_details: self.tls.then(|| TlsDetails {
                tls_version: "TLSv1.3".into(),
                cipher_suite: "TLS_AES_128_GCM_SHA256".into(),
                client_provided_host_header: w.host.clone(),
            }),
        };
        let mut out = Vec::with_capacity(1 + w.kms_uses.len());
        for u in &w.kms_uses {
            let ident = w
                .identity
                .as_ref()
                .map(|i| user_identity(i, Some(event_source)))
                .unwrap_or_default();
            let key_account = u.key_arn.split(':').nth(4).unwrap_or(&account).to_owned();
            out.push(Record {
                event_version: EVENT_VERSION.into(),
                user_identity: ident,
                event_time: Record::time(u.time),
                event_source: "kms.amazonaws.com".into(),
                event_name: u.operation.into(),
                aws_region: region.into(),
                source_ip_address: event_source.into(),
                user_agent: Some(event_source.into()),
                error_code: u.error_code.clone(),
                error_message: None,
                request_parameters: Some(json!({
                    "keyId": u.key_arn,
                    "encryptionContext": u.encryption_context,
                    "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                })),
                response_elements: None,
                additional_event_data: Some(json!({
                    "causedByEventId": main.event_id,
                    "causedByRequestId": self.request_id,
                    "causedByEventName": main.event_name,
                })),
                request_id: Some(self.request_id.clone()),
                event_id: record::event_id(),
                read_only: true,
                resources: vec![Resource {
                    arn: u.key_arn.clone(),
                    account_id: Some(key_account.clone()),
                    kind: "AWS::KMS::Key".into(),
                }],
                event_type: "AwsApiCall".into(),
                management_event: true,
                recipient_account_id: account.clone(),
                shared_event_id: (key_account != account).then(record::event_id),
                event_category: "Management".into(),
                tls_details: None,
            });
        }
        out.insert(0, main);
        out
    }
}

fn user_identity(i: &Identity, invoked_by: Option<&str>) -> UserIdentity {
    UserIdentity {
        kind: i.kind.into(),
        principal_id: Some(i.principal_id.clone()),
        // An anonymous caller has neither (CloudTrail leaves them out).
        arn: (!i.arn.is_empty()).then(|| i.arn.clone()),
        account_id: Some(i.account_id.clone()),
        access_key_id: (!i.access_key_id.is_empty()).then(|| i.access_key_id.clone()),
        user_name: i.user_name.clone(),
        invoked_by: invoked_by.map(str::to_owned),
        session_context: i.session_issuer.as_ref().map(|role| {
            json!({
                "sessionIssuer": {
                    "type": "Role",
                    "arn": role,
                    "accountId": i.account_id,
                    "userName": role.rsplit('/').next().unwrap_or(role),
                },
            })
        }),
    }
}

/// A background action of a service (automatic key rotation, deletion at the end of the
/// pending window): an `AwsServiceEvent` record.
pub fn service_event(
    region: &str,
    source: &str,
    name: &str,
    account: &str,
    resource: Resource,
    detail: Value,
) -> Record {
    Record {
        event_version: EVENT_VERSION.into(),
        user_identity: UserIdentity {
            kind: "AWSService".into(),
            invoked_by: Some(source.into()),
            ..UserIdentity::default()
        },
        event_time: Record::time(OffsetDateTime::now_utc()),
        event_source: source.into(),
        event_name: name.into(),
        aws_region: region.into(),
        source_ip_address: source.into(),
        user_agent: Some(source.into()),
        error_code: None,
        error_message: None,
        request_parameters: None,
        response_elements: None,
        additional_event_data: Some(detail),
        request_id: None,
        event_id: record::event_id(),
        read_only: false,
        resources: vec![resource],
        event_type: "AwsServiceEvent".into(),
        management_event: true,
        recipient_account_id: account.into(),
        shared_event_id: None,
        event_category: "Management".into(),
        tls_details: None,
    }
}

/// Where events go. `record` returns a receiver that fires once the event is durable
/// when [`Event::needs_durability`] (the dispatcher waits for it before answering).
pub trait Sink: Send + Sync + 'static {
    fn record(&self, event: Event) -> Option<tokio::sync::oneshot::Receiver<()>>;

    /// Records a background service event.
    fn service(&self, record: Record);
}

/// Discards events (for tests of other layers).
#[derive(Debug, Default)]
pub struct NoopSink;

impl Sink for NoopSink {
    fn record(&self, _event: Event) -> Option<tokio::sync::oneshot::Receiver<()>> {
        None
    }

    fn service(&self, _record: Record) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_fills_into_records_with_linked_kms_uses() {
        let cx = RequestContext::new("REQ1".into(), None, Some("aws-cli".into()), false);
        cx.fill(|f| {
            f.service = Some("s3.amazonaws.com");
            f.operation = Some("PutObject");
            f.bucket = Some("b".into());
            f.key = Some("k".into());
            f.data_event = true;
            f.identity = Some(Identity {
                kind: "IAMUser",
                arn: "arn:aws:iam::111122223333:user/alice".into(),
                account_id: "111122223333".into(),
                principal_id: "AIDAEXAMPLE".into(),
                access_key_id: "AKIAEXAMPLE".into(),
                user_name: Some("alice".into()),
                session_issuer: None,
            });
        });
        cx.kms_use(KmsUse {
            operation: "GenerateDataKey",
            key_arn: "arn:aws:kms:us-east-1:111122223333:key/k1".into(),
            encryption_context: [("aws:s3:arn".to_owned(), "arn:aws:s3:::b/k".to_owned())].into(),
            error_code: None,
            time: OffsetDateTime::now_utc(),
        });
        let e = Event::from_context(&cx, 200, None);
        assert!(!e.needs_durability());
        let r = e.records("us-east-1", "999999999999");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].event_name, "PutObject");
        assert_eq!(r[0].event_category, "Data");
        assert_eq!(r[0].recipient_account_id, "111122223333");
        assert_eq!(r[1].event_source, "kms.amazonaws.com");
        assert_eq!(
            r[1].user_identity.invoked_by.as_deref(),
            Some("s3.amazonaws.com")
        );
        assert_eq!(
            r[1].additional_event_data
                .as_ref()
                .and_then(|d| d["causedByEventId"].as_str()),
            Some(r[0].event_id.as_str())
        );
        let json = serde_json::to_value(&r[0]).expect("json");
        assert_eq!(json["sourceIPAddress"], "127.0.0.1");
        assert_eq!(json["eventVersion"], "1.11");
        assert_eq!(json["requestParameters"]["bucketName"], "b");
    }
}
