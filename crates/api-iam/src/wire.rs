//! IAM's and STS's XML: responses `<OpResponse xmlns=...><OpResult>...</OpResult>
//! <ResponseMetadata><RequestId/></ResponseMetadata></OpResponse>` and errors
//! `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.

use coffer_iam::{AccessKeyInfo, UserInfo};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Builds a run of child elements.
#[derive(Default)]
pub struct Xml(String);

impl Xml {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.0 += &format!("<{name}>{}</{name}>", escape(value));
        self
    }

    /// An element whose content is already XML.
    pub fn raw(mut self, name: &str, xml: &str) -> Self {
        self.0 += &format!("<{name}>{xml}</{name}>");
        self
    }

    pub fn done(self) -> String {
        self.0
    }
}

pub fn member_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("<member>{i}</member>"))
        .collect()
}

pub fn iso(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// IAM returns policy documents URL-encoded (RFC 3986), as AWS does.
pub fn url_encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

pub fn user(u: &UserInfo) -> String {
    Xml::new()
        .text("Path", &u.path)
        .text("UserName", &u.name)
        .text("UserId", &u.user_id)
        .text("Arn", &u.arn)
        .text("CreateDate", &iso(u.created))
        .done()
}

pub fn access_key(k: &AccessKeyInfo) -> String {
    let mut x = Xml::new();
    if let Some(u) = &k.user_name {
        x = x.text("UserName", u);
    }
    x.text("AccessKeyId", &k.access_key_id)
        .text("Status", &k.status)
        .text("CreateDate", &iso(k.created))
        .done()
}

fn namespace(service: &str) -> &'static str {
    if service == "sts" { STS_NS } else { IAM_NS }
}

pub fn response(service: &str, op: &str, result: &str, request_id: &str) -> String {
    let result = if result.is_empty() {
        String::new()
    } else {
        format!("<{op}Result>{result}</{op}Result>")
    };
    format!(
        "<{op}Response xmlns=\"{}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{op}Response>",
        namespace(service),
        escape(request_id)
    )
}

pub fn error_body(service: &str, code: &str, message: &str, request_id: &str) -> String {
    let kind = if matches!(code, "ServiceFailure") {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<ErrorResponse xmlns=\"{}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        namespace(service),
        escape(code),
        escape(message),
        escape(request_id)
    )
}

/// The operations served, as `'static` names for the request context.
pub fn operation_name(action: &str) -> &'static str {
    OPERATIONS
        .iter()
        .copied()
        .find(|o| *o == action)
        .unwrap_or("Unknown")
}

const OPERATIONS: &[&str] = &[
    "CreateAccessKey",
    "CreateAccount",
    "DeleteAccount",
    "ListAccounts",
    "CreateUser",
    "DeleteAccessKey",
    "DeleteUser",
    "DeleteUserPolicy",
    "GetCallerIdentity",
    "GetUser",
    "GetUserPolicy",
    "ListAccessKeys",
    "ListUserPolicies",
    "ListUsers",
    "PutUserPolicy",
    "UpdateAccessKey",
];
