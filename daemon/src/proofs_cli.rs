//! `swarmseed proofs verify FILE|URL` and `swarmseed proofs export`.

use std::path::Path;

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use proofs::export::{Bundle, BundleEpoch, EpochPage, ReceiptPage, ReceiptWithProof};
use proofs::verify::{Summary, verify_bundle};
use url::Url;

/// Checks a bundle from a file, from a URL that serves one, or from a
/// daemon's proofs API when the URL names only the daemon
/// (`http://host:port`).
pub async fn verify(source: &str) -> anyhow::Result<Summary> {
    let bundle = match Url::parse(source) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            if url.path() == "/" || url.path().is_empty() {
                walk_api(&url).await?
            } else {
                get_json(&reqwest::Client::new(), url.as_str()).await?
            }
        }
        Ok(url) if url.scheme().len() > 1 => bail!("{source}: only http and https URLs are read"),
        _ => read_file(Path::new(source))?,
    };
    Ok(verify_bundle(&bundle)?)
}

fn read_file(path: &Path) -> anyhow::Result<Bundle> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a proofs bundle", path.display()))
}

async fn get_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> anyhow::Result<T> {
    let reply = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("fetching {url}"))?;
    if !reply.status().is_success() {
        bail!("{url}: {}", reply.status());
    }
    let bytes = reply
        .bytes()
        .await
        .with_context(|| format!("reading {url}"))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{url} does not hold what was expected"))
}

/// Assembles a bundle through the paginated API, asking for each receipt's
/// proof one by one, as any outside checker would.
async fn walk_api(base: &Url) -> anyhow::Result<Bundle> {
    let client = reqwest::Client::new();
    let api = |path: String| format!("{}api/v1/proofs/{path}", base.as_str());
    let mut roots = Vec::new();
    let mut provider = None;
    let mut after = String::new();
    loop {
        let page: EpochPage = get_json(&client, &api(format!("epochs?limit=1000{after}"))).await?;
        provider.get_or_insert(page.provider.clone());
        roots.extend(page.epochs);
        match page.next {
            Some(n) => after = format!("&after={n}"),
            None => break,
        }
    }
    let mut epochs = Vec::with_capacity(roots.len());
    for root in roots {
        let mut hashes = Vec::new();
        let mut after = String::new();
        loop {
            let page: ReceiptPage = get_json(
                &client,
                &api(format!("receipts?epoch={}&limit=1000{after}", root.epoch)),
            )
            .await?;
            hashes.extend(page.receipts.into_iter().map(|r| r.hash));
            match page.next {
                Some(h) => after = format!("&after={h}"),
                None => break,
            }
        }
        let receipts: Vec<ReceiptWithProof> = futures::stream::iter(hashes)
            .map(|h| {
                let (client, url) = (client.clone(), api(format!("receipts/{h}")));
                async move { get_json::<ReceiptWithProof>(&client, &url).await }
            })
            .buffered(16)
            .try_collect()
            .await?;
        epochs.push(BundleEpoch { root, receipts });
    }
    Ok(Bundle {
        v: proofs::VERSION,
        provider: provider.unwrap_or_default(),
        epochs,
    })
}

/// The running daemon's bundle of closed epochs, as JSON; `client` carries
/// the token a public gateway asks for.
pub async fn export(
    client: &reqwest::Client,
    gateway: &str,
    epoch: Option<u64>,
) -> anyhow::Result<Vec<u8>> {
    let mut url = format!("{gateway}/api/v1/proofs/export");
    if let Some(e) = epoch {
        url.push_str(&format!("?epoch={e}"));
    }
    let bundle: Bundle = get_json(client, &url).await?;
    Ok(serde_json::to_vec_pretty(&bundle)?)
}
