//! The swarms of a PeerTube video's players (`shared/PEERTUBE.md`): those
//! of the generation its origin runs, never an info_hash the origin did not
//! publish. A private PeerTube tracker bans the address that names an
//! unknown info_hash for minutes, and every browser behind it, so when the
//! origin's ActivityPub object lists the info_hashes, only those are
//! joined; the generation they match wins over the one the version names.

use std::collections::HashSet;

use bridge::p2pml::fork;
use bridge::p2pml::stream::{self, Generation as P2pml, StreamKind};
use tracing::{info, warn};
use url::Url;

use super::streams::{Numbering, Planned};
use crate::peertube::{Generation, Resolved};

/// Every stream of the video in the swarms its players join.
pub(super) fn plan(
    video: &str,
    r: &Resolved,
    master_url: &Url,
    body: &[u8],
) -> Result<Vec<Planned>, String> {
    let candidates = |g: Generation| -> Result<Vec<Planned>, String> {
        match g {
            Generation::Fork => fork_plan(r, master_url, body),
            Generation::P2pml22 | Generation::Uuid => binary_plan(g, r, master_url, body),
        }
    };
    let Some(allowed) = &r.allowlist else {
        return candidates(r.generation);
    };
    let allowed: HashSet<[u8; 20]> = allowed.iter().copied().collect();
    let published = |p: &[Planned]| {
        p.iter()
            .flat_map(|s| &s.joins)
            .filter(|(h, _)| allowed.contains(h))
            .count()
    };
    // The version's generation first; another only if the origin
    // published its info_hashes and not the version's.
    let mut order = vec![r.generation];
    order.extend(
        [Generation::Fork, Generation::P2pml22, Generation::Uuid]
            .into_iter()
            .filter(|g| *g != r.generation),
    );
    for g in order {
        let Ok(mut planned) = candidates(g) else {
            continue;
        };
        if published(&planned) == 0 {
            continue;
        }
        if g != r.generation {
            info!(video, version = %r.server_version, generation = g.as_str(), "the origin's published info_hashes are of another generation than its version names");
        }
        let before: usize = planned.iter().map(|p| p.joins.len()).sum();
        for p in &mut planned {
            p.joins.retain(|(h, _)| allowed.contains(h));
        }
        planned.retain(|p| !p.joins.is_empty());
        let after: usize = planned.iter().map(|p| p.joins.len()).sum();
        if after < before {
            warn!(
                video,
                unpublished = before - after,
                "swarms the origin did not publish are left alone"
            );
        }
        return Ok(planned);
    }
    Err(format!(
        "none of the info_hashes PeerTube {} players would use is among the {} the origin published; joining none",
        r.server_version,
        allowed.len()
    ))
}

fn fork_plan(r: &Resolved, master_url: &Url, body: &[u8]) -> Result<Vec<Planned>, String> {
    let streams = fork::streams(r.master.as_str(), master_url, body).map_err(|e| e.to_string())?;
    Ok(streams
        .into_iter()
        .map(|s| Planned {
            playlist: s.playlist,
            kind: StreamKind::Main,
            joins: vec![(s.info_hash, Generation::Fork.as_str())],
            fork_id: Some(s.swarm_id),
            numbering: Numbering::Sequence,
        })
        .collect())
}

/// p2p-media-loader 2.2 with PeerTube's `swarmId` (the playlist URL), or
/// the UUID-named swarms, whose resolution comes from the API's files.
fn binary_plan(
    g: Generation,
    r: &Resolved,
    master_url: &Url,
    body: &[u8],
) -> Result<Vec<Planned>, String> {
    let streams =
        stream::streams(r.master.as_str(), master_url, body).map_err(|e| e.to_string())?;
    Ok(streams
        .into_iter()
        .map(|s| {
            let hash = match g {
                Generation::Uuid => {
                    let resolution = r
                        .resolutions
                        .iter()
                        .find(|(u, _)| *u == s.playlist)
                        .map(|(_, res)| *res);
                    stream::peertube_uuid_swarm(&r.uuid, s.kind, resolution).1
                }
                _ => s.info_hash(P2pml::V22),
            };
            Planned {
                playlist: s.playlist,
                kind: s.kind,
                joins: vec![(hash, g.as_str())],
                fork_id: None,
                numbering: Numbering::P2pml,
            }
        })
        .collect())
}
