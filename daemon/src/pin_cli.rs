//! `swarmseed pin add|rm|ls`: pins in the running daemon, through its API.

use anyhow::Context;
use clap::Subcommand;
use gateway::PinStatus;

use crate::cli::{api_token, daemon_client, daemon_url};
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum PinAction {
    /// Pin a video and seed it whole.
    Add {
        /// The master playlist URL.
        url: String,
        /// Video id; by default derived from the URL.
        #[arg(long)]
        id: Option<String>,
    },
    /// Unpin a video: its segments become cache, evicted when space is needed.
    Rm {
        /// The video id.
        id: String,
    },
    /// List pins: id, state, objects, bytes, URL.
    Ls,
}

pub async fn run(config: &Config, action: PinAction) -> anyhow::Result<String> {
    let client = daemon_client(config)?;
    let url = daemon_url(config, "/api/v1/pins");
    match action {
        PinAction::Add { url: video, id } => {
            let reply = client
                .post(&url)
                .bearer_auth(api_token(config)?)
                .json(&serde_json::json!({ "url": video, "id": id }))
                .send()
                .await
                .context("no daemon answers")?;
            if !reply.status().is_success() {
                anyhow::bail!(
                    "the daemon refused: {}",
                    reply.text().await.unwrap_or_default()
                );
            }
            let pin: PinStatus = reply.json().await?;
            Ok(format!("pinned {} ({})", pin.id, pin.state))
        }
        PinAction::Rm { id } => {
            let reply = client
                .delete(format!("{url}/{id}"))
                .bearer_auth(api_token(config)?)
                .send()
                .await
                .context("no daemon answers")?;
            match reply.status().as_u16() {
                204 => Ok(format!("unpinned {id}")),
                404 => anyhow::bail!("no pin {id}"),
                _ => anyhow::bail!(
                    "the daemon refused: {}",
                    reply.text().await.unwrap_or_default()
                ),
            }
        }
        PinAction::Ls => {
            let pins: Vec<PinStatus> = client
                .get(&url)
                .send()
                .await
                .context("no daemon answers")?
                .error_for_status()?
                .json()
                .await?;
            let mut out = String::from("ID\tSTATE\tOBJECTS\tBYTES\tURL");
            for p in pins {
                out.push_str(&format!(
                    "\n{}\t{}\t{}\t{}\t{}",
                    p.id, p.state, p.objects, p.bytes, p.url
                ));
                if let Some(r) = p.reason {
                    out.push_str(&format!("\t({r})"));
                }
            }
            Ok(out)
        }
    }
}
