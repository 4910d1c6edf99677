//! The command line. Every `serve` flag can also be set by an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "coffer",
    version,
    about = "S3-compatible object store with a built-in KMS"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Work with the audit trail of a data directory.
    Audit(AuditArgs),
    /// Requests per account, service, operation and KMS key in a time range, read from
    /// the audit trail of a data directory (a table, or JSON with --json).
    Usage {
        #[arg(long, env = "COFFER_DATA_DIR", default_value = "./coffer-data")]
        data_dir: PathBuf,
        /// RFC 3339, e.g. 2026-11-01T00:00:00Z.
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        end: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Manage accounts (tenants) on a running server, with the operator's credentials
    /// from COFFER_ROOT_ACCESS_KEY_ID / COFFER_ROOT_SECRET_ACCESS_KEY. Prints JSON.
    Account(AccountArgs),
    /// The root key of a running server (operator credentials, as for `account`).
    #[command(name = "root-key")]
    RootKey(RootKeyCommandArgs),
    /// The business clock of a server started with --test-clock or --dev (operator
    /// credentials, as for `account`; a --dev server also takes AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY). Prints JSON.
    Clock(ClockCommandArgs),
    /// Save a stopped data directory into one file, or load one into an empty directory
    /// (metadata, object bytes, wrapped key material, the audit trail).
    Snapshot(SnapshotArgs),
    /// Move a stopped embedded deployment (a data directory) to a scale-out one: an
    /// empty PostgreSQL database, a shared blob tier and a shared audit directory.
    /// Prints what it moved (JSON). Start the nodes afterwards with the same root key
    /// and the root credentials it names.
    Migrate(Box<MigrateArgs>),
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The data directory of the embedded deployment (its server stopped).
    #[arg(long)]
    pub from: PathBuf,

    /// Where the source keeps object bytes, if not in its data directory (its `serve
    /// --blobs`).
    #[arg(long)]
    pub from_blobs: Option<String>,

    /// The source's archive directory (its `serve --archive-dir`). Default: FROM/archive.
    #[arg(long)]
    pub from_archive_dir: Option<PathBuf>,

    /// The source's audit trail (its `serve --audit-dir`). Default: FROM/audit.
    #[arg(long)]
    pub from_audit_dir: Option<PathBuf>,

    /// The PostgreSQL database the nodes will share (`postgres://USER@HOST:PORT/DB`); it
    /// must hold no deployment yet.
    #[arg(long)]
    pub to: String,

    /// The blob tier the nodes will share (`serve --blobs`): a directory, or
    /// `s3://BUCKET/PREFIX?endpoint=URL&region=R`.
    #[arg(long)]
    pub blobs: String,

    /// The archive directory the nodes will share (`serve --archive-dir`); needed if the
    /// source holds objects of the archive storage classes.
    #[arg(long)]
    pub archive_dir: Option<PathBuf>,

    /// The audit directory the nodes will share (`serve --audit-dir`): the source's
    /// trail becomes its `node-migrated` chain.
    #[arg(long)]
    pub audit_dir: PathBuf,
}

/// `--blobs` as `serve` and `migrate` read it.
pub fn blobs_arg(value: Option<&str>, flag: &str) -> anyhow::Result<crate::Blobs> {
    Ok(match value {
        None => crate::Blobs::Local,
        Some(url) if url.starts_with("s3://") => crate::Blobs::S3(anyhow::Context::context(
            coffer_storage_s3::S3Location::parse(url),
            flag.to_owned(),
        )?),
        Some(dir) => crate::Blobs::Dir(dir.into()),
    })
}

/// A PostgreSQL URL, as `--meta` and `--to` take it.
pub fn postgres_url(url: &str, flag: &str) -> anyhow::Result<String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(url.to_owned())
    } else {
        anyhow::bail!("{flag} takes a PostgreSQL URL (postgres://USER@HOST:PORT/DB)")
    }
}

