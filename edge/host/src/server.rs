//! The HTTP/1.1 server: accepts connections and routes requests to the host or the guest.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderValue, Method};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use knowedge_edge::{api, publish};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, warn};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::guest::Guests;
use crate::watcher::ModelWatcher;

/// Path answered by the host itself with the [`ModelStatus`](crate::ModelStatus) as JSON.
pub const STATUS_PATH: &str = "/_host/status";
/// Requests announcing a larger body (`content-length`) are answered `413` by
/// the host without running the guest (the edge API accepts at most
/// [`api::MAX_BODY_BYTES`]; this leaves room for the guest to say so itself).
pub const MAX_REQUEST_BODY_BYTES: u64 = 2 * api::MAX_BODY_BYTES as u64;
/// The same for the publish route (`PUT /v1/admin/models/<key>`), which
/// takes artifacts of up to [`publish::MAX_ARTIFACT_BYTES`].
pub const MAX_PUBLISH_BODY_BYTES: u64 = publish::MAX_ARTIFACT_BYTES as u64 + MAX_REQUEST_BODY_BYTES;
/// Time a client has to send a request's headers, and then its body.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// After a body passes its limit, how long the host keeps reading (at most as
/// many bytes again) before it answers `413` and closes the connection.
pub const LINGER: Duration = Duration::from_secs(2);
/// Connections served at once; further ones are closed at once until one ends.
pub const MAX_CONNECTIONS: usize = 256;

type Response = hyper::Response<HyperOutgoingBody>;

/// What serving a request needs.
pub(crate) struct App {
    pub(crate) guests: Guests,
    pub(crate) watcher: Arc<ModelWatcher<knowedge_scoring::model::Model>>,
    pub(crate) sentiment: Arc<ModelWatcher<knowedge_scoring::sentiment::SentimentModel>>,
    pub(crate) local_addr: SocketAddr,
}

/// Accepts connections until `stop` turns true (or its sender is dropped),
/// then drops the open ones.
pub(crate) async fn serve(listener: TcpListener, app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        let app = app.clone();
                        connections.spawn(async move {
                            serve_connection(stream, peer, app).await;
                            drop(slot);
                        });
                    }
                    Err(_) => warn!(%peer, limit = MAX_CONNECTIONS, "too many connections; closing a new one"),
                },
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, app: Arc<App>) {
    // Answers go out as soon as they are written: a response whose head and
    // body leave in two writes must not wait for the client's delayed ACK.
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(route(&app, req).await) }
    });
    let mut http = http1::Builder::new();
    http.keep_alive(true).timer(TokioTimer::new()).header_read_timeout(READ_TIMEOUT);
    if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Answers `/_host/status` here and hands everything else to the guest.
///
/// The body is read whole first, at most [`MAX_REQUEST_BODY_BYTES`] ([`MAX_PUBLISH_BODY_BYTES`] on the publish route; chunked
/// bodies included) within [`READ_TIMEOUT`]: a larger one is answered `413` (after reading on for up to [`LINGER`]),
/// a slower one `408`, without running the guest.
async fn route(app: &App, req: hyper::Request<Incoming>) -> Response {
    if req.uri().path() == STATUS_PATH {
        return status(app, req.method());
    }
    let max = if publish::object(req.uri().path()).is_some() { MAX_PUBLISH_BODY_BYTES } else { MAX_REQUEST_BODY_BYTES };
    let too_large =
        || json(api::Response::error(413, "payload_too_large", format!("the body is larger than {max} bytes")));
    let announced = req.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max) {
        return too_large();
    }
    let (parts, body) = req.into_parts();
    let body = match tokio::time::timeout(READ_TIMEOUT, read_body(body, max)).await {
        Ok(BodyRead::Whole(bytes)) => bytes,
        Ok(BodyRead::TooLarge(rest)) => {
            // Read on (a bounded amount, briefly) before answering, so that a
            // client still sending gets the 413 instead of a reset connection.
            let _ = tokio::time::timeout(LINGER, drain(rest, max)).await;
            let mut response = too_large();
            response.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
        Ok(BodyRead::Failed(e)) => {
            debug!(error = %e, "request body could not be read");
            return json(api::Response::error(400, "bad_body", "the request body could not be read"));
        }
        Err(_) => return json(api::Response::error(408, "request_timeout", "the request body came too slowly")),
    };
    let body = Full::new(body).map_err(|never: Infallible| -> wasmtime_wasi_http::Error { match never {} });
    let mut req = hyper::Request::from_parts(parts, body);
    if !req.headers().contains_key(HOST) {
        // wasi:http needs an authority; HTTP/1.0 clients may not send one.
        if let Ok(host) = HeaderValue::from_str(&app.local_addr.to_string()) {
            req.headers_mut().insert(HOST, host);
        }
    }
    let path = req.uri().path().to_owned();
    match app.guests.handle(req).await {
        Ok(response) => response,
        Err(e) => {
            warn!(path, error = format!("{e:#}"), "edge module failed; answering 500");
            json(api::Response::error(500, "guest_failed", "the edge module failed to answer"))
        }
    }
}

/// What reading a request body gave.
enum BodyRead {
    Whole(Bytes),
    /// Longer than allowed; the rest of the body is still unread.
    TooLarge(Incoming),
    Failed(hyper::Error),
}

/// Reads a body whole if it holds at most `max` bytes.
async fn read_body(mut body: Incoming, max: u64) -> BodyRead {
    let mut bytes = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    if (bytes.len() + data.len()) as u64 > max {
                        return BodyRead::TooLarge(body);
                    }
                    bytes.extend_from_slice(&data);
                }
            }
            Err(e) => return BodyRead::Failed(e),
        }
    }
    BodyRead::Whole(bytes.freeze())
}

/// Reads and drops at most `max` more bytes of a body.
async fn drain(mut body: Incoming, max: u64) {
    let mut read = 0u64;
    while read <= max {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => return,
        }
    }
}

fn status(app: &App, method: &Method) -> Response {
    if method != Method::GET {
        return json(api::Response::error(405, "method_not_allowed", format!("{STATUS_PATH} answers GET only")));
    }
    #[derive(serde::Serialize)]
    struct HostStatus {
        #[serde(flatten)]
        recommender: crate::ModelStatus,
        sentiment: crate::ModelStatus,
    }
    match serde_json::to_string(&HostStatus { recommender: app.watcher.status(), sentiment: app.sentiment.status() }) {
        Ok(body) => json(api::Response { status: 200, body, exposure: None, headers: Vec::new() }),
        Err(e) => json(api::Response::error(500, "internal", e)),
    }
}

/// A JSON response from the host itself.
fn json(answer: api::Response) -> Response {
    let body = Full::new(Bytes::from(answer.body)).map_err(|never: Infallible| match never {}).boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() =
        http::StatusCode::from_u16(answer.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
