//! One WebSocket peer: reads its messages (within size and rate bounds),
//! writes replies and relayed messages, pings it, and closes it when it
//! goes quiet or idle.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use tracing::debug;

use super::TrackerConfig;
use super::api::json_error;
use super::error::TrackerError;
use super::state::{PeerAddr, Registration, Tracker};
use super::wire::{Action, Failure, TrackerMessage};

/// Accepts a WebSocket from `remote` if the socket limits allow, and runs
/// it. Refusals are HTTP errors, before the upgrade.
pub(crate) fn accept(
    tracker: &Arc<Tracker>,
    ws: WebSocketUpgrade,
    remote: Option<PeerAddr>,
) -> Response {
    let (reg, outbox) = match tracker.register(remote, false) {
        Ok(r) => r,
        Err(e) => {
            let status = match e {
                TrackerError::TooManySocketsPerIp { .. } => {
                    axum::http::StatusCode::TOO_MANY_REQUESTS
                }
                _ => axum::http::StatusCode::SERVICE_UNAVAILABLE,
            };
            return json_error(status, e.to_string()).into_response();
        }
    };
    let max = tracker.config.limits.max_message_bytes;
    let conn = reg.id();
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade(move |e| debug!(conn, error = %e, "tracker: WebSocket upgrade failed"))
        // The registration moves into the session and so lives exactly as
        // long as the socket (it is dropped with the callback if the
        // upgrade fails).
        .on_upgrade(move |socket| Session::new(reg, outbox).run(socket))
}

/// Why a session ends: a close frame to send, or nothing when the peer is
/// gone already.
type Close = Option<(u16, String)>;

/// Whether a session goes on after handling one event.
enum Step {
    Go,
    End(Close),
}

struct Session {
    reg: Registration,
    outbox: mpsc::Receiver<TrackerMessage>,
    bucket: TokenBucket,
    /// Told the peer it is over its rate since it last was under it.
    told_rate_limited: bool,
}

impl Session {
    fn new(reg: Registration, outbox: mpsc::Receiver<TrackerMessage>) -> Self {
        let limits = &reg.tracker().config.limits;
        let bucket = TokenBucket::new(limits.messages_per_second, limits.message_burst);
        Self {
            reg,
            outbox,
            bucket,
            told_rate_limited: false,
        }
    }

