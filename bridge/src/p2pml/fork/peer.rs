//! One fork browser on one data channel: the seeder's half of the fork's
//! peer protocol. It sends its segments map (every stream of the master)
//! on open and on every change, answers each request with a `SegmentData`
//! header and the bytes, or with `SegmentAbsent`, and never asks for
//! anything. A command between a header and the segment's last byte would
//! abort the browser's download, so map updates wait for the upload.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::select_all;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::ForkMaster;
use super::command::{self, Incoming as Command};
use crate::p2pml::host::{Held, Host};
use crate::p2pml::peer::{PeerLimits, PeerName, Stop, Upload, finish, opened, send, upload_done};
use crate::rtc::{Incoming, Session, Writer};

/// Malformed commands a browser may send before it is dropped.
const MAX_BAD_COMMANDS: u32 = 64;

/// Runs one fork browser's connection until it closes, stalls, misbehaves
/// or `stop` fires; returns the segment bytes sent.
pub(crate) async fn serve<H: Host>(
    mut session: Session,
    name: PeerName,
    master: ForkMaster,
    host: Arc<H>,
    limits: PeerLimits,
    stop: CancellationToken,
) -> u64 {
    if !opened(&mut session, &name, &*host, limits).await {
        return 0;
    }
    let writer = session.writer();
    let mut sent = 0u64;
    let mut bad = 0u32;
    let mut upload: Option<(String, Upload)> = None;
    let mut map_due = true;
    let mut watched: Vec<(String, watch::Receiver<Held>)> = master
        .streams
        .iter()
        .map(|m| (m.swarm_id.clone(), m.held.clone()))
        .collect();
    let watching = !watched.is_empty();
    let reason = loop {
        if map_due && upload.is_none() {
            map_due = false;
            if let Err(s) = send(&writer, map_of(&mut watched), limits.stall).await {
                break s.reason();
            }
        }
        let changed = select_all(watched.iter_mut().map(|(_, h)| Box::pin(h.changed())));
        tokio::select! {
            _ = stop.cancelled() => break "left the swarm",
            m = session.recv() => {
                let msg = match m {
                    None => break "closed",
                    Some(Incoming::Open { .. }) => continue,
                    Some(Incoming::Message(msg)) => msg,
                };
                match command::decode(&msg) {
                    Some(Ok(Command::Request(id))) => {
                        upload = Some((
                            id.clone(),
                            Box::pin(send_segment(
                                host.clone(),
                                master.clone(),
                                writer.clone(),
                                id,
                                limits.stall,
                            )),
                        ));
                    }
                    Some(Ok(Command::Cancel(id)))
                        if upload.as_ref().is_some_and(|(current, _)| *current == id) =>
                    {
                        upload = None;
                    }
                    Some(Ok(Command::Cancel(_) | Command::Other)) => {}
                    Some(Err(e)) => {
                        bad += 1;
                        debug!(peer = %name.peer, error = %e, "malformed command");
                        if bad > MAX_BAD_COMMANDS {
                            break "sent malformed commands";
                        }
                    }
                    // Data: a seeder asks for none.
                    None => {}
                }
            }
            (changed, _, _) = changed, if watching => {
                if changed.is_err() {
                    break "left the swarm";
                }
                map_due = true;
            }
            done = upload_done(&mut upload), if upload.is_some() => {
                upload = None;
                match done {
                    Ok(n) => sent += n,
                    Err(s) => break s.reason(),
                }
            }
        }
    };
    finish(&writer, &*host, name, sent, reason);
    sent
}

/// The map of what every stream holds now.
fn map_of(watched: &mut [(String, watch::Receiver<Held>)]) -> Bytes {
    let held: Vec<(String, Held)> = watched
        .iter_mut()
        .map(|(id, h)| (id.clone(), h.borrow_and_update().clone()))
        .collect();
    command::segments_map(held.iter().map(|(s, h)| (s.as_str(), h.as_slice()))).into()
}

/// Header and bytes; or `SegmentAbsent` for what is not held.
async fn send_segment<H: Host>(
    host: Arc<H>,
    master: ForkMaster,
    writer: Writer,
    id: String,
    stall: std::time::Duration,
) -> Result<u64, Stop> {
    let bytes = match master.find(&id) {
        Some((member, sequence)) => host.segment(&member.stream, sequence).await,
        None => None,
    };
    let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
        send(&writer, command::absent(&id).into(), stall).await?;
        return Ok(0);
    };
    send(
        &writer,
        command::data(&id, bytes.len() as u64).into(),
        stall,
    )
    .await?;
    let mut sent = 0u64;
    for chunk in command::data_chunks(&bytes) {
        host.pace(chunk.len()).await;
        send(&writer, bytes.slice_ref(chunk), stall).await?;
        host.uploaded(chunk.len() as u64);
        sent += chunk.len() as u64;
    }
    Ok(sent)
}
