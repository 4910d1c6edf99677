//! The Coffer server: configuration, start-up (identity, storage, recovery), and the front
//! dispatcher that every request passes through.
//!
//! The binary (`main.rs`) is glue: it parses the command line and calls [`serve`]. This
//! crate is the only one that picks a storage backend and wires the domain crates
//! together into one [`App`] value; there is no process-wide mutable state. [`serve`]
//! takes an already-bound listener and a shutdown future, so tests can bind port 0.

pub mod admin;
pub mod audit_cmd;
pub mod cli;
mod clock;
mod coherence;
pub mod delivery;
mod dev;
mod dispatch;
pub mod identity;
mod lead;
pub mod metrics;
pub mod migrate;
pub mod rootkey;
pub mod snapshot;
mod stall;
mod tls;
mod usage;
mod workers;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use tokio::net::TcpListener;

use coffer_audit::trail::{Signer, Trail};
use coffer_iam::Credentials;
use coffer_objects::Objects;
use coffer_storage_local::LocalStore;

/// Everything the server needs to run, resolved from flags and environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// Where metadata lives (`--meta`).
    pub meta: Meta,
    /// Where object bytes live.
    pub blobs: Blobs,
    /// Where archived objects' bytes live.
    pub archive_dir: PathBuf,
    /// Where the audit trail lives (`--audit-dir`; default `DATA_DIR/audit`). With a
    /// shared metadata store, each node writes its trail in a subdirectory of its own
    /// (`node-ID`), and LookupEvents reads every subdirectory: give every node the same
    /// shared directory.
    pub audit_dir: Option<PathBuf>,
    /// With a shared metadata store: how long an unreferenced staged blob sits unchanged
    /// before it counts as a dead writer's (`BlobStore::abandoned`).
    pub staged_idle: Duration,
    pub listen: SocketAddr,
    pub region: String,
    pub domain: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Where the root key that wraps all KMS key material comes from.
    pub root_key: rootkey::RootSource,
    /// How long a KMS "day" is.
    pub kms_day: Duration,
    /// How long an S3 "day" is (Object Lock retention, lifecycle).
    pub s3_day: Duration,
    /// How often buffered S3 server access log records are delivered.
    pub access_log_interval: Duration,
    /// How long a client may stay silent (headers, body, reading a response, idle between
    /// requests, TLS handshake) before its connection or request is ended.
    pub client_timeout: Duration,
    /// Accept SSE-C requests over plain HTTP.
    pub allow_insecure_sse_c: bool,
    /// What buckets without their own default encryption apply (SSE-S3 unless opted out).
    pub default_encryption: coffer_objects::DefaultEncryption,
    /// Seal audit trail files after this long (default one hour).
    pub audit_rotate: Option<Duration>,
    /// False only when measuring the audit path's cost.
    pub audit_enabled: bool,
    /// Deliver sealed trail files into this bucket, as CloudTrail does.
    pub audit_delivery_bucket: Option<String>,
    /// The web console at `/_coffer/console/`, and how long its sessions last unused;
    /// `None` when it is off (`--console off`).
    pub console: Option<Duration>,
    /// How often each bucket's usage is sampled for the console's charts.
    pub usage_sample: Duration,
    /// The operator may move the business clock forward (`--test-clock`).
    pub test_clock: bool,
    /// Development mode (`--dev`): a request signed with an access key the server does
    /// not know is served as the root of an account derived from the key (see `dev.rs`).
    pub dev: bool,
}

/// Where metadata lives (`--meta`): buckets, objects, uploads, KMS keys, IAM entities.
#[derive(Clone, PartialEq, Eq)]
pub enum Meta {
    /// SQLite in the data directory: one node.
    Local,
    /// A PostgreSQL database every node of a deployment shares (libpq URL).
    Postgres(String),
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Meta::Local => f.write_str("Local"),
            // The URL may carry a password.
            Meta::Postgres(_) => f.write_str("Postgres(..)"),
        }
    }
}

/// Where object bytes live (`--blobs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blobs {
    /// Files under the data directory.
    Local,
    /// Files under another directory (a filesystem every node mounts).
    Dir(PathBuf),
    /// An S3-compatible store; credentials from `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and, for temporary ones, `AWS_SESSION_TOKEN`. Until the
    /// metadata is shared (PostgreSQL), one node per blob location: a node's start-up
    /// recovery removes staged blobs its own metadata does not reference.
    S3(coffer_storage_s3::S3Location),
}

