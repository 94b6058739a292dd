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
    /// Super-seed a video through the running daemon, showing progress.
    Seed {
        /// The master playlist URL, or a PeerTube video's watch or API URL
        /// (or, with --latest, a channel's or account's).
        url: String,
        /// Video id; by default derived from the URL.
        #[arg(long)]
        id: Option<String>,
        /// The `swarmId` the video's p2p-media-loader pages set, if any.
        #[arg(long)]
        swarm_id: Option<String>,
        /// A WebTorrent tracker (`wss://…`) the video's pages announce to;
        /// repeat for more.
        #[arg(long = "tracker")]
        trackers: Vec<String>,
        /// With a PeerTube channel or account URL: seed its N latest videos.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
        latest: Option<u32>,
        /// A SHA-256 list of the segments (PeerTube's `segments-sha256.json`
        /// shape) to check every byte against; PeerTube videos bring their own.
        #[arg(long)]
        segments_sha256: Option<String>,
        /// Config file of the daemon to ask.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Write a CID map for a video, fetching every segment from its origin.
    /// Serve it beside the master playlist and name it there with
    /// `#EXT-X-SESSION-DATA:DATA-ID="io.swarmseed.cidmap",URI="…"`.
    Cidmap {
        /// The master playlist URL.
        url: String,
        /// Where to write the map; standard output by default.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Contribution proofs: check or export receipts, roots and inclusion proofs.
    Proofs {
        #[command(subcommand)]
        action: ProofsCommand,
    },
    /// Print a file's CID, as `ipfs add --cid-version=1 --raw-leaves --chunker=size-1048576` would.
    Cid {
        /// The file.
        file: PathBuf,
    },
    /// Pin videos in the running daemon: pinned videos are seeded whole and
    /// never evicted.
    Pin {
        #[command(subcommand)]
        action: crate::pin_cli::PinAction,
        /// Config file of the daemon to ask.
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProofsCommand {
    /// Check every signature, inclusion proof and root, offline, with the
    /// keys inside the peer ids. Exits non-zero at the first failure.
    Verify {
        /// A bundle file, a URL serving one, or a daemon's base URL
        /// (`http://host:port`) whose proofs API is walked page by page.
        source: String,
    },
    /// Write the running daemon's closed epochs, receipts and proofs as a bundle.
    Export {
        /// One epoch only.
        #[arg(long)]
        epoch: Option<u64>,
        /// Where to write it; standard output by default.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Config file of the daemon to ask.
        #[arg(long, short)]
        config: Option<PathBuf>,
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

pub fn daemon_url(config: &Config, path: &str) -> String {
    format!("http://{}{path}", gateway_addr(config))
}

/// A client for the local daemon that sends the API token, when it can be
/// read, with every request: a public gateway wants it for reads of local
/// state too. Never used for other hosts.
pub fn daemon_client(config: &Config) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(token) = api_token(config) {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the API token is not a valid header value")?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}

/// The running daemon's API token, for mutating requests.
pub(crate) fn api_token(config: &Config) -> anyhow::Result<String> {
    let token_path = config.data_dir.join("api.token");
    let token = std::fs::read_to_string(&token_path).with_context(|| {
        format!(
            "reading {} (is the daemon running with this config?)",
            token_path.display()
        )
    })?;
    Ok(token.trim().to_owned())
}

/// Asks the running daemon to seed `url`, then follows the job to its end.
/// Asks the daemon to seed; its answer, or why it refused.
async fn post_seed(
    config: &Config,
    url: &str,
    options: &gateway::SeedOptions,
    latest: Option<u32>,
) -> anyhow::Result<reqwest::Response> {
    let token = api_token(config)?;
    let reply = daemon_client(config)?
        .post(daemon_url(config, "/api/v1/videos"))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({
            "url": url,
            "id": options.id,
            "swarm_id": options.swarm_id,
            "trackers": options.trackers,
            "latest": latest,
            "segments_sha256": options.segments_sha256,
        }))
        .send()
        .await
        .context("no daemon answers")?;
    if !reply.status().is_success() {
        let text = reply.text().await.unwrap_or_default();
        let reason = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or(text);
        anyhow::bail!("the daemon refused: {reason}");
    }
    Ok(reply)
}

/// Seeds the `n` latest videos of a PeerTube channel or account and waits
/// for them all.
pub async fn seed_latest(
    config: &Config,
    url: &str,
    n: u32,
    options: gateway::SeedOptions,
) -> anyhow::Result<String> {
    let started: Vec<gateway::VideoStatus> = post_seed(config, url, &options, Some(n))
        .await?
        .json()
        .await?;
    let client = daemon_client(config)?;
    let mut lines = Vec::new();
    for s in started.iter().filter(|s| s.state == "failed") {
        lines.push(format!(
            "{}: not seeded: {}",
            s.peertube.as_deref().unwrap_or(&s.url),
            s.reason.as_deref().unwrap_or_default()
        ));
    }
    let mut waiting: Vec<String> = started
        .iter()
        .filter(|s| s.state != "failed")
        .map(|s| s.id.clone())
        .collect();
    while !waiting.is_empty() {
        let videos: Vec<gateway::VideoStatus> = client
            .get(daemon_url(config, "/api/v1/videos"))
            .send()
            .await?
            .json()
            .await?;
        waiting.retain(|id| {
            let Some(v) = videos.iter().find(|v| v.id == *id) else {
                lines.push(format!("{id}: the daemon lost the job"));
                return false;
            };
            match v.state.as_str() {
                "complete" => lines.push(format!("{id} seeded: {} segments", v.segments_total)),
                "failed" => lines.push(format!(
                    "{id}: failed: {}",
                    v.reason.as_deref().unwrap_or_default()
                )),
                _ => return true,
            }
            false
        });
        if !waiting.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }
    Ok(lines.join("\n"))
}

pub async fn seed(
    config: &Config,
    url: &str,
    options: gateway::SeedOptions,
) -> anyhow::Result<String> {
    let client = daemon_client(config)?;
    let started: gateway::VideoStatus =
        post_seed(config, url, &options, None).await?.json().await?;
    let bar = indicatif::ProgressBar::new(0).with_message(started.id.clone());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:.12} [{bar:40}] {pos}/{len} segments {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    loop {
        let videos: Vec<gateway::VideoStatus> = client
            .get(daemon_url(config, "/api/v1/videos"))
            .send()
            .await?
            .json()
            .await?;
        let Some(v) = videos.into_iter().find(|v| v.id == started.id) else {
            anyhow::bail!("the daemon lost the job");
        };
        bar.set_length(v.segments_total);
        bar.set_position(v.segments_stored);
        match v.state.as_str() {
            "complete" => {
                bar.finish();
                return Ok(format!("{} seeded: {} segments", v.id, v.segments_total));
            }
            "failed" => {
                bar.abandon();
                anyhow::bail!("seeding {} failed: {}", v.id, v.reason.unwrap_or_default());
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(300)).await,
        }
    }
}

/// Builds an unsigned CID map from the origin alone.
pub async fn cidmap(url: &str) -> anyhow::Result<crate::cidmap::CidMap> {
    let url = url::Url::parse(url).context("parsing the URL")?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "only http and https URLs are accepted"
    );
    // The person at this machine named the URL; no policy but the scheme.
    let anywhere = gateway::UpstreamPolicy {
        allow_private: true,
        ..gateway::UpstreamPolicy::default()
    };
    let cdn = crate::cdn::Cdn::new(std::time::Duration::from_secs(30), 2, anywhere.into())?;
    let limit = 1 << 30;
    let renditions = crate::cidmap::renditions(&url, |u| {
        let cdn = cdn.clone();
        async move {
            let f = cdn
                .get(&u, None, 64 << 20)
                .await
                .map_err(|e| e.to_string())?;
            Ok((f.body, f.final_url))
        }
    })
    .await
    .map_err(anyhow::Error::msg)?;
    let mut out = Vec::new();
    for (playlist, keys) in renditions {
        let mut segments = Vec::with_capacity(keys.len());
        for key in keys {
            let f = cdn
                .get(&key.url, key.range, limit)
                .await
                .with_context(|| key.to_string())?;
            let cid = unixfs::import(&f.body).root.to_string();
            segments.push(crate::cidmap::Entry {
                key: key.to_string(),
                cid,
                size: f.body.len() as u64,
            });
        }
        out.push(crate::cidmap::Rendition { playlist, segments });
    }
    Ok(crate::cidmap::CidMap::new(
        crate::video::video_id(&url),
        url.to_string(),
        out,
    ))
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
