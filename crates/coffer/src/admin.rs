//! `coffer account ...` and `coffer root-key ...`: administration of a running server. Requests go to
//! the IAM endpoint (Coffer's own `CreateAccount`, `ListAccounts`, `DeleteAccount`
//! actions), SigV4-signed with the operator's credentials; replies are printed as JSON.

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use coffer_sigv4::{CanonicalInput, Scope};

use crate::cli::{AccountArgs, AccountCommand, RootKeyCommand, RootKeyCommandArgs, ServerArgs};
use crate::identity::{ENV_ACCESS_KEY, ENV_SECRET_KEY};

/// The operator's client, credentials from the environment.
fn operator(server: ServerArgs) -> anyhow::Result<Client> {
    let access = std::env::var(ENV_ACCESS_KEY)
        .ok()
        .filter(|v| !v.is_empty())
        .with_context(|| format!("{ENV_ACCESS_KEY} must hold the operator's access key id"))?;
    let secret = std::env::var(ENV_SECRET_KEY)
        .ok()
        .filter(|v| !v.is_empty())
        .with_context(|| format!("{ENV_SECRET_KEY} must hold the operator's secret key"))?;
    Ok(Client {
        endpoint: server.endpoint().trim_end_matches('/').to_owned(),
        region: server.region,
        access,
        secret: zeroize::Zeroizing::new(secret),
    })
}

/// Runs one `coffer root-key` command and returns what to print.
pub async fn root_key(args: RootKeyCommandArgs) -> anyhow::Result<String> {
    let client = operator(args.server)?;
    let out = match args.command {
        RootKeyCommand::Rotate => {
            let x = client.call(&[("Action", "RotateRootKey")]).await?;
            json!({
                "OldRootKey": tag(&x, "OldRootKey")?,
                "NewRootKey": tag(&x, "NewRootKey")?,
                "KeyMaterialsRewrapped": tag(&x, "KeyMaterialsRewrapped")?.parse::<u64>()?,
                "SecretsRewrapped": tag(&x, "SecretsRewrapped")?.parse::<u64>()?,
                "Retired": tag(&x, "Retired")?,
            })
        }
        RootKeyCommand::DestroyRetired => {
            let x = client.call(&[("Action", "DestroyRetiredRootKeys")]).await?;
            let gone: Vec<String> = members(&x)
                .iter()
                .map(|m| tag(m, "Key"))
                .collect::<anyhow::Result<_>>()?;
            json!({ "Destroyed": gone })
        }
    };
    Ok(serde_json::to_string_pretty(&out)?)
}

/// Runs one `coffer account` command and returns what to print.
pub async fn run(args: AccountArgs) -> anyhow::Result<String> {
    let client = operator(args.server)?;
    let out = match args.command {
        AccountCommand::Create { name } => {
            let x = client
                .call(&[("Action", "CreateAccount"), ("AccountName", &name)])
                .await?;
            json!({
                "AccountId": tag(&x, "AccountId")?,
                "Name": tag(&x, "Name")?,
                "AccessKeyId": tag(&x, "AccessKeyId")?,
                "SecretAccessKey": tag(&x, "SecretAccessKey")?,
            })
        }
        AccountCommand::List => {
            let x = client.call(&[("Action", "ListAccounts")]).await?;
            let accounts: Vec<Value> = members(&x)
                .iter()
                .map(|m| {
                    Ok(json!({
                        "AccountId": tag(m, "AccountId")?,
                        "Name": tag(m, "Name")?,
                        "CanonicalUserId": tag(m, "CanonicalUserId")?,
                        "CreateDate": tag(m, "CreateDate")?,
                    }))
                })
                .collect::<anyhow::Result<_>>()?;
            json!({ "Accounts": accounts })
        }
        AccountCommand::Delete { account_id } => {
            client
                .call(&[("Action", "DeleteAccount"), ("AccountId", &account_id)])
                .await?;
            json!({ "Deleted": account_id })
        }
    };
    Ok(serde_json::to_string_pretty(&out)?)
}

struct Client {
    endpoint: String,
    region: String,
    access: String,
    secret: zeroize::Zeroizing<String>,
}

impl Client {
    /// POSTs a form to `/` signed for `iam`; returns the XML reply or the server's error.
    async fn call(&self, params: &[(&str, &str)]) -> anyhow::Result<String> {
        let Some(rest) = self.endpoint.strip_prefix("http://") else {
            bail!(
                "--endpoint must be an http:// URL (the admin commands do not speak TLS yet): {}",
                self.endpoint
            );
        };
        let host = rest.split('/').next().unwrap_or(rest).to_owned();
        let mut body = String::from("Version=2010-05-08");
        for (k, v) in params {
            body.push('&');
            body.push_str(&coffer_sigv4::uri_encode(k, true));
            body.push('=');
            body.push_str(&coffer_sigv4::uri_encode(v, true));
        }
        let scope = Scope {
            access_key_id: &self.access,
            secret_access_key: &self.secret,
            region: &self.region,
            service: "iam",
            time: time::OffsetDateTime::now_utc(),
        };
        let payload_hash = coffer_sigv4::sha256_hex(body.as_bytes());
        let headers: Vec<(String, String)> = vec![
            ("host".into(), host.clone()),
            (
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            ),
            ("x-amz-date".into(), scope.amz_date()),
        ];
        let auth = coffer_sigv4::authorization_header(
            &scope,
            &CanonicalInput {
                method: "POST",
                canonical_uri: "/",
                query: &[],
                headers: &headers,
                payload_hash: &payload_hash,
            },
        );
        let mut req = http::Request::builder().method("POST").uri("/");
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .header("authorization", auth)
            .body(Full::new(Bytes::from(body)))?;
        let stream = tokio::net::TcpStream::connect(&host)
            .await
            .with_context(|| format!("cannot connect to {}", self.endpoint))?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let resp = send.send_request(req).await?;
        let status = resp.status();
        let text =
            String::from_utf8_lossy(&resp.into_body().collect().await?.to_bytes()).into_owned();
        if !status.is_success() {
            let code = tag(&text, "Code").unwrap_or_default();
            let message = tag(&text, "Message").unwrap_or_default();
            bail!("{code}: {message} (HTTP {status})");
        }
        Ok(text)
    }
}

/// The text of the first `<name>` element (the replies hold only escaped text, no CDATA).
fn tag(xml: &str, name: &str) -> anyhow::Result<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml
        .find(&open)
        .map(|i| i + open.len())
        .with_context(|| format!("the reply has no {name}"))?;
    let end = xml[start..]
        .find(&close)
        .map(|i| start + i)
        .with_context(|| format!("the reply's {name} is not closed"))?;
    Ok(unescape(&xml[start..end]))
}

fn members(xml: &str) -> Vec<&str> {
    xml.split("<member>")
        .skip(1)
        .filter_map(|m| m.split("</member>").next())
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_members_are_read_from_replies() {
        let x = "<R><Accounts><member><AccountId>1</AccountId><Name>a&amp;b</Name></member><member><AccountId>2</AccountId></member></Accounts></R>";
        let m = members(x);
        assert_eq!(m.len(), 2);
        assert_eq!(tag(m[0], "Name").expect("name"), "a&b");
        assert_eq!(tag(m[1], "AccountId").expect("id"), "2");
        assert!(tag(m[1], "Name").is_err());
    }
}
