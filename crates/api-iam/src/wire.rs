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

pub fn policy(p: &coffer_iam::PolicyInfo) -> String {
    let mut x = Xml::new()
        .text("PolicyName", &p.name)
        .text("PolicyId", &p.policy_id)
        .text("Arn", &p.arn)
        .text("Path", &p.path)
        .text("DefaultVersionId", &p.default_version)
        .text("AttachmentCount", &p.attachment_count.to_string())
        .text("PermissionsBoundaryUsageCount", "0")
        .text("IsAttachable", "true");
    if let Some(d) = &p.description {
        x = x.text("Description", d);
    }
    x.text("CreateDate", &iso(p.created))
        .text("UpdateDate", &iso(p.updated))
        .done()
}

pub fn policy_version(v: &coffer_iam::PolicyVersion) -> String {
    Xml::new()
        .text("Document", &url_encode(&v.document))
        .text("VersionId", &v.version_id)
        .text(
            "IsDefaultVersion",
            if v.is_default { "true" } else { "false" },
        )
        .text("CreateDate", &iso(v.created))
        .done()
}

pub fn group(g: &coffer_iam::GroupInfo) -> String {
    Xml::new()
        .text("Path", &g.path)
        .text("GroupName", &g.name)
        .text("GroupId", &g.group_id)
        .text("Arn", &g.arn)
        .text("CreateDate", &iso(g.created))
        .done()
}

pub fn role(r: &coffer_iam::RoleInfo) -> String {
    let mut x = Xml::new()
        .text("Path", &r.path)
        .text("RoleName", &r.name)
        .text("RoleId", &r.role_id)
        .text("Arn", &r.arn)
        .text("CreateDate", &iso(r.created))
        .text("AssumeRolePolicyDocument", &url_encode(&r.trust_policy));
    if let Some(d) = &r.description {
        x = x.text("Description", d);
    }
    x.text("MaxSessionDuration", &r.max_session_secs.to_string())
        .done()
}

pub fn attached(list: &[coffer_iam::Attached]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|(name, arn)| {
            Xml::new()
                .text("PolicyName", name)
                .text("PolicyArn", arn)
                .done()
        })
        .collect();
    Xml::new()
        .raw("AttachedPolicies", &member_list(&items))
        .text("IsTruncated", "false")
        .done()
}

pub fn names(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|n| escape(n)).collect();
    Xml::new()
        .raw("PolicyNames", &member_list(&items))
        .text("IsTruncated", "false")
        .done()
}
