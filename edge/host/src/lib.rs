//! The local edge host of knowedge.
//!
//! It serves the compiled Spin component (`knowedge-edge-spin`, a
//! `wasi:http/incoming-handler@0.2.0` component) over HTTP on a local
//! address with wasmtime, the way Spin would at the edge, and keeps the model
//! it scores with up to date:
//!
//! * the component is compiled once at start; every request gets a fresh
//!   [`wasmtime::Store`] with a memory limit and a deadline (a trapping or
//!   runaway guest answers `500` JSON, the host keeps running);
//! * the guest reads the live models as its Spin key-value store `models`
//!   ([`kv`]: `fermyon:spin/key-value@2.0.0` over a directory laid out as a
//!   model store: `current`, `current-sentiment` and the artifacts they
//!   name), and the keys in `KNOWEDGE_SIGNING_PUBLIC_KEY` and
//!   `KNOWEDGE_PSEUDONYM_KEY`; it has no network access (but for the
//!   ingestion endpoint, when one is configured);
//! * the guest's exposure log lines go to ingestion's `POST /v1/exposures`
//!   in batches, off the answers' path ([`exposures`]; with an ingestion
//!   endpoint configured); other lines are printed;
//! * with a publish key ([`Access::publish_key`]) the guest's publish route
//!   (`PUT /v1/admin/models/<key>`) writes verified artifacts and pointers
//!   into that store: a new model without a restart, even without a model
//!   store to watch; the watchers take such a version as served;
//! * a watcher per store channel polls the model store (`<models_dir>/current`
//!   naming `<models_dir>/<version>.kwm`, see [`knowedge_format::store`]) with
//!   the core's [`ModelSlot`](knowedge_edge::slot::ModelSlot), the same rules
//!   the guest and the Worker follow, and installs only versions the slot
//!   accepted in the live directory (artifact first, then pointer), without
//!   a restart; an invalid artifact is refused and the model already served
//!   stays; the sentiment channel (`current-sentiment`) likewise;
//! * `GET /_host/status` is answered by the host itself with the
//!   [`ModelStatus`] as JSON (the sentiment model's under `sentiment`);
//!   every other request goes to the component.
//!
//! ```no_run
//! # async fn run() -> knowedge_edge_host::Result<()> {
//! use std::time::Duration;
//! use knowedge_edge_host::{EdgeHost, HostConfig};
//!
//! let host = EdgeHost::start(HostConfig {
//!     wasm: "target/wasm32-wasip2/edge/knowedge_edge_spin.wasm".into(),
//!     models_dir: "models".into(),
//!     state_dir: ".knowedge/edge".into(),
//!     public_key_hex: "…".into(),
//!     pseudonym_key_hex: "…".into(),
//!     listen: "127.0.0.1:3000".parse().expect("an address"),
//!     poll_interval: Duration::from_secs(5),
//!     experiment: None,
//!     ingest: None,
//!     access: Default::default(),
//! })
//! .await?;
//! println!("listening on http://{}", host.local_addr());
//! host.wait().await;
//! # Ok(())
//! # }
//! ```

pub mod command;
pub mod exposures;
mod guest;
pub mod kv;
pub mod scorer;
mod server;
mod watcher;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use knowedge_edge::experiment::Experiment;
use knowedge_edge::settings;
use knowedge_edge::token::TokenKeys;
use knowedge_format::artifact::KeySet;
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_format::store::Channel;
use knowedge_scoring::model::Model;
use knowedge_scoring::sentiment::SentimentModel;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::guest::{EpochTicker, Guests};
use crate::server::App;
use crate::watcher::ModelWatcher;

pub use crate::guest::{
    MAX_CONCURRENT_GUESTS, MEMORY_LIMIT_BYTES, REQUEST_DEADLINE, engine_config, instantiation_micros,
};
pub use crate::server::{MAX_PUBLISH_BODY_BYTES, MAX_REQUEST_BODY_BYTES, STATUS_PATH};
pub use crate::watcher::LIVE_DIR;
/// Which model a channel serves, and what it refused last.
pub use knowedge_edge::slot::SlotStatus as ModelStatus;

