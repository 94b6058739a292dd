//! `GET /api/v1/events`: server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use futures::StreamExt;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, IntervalStream};

use crate::source::SegmentSource;
use crate::{GatewayState, snapshot};

const STATS_EVERY: Duration = Duration::from_secs(1);

pub async fn events<S: SegmentSource>(
    State(state): State<GatewayState<S>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let happenings = BroadcastStream::new(state.telemetry.subscribe()).filter_map(|e| async move {
        match e {
            Ok(e) => Some(SseEvent::default().event(e.name()).json_data(&e).ok()?),
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                Some(SseEvent::default().event("lagged").data(n.to_string()))
            }
        }
    });
    let ticker_state = state.clone();
    let stats = IntervalStream::new(tokio::time::interval(STATS_EVERY)).filter_map(move |_| {
        let s = snapshot(&ticker_state);
        async move { SseEvent::default().event("stats-update").json_data(&s).ok() }
    });
    let shutdown = state.shutdown.clone();
    let stream = futures::stream::select(happenings, stats)
        .map(Ok)
        .take_until(async move { shutdown.cancelled().await });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
