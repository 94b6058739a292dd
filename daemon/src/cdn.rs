//! HTTP fetches from the origin: timeouts, bounded retries, bounded bodies,
//! and the gateway's upstream policy on every URL, every redirect, every
//! resolved address and the address actually connected to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gateway::{ByteRange, Refusal, SourceError, UpstreamPolicy};
use reqwest::{StatusCode, header};
use tracing::{debug, warn};
use url::Url;

/// What the origin sent.
#[derive(Debug)]
pub struct Fetched {
    pub body: Bytes,
    pub content_type: Option<String>,
    /// The URL after redirects, which relative URIs resolve against.
    pub final_url: Url,
}

const MAX_REDIRECTS: usize = 5;

#[derive(Clone)]
pub struct Cdn {
    client: reqwest::Client,
    /// Bound on waiting for response headers, and for each body chunk.
    timeout: Duration,
    retries: u32,
    policy: Arc<UpstreamPolicy>,
}

impl Cdn {
    pub fn new(
        timeout: Duration,
        retries: u32,
        policy: Arc<UpstreamPolicy>,
    ) -> Result<Self, reqwest::Error> {
        let redirects = policy.clone();
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error("too many redirects");
                }
                match redirects.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(refusal) => attempt.error(refusal),
                }
            }))
            .dns_resolver(CheckedResolver {
                policy: policy.clone(),
            })
            .user_agent(concat!("swarmseed/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            timeout,
            retries,
            policy,
        })
    }

    /// GETs `url` (or `range` of it), retrying timeouts, connection errors
    /// and 5xx answers with backoff. Bodies over `limit` bytes are refused.
    pub async fn get(
        &self,
        url: &Url,
        range: Option<ByteRange>,
        limit: u64,
    ) -> Result<Fetched, SourceError> {
        self.get_with(url, range, limit, None, false)
            .await
            .map(|(_, f)| f)
    }

    /// GETs an API answer with `accept`, as `get` does, except that any
    /// status below 500 comes back with its body, for its reason.
    pub async fn get_api(
        &self,
        url: &Url,
        accept: &str,
        limit: u64,
    ) -> Result<(u16, Fetched), SourceError> {
        self.get_with(url, None, limit, Some(accept), true).await
    }

    async fn get_with(
        &self,
        url: &Url,
        range: Option<ByteRange>,
        limit: u64,
        accept: Option<&str>,
        any_status: bool,
    ) -> Result<(u16, Fetched), SourceError> {
        self.retrying(url, || async {
            let mut up = self.open(url, range, limit, accept, any_status).await?;
            let mut body = BytesMut::new();
            while let Some(chunk) = up.chunk().await? {
                body.extend_from_slice(&chunk);
            }
            debug!(url = %url, bytes = body.len(), "fetched from CDN");
            Ok((
                up.status,
                Fetched {
                    body: body.freeze(),
                    content_type: up.content_type,
                    final_url: up.final_url,
                },
            ))
        })
        .await
    }

    /// Opens `url` (or `range` of it) for reading as it arrives, retrying
    /// as `get` does until the answer's head is in; what fails after that
    /// ends the body with the error.
    pub async fn stream(
        &self,
        url: &Url,
        range: Option<ByteRange>,
        limit: u64,
    ) -> Result<Upstream, SourceError> {
        self.retrying(url, || self.open(url, range, limit, None, false))
            .await
    }

    async fn retrying<T, F, Fut>(&self, url: &Url, mut f: F) -> Result<T, SourceError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SourceError>>,
    {
        let mut attempt = 0;
        loop {
            match f().await {
                Ok(t) => return Ok(t),
                Err(e) if attempt < self.retries && retryable(&e) => {
                    attempt += 1;
                    warn!(url = %url, error = %e, attempt, "CDN fetch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100) * 2u32.pow(attempt - 1)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends the request and reads the answer's head.
    async fn open(
        &self,
        url: &Url,
        range: Option<ByteRange>,
        limit: u64,
        accept: Option<&str>,
        any_status: bool,
    ) -> Result<Upstream, SourceError> {
        let timed_out = || SourceError::UpstreamTimeout {
            ms: self.timeout.as_millis() as u64,
        };
        self.policy
            .check_url(url)
            .map_err(|r| SourceError::Refused(r.to_string()))?;
        let mut request = self.client.get(url.clone());
        if let Some(a) = accept {
            request = request.header(header::ACCEPT, a);
        }
        if let Some(r) = range {
            if r.length > limit {
                return Err(SourceError::TooLarge { limit });
            }
            request = request.header(
                header::RANGE,
                format!("bytes={}-{}", r.offset, r.offset + r.length - 1),
            );
        }
        let response = tokio::time::timeout(self.timeout, request.send())
            .await
            .map_err(|_| timed_out())?
            .map_err(unreachable)?;
        // The resolver already filtered names; this also covers addresses
        // written in URLs and anything a connector might add.
        if let Some(addr) = response.remote_addr()
            && let Err(r) = self.policy.check_addr(addr.ip())
        {
            warn!(url = %url, %addr, "upstream connected to a refused address");
            return Err(SourceError::Refused(r.to_string()));
        }
        let status = response.status();
        // A server that ignores Range sends the whole resource; skip to the range.
        let (skip, want) = match (range, status) {
            (Some(r), StatusCode::PARTIAL_CONTENT) => (0, Some(r.length)),
            (Some(r), StatusCode::OK) => (r.offset, Some(r.length)),
            (None, s) if s.is_success() => (0, None),
            (None, s) if any_status && s.as_u16() < 500 => (0, None),
            (_, s) => return Err(SourceError::UpstreamStatus { status: s.as_u16() }),
        };
        if want.is_none()
            && let Some(len) = response.content_length()
            && len > limit
        {
            return Err(SourceError::TooLarge { limit });
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Upstream {
            status: status.as_u16(),
            content_type,
            final_url: response.url().clone(),
            length: want.or_else(|| response.content_length()),
            response,
            timeout: self.timeout,
            skip,
            want,
            limit,
            read: 0,
        })
    }
}

/// An answer whose body is read as it arrives, checked against what was
/// asked: at most `limit` bytes, exactly the range's length for a range.
pub struct Upstream {
    pub status: u16,
    pub content_type: Option<String>,
    /// The URL after redirects, which relative URIs resolve against.
    pub final_url: Url,
    /// The body's length, when the range or the answer says it.
    pub length: Option<u64>,
    response: reqwest::Response,
    timeout: Duration,
    /// Bytes to drop first: a server that ignored the range sent all.
    skip: u64,
    want: Option<u64>,
    limit: u64,
    read: u64,
}

impl Upstream {
    /// The next piece of the body; `None` once it is whole.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, SourceError> {
        if self.want.is_some_and(|w| self.read >= w) {
            return Ok(None);
        }
        loop {
            let chunk = tokio::time::timeout(self.timeout, self.response.chunk())
                .await
                .map_err(|_| SourceError::UpstreamTimeout {
                    ms: self.timeout.as_millis() as u64,
                })?
                .map_err(|e| SourceError::Unreachable(e.without_url().to_string()))?;
            let Some(mut chunk) = chunk else {
                return match self.want {
                    Some(w) if self.read != w => Err(SourceError::ShortBody {
                        got: self.read,
                        want: w,
                    }),
                    _ => Ok(None),
                };
            };
            if self.skip > 0 {
                let n = self.skip.min(chunk.len() as u64);
                self.skip -= n;
                chunk = chunk.slice(n as usize..);
                if chunk.is_empty() {
                    continue;
                }
            }
            if let Some(w) = self.want {
                let left = (w - self.read) as usize;
                chunk.truncate(left.min(chunk.len()));
            }
            self.read += chunk.len() as u64;
            if self.read > self.limit {
                return Err(SourceError::TooLarge { limit: self.limit });
            }
            return Ok(Some(chunk));
        }
    }
}

/// A refusal by the policy (in a redirect or the resolver) keeps its reason.
fn unreachable(e: reqwest::Error) -> SourceError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refusal>() {
            return SourceError::Refused(r.to_string());
        }
        source = s.source();
    }
    SourceError::Unreachable(e.without_url().to_string())
}

/// Resolves names with the system resolver and keeps only the addresses the
/// policy allows, so a name cannot lead the client to a private address.
struct CheckedResolver {
    policy: Arc<UpstreamPolicy>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| policy.check_addr(a.ip()).is_ok())
                .collect();
            match (allowed.is_empty(), all.first()) {
                (false, _) => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
                (true, Some(a)) => {
                    let refusal = policy
                        .check_addr(a.ip())
                        .err()
                        .unwrap_or(Refusal::Private(a.ip().to_string()));
                    Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>)
                }
                (true, None) => Err(format!("{host} has no addresses").into()),
            }
        })
    }
}

fn retryable(e: &SourceError) -> bool {
    match e {
        SourceError::UpstreamStatus { status } => *status >= 500,
        SourceError::UpstreamTimeout { .. }
        | SourceError::Unreachable(_)
        | SourceError::ShortBody { .. } => true,
        SourceError::TooLarge { .. }
        | SourceError::Store
        | SourceError::Refused(_)
        | SourceError::Mismatch => false,
    }
}
