//! Serves a Lambda HTTP handler on a local socket, so the exact function
//! code that runs in AWS answers on localhost.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

/// Largest body the local server reads; larger ones get 413 before the handler runs
/// (API Gateway's own limit plays this role in AWS).
pub const MAX_LOCAL_BODY: usize = 10 << 20;

/// What one client may take of the local server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time to send a request's headers, and then again its body (`408` after).
    pub read_timeout: Duration,
    /// Connections served at once; further ones are closed until one ends.
    pub max_connections: usize,
    /// Largest body read, chunked or not (`413` beyond).
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { read_timeout: Duration::from_secs(10), max_connections: 256, max_body: MAX_LOCAL_BODY }
    }
}

/// Serves the ingestion function on `listener` in a background task and
/// returns the URL of its `POST /v1/events` route.
pub fn spawn_ingest(listener: TcpListener, ingest: knowedge_ingest::Ingest) -> std::io::Result<String> {
    let url = format!("http://{}/v1/events", listener.local_addr()?);
    tokio::spawn(serve_lambda(listener, move |req| {
        let ingest = ingest.clone();
        async move { ingest.handle(req).await }
    }));
    Ok(url)
}

/// Accepts connections on `listener` forever, answering each request with
/// `handler`, within the default [`Limits`].
pub async fn serve_lambda<H, F>(listener: TcpListener, handler: H)
where
    H: Fn(lambda_http::Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error>> + Send,
{
    serve_lambda_with(listener, handler, Limits::default()).await;
}

/// [`serve_lambda`] within `limits`.
pub async fn serve_lambda_with<H, F>(listener: TcpListener, handler: H, limits: Limits)
where
    H: Fn(lambda_http::Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error>> + Send,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = limits.max_connections, "too many connections; closing a new one");
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(answer(req, peer, handler, limits).await) }
            });
            let mut http = http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(limits.read_timeout);
            if let Err(e) = http.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(slot);
        });
    }
}

async fn answer<H, F>(
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    handler: H,
    limits: Limits,
) -> hyper::Response<Full<Bytes>>
where
    H: Fn(lambda_http::Request) -> F,
    F: Future<Output = Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error>>,
{
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(limits.read_timeout, Limited::new(body, limits.max_body).collect()).await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(_)) => return json(413, r#"{"error":{"code":"body_too_large","message":"request body too large"}}"#),
        Err(_) => {
            return json(408, r#"{"error":{"code":"request_timeout","message":"the request body came too slowly"}}"#);
        }
    };
    let body = if bytes.is_empty() { lambda_http::Body::Empty } else { lambda_http::Body::Binary(bytes.to_vec()) };
    let request = http::Request::from_parts(parts, body);
    match handler(request).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            hyper::Response::from_parts(parts, Full::new(Bytes::copy_from_slice(body.as_ref())))
        }
        Err(e) => {
            tracing::error!(error = %e, %peer, "handler failed");
            json(500, r#"{"error":{"code":"internal","message":"the handler failed"}}"#)
        }
    }
}

fn json(status: u16, body: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

/// Runs requested erasure jobs every `every` (what the local ingestion
/// server does beside answering); failures are logged and retried.
pub async fn run_erasures(eraser: knowedge_lake::privacy::Eraser, every: Duration) {
    loop {
        match eraser.run_pending().await {
            Ok(done) => {
                for o in done {
                    tracing::info!(job_id = %o.job_id, receipt = %o.receipt_path, "erasure finished");
                }
            }
            Err(e) => tracing::warn!(error = %knowedge_format::error::chain(&e), "erasure jobs not run"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Serves the dashboard in `dir` (`index.html` at `/`, `data.json`) in a
/// background task; returns its URL. The files are read per request, so a
/// report written again shows on the next reload.
pub fn spawn_dashboard(listener: TcpListener, dir: std::path::PathBuf) -> std::io::Result<String> {
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(serve_lambda(listener, move |req: lambda_http::Request| {
        let dir = dir.clone();
        async move {
            let (file, kind) = match req.uri().path() {
                "/" | "/index.html" => ("index.html", "text/html; charset=utf-8"),
                "/data.json" => ("data.json", "application/json"),
                _ => ("", ""),
            };
            let mut response = match (file.is_empty(), tokio::fs::read(dir.join(file)).await) {
                (false, Ok(bytes)) => lambda_http::Response::new(lambda_http::Body::Binary(bytes)),
                _ => {
                    let mut r = lambda_http::Response::new(lambda_http::Body::Text(
                        r#"{"error":{"code":"not_found","message":"the dashboard has / and /data.json"}}"#.into(),
                    ));
                    *r.status_mut() = http::StatusCode::NOT_FOUND;
                    r
                }
            };
            if !kind.is_empty() && response.status().is_success() {
                response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(kind));
            }
            Ok(response)
        }
    }));
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(limits: Limits) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_lambda_with(
            listener,
            |req: lambda_http::Request| async move {
                let n = req.body().len();
                Ok(lambda_http::Response::new(lambda_http::Body::Text(n.to_string())))
            },
            limits,
        ));
        addr
    }

    /// Writes `request` and reads the answer until the server closes or `wait` passes.
    async fn exchange(addr: SocketAddr, request: &[u8], wait: Duration) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn slow_clients_large_chunked_bodies_and_crowds_are_cut_off() {
        let limits = Limits { read_timeout: Duration::from_millis(300), max_connections: 2, max_body: 1024 };
        let addr = start(limits).await;
        // A chunked body over the limit: 413 before the handler runs.
        let chunk = format!("800\r\n{}\r\n", "x".repeat(0x800));
        let big = format!("POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n");
        assert!(exchange(addr, big.as_bytes(), Duration::from_secs(2)).await.starts_with("HTTP/1.1 413"));
        // A small chunked body is read whole.
        let small = "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let answer = exchange(addr, small.as_bytes(), Duration::from_secs(2)).await;
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with('3'), "{answer}");
        // Headers that never end: the connection is closed after the read timeout.
        let since = std::time::Instant::now();
        let _ = exchange(addr, b"GET / HTTP/1.1\r\nhost: x\r\n", Duration::from_secs(5)).await;
        assert!(since.elapsed() < Duration::from_secs(3), "a slow client held the connection");
        // A body that stops coming: 408.
        let stalled = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc";
        assert!(exchange(addr, stalled, Duration::from_secs(2)).await.starts_with("HTTP/1.1 408"));
        // Two idle connections fill the server; a third is closed without an answer.
        let _a = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _b = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let third = exchange(addr, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", Duration::from_millis(200)).await;
        assert!(third.is_empty(), "{third}");
    }
}
