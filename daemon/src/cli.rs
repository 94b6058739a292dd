//! The command line (DESIGN §6).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::run::GATEWAY_ADDR_FILE;
use crate::store::unixfs;

#[derive(Debug, Parser)]
#[command(
    name = "swarmseed",
    version,
    about = "Serves HLS through a CID-verified store, peers and the CDN"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run {
        /// Config file; without one, the embedded defaults apply.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Show the running daemon's stats.
    Status {
        /// Config file of the daemon to ask.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print a file's CID, as `ipfs add --cid-version=1 --raw-leaves --chunker=size-1048576` would.
    Cid {
        /// The file.
        file: PathBuf,
    },
}

pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

pub fn cid(file: &Path) -> anyhow::Result<String> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let cid = unixfs::cid_of_reader(std::io::BufReader::with_capacity(unixfs::CHUNK, f))
        .with_context(|| format!("reading {}", file.display()))?;
    Ok(cid.to_string())
}

/// The running daemon's gateway: the address it wrote at start, else the
/// configured one.
fn gateway_addr(config: &Config) -> SocketAddr {
    std::fs::read_to_string(config.data_dir.join(GATEWAY_ADDR_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(config.gateway.listen)
}

pub async fn status(config: &Config) -> anyhow::Result<String> {
    let addr = gateway_addr(config);
    let url = format!("http://{addr}/api/v1/stats");
    let stats: serde_json::Value = reqwest::get(&url)
        .await
        .with_context(|| format!("no daemon answers at {addr}"))?
        .error_for_status()?
        .json()
        .await?;
    Ok(format!(
        "gateway http://{addr}\n{}",
        serde_json::to_string_pretty(&stats)?
    ))
}