impl MigrateArgs {
    pub fn plan(self) -> anyhow::Result<crate::migrate::Plan> {
        Ok(crate::migrate::Plan {
            from_blobs: blobs_arg(self.from_blobs.as_deref(), "--from-blobs")?,
            from_archive_dir: self
                .from_archive_dir
                .unwrap_or_else(|| self.from.join("archive")),
            from_audit_dir: self
                .from_audit_dir
                .unwrap_or_else(|| self.from.join("audit")),
            to: postgres_url(&self.to, "--to")?,
            blobs: blobs_arg(Some(&self.blobs), "--blobs")?,
            archive_dir: self.archive_dir,
            audit_dir: self.audit_dir,
            from: self.from,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct RootKeyCommandArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    #[command(subcommand)]
    pub command: RootKeyCommand,
}

#[derive(Debug, Subcommand)]
pub enum RootKeyCommand {
    /// Re-wrap every piece of key material and every stored secret under a new root key
    /// (a new key file, or a new key inside the HSM), while the server keeps serving.
    /// The old key is kept, retired, until `destroy-retired`.
    Rotate,
    /// Destroy the root keys earlier rotations retired.
    DestroyRetired,
}

/// Where the root key is.
#[derive(Debug, Clone, clap::Args)]
pub struct RootKeyArgs {
    /// The root key (32 random bytes) that wraps all key material; created, mode 0600, if
    /// absent. Default: DATA_DIR/root.key. Ignored when COFFER_ROOT_KEY is set.
    #[arg(long, env = "COFFER_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,

    /// Keep the root key in a PKCS#11 HSM instead: the module (shared library) to load.
    /// The key is generated inside the token on first start and never leaves it; the
    /// user PIN comes from COFFER_PKCS11_PIN.
    #[arg(long, env = "COFFER_PKCS11_MODULE", requires = "pkcs11_token_label")]
    pub pkcs11_module: Option<PathBuf>,

    /// The label of the PKCS#11 token that holds the root key.
    #[arg(long, env = "COFFER_PKCS11_TOKEN_LABEL", requires = "pkcs11_module")]
    pub pkcs11_token_label: Option<String>,
}

impl RootKeyArgs {
    pub fn source(&self, data_dir: &std::path::Path) -> anyhow::Result<crate::rootkey::RootSource> {
        use crate::rootkey::{ENV_PKCS11_PIN, RootSource};
        if let (Some(module), Some(label)) = (&self.pkcs11_module, &self.pkcs11_token_label) {
            let pin = std::env::var(ENV_PKCS11_PIN)
                .ok()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!("{ENV_PKCS11_PIN} must hold the PKCS#11 token's user PIN")
                })?;
            return Ok(RootSource::Hsm {
                module: module.clone(),
                token_label: label.clone(),
                pin: zeroize::Zeroizing::new(pin),
            });
        }
        Ok(RootSource::Local(match std::env::var("COFFER_ROOT_KEY") {
            Ok(b64) if !b64.is_empty() => coffer_crypto::RootKeySource::Base64(b64),
            _ => coffer_crypto::RootKeySource::File(
                self.root_key_file
                    .clone()
                    .unwrap_or_else(|| data_dir.join("root.key")),
            ),
        }))
    }
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole trail: every record's hash chain, every file's signed digest and
    /// the digest chain. Names each modified, deleted, inserted or reordered record or
    /// file; exits non-zero on any finding.
    Verify {
        #[arg(long, env = "COFFER_DATA_DIR", default_value = "./coffer-data")]
        data_dir: PathBuf,
        #[command(flatten)]
        root_key: RootKeyArgs,
        /// A scale-out deployment's metadata store (as `serve --meta`): then every node's
        /// trail under --audit-dir is checked, each its own chain.
        #[arg(long, env = "COFFER_META_URL")]
        meta: Option<String>,
        /// Where the trail is (as `serve --audit-dir`). Default: DATA_DIR/audit.
        #[arg(long, env = "COFFER_AUDIT_DIR")]
        audit_dir: Option<PathBuf>,
    },
}

impl ServerArgs {
    /// The endpoint: `--endpoint`, `COFFER_ENDPOINT`, `AWS_ENDPOINT_URL`, or the default.
    pub fn endpoint(&self) -> String {
        // AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true turns AWS_ENDPOINT_URL off, as it
        // does for the AWS CLI and SDKs.
        let ignore = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
        let aws = std::env::var("AWS_ENDPOINT_URL").ok().filter(|_| !ignore);
        endpoint_from(self.endpoint.as_deref(), aws.as_deref())
    }
}

fn endpoint_from(given: Option<&str>, aws: Option<&str>) -> String {
    given
        .or(aws.filter(|e| !e.is_empty()))
        .unwrap_or("http://127.0.0.1:7373")
        .to_owned()
}

/// The running server an administration command talks to.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The server to talk to (else `COFFER_ENDPOINT`, else `AWS_ENDPOINT_URL` as the AWS
    /// CLI and SDKs read it, else http://127.0.0.1:7373).
    #[arg(long, env = "COFFER_ENDPOINT", global = true)]
    pub endpoint: Option<String>,

