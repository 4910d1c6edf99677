//! `coffer account ...` and `coffer root-key ...`: administration of a running server. Requests go to
//! the IAM endpoint (Coffer's own `CreateAccount`, `ListAccounts`, `DeleteAccount`
//! actions), SigV4-signed with the operator's credentials; replies are printed as JSON.

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use coffer_sigv4::{CanonicalInput, Scope};

use crate::cli::{
    AccountArgs, AccountCommand, ClockCommand, ClockCommandArgs, RootKeyCommand,
    RootKeyCommandArgs, ServerArgs,
};
use crate::identity::{ENV_ACCESS_KEY, ENV_SECRET_KEY};

/// The operator's client, credentials from the environment: COFFER_ROOT_ACCESS_KEY_ID and
/// COFFER_ROOT_SECRET_ACCESS_KEY, else (a `--dev` server takes any key as its operator)
/// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
fn operator(server: ServerArgs) -> anyhow::Result<Client> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (access, secret) = match (var(ENV_ACCESS_KEY), var(ENV_SECRET_KEY)) {
        (Some(a), Some(s)) => (a, s),
        (None, None) => match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(a), Some(s)) => (a, s),
            _ => bail!(
                "{ENV_ACCESS_KEY} and {ENV_SECRET_KEY} must hold the operator's access key id and secret"
            ),
        },
        (None, _) => bail!("{ENV_ACCESS_KEY} must hold the operator's access key id"),
        (_, None) => bail!("{ENV_SECRET_KEY} must hold the operator's secret key"),
    };
    Ok(Client {
        endpoint: server.endpoint().trim_end_matches('/').to_owned(),
        ca_bundle: server.ca_bundle.filter(|p| !p.as_os_str().is_empty()),
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

/// Runs one `coffer clock` command and returns what to print.
pub async fn clock(args: ClockCommandArgs) -> anyhow::Result<String> {
    let client = operator(args.server)?;
    let x = match &args.command {
        ClockCommand::Show => client.call(&[("Action", "GetClock")]).await?,
        ClockCommand::Advance { by } => {
            client
                .call(&[("Action", "AdvanceClock"), ("By", by)])
                .await?
        }
    };
    let out = json!({
        "Now": tag(&x, "Now")?,
        "SystemTime": tag(&x, "SystemTime")?,
        "OffsetSeconds": tag(&x, "OffsetSeconds")?.parse::<i64>()?,
    });
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
    /// The certificates an https:// endpoint is checked against, else the system's.
    ca_bundle: Option<std::path::PathBuf>,
    region: String,
    access: String,
    secret: zeroize::Zeroizing<String>,
}

impl Client {
    /// POSTs a form to `/` signed for `iam`; returns the XML reply or the server's error.
    async fn call(&self, params: &[(&str, &str)]) -> anyhow::Result<String> {
        let (tls, rest) = match (
            self.endpoint.strip_prefix("https://"),
            self.endpoint.strip_prefix("http://"),
        ) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            _ => bail!(
                "--endpoint must be an http:// or https:// URL: {}",
                self.endpoint
            ),
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
        let (name, port) = split_host(&host, if tls { 443 } else { 80 })?;
        let stream = tokio::net::TcpStream::connect((name.as_str(), port))
            .await
            .with_context(|| format!("cannot connect to {}", self.endpoint))?;
        let resp = if tls {
            let server_name = rustls_pki_types::ServerName::try_from(name.clone())
                .with_context(|| format!("{name} is not a host name TLS can check"))?;
            let stream = self
                .tls()?
                .connect(server_name, stream)
                .await
                .with_context(|| format!("TLS with {} failed", self.endpoint))?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            send.send_request(req).await?
        } else {
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            send.send_request(req).await?
        };
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

/// The host (without brackets) and port of an endpoint's `HOST[:PORT]`.
fn split_host(host: &str, default_port: u16) -> anyhow::Result<(String, u16)> {
    if let Some(v6) = host.strip_prefix('[') {
        let (addr, rest) = v6
            .split_once(']')
            .with_context(|| format!("malformed host {host}"))?;
        let port = match rest.strip_prefix(':') {
            Some(p) => p
                .parse()
                .with_context(|| format!("malformed port in {host}"))?,
            None => default_port,
        };
        return Ok((addr.to_owned(), port));
    }
    match host.rsplit_once(':') {
        Some((name, p)) => Ok((
            name.to_owned(),
            p.parse()
                .with_context(|| format!("malformed port in {host}"))?,
        )),
        None => Ok((host.to_owned(), default_port)),
    }
}

impl Client {
    /// The TLS client: the certificates of `ca_bundle`, else the system's.
    fn tls(&self) -> anyhow::Result<tokio_rustls::TlsConnector> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        let mut pinned = Vec::new();
        match &self.ca_bundle {
            Some(path) => {
                for cert in CertificateDer::pem_file_iter(path)
                    .with_context(|| format!("reading {}", path.display()))?
                {
                    let cert = cert.with_context(|| format!("parsing {}", path.display()))?;
                    // A self-signed server certificate (openssl's default makes it a CA
                    // too, which WebPKI refuses as a server's) is trusted as itself.
                    pinned.push(cert.clone().into_owned());
                    roots
                        .add(cert)
                        .with_context(|| format!("a certificate in {}", path.display()))?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    // One unusable system certificate is no reason to trust none.
                    let _ = roots.add(cert);
                }
            }
        }
        anyhow::ensure!(
            !roots.is_empty(),
            "no certificate to check the server's against"
        );
        let provider =
            std::sync::Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let webpki = tokio_rustls::rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider.clone(),
        )
        .build()
        .context("the TLS certificate verifier")?;
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(Pinned { pinned, webpki }))
            .with_no_client_auth();
        Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
            config,
        )))
    }
}

/// WebPKI's check of the server's certificate, except that a certificate given in the CA
/// bundle itself is trusted as it is, for the server's name it names (its dates are not
/// checked: the operator vouched for exactly that certificate). Signatures of the
/// handshake are always checked.
#[derive(Debug)]
struct Pinned {
    pinned: Vec<rustls_pki_types::CertificateDer<'static>>,
    webpki: std::sync::Arc<tokio_rustls::rustls::client::WebPkiServerVerifier>,
}

impl tokio_rustls::rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        intermediates: &[rustls_pki_types::CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<tokio_rustls::rustls::client::danger::ServerCertVerified, tokio_rustls::rustls::Error>
    {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(e)
                if self
                    .pinned
                    .iter()
                    .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                // Still only for a name the certificate holds.
                let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|_| e.clone())?;
                cert.verify_is_valid_for_subject_name(server_name)
                    .map_err(|_| e)?;
                Ok(tokio_rustls::rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<tokio_rustls::rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
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
