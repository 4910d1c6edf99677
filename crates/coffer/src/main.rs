//! `coffer`: the server binary. Glue only; see the `coffer` library for the server.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use coffer::cli::{Cli, Command};

/// mimalloc, not glibc's malloc: a request allocates a few hundred times, from threads
/// that glibc's arenas make contend (futex wake-ups in `realloc`); measured in
/// ARCHITECTURE.md ("Dependencies, and why").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // s3s logs whole requests (headers included: SSE-C keys, session tokens) and its
    // signature checks' canonical requests at debug and below: secrets never reach the
    // log, whatever COFFER_LOG asks of s3s (of two directives for one target, the later
    // one holds).
    let wanted = std::env::var("COFFER_LOG").unwrap_or_else(|_| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{wanted},s3s=info"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,s3s=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("coffer: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(*args)),
        Command::Audit(coffer::cli::AuditArgs {
            command:
                coffer::cli::AuditCommand::Verify {
                    data_dir,
                    root_key,
                    meta,
                    audit_dir,
                },
        }) => {
            let trail = coffer::audit_cmd::TrailAt {
                meta: meta.as_deref(),
                audit_dir: audit_dir.as_deref(),
            };
            return match runtime.block_on(coffer::audit_cmd::verify(&data_dir, &root_key, trail)) {
                Ok(findings) if findings.is_empty() => {
                    println!("audit trail intact");
                    ExitCode::SUCCESS
                }
                Ok(findings) => {
                    for f in &findings {
                        println!("{f}");
                    }
                    eprintln!("coffer: {} finding(s) in the audit trail", findings.len());
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("coffer: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Usage {
            data_dir,
            start,
            end,
            json,
        } => {
            coffer::audit_cmd::usage(&data_dir, start.as_deref(), end.as_deref()).and_then(|rows| {
                if json {
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    print!("{}", coffer::audit_cmd::usage_table(&rows));
                }
                Ok(())
            })
        }
        Command::Account(args) => runtime.block_on(async {
            let out = coffer::admin::run(args).await?;
            println!("{out}");
            Ok(())
        }),
        Command::Migrate(args) => runtime.block_on(async {
            let moved = coffer::migrate::run(&args.plan()?).await?;
            println!("{}", serde_json::to_string_pretty(&moved)?);
            eprintln!(
                "coffer: migrated. Start each node with --meta, --blobs{} and --audit-dir as given here, the root key this data directory was served with, and COFFER_ROOT_ACCESS_KEY_ID={} with its secret in COFFER_ROOT_SECRET_ACCESS_KEY.",
                if moved.archived_blobs > 0 { ", --archive-dir" } else { "" },
                moved.root_access_key_id
            );
            Ok(())
        }),
        Command::RootKey(args) => runtime.block_on(async {
            let out = coffer::admin::root_key(args).await?;
            println!("{out}");
            Ok(())
        }),
        Command::Clock(args) => runtime.block_on(async {
            let out = coffer::admin::clock(args).await?;
            println!("{out}");
            Ok(())
        }),
        Command::Snapshot(args) => snapshot(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coffer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn snapshot(args: coffer::cli::SnapshotArgs) -> anyhow::Result<()> {
    use coffer::cli::SnapshotCommand;
    let done = match args.command {
        SnapshotCommand::Save {
            data_dir,
            root_key,
            file,
        } => coffer::snapshot::save(&data_dir, &root_key.source(&data_dir)?, &file)?,
        SnapshotCommand::Load {
            data_dir,
            root_key,
            file,
        } => coffer::snapshot::load(&data_dir, |staged| root_key.source(staged), &file)?,
    };
    println!("{}", serde_json::to_string_pretty(&done)?);
    Ok(())
}

async fn serve(args: coffer::cli::ServeArgs) -> anyhow::Result<()> {
    let dev_remote = args.dev_allow_remote;
    let mut args = args;
    // A --dev server's state lives in a temporary directory, removed when it exits.
    let dev_dir = if args.dev {
        let dir = tempfile::Builder::new()
            .prefix("coffer-dev-")
            .tempdir()
            .map_err(|e| anyhow::anyhow!("creating a temporary data directory: {e}"))?;
        args.data_dir = dir.path().to_path_buf();
        Some(dir)
    } else {
        None
    };
    let config = args.config()?;
    if config.dev && !dev_remote && !config.listen.ip().is_loopback() {
        anyhow::bail!(
            "--dev accepts any credentials, so it listens on loopback only: {} is not a loopback address (--dev-allow-remote to allow it)",
            config.listen
        );
    }
    let (app, identity) = coffer::App::open(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    if identity.generated {
        // Shown once, at the first start, so the operator can configure clients.
        println!(
            "Generated root credentials (stored in {}):",
            config.data_dir.join("identity.json").display()
        );
        println!(
            "  aws configure set aws_access_key_id {}",
            identity.root_access_key_id
        );
        println!(
            "  aws configure set aws_secret_access_key {}",
            identity.root_secret.expose()
        );
        println!("  aws configure set region {}", config.region);
    }
    // The SIGTERM handler is installed before "listening on" is printed: a supervisor that
    // stops the server right after it reports ready must get a clean shutdown, not the
    // default action of the signal.
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    tracing::info!(account = %identity.account.id, data_dir = %config.data_dir.display(), "coffer ready");
    if config.dev {
        println!("Coffer development server: not for production data.");
        println!(
            "  Any access key and secret are accepted: a 12-digit key id is that account's root, any other the root of account {}.",
            identity.account.id
        );
        println!("  Users and keys created inside are checked as on AWS.");
        println!(
            "  State is temporary ({}), removed at exit.",
            config.data_dir.display()
        );
        println!("  The test clock is on: coffer clock advance 90d");
    }
    println!("listening on {scheme}://{addr}");
    let served = coffer::serve(listener, Arc::new(app), &config, shutdown_signal(term)).await;
    drop(dev_dir);
    served
}

async fn shutdown_signal(term: std::io::Result<tokio::signal::unix::Signal>) {
    let mut term = match term {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
