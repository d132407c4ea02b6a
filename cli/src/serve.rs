//! Serves a Lambda HTTP handler on a local socket, so the exact function
//! code that runs in AWS answers on localhost.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Largest body the local server reads; larger ones get 413 before the handler runs
/// (API Gateway's own limit plays this role in AWS).
pub const MAX_LOCAL_BODY: usize = 10 << 20;

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

/// Accepts connections on `listener` forever, answering each request with `handler`.
pub async fn serve_lambda<H, F>(listener: TcpListener, handler: H)
where
    H: Fn(lambda_http::Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error>> + Send,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(answer(req, peer, handler).await) }
            });
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}

async fn answer<H, F>(req: hyper::Request<Incoming>, peer: SocketAddr, handler: H) -> hyper::Response<Full<Bytes>>
where
    H: Fn(lambda_http::Request) -> F,
    F: Future<Output = Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error>>,
{
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_LOCAL_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return json(413, r#"{"error":{"code":"body_too_large","message":"request body too large"}}"#),
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
pub async fn run_erasures(eraser: knowedge_lake::privacy::Eraser, every: std::time::Duration) {
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
