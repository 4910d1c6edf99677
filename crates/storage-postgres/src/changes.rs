//! Change notices between the nodes that share a database: a change to state the nodes
//! cache (KMS keys, the IAM directory, bucket settings) notifies the deployment's channel
//! inside the transaction that makes it (a trigger, schema version 3), and every node
//! drops or reloads its cached copy on receipt ([`PgStore::listen_changes`], [`Change`]).
//! PostgreSQL's LISTEN/NOTIFY delivers in milliseconds, only what committed.
//!
//! Each deployment (schema) has its own channel, `coffer_` and 16 hex digits of the MD5 of
//! the schema's name, so deployments sharing a database do not hear each other.
//!
//! A listener holds a connection of its own (with TCP keepalives). When that connection ends (the database
//! restarted, the network failed), [`Listener::next`] returns `None`: from then on the
//! node cannot know what others changed, and must stop trusting its caches.

use coffer_storage::{Error, Result};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;

use crate::{PgStore, backend};

/// One notice: which channel, and what changed (a key id, a bucket name, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub channel: String,
    pub payload: String,
}

/// The notices of the channels listened to, in the order they were committed.
pub struct Listener {
    notices: mpsc::UnboundedReceiver<Notice>,
    // Keeps the session (and so its LISTENs) alive.
    _client: tokio_postgres::Client,
    connection: JoinHandle<()>,
    backend_pid: i32,
}

/// What a change notice says changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A KMS key: its document or its materials.
    KmsKey(String),
    KmsAlias {
        account: String,
        name: String,
    },
    /// An IAM entity of an account.
    Iam(String),
    /// A bucket or one of its settings.
    Bucket(String),
    /// A setting of an account.
    Account(String),
    /// A notice this release does not know (a newer node's): drop every cache.
    Unknown(String),
}

impl Change {
    pub fn parse(payload: &str) -> Self {
        let unknown = || Change::Unknown(payload.to_owned());
        let Some((kind, id)) = payload.split_once(':') else {
            return unknown();
        };
        match kind {
            "kms_key" => Change::KmsKey(id.to_owned()),
            "kms_alias" => match id.split_once(':') {
                Some((account, name)) => Change::KmsAlias {
                    account: account.to_owned(),
                    name: name.to_owned(),
                },
                None => unknown(),
            },
            "iam" => Change::Iam(id.to_owned()),
            "bucket" => Change::Bucket(id.to_owned()),
            "account" => Change::Account(id.to_owned()),
            _ => unknown(),
        }
    }
}

/// Channel names are identifiers of our own: lower-case letters, digits and `_`.
fn check_channel(channel: &str) -> Result<()> {
    let ok = !channel.is_empty()
        && channel.len() <= 63
        && channel
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Backend(format!(
            "invalid notice channel {channel:?}"
        )))
    }
}

impl PgStore {
    /// Publishes a notice; it reaches listeners when the surrounding statement commits.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        check_channel(channel)?;
        let client = self.client().await?;
        client
            .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Listens to the deployment's change notices (payloads parse as [`Change`]).
    pub async fn listen_changes(&self) -> Result<Listener> {
        let channel = self.channel.clone();
        self.listen(&[&channel]).await
    }

    /// Listens on `channels` with a connection of its own.
    pub async fn listen(&self, channels: &[&str]) -> Result<Listener> {
        for c in channels {
            check_channel(c)?;
        }
        // Named, so that an operator can tell the listeners in pg_stat_activity.
        let mut config = self.config.clone();
        config.application_name("coffer-changes");
        let (client, mut conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(backend)?;
        let (tx, notices) = mpsc::unbounded_channel();
        // Driving the connection delivers both the replies to `client` and the notices.
        let connection = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        let notice = Notice {
                            channel: n.channel().to_owned(),
                            payload: n.payload().to_owned(),
                        };
                        if tx.send(notice).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "the change-notice connection ended");
                        return;
                    }
                    None => return,
                }
            }
        });
        for c in channels {
            client
                .batch_execute(&format!("LISTEN \"{c}\""))
                .await
                .map_err(backend)?;
        }
        let backend_pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(backend)?
            .get(0);
        Ok(Listener {
            notices,
            _client: client,
            connection,
            backend_pid,
        })
    }
}

impl Listener {
    /// The next notice; `None` once the connection has ended.
    pub async fn next(&mut self) -> Option<Notice> {
        self.notices.recv().await
    }

    /// The server process of this listener's session (for operators, and tests).
    pub fn backend_pid(&self) -> i32 {
        self.backend_pid
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn payloads_parse_as_changes() {
        assert_eq!(Change::parse("kms_key:1234"), Change::KmsKey("1234".into()));
        assert_eq!(
            Change::parse("kms_alias:111122223333:alias/a:b"),
            Change::KmsAlias {
                account: "111122223333".into(),
                name: "alias/a:b".into()
            }
        );
        assert_eq!(Change::parse("bucket:b"), Change::Bucket("b".into()));
        assert_eq!(Change::parse("iam:1"), Change::Iam("1".into()));
        assert_eq!(Change::parse("account:1"), Change::Account("1".into()));
        for odd in ["", "kms_alias:x", "later:x"] {
            assert_eq!(Change::parse(odd), Change::Unknown(odd.into()));
        }
    }

    #[test]
    fn channels_are_plain_identifiers() {
        assert!(super::check_channel("kms_keys").is_ok());
        for bad in ["", "Kms", "a\"; DROP TABLE iam; --", &"x".repeat(64)] {
            assert!(super::check_channel(bad).is_err(), "{bad}");
        }
    }
}