impl Blobs {
    /// With `shared`, other nodes write into the same directory: its staging is not
    /// cleared at open.
    fn open(
        &self,
        local: &coffer_storage_local::FileBlobs,
        shared: bool,
    ) -> anyhow::Result<Arc<dyn coffer_storage::BlobStore>> {
        Ok(match self {
            Blobs::Local => Arc::new(local.clone()),
            Blobs::Dir(dir) => Arc::new(
                if shared {
                    coffer_storage_local::FileBlobs::open_shared(dir)
                } else {
                    coffer_storage_local::FileBlobs::open(dir)
                }
                .with_context(|| format!("opening blob directory {}", dir.display()))?,
            ),
            Blobs::S3(location) => {
                let var = |name: &str| {
                    std::env::var(name).with_context(|| {
                        format!("--blobs s3://... needs {name} (the S3 store's credentials)")
                    })
                };
                let token = std::env::var("AWS_SESSION_TOKEN").ok();
                Arc::new(coffer_storage_s3::S3Blobs::new(
                    location,
                    &var("AWS_ACCESS_KEY_ID")?,
                    &var("AWS_SECRET_ACCESS_KEY")?,
                    token.as_deref(),
                )?)
            }
        })
    }
}

/// The wired application: one per process.
pub struct App {
    /// The protocols, in the order they are asked whether a request is theirs: the KMS
    /// and CloudTrail by `X-Amz-Target`, IAM/STS by a form POST to `/` signed for them,
    /// and S3 for everything else.
    pub protocols: Vec<Arc<dyn coffer_api::ApiHandler>>,
    pub kms: Arc<coffer_kms::Kms>,
    pub audit: Arc<Trail>,
    pub metrics: metrics::Metrics,
    pub objects: Arc<Objects>,
    /// S3 server access log records waiting for delivery.
    pub access_logs: Arc<coffer_api_s3::AccessLogs>,
    /// The web console, unless it is off.
    pub console: Option<Arc<coffer_console::Console>>,
    /// Bucket usage over time and the trail's calls, for the console's charts.
    usage: Arc<usage::History>,
    /// What the KMS and lifecycle workers are asked to run on by a clock advance; taken by
    /// [`serve`] when it starts them.
    kicked: std::sync::Mutex<Option<(clock::Kicked, clock::Kicked)>>,
    /// Development mode's credentials (`--dev`), which make accounts on first use.
    dev: Option<Arc<dev::DevCredentials>>,
    /// Set while a node of a shared metadata store cannot hear other nodes' changes:
    /// requests are refused until it hears them again and has reloaded its caches.
    stale: Arc<std::sync::atomic::AtomicBool>,
    // Keeps the data directory locked (and its stores open) while the app lives.
    _store: Stores,
    _coherence: Option<AbortOnDrop>,
}

/// What an [`App`] holds open besides the services.
enum Stores {
    Local {
        _store: LocalStore,
    },
    Shared {
        _lock: coffer_storage_local::DirLock,
        _pg: Box<coffer_storage_postgres::PgStore>,
    },
}

