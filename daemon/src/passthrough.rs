//! A miss passed through to players as it arrives (a tee): the fetch pushes
//! the upstream's chunks in, every player that asked reads them from the
//! first one on, and the whole body stays for hashing and storing once the
//! upstream is done. An upstream that breaks mid-body breaks every player's
//! body at the same byte; what was kept is then dropped, never stored.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use gateway::{Origin, SourceError, Streaming};
use tokio::sync::Notify;

/// What the upstream's answer said before its body.
#[derive(Clone, Debug)]
pub struct Head {
    pub length: Option<u64>,
    pub content_type: Option<String>,
}

#[derive(Default)]
struct State {
    head: Option<Head>,
    chunks: Vec<Bytes>,
    end: Option<Result<(), SourceError>>,
}

#[derive(Default)]
pub struct Tee {
    state: Mutex<State>,
    changed: Notify,
}

impl Tee {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn change(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.changed.notify_waiters();
    }

    pub fn head(&self, head: Head) {
        self.change(|s| s.head = Some(head));
    }

    pub fn push(&self, chunk: Bytes) {
        self.change(|s| s.chunks.push(chunk));
    }

    /// The upstream is done: whole, or broken with `result`'s error.
    pub fn finish(&self, result: Result<(), SourceError>) {
        self.change(|s| {
            if s.end.is_none() {
                s.end = Some(result);
            }
        });
    }

    /// The body for one more player, from its first byte, once the head is
    /// in; the upstream's error when it failed before any head.
    pub async fn subscribe(self: &Arc<Self>) -> Result<Streaming, SourceError> {
        let head = loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let s = self.lock();
                if let Some(h) = &s.head {
                    break h.clone();
                }
                if let Some(Err(e)) = &s.end {
                    return Err(e.clone());
                }
            }
            changed.await;
        };
        let body =
            futures::stream::unfold((self.clone(), 0usize, false), |(tee, i, over)| async move {
                if over {
                    return None;
                }
                loop {
                    let changed = tee.changed.notified();
                    tokio::pin!(changed);
                    changed.as_mut().enable();
                    {
                        let s = tee.lock();
                        if let Some(c) = s.chunks.get(i) {
                            return Some((Ok(c.clone()), (tee.clone(), i + 1, false)));
                        }
                        match &s.end {
                            Some(Ok(())) => return None,
                            Some(Err(e)) => return Some((Err(e.clone()), (tee.clone(), i, true))),
                            None => {}
                        }
                    }
                    changed.await;
                }
            })
            .boxed();
        Ok(Streaming {
            length: head.length,
            content_type: head.content_type,
            origin: Origin::Cdn,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(s: Streaming) -> (Vec<u8>, Option<SourceError>) {
        let mut out = Vec::new();
        let mut body = s.body;
        while let Some(c) = body.next().await {
            match c {
                Ok(c) => out.extend_from_slice(&c),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    #[tokio::test]
    async fn every_player_reads_from_the_first_byte_and_breaks_where_the_upstream_does() {
        let tee = Arc::new(Tee::default());
        let early = tokio::spawn({
            let tee = tee.clone();
            async move { collect(tee.subscribe().await.unwrap()).await }
        });
        tee.head(Head {
            length: Some(6),
            content_type: None,
        });
        tee.push(Bytes::from_static(b"abc"));
        let late = tee.subscribe().await.unwrap();
        assert_eq!(late.length, Some(6));
        tee.push(Bytes::from_static(b"de"));
        tee.finish(Err(SourceError::ShortBody { got: 5, want: 6 }));
        let (bytes, err) = early.await.unwrap();
        assert_eq!((bytes.as_slice(), err.is_some()), (&b"abcde"[..], true));
        let (bytes, err) = collect(late).await;
        assert_eq!((bytes.as_slice(), err.is_some()), (&b"abcde"[..], true));

        let whole = Arc::new(Tee::default());
        whole.head(Head {
            length: None,
            content_type: Some("video/mp2t".into()),
        });
        whole.push(Bytes::from_static(b"xy"));
        whole.finish(Ok(()));
        let (bytes, err) = collect(whole.subscribe().await.unwrap()).await;
        assert_eq!((bytes.as_slice(), err.is_none()), (&b"xy"[..], true));

        let refused = Arc::new(Tee::default());
        refused.finish(Err(SourceError::UpstreamStatus { status: 404 }));
        assert!(refused.subscribe().await.is_err());
    }
}
