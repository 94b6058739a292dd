//! One browser on one data channel: the seeder's half of the peer
//! protocol (`shared/P2PML.md` §5). It announces every id it holds, on
//! open and on every change, and answers each request with the segment's
//! header, its bytes in chunks, and the completion marker; or with
//! `SegmentAbsent`. It never asks the browser for anything.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::command::{self, Command, DEFAULT_MAX_MESSAGE_SIZE, Message, Reassembler};
use super::host::{BrowserEvent, Held, Host};
use crate::rtc::{Incoming, Session, Writer};

/// Malformed commands a browser may send before it is dropped: library
/// peers send none, so a stream of them is noise or an attack.
const MAX_BAD_COMMANDS: u32 = 64;

/// How a browser connection is run.
#[derive(Clone, Copy, Debug)]
pub struct PeerLimits {
    /// How long one message may wait for room before the browser counts
    /// as not reading, and is dropped.
    pub stall: Duration,
    /// How long the data channel may take to open.
    pub open: Duration,
}

impl Default for PeerLimits {
    fn default() -> Self {
        Self {
            stall: Duration::from_secs(10),
            open: Duration::from_secs(30),
        }
    }
}

/// Why an upload or the connection stopped.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stop {
    Closed,
    Stalled,
}

/// Who the browser is, for events.
pub(crate) struct PeerName {
    pub peer: String,
    pub swarm: String,
}

/// A segment going out; resolves to its bytes sent.
pub(crate) type Upload = Pin<Box<dyn Future<Output = Result<u64, Stop>> + Send>>;

/// Waits for the channel to open and reports the browser connected;
/// `false` if it did not open in time.
pub(crate) async fn opened<H: Host>(
    session: &mut Session,
    name: &PeerName,
    host: &H,
    limits: PeerLimits,
) -> bool {
    let remote = match tokio::time::timeout(limits.open, session.recv()).await {
        Ok(Some(Incoming::Open { remote })) => remote,
        _ => return false,
    };
    host.event(BrowserEvent::Connected {
        peer: name.peer.clone(),
        swarm: name.swarm.clone(),
        remote,
    });
    true
}

/// The upload under way, when there is one; pending forever otherwise,
/// for a `select!` arm guarded by `upload.is_some()`.
pub(crate) async fn upload_done<K>(upload: &mut Option<(K, Upload)>) -> Result<u64, Stop> {
    match upload.as_mut() {
        Some((_, u)) => u.await,
        None => std::future::pending().await,
    }
}

/// Closes the channel and reports the browser gone.
pub(crate) fn finish<H: Host>(
    writer: &Writer,
    host: &H,
    name: PeerName,
    sent: u64,
    reason: &'static str,
) {
    writer.close();
    host.event(BrowserEvent::Disconnected {
        peer: name.peer,
        swarm: name.swarm,
        bytes: sent,
        reason,
    });
}

/// Runs one browser's connection until it closes, stalls, misbehaves or
/// `stop` fires; returns the segment bytes sent.
pub(crate) async fn serve<H: Host>(
    mut session: Session,
    name: PeerName,
    stream: Arc<str>,
    mut held: watch::Receiver<Held>,
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
    let mut reassembler = Reassembler::new();
    let mut upload: Option<((u64, u64), Upload)> = None;
    let ids = held.borrow_and_update().clone();
    let first = announce(&writer, &ids, limits.stall).await;
    let reason = loop {
        if let Err(s) = first {
            break s.reason();
        }
        tokio::select! {
            _ = stop.cancelled() => break "left the swarm",
            m = session.recv() => {
                let msg = match m {
                    None => break "closed",
                    Some(Incoming::Open { .. }) => continue,
                    Some(Incoming::Message(msg)) => msg,
                };
                match reassembler.push(&msg) {
                    Ok(Message::Command(Command::Request { id, request_id, offset })) => {
                        // A new request replaces the one under way, as the
                        // library's own uploader does; bytes of the old one
                        // still in flight come before the new header, and
                        // the browser drops them.
                        upload = Some((
                            (id, request_id),
                            Box::pin(send_segment(
                                host.clone(),
                                stream.clone(),
                                writer.clone(),
                                (id, request_id, offset),
                                limits.stall,
                            )),
                        ));
                    }
                    Ok(Message::Command(Command::Cancel { id, request_id })) => {
                        if upload.as_ref().is_some_and(|(r, _)| *r == (id, request_id)) {
                            upload = None;
                        }
                    }
                    // Its holdings, and answers to requests we never make.
                    Ok(_) => {}
                    Err(e) => {
                        bad += 1;
                        debug!(peer = %name.peer, error = %e, "malformed command");
                        if bad > MAX_BAD_COMMANDS {
                            break "sent malformed commands";
                        }
                    }
                }
            }
            changed = held.changed() => {
                if changed.is_err() {
                    break "left the swarm";
                }
                let ids = held.borrow_and_update().clone();
                if let Err(s) = announce(&writer, &ids, limits.stall).await {
                    break s.reason();
                }
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

impl Stop {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Stop::Closed => "closed",
            Stop::Stalled => "stopped reading",
        }
    }
}

pub(crate) async fn send(writer: &Writer, msg: Bytes, stall: Duration) -> Result<(), Stop> {
    match tokio::time::timeout(stall, writer.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Stop::Closed),
        Err(_) => Err(Stop::Stalled),
    }
}

async fn send_command(writer: &Writer, cmd: &Command, stall: Duration) -> Result<(), Stop> {
    for part in command::encode(cmd, DEFAULT_MAX_MESSAGE_SIZE) {
        send(writer, part.into(), stall).await?;
    }
    Ok(())
}

async fn announce(writer: &Writer, ids: &[u64], stall: Duration) -> Result<(), Stop> {
    let cmd = Command::announcement(ids.iter().copied(), std::iter::empty());
    send_command(writer, &cmd, stall).await
}

/// Header, chunks, completion; or `SegmentAbsent` for what is not held.
async fn send_segment<H: Host>(
    host: Arc<H>,
    stream: Arc<str>,
    writer: Writer,
    (id, request_id, offset): (u64, u64, u64),
    stall: Duration,
) -> Result<u64, Stop> {
    let bytes = host.segment(&stream, id).await;
    let Some(bytes) = bytes.filter(|b| offset < b.len() as u64) else {
        let absent = Command::Absent { id, request_id };
        send_command(&writer, &absent, stall).await?;
        return Ok(0);
    };
    let rest = bytes.slice(offset as usize..);
    let header = Command::Data {
        id,
        size: rest.len() as u64,
        request_id,
    };
    send_command(&writer, &header, stall).await?;
    let mut sent = 0u64;
    for chunk in command::data_chunks(&rest, DEFAULT_MAX_MESSAGE_SIZE) {
        host.pace(chunk.len()).await;
        send(&writer, rest.slice_ref(chunk), stall).await?;
        host.uploaded(chunk.len() as u64);
        sent += chunk.len() as u64;
    }
    send_command(&writer, &Command::Completed { id, request_id }, stall).await?;
    Ok(sent)
}