/// A background task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl App {
    /// Opens the data directory, recovers from any crash, and wires the services.
    pub async fn open(config: &Config) -> anyhow::Result<(Self, identity::Identity)> {
        let opened = match &config.meta {
            Meta::Local => {
                let store = LocalStore::open(&config.data_dir).with_context(|| {
                    format!("opening data directory {}", config.data_dir.display())
                })?;
                let identity = identity::Identity::load_or_create(&config.data_dir)?;
                let meta = Arc::new(store.meta.clone());
                Opened {
                    meta: meta.clone(),
                    kms: meta.clone(),
                    iam: meta,
                    blobs: store.blobs.clone(),
                    identity,
                    stores: Stores::Local { _store: store },
                    shared: None,
                }
            }
            Meta::Postgres(url) => {
                let lock =
                    coffer_storage_local::DirLock::take(&config.data_dir).with_context(|| {
                        format!("opening data directory {}", config.data_dir.display())
                    })?;
                let blobs = coffer_storage_local::FileBlobs::open(&config.data_dir)
                    .with_context(|| format!("opening {}", config.data_dir.display()))?;
                let pg = coffer_storage_postgres::PgStore::connect(url)
                    .await
                    .context("opening the PostgreSQL metadata store (--meta)")?;
                let identity = identity::Identity::shared(&config.data_dir, &pg).await?;
                if config.blobs == Blobs::Local {
                    tracing::warn!(
                        "--meta without --blobs: this node keeps object bytes in its own data directory, so other nodes cannot read them; give every node the same --blobs (and --archive-dir, --audit-dir) for more than one node"
                    );
                }
                // Listening before anything is loaded: no change is missed in between.
                let listener = pg
                    .listen_changes()
                    .await
                    .map_err(|e| anyhow::anyhow!("listening to change notices: {e}"))?;
                let store = Arc::new(pg.clone());
                Opened {
                    meta: store.clone(),
                    kms: store.clone(),
                    iam: store,
                    blobs,
                    identity,
                    stores: Stores::Shared {
                        _lock: lock,
                        _pg: Box::new(pg.clone()),
                    },
                    shared: Some((pg, listener)),
                }
            }
        };
        let Opened {
            meta,
            kms: kms_store,
            iam: iam_store,
            blobs: local_blobs,
            identity,
            stores,
            shared,
        } = opened;
        let archive = if shared.is_some() {
            coffer_storage_local::FileBlobs::open_shared(&config.archive_dir)
        } else {
            coffer_storage_local::FileBlobs::open(&config.archive_dir)
        }
        .with_context(|| format!("opening archive directory {}", config.archive_dir.display()))?;
        let blobs = config.blobs.open(&local_blobs, shared.is_some())?;
        let (root_keys, unfinished_rotation) =
            rootkey::RootKeys::load(&config.root_key, &config.data_dir)?;
        let root_keys = Arc::new(root_keys);
        let root = root_keys.root();
        let business = coffer_storage::Clock::system();
        let (kms_kick, kms_kicked) = clock::kick();
        let (lifecycle_kick, lifecycle_kicked) = clock::kick();
        let kms = Arc::new(
            coffer_kms::Kms::open(
                kms_store,
                root.clone(),
                coffer_kms::Config {
                    region: config.region.clone(),
                    day: time::Duration::try_from(config.kms_day)
                        .context("COFFER_KMS_DAY_SECONDS is too large")?,
                    clock: business.clone(),
                },
            )
            .await
            .context("opening the KMS")?,
        );
        let objects = Arc::new(
            Objects::new(
                meta,
                blobs,
                coffer_objects::Config {
                    region: config.region.clone(),
                    default_encryption: config.default_encryption,
                    day: time::Duration::try_from(config.s3_day)
                        .context("COFFER_S3_DAY_SECONDS is too large")?,
                    clock: business.clone(),
                    ..coffer_objects::Config::default()
                },
            )
            .with_kms(kms.clone())
            .with_archive(Arc::new(archive)),
        );
        // With a shared metadata store, other nodes may be writing blobs into staging
        // right now: only blobs records reference are published, none is discarded.
        let recovery = objects
            .recover(shared.is_none())
            .await
            .context("recovering the data directory and the blob store")?;
        if recovery != coffer_objects::Recovery::default() {
            tracing::info!(
                published = recovery.published,
                discarded = recovery.discarded,
                "recovered blobs left in staging by an unclean stop"
            );
        }
        let directory = Arc::new(
            coffer_iam::Directory::load(
                iam_store,
                root,
                identity.root_secret.clone(),
                identity.root_principal(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("loading IAM identities: {e}"))?,
        );
        if unfinished_rotation {
            root_keys.finish_rotation(&kms, &directory).await?;
        }
        let directory_for_coherence = directory.clone();
        let authorizer = Arc::new(coffer_authz::Authorizer::new(directory.clone()));
        let dev = config.dev.then(|| {
            Arc::new(dev::DevCredentials {
                directory: directory.clone(),
                default: identity.root_principal().account,
            })
        });
        let credentials: Arc<dyn Credentials> = match &dev {
            Some(d) => d.clone(),
            None => directory.clone(),
        };
        let kms_api =
            coffer_api_kms::KmsApi::new(kms.clone(), credentials.clone(), authorizer.clone());
        let audit_key = kms
            .audit_key(&identity.account.id, time::OffsetDateTime::now_utc())
            .await
            .context("creating the audit signing key")?;
        let audit_root = config
            .audit_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("audit"));
        let (trail_dir, deployment, node) = match &shared {
            None => (audit_root, None, String::new()),
            Some(_) => {
                let node = format!("node-{}", identity::node_id(&config.data_dir)?);
                (audit_root.join(&node), Some(audit_root), format!("{node}-"))
            }
        };
        let mut trail_config = coffer_audit::trail::Config::new(
            trail_dir.clone(),
            &config.region,
            &identity.account.id,
        );
        trail_config.deployment = deployment;
        if let Some(secs) = config.audit_rotate {
            trail_config.rotate_after = secs;
        }
        trail_config.enabled = config.audit_enabled;
        let delivery = match &config.audit_delivery_bucket {
            Some(bucket) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                trail_config.sealed = Some(tx);
                Some((
                    delivery::Delivery {
                        objects: objects.clone(),
                        bucket: bucket.clone(),
                        region: config.region.clone(),
                        dir: trail_dir.clone(),
                        node,
                    },
                    rx,
                ))
            }
            None => None,
        };
        if !config.audit_enabled {
            tracing::warn!("the audit trail is disabled (benchmark mode): nothing is recorded");
        }
        let audit = Arc::new(
            Trail::open(
                trail_config,
                Box::new(KmsSigner {
                    kms: kms.clone(),
                    key_id: audit_key,
                }),
            )
            .context("opening the audit trail")?,
        );
        if let Some((d, rx)) = delivery {
            d.spawn(rx);
        }
        let cloudtrail_api = coffer_api_cloudtrail::CloudTrailApi::new(
            audit.clone(),
            directory.clone(),
            credentials.clone(),
            authorizer.clone(),
        );
        let iam_api = coffer_api_iam::IamApi::new(
            directory.clone(),
            credentials.clone(),
            authorizer.clone(),
            Arc::new(Tenancy {
                shared: shared.is_some(),
                objects: objects.clone(),
                root_keys,
                kms: kms.clone(),
                directory,
                clock: clock::TestClock {
                    clock: business,
                    enabled: config.test_clock,
                    kms: kms_kick,
                    lifecycle: lifecycle_kick,
                },
            }),
        );
        let s3 = coffer_api_s3::service(
            objects.clone(),
            credentials,
            authorizer,
            &coffer_api_s3::Config {
                domain: config.domain.clone(),
                allow_insecure_sse_c: config.allow_insecure_sse_c,
                dev: config.dev,
            },
        );
        let access_logs = s3.access_logs();
        let s3: Arc<dyn coffer_api::ApiHandler> = Arc::new(s3);
        let stale = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let history = Arc::new(usage::History::new(&config.data_dir, audit.clone()));
        let coherence = shared.map(|(pg, listener)| {
            AbortOnDrop(tokio::spawn(coherence::keep(
                pg,
                listener,
                coherence::Caches {
                    kms: kms.clone(),
                    directory: directory_for_coherence.clone(),
                    objects: objects.clone(),
                },
                stale.clone(),
            )))
        });
        Ok((
            Self {
                protocols: vec![
                    Arc::new(kms_api),
                    Arc::new(cloudtrail_api),
                    Arc::new(iam_api),
                    s3.clone(),
                ],
                kms,
                audit,
                metrics: metrics::Metrics::default(),
                objects: objects.clone(),
                access_logs,
                console: config.console.map(|idle| {
                    Arc::new(coffer_console::Console::new(
                        coffer_console::Config {
                            region: config.region.clone(),
                            idle,
                            operator_account: identity.account.id.clone(),
                        },
                        objects.clone(),
                        history.clone(),
                    ))
                }),
                usage: history,
                kicked: std::sync::Mutex::new(Some((kms_kicked, lifecycle_kicked))),
                dev,
                stale,
                _store: stores,
                _coherence: coherence,
            },
            identity,
        ))
    }
}