/// Everything that can stop the host from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configured key is not valid.
    #[error("invalid {what}")]
    Key {
        /// Which key.
        what: &'static str,
        /// Why it is refused.
        #[source]
        source: knowedge_format::Error,
    },
    /// A configuration value is not valid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The configured A/B experiment is not valid.
    #[error("the A/B experiment")]
    Experiment(#[source] knowedge_edge::Error),
    /// A file or directory could not be read or created.
    #[error("{}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The engine could not be set up or the component could not be compiled
    /// or linked (for instance because it imports something the host does
    /// not provide).
    #[error("{context}: {error:#}")]
    Wasm {
        /// What was being done.
        context: String,
        /// The wasmtime error.
        error: wasmtime::Error,
    },

    /// The thread that enforces guest deadlines could not be started.
    #[error("cannot start the epoch ticker thread")]
    Thread(#[source] std::io::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What the host needs to run. `Debug` leaves the pseudonym key out.
#[derive(Clone)]
pub struct HostConfig {
    /// The compiled component (`knowedge_edge_spin.wasm`).
    pub wasm: PathBuf,
    /// The model store to watch: `current` plus `<version>.kwm` files.
    pub models_dir: PathBuf,
    /// A directory the host owns; the live model is kept in its
    /// [`LIVE_DIR`] subdirectory, which the guest reads as its key-value store `models`.
    pub state_dir: PathBuf,
    /// Hex ed25519 public keys that model artifacts may be signed with
    /// (comma separated: during a key rotation, the old and the new one).
    pub public_key_hex: String,
    /// Hex key that maps request user ids to model pseudonyms (secret).
    pub pseudonym_key_hex: String,
    /// Address to listen on (port 0 picks a free one, see [`RunningHost::local_addr`]).
    pub listen: SocketAddr,
    /// How often the model store is checked for a new `current` version.
    pub poll_interval: Duration,
    /// The A/B experiment to run (JSON, see
    /// [`knowedge_edge::experiment`]); its variants' model versions are
    /// read by the guest from the model store, mounted read-only at `/store`.
    pub experiment: Option<String>,
    /// Where `POST /v1/events` forwards to; the guest may reach this
    /// endpoint and no other.
    pub ingest: Option<Forwarding>,
    /// Who may ask: learner token keys and browser origins.
    pub access: Access,
}

/// Who may ask the edge for what (see `knowedge_edge::token`,
/// `knowedge_format::cors` and `knowedge_edge::publish`). `Debug` leaves the
/// publish key out.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// Hex ed25519 public keys learner tokens are verified with, comma
    /// separated; without them, personalised requests are refused `401`.
    pub token_keys_hex: Option<String>,
    /// The audience tokens must name (default `knowedge-edge`).
    pub token_audience: Option<String>,
    /// Origins browsers may call from (`*` for any).
    pub cors_origins: Vec<String>,
    /// The key `PUT /v1/admin/models/<key>` requires to publish a model
    /// into the live directory (the guest's key-value store); `None`:
    /// publishing is off (`403`).
    pub publish_key: Option<String>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("token_keys_hex", &self.token_keys_hex)
            .field("token_audience", &self.token_audience)
            .field("cors_origins", &self.cors_origins)
            .field("publish_key", &self.publish_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl std::fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostConfig")
            .field("wasm", &self.wasm)
            .field("models_dir", &self.models_dir)
            .field("state_dir", &self.state_dir)
            .field("public_key_hex", &self.public_key_hex)
            .field("pseudonym_key_hex", &"<redacted>")
            .field("listen", &self.listen)
            .field("poll_interval", &self.poll_interval)
            .field("experiment", &self.experiment)
            .field("ingest", &self.ingest)
            .field("access", &self.access)
            .finish()
    }
}

/// The ingestion endpoint the edge forwards learner events to. `Debug` leaves the key out.
#[derive(Clone, PartialEq, Eq)]
pub struct Forwarding {
    /// Full URL of ingestion's `POST /v1/events` (http or https).
    pub url: String,
    /// The edge's ingest API key (scope `events.write`).
    pub key: String,
}

impl std::fmt::Debug for Forwarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarding").field("url", &self.url).field("key", &"<redacted>").finish()
    }
}

/// Starts edge hosts.
#[derive(Clone, Copy, Debug)]
pub struct EdgeHost;

