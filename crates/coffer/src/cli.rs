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
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where metadata and object data live.
    #[arg(long, env = "COFFER_DATA_DIR", default_value = "./coffer-data")]
    pub data_dir: PathBuf,

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
}

impl ServeArgs {
    pub fn config(self) -> crate::Config {
        crate::Config {
            data_dir: self.data_dir,
            listen: self.listen,
            region: self.region,
            domain: self.domain,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
        }
    }
}