/// The stores [`App::open`] picked, before the services are wired over them.
struct Opened {
    meta: Arc<dyn coffer_storage::MetaStore>,
    kms: Arc<dyn coffer_storage::KmsStore>,
    iam: Arc<dyn coffer_storage::IamStore>,
    /// The data directory's blob files (the default blob store).
    blobs: coffer_storage_local::FileBlobs,
    identity: identity::Identity,
    stores: Stores,
    /// A shared store, and its change notices, already listened to.
    shared: Option<(
        coffer_storage_postgres::PgStore,
        coffer_storage_postgres::Listener,
    )>,
}

impl App {
    /// Whether requests are refused because this node cannot hear other nodes' changes.
    pub fn is_stale(&self) -> bool {
        self.stale.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The metadata store shared with other nodes, if there is one.
    fn shared_store(&self) -> Option<coffer_storage_postgres::PgStore> {
        match &self._store {
            Stores::Local { .. } => None,
            Stores::Shared { _pg, .. } => Some((**_pg).clone()),
        }
    }
}

/// Signs audit digests with the KMS's hidden audit key (`v{material version}:{hex}`).
pub struct KmsSigner {
    pub kms: Arc<coffer_kms::Kms>,
    pub key_id: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Signer for KmsSigner {
    fn sign(&self, data: &[u8]) -> Result<String, String> {
        let (v, mac) = self
            .kms
            .audit_mac(&self.key_id, None, data)
            .map_err(|e| e.to_string())?;
        Ok(format!("v{v}:{}", hex(&mac)))
    }

    fn verify(&self, data: &[u8], signature: &str) -> Result<bool, String> {
        let (v, given) = signature
            .strip_prefix('v')
            .and_then(|r| r.split_once(':'))
            .ok_or("malformed signature")?;
        let v: u32 = v.parse().map_err(|_| "malformed signature version")?;
        let (_, mac) = self
            .kms
            .audit_mac(&self.key_id, Some(v), data)
            .map_err(|e| e.to_string())?;
        Ok(coffer_crypto::equal(hex(&mac).as_bytes(), given.as_bytes()))
    }
}

/// The IAM API's view of the rest of the server: an account owning buckets cannot be
/// deleted; the operator rotates the root key.
struct Tenancy {
    /// Whether the stores are shared with other nodes.
    shared: bool,
    objects: Arc<Objects>,
    root_keys: Arc<rootkey::RootKeys>,
    kms: Arc<coffer_kms::Kms>,
    directory: Arc<coffer_iam::Directory>,
    clock: clock::TestClock,
}

#[async_trait::async_trait]
impl coffer_api_iam::Tenancy for Tenancy {
    async fn owns_buckets(&self, account_id: &str) -> Result<bool, String> {
        self.objects
            .list_buckets(account_id)
            .await
            .map(|b| !b.is_empty())
            .map_err(|e| e.to_string())
    }