    /// For an https:// endpoint: the PEM certificates to trust instead of the system's
    /// (else AWS_CA_BUNDLE, as the AWS CLI and SDKs read it).
    #[arg(long, env = "AWS_CA_BUNDLE", global = true)]
    pub ca_bundle: Option<PathBuf>,

    /// The region requests are signed for.
    #[arg(
        long,
        env = "COFFER_REGION",
        default_value = "us-east-1",
        global = true
    )]
    pub region: String,
}

#[derive(Debug, clap::Args)]
pub struct ClockCommandArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    #[command(subcommand)]
    pub command: ClockCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClockCommand {
    /// The server's business time, the system time, and how far apart they are.
    Show,
    /// Move the business clock forward by a span (`90d`, `36h`, `15m`, `30s`) and run
    /// the work that made due (key rotations and deletions, lifecycle) before answering.
    Advance {
        #[arg(allow_hyphen_values = true)]
        by: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write the data directory (its server stopped) into FILE.
    Save {
        /// The data directory, with its metadata in it (the embedded store).
        #[arg(long, env = "COFFER_DATA_DIR", default_value = "./coffer-data")]
        data_dir: PathBuf,
        #[command(flatten)]
        root_key: RootKeyArgs,
        file: PathBuf,
    },
    /// Fill an empty (or absent) data directory from FILE. The snapshot's key material
    /// is wrapped under the root key it was saved with: that key must be given (the
    /// file DATA_DIR/root.key of the source, --root-key-file, or COFFER_ROOT_KEY).
    Load {
        #[arg(long, env = "COFFER_DATA_DIR", default_value = "./coffer-data")]
        data_dir: PathBuf,
        #[command(flatten)]
        root_key: RootKeyArgs,
        file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct AccountArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    #[command(subcommand)]
    pub command: AccountCommand,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account; prints its id and its root user's access key (shown once).
    Create { name: String },
    /// List the accounts.
    List,
    /// Delete an account (it must own no buckets) with its users and access keys.
    Delete { account_id: String },
}

/// `--default-encryption`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DefaultEncryptionArg {
    /// Every object is encrypted with SSE-S3 unless its bucket or request says otherwise.
    SseS3,
    /// Objects of buckets without a configuration are stored in plaintext.
    None,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where metadata and object data live.
    #[arg(long, env = "COFFER_DATA_DIR", default_value = "./coffer-data")]
    pub data_dir: PathBuf,

    /// A development server, for test suites: state in a temporary directory removed at
    /// exit, the test clock on, and any access key and secret accepted (a request signed
    /// with a key the server does not know is served as the root of an account: the
    /// 12-digit account a numeric key id names, else the default account). Keys made
    /// inside (IAM users, roles) are checked as always. Loopback only unless
    /// --dev-allow-remote.
    #[arg(
        long,
        env = "COFFER_DEV",
        conflicts_with_all = ["data_dir", "meta", "blobs", "audit_dir", "archive_dir"]
    )]
    pub dev: bool,

    /// Let a --dev server listen on an address other machines can reach.
    #[arg(long, requires = "dev")]
    pub dev_allow_remote: bool,

    /// Let the operator move the server's business clock forward (`coffer clock advance
    /// 90d`): KMS rotation and deletion, import expiry, lifecycle, retention and restores
    /// follow it; signatures, TLS and the audit trail keep the real clock. For tests.
    /// The clock lives in this process: not for a deployment of several nodes (--meta).
    #[arg(long, env = "COFFER_TEST_CLOCK", conflicts_with = "meta")]
    pub test_clock: bool,

    /// Where metadata lives: a PostgreSQL database every node of a deployment shares
    /// (`postgres://USER@HOST:PORT/DB`, libpq's URL). Then every node also needs the same
    /// root key and the root credentials in COFFER_ROOT_ACCESS_KEY_ID /
    /// COFFER_ROOT_SECRET_ACCESS_KEY. Default: SQLite in DATA_DIR (one node).
    #[arg(long, env = "COFFER_META_URL")]
    pub meta: Option<String>,

    /// Where object bytes live: another directory, or
    /// `s3://BUCKET/PREFIX?endpoint=URL&region=R`, any S3-compatible store, with credentials
    /// from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN). Encrypted
    /// objects' bytes are ciphertext there. One node per location for now, and keep it the
    /// same across restarts. Default: DATA_DIR/blobs.
    #[arg(long, env = "COFFER_BLOBS")]
    pub blobs: Option<String>,

    /// Where the audit trail lives. With --meta, each node writes its own trail in a
    /// subdirectory of this one (`node-ID`), and CloudTrail's LookupEvents on any node
    /// reads them all: give every node the same shared directory. Default: DATA_DIR/audit.
    #[arg(long, env = "COFFER_AUDIT_DIR")]
    pub audit_dir: Option<PathBuf>,

    /// Where objects of the archive storage classes (GLACIER, DEEP_ARCHIVE) keep their
    /// bytes: mount cheaper storage here. Default: DATA_DIR/archive.
    #[arg(long, env = "COFFER_ARCHIVE_DIR")]
    pub archive_dir: Option<PathBuf>,

    /// Address to listen on; port 0 picks a free port and prints it.
    #[arg(long, env = "COFFER_LISTEN", default_value = "127.0.0.1:7373")]
    pub listen: SocketAddr,

    /// The region this server is (for SigV4 scopes, bucket locations and ARNs).
    #[arg(long, env = "COFFER_REGION", default_value = "us-east-1")]
    pub region: String,

    /// PEM certificate chain: serve HTTPS on the same port.
    #[arg(long, env = "COFFER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "COFFER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Base domain for virtual-hosted-style requests (`BUCKET.DOMAIN`).
    #[arg(long, env = "COFFER_DOMAIN")]
    pub domain: Option<String>,

    #[command(flatten)]
    pub root_key: RootKeyArgs,

    /// Accept SSE-C (customer-provided keys) over plain HTTP. For local development only:
    /// the key travels in the clear. AWS, and Coffer by default, require HTTPS.
    #[arg(long, env = "COFFER_ALLOW_INSECURE_SSE_C")]
    pub allow_insecure_sse_c: bool,

    /// What a bucket without its own default encryption applies to writes that ask for
    /// none: `sse-s3` (AWS's behaviour), or `none` to store such objects in plaintext, for
    /// benchmarks and development only (a deviation from AWS; see docs/aws-compat.md).
    #[arg(
        long,
        env = "COFFER_DEFAULT_ENCRYPTION",
        value_enum,
        default_value = "sse-s3"
    )]
    pub default_encryption: DefaultEncryptionArg,

    /// How many seconds a KMS "day" lasts (deletion windows, rotation periods); fractions
    /// allowed. For tests and demos only.
    #[arg(
        long,
        env = "COFFER_KMS_DAY_SECONDS",
        default_value_t = 86_400.0,
        hide = true
    )]
    pub kms_day_seconds: f64,

    /// How many seconds an S3 "day" lasts (Object Lock retention days, and later
    /// lifecycle days and restores); fractions allowed. For tests and demos only.
    #[arg(
        long,
        env = "COFFER_S3_DAY_SECONDS",
        default_value_t = 86_400.0,
        hide = true
    )]
    pub s3_day_seconds: f64,

    /// With --meta: how long a blob may sit in the shared blob tier's staging, unchanged
    /// and unreferenced, before the node leading blob collection takes it for a dead
    /// writer's and removes it. Fractions allowed; for tests.
    #[arg(
        long,
        env = "COFFER_STAGED_IDLE_SECONDS",
        default_value_t = 3600.0,
        hide = true
    )]
    pub staged_idle_seconds: f64,

    /// Deliver buffered S3 server access log records (PutBucketLogging) every this many
    /// seconds; fractions allowed (AWS delivers within hours; tests shorten it).
    #[arg(
        long,
        env = "COFFER_S3_ACCESS_LOG_SECONDS",
        default_value_t = 300.0,
        hide = true
    )]
    pub s3_access_log_seconds: f64,

    /// End a connection whose client stays silent this many seconds: while the server
    /// waits for a request's headers (also between requests), for more of a request body
    /// (S3 answers RequestTimeout) or for the client to read a response, and during a TLS
    /// handshake. Fractions allowed.
    #[arg(long, env = "COFFER_CLIENT_TIMEOUT_SECONDS", default_value_t = 20.0)]
    pub client_timeout_seconds: f64,

    /// Seal the open audit trail file (write its signed digest) after this many seconds.
    #[arg(long, env = "COFFER_AUDIT_ROTATE_SECONDS", hide = true)]
    pub audit_rotate_seconds: Option<u64>,

    /// Record nothing in the audit trail. Only for measuring what auditing costs
    /// (scripts/bench-audit); never in production.
    #[arg(long, env = "COFFER_AUDIT_DISABLED_FOR_BENCHMARK", hide = true)]
    pub audit_disabled_for_benchmark: bool,

    /// Deliver each sealed audit trail file into this (existing) bucket as gzip JSON under
    /// AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/, with its digest, as CloudTrail does.
    #[arg(long, env = "COFFER_AUDIT_DELIVERY_BUCKET")]
    pub audit_delivery_bucket: Option<String>,

    /// The web console at /_coffer/console/ (`on`), or none (`off`).
    #[arg(long, env = "COFFER_CONSOLE", value_enum, default_value = "on")]
    pub console: Switch,

    /// Sign a console session out after this many minutes unused; fractions allowed.
    #[arg(long, env = "COFFER_CONSOLE_IDLE_MINUTES", default_value_t = 15.0)]
    pub console_idle_minutes: f64,

    /// Sample every bucket's usage (for the console's chart of bytes stored) every this
    /// many seconds; fractions allowed.
    #[arg(
        long,
        env = "COFFER_USAGE_SAMPLE_SECONDS",
        default_value_t = 3600.0,
        hide = true
    )]
    pub usage_sample_seconds: f64,
}