impl EdgeHost {
    /// Compiles the component, installs the current model if it is valid,
    /// binds the listen address and spawns the server and the model watcher.
    ///
    /// Returns as soon as the host answers requests. Must be called within a
    /// tokio runtime.
    pub async fn start(config: HostConfig) -> Result<RunningHost> {
        let key = KeySet::from_hex_list(&config.public_key_hex)
            .map_err(|source| Error::Key { what: "signing public key", source })?;
        Pseudonymizer::from_hex(&config.pseudonym_key_hex)
            .map_err(|source| Error::Key { what: "pseudonym key", source })?;

        let live_lock = Arc::new(std::sync::Mutex::new(()));
        let (models, state) = (&config.models_dir, &config.state_dir);
        let watcher = Arc::new(ModelWatcher::new(models, state, key.clone(), Channel::Recommender, &live_lock)?);
        let sentiment = Arc::new(ModelWatcher::new(models, state, key, Channel::Sentiment, &live_lock)?);
        watcher.refresh().await;
        sentiment.refresh().await;

        let mut env = vec![
            (settings::PUBLIC_KEY_VAR.to_owned(), config.public_key_hex.trim().to_owned()),
            (settings::PSEUDONYM_KEY_VAR.to_owned(), config.pseudonym_key_hex.trim().to_owned()),
            ("KNOWEDGE_STORE_DIR".to_owned(), guest::GUEST_STORE_DIR.to_owned()),
        ];
        if let Some(keys) = &config.access.token_keys_hex {
            TokenKeys::from_settings(keys, config.access.token_audience.as_deref())
                .map_err(|e| Error::Config(format!("learner token keys: {e}")))?;
            env.push((settings::TOKEN_KEYS_VAR.to_owned(), keys.trim().to_owned()));
        }
        if let Some(audience) = &config.access.token_audience {
            env.push((settings::TOKEN_AUDIENCE_VAR.to_owned(), audience.clone()));
        }
        if !config.access.cors_origins.is_empty() {
            env.push((settings::CORS_ORIGINS_VAR.to_owned(), config.access.cors_origins.join(",")));
        }
        if let Some(key) = config.access.publish_key.as_deref().filter(|k| !k.trim().is_empty()) {
            env.push((settings::PUBLISH_KEY_VAR.to_owned(), key.trim().to_owned()));
        }
        if let Some(text) = &config.experiment {
            Experiment::from_json(text).map_err(Error::Experiment)?;
            env.push((settings::EXPERIMENT_VAR.to_owned(), text.clone()));
        }
        let (stop, stopped) = watch::channel(false);
        let mut outbound = guest::OutboundHttp::default();
        let mut stdout = exposures::Tap::print_all();
        let mut shipping = None;
        let mut exposure_stats = Arc::default();
        if let Some(f) = &config.ingest {
            let to = exposures::Destination::beside_events(&f.url, &f.key).map_err(Error::Config)?;
            let (tap, stats, task) = exposures::start(to, stopped.clone());
            (stdout, exposure_stats, shipping) = (tap, stats, Some(task));
            let uri: http::Uri = f.url.parse().map_err(|e| Error::Config(format!("ingest URL `{}`: {e}", f.url)))?;
            let authority = match (uri.scheme_str(), uri.authority()) {
                (Some("http" | "https"), Some(a)) => guest::authority_with_port(a.as_str(), &uri),
                _ => return Err(Error::Config(format!("ingest URL `{}` is not an http(s) URL", f.url))),
            };
            outbound.allowed = Some(authority);
            env.push((settings::INGEST_URL_VAR.to_owned(), f.url.clone()));
            env.push((settings::INGEST_KEY_VAR.to_owned(), f.key.clone()));
        }
        let dirs = guest::Dirs {
            live: watcher.live_dir().to_owned(),
            live_lock: live_lock.clone(),
            store: config.models_dir.clone(),
        };
        let guests = Guests::load(config.wasm.clone(), dirs, env, outbound, stdout).await?;
        let ticker = EpochTicker::start(guests.engine().clone())?;

        let listener =
            TcpListener::bind(config.listen).await.map_err(|source| Error::Bind { addr: config.listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind { addr: config.listen, source })?;
        let app = Arc::new(App { guests, watcher: watcher.clone(), sentiment: sentiment.clone(), local_addr });
        let app_for_host = app.clone();
        let server = tokio::spawn(server::serve(listener, app, stopped.clone()));
        let polling = tokio::spawn(watcher.clone().poll(config.poll_interval, stopped.clone()));
        let polling_sentiment = tokio::spawn(sentiment.clone().poll(config.poll_interval, stopped));
        info!(addr = %local_addr, wasm = %config.wasm.display(), "edge host listening");
        Ok(RunningHost {
            local_addr,
            watcher,
            sentiment,
            stop: Stop { stop, ticker },
            server,
            polling,
            polling_sentiment,
            shipping,
            exposure_stats,
            app: app_for_host,
        })
    }
}

/// A started host; dropping it stops the server and the watcher too.
pub struct RunningHost {
    local_addr: SocketAddr,
    watcher: Arc<ModelWatcher<Model>>,
    sentiment: Arc<ModelWatcher<SentimentModel>>,
    stop: Stop,
    server: JoinHandle<()>,
    polling: JoinHandle<()>,
    polling_sentiment: JoinHandle<()>,
    shipping: Option<JoinHandle<()>>,
    exposure_stats: Arc<exposures::ShipStats>,
    app: Arc<App>,
}

impl std::fmt::Debug for RunningHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningHost").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl RunningHost {
    /// The address the host listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Which model is served and what was refused last.
    pub fn status(&self) -> ModelStatus {
        self.watcher.status()
    }