    async fn rotate_root_key(&self) -> Result<Vec<(&'static str, String)>, String> {
        if self.shared {
            // The other nodes hold the old key only: they could not unwrap what this
            // node re-wrapped. Rotation across nodes needs a coordinated protocol.
            return Err(
                "root-key rotation is not supported with a shared metadata store (--meta postgres://...) yet".into(),
            );
        }
        let r = self
            .root_keys
            .rotate(&self.kms, &self.directory)
            .await
            .map_err(|e| format!("{e:#}"))?;
        Ok(vec![
            ("OldRootKey", r.old_root_key),
            ("NewRootKey", r.new_root_key),
            (
                "KeyMaterialsRewrapped",
                r.key_materials_rewrapped.to_string(),
            ),
            ("SecretsRewrapped", r.secrets_rewrapped.to_string()),
            ("Retired", r.retired),
        ])
    }

    async fn destroy_retired_root_keys(&self) -> Result<Vec<String>, String> {
        self.root_keys
            .destroy_retired()
            .await
            .map_err(|e| format!("{e:#}"))
    }

    async fn clock(
        &self,
        advance: Option<&str>,
    ) -> Result<Vec<(&'static str, String)>, coffer_api_iam::ClockRefusal> {
        self.clock.call(advance).await
    }
}

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the accept loop waits after a failed accept (no file descriptor left).
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Most header fields a request may have (hyper's default is 100; S3's limit is on the
/// header section's size, checked by the S3 front end).
const MAX_HEADERS: usize = 200;

/// Serves connections from `listener` until `shutdown` resolves, then drains in-flight
/// requests.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        (None, None) => None,
        _ => anyhow::bail!("--tls-cert and --tls-key must be given together"),
    };
    let collector = app.objects.spawn_collector();
    // Time-based work runs on one node of a deployment at a time (lead.rs).
    let shared = app.shared_store();
    let (kms_kicked, lifecycle_kicked) = app
        .kicked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_else(|| (clock::kick().1, clock::kick().1));
    let kms_ticker = workers::spawn_kms_ticker(
        app.kms.clone(),
        app.audit.clone(),
        config.kms_day,
        lead::Lead::new(shared.clone(), "kms"),
        kms_kicked,
    );
    let lifecycle = workers::spawn_lifecycle(
        app.clone(),
        config
            .s3_day
            .clamp(Duration::from_millis(200), Duration::from_secs(3600)),
        lead::Lead::new(shared, "lifecycle"),
        lifecycle_kicked,
    );
    // In a blob tier nodes share, what a dead node's writers left in staging is
    // collected by one node at a time.
    let abandoned = app.shared_store().map(|store| {
        let (app, idle) = (app.clone(), config.staged_idle);
        let lead = lead::Lead::new(Some(store), "blobs");
        tokio::spawn(async move {
            let period = (idle / 4).clamp(Duration::from_millis(200), Duration::from_secs(60));
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if !lead.holds().await {
                    continue;
                }
                match app.objects.collect_abandoned(idle).await {
                    Ok(r) if r != coffer_objects::Recovery::default() => tracing::info!(
                        published = r.published,
                        discarded = r.discarded,
                        "collected blobs that writers left in the shared staging"
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "collecting abandoned blobs failed; retrying")
                    }
                }
                // Garbage other nodes queued but did not get to (a node died first).
                if let Err(e) = app.objects.collect_garbage().await {
                    tracing::warn!(error = %e, "garbage collection failed; retrying");
                }
            }
        })
    });
    let usage_sampler = app
        .usage
        .clone()
        .spawn(app.objects.clone(), config.usage_sample);
    let access_log_delivery = {
        let app = app.clone();
        let every = config.access_log_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                app.access_logs.deliver().await;
                app.metrics.pass("access_logs");
            }
        })
    };
    // A client silent for the client timeout loses its connection: while its request's
    // head is awaited (a slow sender, or an idle kept-alive connection), while a response
    // waits for it to read (stall.rs), and during a TLS handshake; a request body it stops
    // sending fails with RequestTimeout (coffer_api::Watched).
    let client_timeout = config.client_timeout;
    coffer_api::set_client_timeout(client_timeout);
    // HTTP/1.1 only, as S3 speaks it: no protocol sniffing before hyper's header timer runs
    // (a connection that never sends a byte is cut off like any other silent one).
    let mut http = ConnBuilder::new(TokioExecutor::new()).http1_only();
    http.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(client_timeout)
        .max_headers(MAX_HEADERS)
        // A client that shuts down its sending side after its request still gets the
        // answer (without this, hyper dropped the response of a request it had run).
        .half_close(true);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, most likely: retrying at once would spin.
                    // Idle connections time out and free theirs.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            () = shutdown.as_mut() => break,
        };
        // Small responses must not wait for the client's delayed ACK.
        let _ = stream.set_nodelay(true);
        let service = dispatch::Dispatcher::new(app.clone(), peer, tls.is_some());
        match &tls {
            None => {
                let stream = stall::WriteDeadline::new(stream, client_timeout);
                let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let http = http.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream =
                        match tokio::time::timeout(client_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => stall::WriteDeadline::new(s, client_timeout),
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!("TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("in-flight requests did not finish in time");
        }
    }
    collector.abort();
    if let Some(task) = abandoned {
        task.abort();
    }
    kms_ticker.abort();
    lifecycle.abort();
    access_log_delivery.abort();
    usage_sampler.abort();
    // What the last requests logged is delivered before the process ends.
    app.access_logs.deliver().await;
    if let Err(e) = app.kms.flush_usage().await {
        tracing::warn!(error = %e, "could not write the last KMS key usage records");
    }
    let audit = app.audit.clone();
    tokio::task::spawn_blocking(move || audit.shutdown()).await?;
    Ok(())
}
