//! Exposures from the guest's log to ingestion, off the answer's path.
//!
//! The component writes each recommendation answer's exposure to standard
//! output as one JSON line ([`knowedge_format::exposure::LogLine`]), as Spin
//! logs it. The host gives every guest a standard output ([`Tap`]) that
//! takes those lines aside into a bounded queue and prints every other line
//! as before. One task ([`ship`]) sends the queue to ingestion's
//! `POST /v1/exposures` in batches ([`ExposureBatch`]) of at most
//! [`BATCH`] exposures, at least every [`LINGER`], with the edge's ingest key;
//! a failed send is tried again ([`ATTEMPTS`] times in all), then dropped
//! with a warning. A full queue drops the newest exposure (counted); the
//! answer never waits for ingestion.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use knowedge_format::exposure::{Exposure, ExposureBatch, LogLine, MAX_BATCH_EXPOSURES};
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Most exposures in one batch.
pub const BATCH: usize = MAX_BATCH_EXPOSURES;

/// Longest an exposure waits for its batch to fill.
pub const LINGER: Duration = Duration::from_secs(1);

/// Sends of one batch before it is dropped.
pub const ATTEMPTS: u32 = 3;

/// Exposures the queue holds before it drops new ones.
const QUEUE: usize = 20_000;

/// What happened to the exposures the guests logged.
#[derive(Debug, Default)]
pub struct ShipStats {
    /// Sent to ingestion and answered 2xx.
    pub sent: AtomicU64,
    /// Dropped: queue full, or ingestion refused or could not be reached.
    pub dropped: AtomicU64,
}

/// The guests' standard output.
#[derive(Clone, Debug)]
pub(crate) struct Tap {
    exposures: Option<mpsc::Sender<Exposure>>,
    stats: Arc<ShipStats>,
}

impl Tap {
    /// A standard output that prints everything (no ingestion configured).
    pub(crate) fn print_all() -> Self {
        Tap { exposures: None, stats: Arc::default() }
    }
}

impl IsTerminal for Tap {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Tap {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineTap { partial: Vec::new(), tap: self.clone() })
    }
}

/// One guest stream: splits what it writes into lines.
struct LineTap {
    partial: Vec<u8>,
    tap: Tap,
}

impl LineTap {
    fn line(&self, line: &[u8]) {
        if let Some(tx) = &self.tap.exposures
            && let Some(e) = std::str::from_utf8(line).ok().and_then(|l| LogLine::parse(l.trim_end()))
        {
            if tx.try_send(e).is_err() {
                self.tap.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line);
    }
}

impl AsyncWrite for LineTap {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.line(&line);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.line(&rest);
        }
        Poll::Ready(Ok(()))
    }
}

/// Where the batches go.
#[derive(Clone, Debug)]
pub(crate) struct Destination {
    /// `http://host:port/…/v1/exposures`.
    pub(crate) uri: http::Uri,
    /// The edge's ingest key.
    pub(crate) key: String,
}

impl Destination {
    /// The exposure route next to ingestion's events URL (`…/v1/events`).
    pub(crate) fn beside_events(events_url: &str, key: &str) -> Result<Self, String> {
        let base = events_url.strip_suffix("/v1/events").ok_or_else(|| {
            format!("ingest URL `{events_url}` does not end in /v1/events (exposures go to …/v1/exposures beside it)")
        })?;
        let uri: http::Uri =
            format!("{base}/v1/exposures").parse().map_err(|e| format!("ingest URL `{events_url}`: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "ingest URL `{events_url}`: the local host sends exposures over plain http (loopback or a private network)"
            ));
        }
        Ok(Destination { uri, key: key.to_owned() })
    }
}

/// A tap feeding a new queue, and the task that ships the queue to `to`
/// until `stopped` (then it sends what is left).
pub(crate) fn start(
    to: Destination,
    stopped: watch::Receiver<bool>,
) -> (Tap, Arc<ShipStats>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let stats = Arc::new(ShipStats::default());
    let tap = Tap { exposures: Some(tx), stats: stats.clone() };
    let task = tokio::spawn(ship(rx, to, stats.clone(), stopped));
    (tap, stats, task)
}