    /// Which sentiment model is served and what was refused last.
    pub fn sentiment_status(&self) -> ModelStatus {
        self.sentiment.status()
    }

    /// Exposures sent to ingestion and dropped so far.
    pub fn exposures_shipped(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (self.exposure_stats.sent.load(Ordering::Relaxed), self.exposure_stats.dropped.load(Ordering::Relaxed))
    }

    /// Checks the model store (both pointers) now instead of waiting for the
    /// next poll, and returns once the checks (and any swaps) are done.
    pub async fn refresh(&self) {
        self.watcher.refresh().await;
        self.sentiment.refresh().await;
    }

    /// Stops accepting connections, drops open ones and waits for the
    /// server and watcher tasks to end.
    pub async fn shutdown(self) {
        let RunningHost { stop, server, polling, polling_sentiment, shipping, app, .. } = self;
        drop(stop);
        join("server", server).await;
        app.guests.drain(REQUEST_DEADLINE + Duration::from_secs(1)).await;
        join("model watcher", polling).await;
        join("sentiment model watcher", polling_sentiment).await;
        if let Some(task) = shipping {
            join("exposure shipping", task).await;
        }
        info!("edge host stopped");
    }

    /// Runs until ctrl-c (or until the server task ends), then shuts down.
    pub async fn wait(self) {
        let RunningHost { stop, mut server, polling, polling_sentiment, shipping, app, .. } = self;
        let server_ended = tokio::select! {
            () = ctrl_c() => false,
            ended = &mut server => {
                warn!(result = ?ended, "edge server task ended");
                true
            }
        };
        drop(stop);
        if !server_ended {
            join("server", server).await;
        }
        app.guests.drain(REQUEST_DEADLINE + Duration::from_secs(1)).await;
        join("model watcher", polling).await;
        join("sentiment model watcher", polling_sentiment).await;
        if let Some(task) = shipping {
            join("exposure shipping", task).await;
        }
        info!("edge host stopped");
    }
}

/// Completes on ctrl-c; never when ctrl-c cannot be listened for.
async fn ctrl_c() {
    match tokio::signal::ctrl_c().await {
        Ok(()) => info!("ctrl-c received, shutting down"),
        Err(e) => {
            warn!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    }
}

/// Waits for a background task, logging a panic.
async fn join(name: &str, task: JoinHandle<()>) {
    if let Err(e) = task.await {
        warn!(task = name, error = %e, "edge host task ended abnormally");
    }
}

/// Stops the background work when dropped.
#[derive(Debug)]
struct Stop {
    stop: watch::Sender<bool>,
    ticker: EpochTicker,
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        self.ticker.stop();
    }
}