/// A feature turned on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl ServeArgs {
    pub fn config(self) -> anyhow::Result<crate::Config> {
        let root_key = self.root_key.source(&self.data_dir)?;
        Ok(crate::Config {
            root_key,
            allow_insecure_sse_c: self.allow_insecure_sse_c,
            default_encryption: match self.default_encryption {
                DefaultEncryptionArg::SseS3 => coffer_objects::DefaultEncryption::SseS3,
                DefaultEncryptionArg::None => coffer_objects::DefaultEncryption::None,
            },
            kms_day: std::time::Duration::try_from_secs_f64(self.kms_day_seconds.max(0.001))
                .unwrap_or(std::time::Duration::from_secs(86_400)),
            s3_day: std::time::Duration::try_from_secs_f64(self.s3_day_seconds.max(0.001))
                .unwrap_or(std::time::Duration::from_secs(86_400)),
            access_log_interval: std::time::Duration::try_from_secs_f64(
                self.s3_access_log_seconds.max(0.05),
            )
            .unwrap_or(std::time::Duration::from_secs(300)),
            client_timeout: std::time::Duration::try_from_secs_f64(
                self.client_timeout_seconds.max(0.05),
            )
            .unwrap_or(coffer_api::DEFAULT_CLIENT_TIMEOUT),
            audit_rotate: self
                .audit_rotate_seconds
                .map(std::time::Duration::from_secs),
            audit_enabled: !self.audit_disabled_for_benchmark,
            audit_delivery_bucket: self.audit_delivery_bucket,
            usage_sample: std::time::Duration::try_from_secs_f64(
                self.usage_sample_seconds.max(0.1),
            )
            .unwrap_or(std::time::Duration::from_secs(3600)),
            console: (self.console == Switch::On).then(|| {
                std::time::Duration::try_from_secs_f64(self.console_idle_minutes.max(0.001) * 60.0)
                    .unwrap_or(std::time::Duration::from_secs(900))
            }),
            meta: match self.meta {
                None => crate::Meta::Local,
                Some(url) => crate::Meta::Postgres(postgres_url(
                    &url,
                    "--meta (leave it out for the embedded store)",
                )?),
            },
            blobs: blobs_arg(self.blobs.as_deref(), "--blobs")?,
            audit_dir: self.audit_dir,
            staged_idle: std::time::Duration::try_from_secs_f64(self.staged_idle_seconds.max(0.1))
                .unwrap_or(std::time::Duration::from_secs(3600)),
            archive_dir: self
                .archive_dir
                .unwrap_or_else(|| self.data_dir.join("archive")),
            data_dir: self.data_dir,
            listen: self.listen,
            region: self.region,
            domain: self.domain,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            test_clock: self.test_clock || self.dev,
            dev: self.dev,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_comes_from_the_flag_then_aws_endpoint_url() {
        assert_eq!(
            endpoint_from(Some("http://a:1"), Some("http://b:2")),
            "http://a:1"
        );
        assert_eq!(endpoint_from(None, Some("http://b:2")), "http://b:2");
        assert_eq!(endpoint_from(None, Some("")), "http://127.0.0.1:7373");
        assert_eq!(endpoint_from(None, None), "http://127.0.0.1:7373");
    }
}