/// Collects batches from `rx` and sends them.
async fn ship(
    mut rx: mpsc::Receiver<Exposure>,
    to: Destination,
    stats: Arc<ShipStats>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut batch: Vec<Exposure> = Vec::with_capacity(BATCH);
    loop {
        let first = tokio::select! {
            e = rx.recv() => e,
            _ = stopped.changed() => {
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { break };
        batch.push(first);
        let until = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(e)) => batch.push(e),
                Ok(None) | Err(_) => break,
            }
        }
        send(&mut batch, &to, &stats).await;
    }
    // The queue is closed: whatever is left.
    while let Ok(e) = rx.try_recv() {
        batch.push(e);
        if batch.len() == BATCH {
            send(&mut batch, &to, &stats).await;
        }
    }
    if !batch.is_empty() {
        send(&mut batch, &to, &stats).await;
    }
}

/// Sends and empties `batch`.
async fn send(batch: &mut Vec<Exposure>, to: &Destination, stats: &ShipStats) {
    let now = chrono::Utc::now();
    for e in batch.iter_mut() {
        e.ts.get_or_insert(now);
    }
    let n = batch.len() as u64;
    let body = match serde_json::to_vec(&ExposureBatch::new(std::mem::take(batch))) {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            warn!(error = %e, "exposure batch not encoded; dropped");
            stats.dropped.fetch_add(n, Ordering::Relaxed);
            return;
        }
    };
    for attempt in 1..=ATTEMPTS {
        match post(to, body.clone()).await {
            Ok(status) if status.is_success() => {
                stats.sent.fetch_add(n, Ordering::Relaxed);
                debug!(exposures = n, "exposures sent");
                return;
            }
            Ok(status) if status.is_client_error() => {
                warn!(%status, exposures = n, "ingestion refused the exposure batch; dropped");
                break;
            }
            Ok(status) => warn!(%status, attempt, "exposure batch not stored"),
            Err(e) => warn!(error = %e, attempt, "exposure batch not sent"),
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
    }
    stats.dropped.fetch_add(n, Ordering::Relaxed);
}

/// One HTTP/1.1 POST; the answer's status.
async fn post(to: &Destination, body: Bytes) -> Result<http::StatusCode, String> {
    let authority = to.uri.authority().ok_or("no host")?.clone();
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect((authority.host(), port)))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = hyper::Request::post(to.uri.clone())
        .header(http::header::HOST, authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::AUTHORIZATION, format!("Bearer {}", to.key))
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .map_err(|_| "ingestion did not answer within 10 s".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    Ok(status)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_route_sits_beside_the_events_route() {
        let d = Destination::beside_events("http://127.0.0.1:8081/v1/events", "k").unwrap();
        assert_eq!(d.uri.to_string(), "http://127.0.0.1:8081/v1/exposures");
        let d = Destination::beside_events("http://ingest.internal/prod/v1/events", "k").unwrap();
        assert_eq!(d.uri.to_string(), "http://ingest.internal/prod/v1/exposures");
        assert!(Destination::beside_events("http://x/events", "k").is_err());
        assert!(Destination::beside_events("https://x/v1/events", "k").is_err());
    }

    #[tokio::test]
    async fn exposure_lines_are_taken_aside_and_other_lines_pass() {
        let (tx, mut rx) = mpsc::channel(4);
        let tap = Tap { exposures: Some(tx), stats: Arc::default() };
        let mut w = Box::into_pin(tap.async_stream());
        let e = Exposure {
            recommendation_id: "r-1".into(),
            ts: None,
            user: String::new(),
            model_id: "m".into(),
            experiment: None,
            variant: None,
            items: vec!["a".into()],
        };
        let line = format!("{}\n", LogLine::to_json(&e));
        let (head, tail) = line.split_at(10);
        use tokio::io::AsyncWriteExt;
        w.write_all(head.as_bytes()).await.unwrap();
        w.write_all(format!("{tail}plain log line\n").as_bytes()).await.unwrap();
        assert_eq!(rx.try_recv().unwrap(), e);
        assert!(rx.try_recv().is_err(), "the plain line is printed, not queued");
    }
}