    async fn run(mut self, mut ws: WebSocket) {
        let tracker = self.reg.tracker().clone();
        let config = &tracker.config;
        let mut ping = tokio::time::interval_at(
            tokio::time::Instant::now() + config.ping_interval,
            config.ping_interval,
        );
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Anything the peer sends counts as a sign of life, not just pongs.
        let mut heard = true;
        let close: Close = loop {
            let step = tokio::select! {
                _ = tracker.shutdown.cancelled() => {
                    Step::End(Some((close_code::AWAY, "the tracker is shutting down".into())))
                }
                frame = ws.recv() => {
                    heard = true;
                    self.on_frame(&mut ws, frame).await
                }
                msg = self.outbox.recv() => match msg {
                    Some(msg) => send(&mut ws, &msg, config).await,
                    None => Step::End(None),
                },
                _ = ping.tick() => {
                    let step = self.on_tick(&mut ws, heard).await;
                    heard = false;
                    step
                }
            };
            if let Step::End(close) = step {
                break close;
            }
        };
        if let Some((code, reason)) = close {
            let frame = Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }));
            // Best effort: after a read error the peer may not take it.
            let _ = tokio::time::timeout(config.send_timeout, ws.send(frame)).await;
        }
        // `self.reg` drops here, taking the peer out of every swarm.
    }

    /// One frame (or the end) from the peer.
    async fn on_frame(
        &mut self,
        ws: &mut WebSocket,
        frame: Option<Result<Message, axum::Error>>,
    ) -> Step {
        let config = &self.reg.tracker().config;
        let reply = match frame {
            None | Some(Ok(Message::Close(_))) => return Step::End(None),
            Some(Err(e)) => {
                return Step::End(read_error(
                    self.reg.id(),
                    &e,
                    config.limits.max_message_bytes,
                ));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Step::Go,
            Some(Ok(Message::Text(text))) => self.on_text(text.as_str()),
            // bittorrent-tracker parses binary frames as text too, and some
            // clients send them.
            Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.on_text(text),
                Err(_) => Some(TrackerMessage::Failure(Failure {
                    reason: "binary message is not UTF-8 JSON".into(),
                    action: Some(Action::Announce),
                    info_hash: None,
                })),
            },
        };
        match reply {
            Some(reply) => send(ws, &reply, &self.reg.tracker().config).await,
            None => Step::Go,
        }
    }

    /// The heartbeat: close if the peer said nothing since the last ping,
    /// or has been in no swarm too long; else ping again.
    async fn on_tick(&self, ws: &mut WebSocket, heard: bool) -> Step {
        let tracker = self.reg.tracker();
        let config = &tracker.config;
        let conn = self.reg.id();
        if !heard {
            debug!(conn, "tracker: no pong, closing");
            return Step::End(Some((close_code::AWAY, "no reply to ping".into())));
        }
        if let Some(idle) = tracker.idle_for(conn)
            && idle >= config.idle_timeout
        {
            debug!(
                conn,
                idle_secs = idle.as_secs(),
                "tracker: idle socket, closing"
            );
            let reason = format!("in no swarm for {} s", config.idle_timeout.as_secs());
            return Step::End(Some((close_code::NORMAL, reason)));
        }
        let ping = ws.send(Message::Ping(Default::default()));
        match tokio::time::timeout(config.send_timeout, ping).await {
            Ok(Ok(())) => Step::Go,
            _ => Step::End(None),
        }
    }

    /// Handles one message within the rate limit; returns the reply.
    fn on_text(&mut self, text: &str) -> Option<TrackerMessage> {
        let tracker = self.reg.tracker();
        let conn = self.reg.id();
        if !self.bucket.take(Instant::now()) {
            // One notice per episode: answering every excess message would
            // let a flood cost us as much as serving it.
            if self.told_rate_limited {
                return None;
            }
            self.told_rate_limited = true;
            let limits = &tracker.config.limits;
            debug!(conn, "tracker: peer over its message rate");
            let e = TrackerError::RateLimited {
                per_second: limits.messages_per_second,
                burst: limits.message_burst,
            };
            return Some(TrackerMessage::Failure(Failure {
                reason: e.to_string(),
                action: Some(Action::Announce),
                info_hash: None,
            }));
        }
        self.told_rate_limited = false;
        tracker.handle_text(conn, text)
    }
}

/// Sends one message; ends the session if the socket is broken or too
/// slow to take it.
async fn send(ws: &mut WebSocket, msg: &TrackerMessage, config: &TrackerConfig) -> Step {
    let text = match serde_json::to_string(msg) {
        Ok(t) => t,
        Err(e) => {
            // Cannot happen for these types; skip rather than kill the peer.
            debug!(error = %e, "tracker: could not encode a message");
            return Step::Go;
        }
    };
    match tokio::time::timeout(config.send_timeout, ws.send(Message::Text(text.into()))).await {
        Ok(Ok(())) => Step::Go,
        Ok(Err(e)) => {
            debug!(error = %e, "tracker: send failed");
            Step::End(None)
        }
        Err(_) => {
            debug!("tracker: send timed out, closing a peer that does not read");
            Step::End(None)
        }
    }
}

/// What to tell a peer whose socket failed to read.
fn read_error(conn: u64, e: &axum::Error, max: usize) -> Close {
    let text = e.to_string();
    // axum wraps a tungstenite version we do not depend on, so the error
    // can only be told apart by its text ("Space limit exceeded: Message
    // too long: …").
    if text.contains("Space limit exceeded") {
        debug!(conn, error = %text, "tracker: message too big, closing");
        return Some((close_code::SIZE, format!("message larger than {max} bytes")));
    }
    debug!(conn, error = %text, "tracker: read failed, closing");
    if text.contains("protocol error") || text.contains("UTF-8") {
        return Some((close_code::PROTOCOL, "WebSocket protocol error".into()));
    }
    None
}

/// Allows `rate` messages per second on average and `burst` at once;
/// a rate of 0 means no limit.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn token_bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5);
        assert_eq!((0..8).filter(|_| b.take(t0)).count(), 5);
        assert!(!b.take(t0));
        assert!(b.take(t0 + Duration::from_millis(100)));
        assert!(!b.take(t0 + Duration::from_millis(110)));
        assert!(TokenBucket::new(0, 1).take(t0) && TokenBucket::new(0, 1).take(t0));
    }
}
