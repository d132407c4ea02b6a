//! Running the component: engine, per-request stores, limits and deadlines.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use tokio::sync::oneshot;
use tracing::{debug, warn};
use wasmtime::component::{Component, Linker, Resource, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::{Error, Result};

/// Most linear memory one request's guest may use; growing past it traps (answered `500`).
pub const MEMORY_LIMIT_BYTES: usize = 256 * 1024 * 1024;
/// Longest a request may run in the guest before it is interrupted (answered `500`).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Period of the engine's epoch ticks: the granularity of the deadline.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Where the guest sees the live model directory.
const GUEST_MODELS_DIR: &str = "/models";

/// The compiled component, ready to instantiate once per request.
pub(crate) struct Guests {
    pre: ProxyPre<GuestState>,
    live_dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Guests {
    /// Compiles and links the component at `wasm` (on a blocking thread).
    pub(crate) async fn load(wasm: PathBuf, live_dir: PathBuf, env: Vec<(String, String)>) -> Result<Self> {
        let pre = tokio::task::spawn_blocking(move || compile(&wasm))
            .await
            .map_err(|e| wasm_error("compiling the component", wasmtime::Error::msg(e.to_string())))??;
        Ok(Self { pre, live_dir, env })
    }

    /// The engine the component is compiled for.
    pub(crate) fn engine(&self) -> &Engine {
        self.pre.engine()
    }

    /// Runs one request through a fresh instance of the component.
    ///
    /// Returns the guest's response, or the reason there is none (a trap,
    /// the deadline, a guest that never answered).
    pub(crate) async fn handle(
        &self,
        req: hyper::Request<Incoming>,
    ) -> wasmtime::Result<hyper::Response<HyperOutgoingBody>> {
        let mut store = self.new_store()?;
        let (sender, receiver) = oneshot::channel();
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let answered = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run(self.pre.clone(), store, req, out, answered.clone()));
        match tokio::time::timeout(REQUEST_DEADLINE + Duration::from_secs(1), receiver).await {
            Ok(Ok(Ok(response))) => {
                answered.store(true, Ordering::Release);
                Ok(response)
            }
            Ok(Ok(Err(code))) => Err(wasmtime::Error::msg(format!("guest answered with error {code:?}"))),
            Ok(Err(_)) => Err(guest_outcome(task).await),
            Err(_) => {
                task.abort();
                Err(wasmtime::Error::msg(format!("guest did not answer within {REQUEST_DEADLINE:?}")))
            }
        }
    }

    /// A store with the request's WASI context, limits and deadline.
    fn new_store(&self) -> wasmtime::Result<Store<GuestState>> {
        let mut wasi = WasiCtx::builder();
        wasi.envs(&self.env).inherit_stdout().inherit_stderr();
        wasi.preopened_dir(&self.live_dir, GUEST_MODELS_DIR, FsPerms::ReadOnly)?;
        let state = GuestState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT_BYTES).trap_on_grow_failure(true).build(),
            hooks: NoOutboundHttp,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        let deadline = Instant::now() + REQUEST_DEADLINE;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            // Yield to the executor every tick so a busy guest does not hog a
            // worker thread; interrupt it (a trap) once the deadline passed.
            Ok(if Instant::now() >= deadline { UpdateDeadline::Interrupt } else { UpdateDeadline::Yield(1) })
        });
        Ok(store)
    }
}

/// Instantiates the component in `store` and calls its handler.
async fn run(
    pre: ProxyPre<GuestState>,
    mut store: Store<GuestState>,
    req: Resource<HostIncomingRequest>,
    out: Resource<HostResponseOutparam>,
    answered: Arc<AtomicBool>,
) -> wasmtime::Result<()> {
    let result = async {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
    }
    .await;
    if let Err(e) = &result
        && answered.load(Ordering::Acquire)
    {
        // The client got the status already; the body is cut short.
        warn!(error = format!("{e:#}"), "guest failed after answering");
    }
    result
}

/// Why a guest that never set a response ended.
async fn guest_outcome(task: tokio::task::JoinHandle<wasmtime::Result<()>>) -> wasmtime::Error {
    match task.await {
        Ok(Ok(())) => wasmtime::Error::msg("guest returned without setting a response"),
        Ok(Err(e)) => e,
        Err(e) => wasmtime::Error::msg(format!("guest task failed: {e}")),
    }
}

/// An engine with epoch interruption, and the component linked against
/// WASI 0.2 and wasi:http 0.2.
fn compile(wasm: &std::path::Path) -> Result<ProxyPre<GuestState>> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).map_err(|e| wasm_error("creating the engine", e))?;
    let bytes = std::fs::read(wasm).map_err(|source| Error::Io { path: wasm.to_owned(), source })?;
    let started = Instant::now();
    let component =
        Component::new(&engine, &bytes).map_err(|e| wasm_error(format!("compiling {}", wasm.display()), e))?;
    debug!(elapsed = ?started.elapsed(), "component compiled");
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| wasm_error("linking WASI", e))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| wasm_error("linking wasi:http", e))?;
    let pre = linker.instantiate_pre(&component).map_err(|e| wasm_error("resolving the component's imports", e))?;
    ProxyPre::new(pre).map_err(|e| wasm_error("the component is not a wasi:http/proxy component", e))
}

fn wasm_error(context: impl Into<String>, error: wasmtime::Error) -> Error {
    Error::Wasm { context: context.into(), error }
}

/// Per-request state of a guest.
struct GuestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: StoreLimits,
    hooks: NoOutboundHttp,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// wasi:http hooks that refuse every outgoing request: the scorer needs no
/// network (its Spin manifest allows no outbound hosts either).
struct NoOutboundHttp;

type Deferred = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;

impl WasiHttpHooks for NoOutboundHttp {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Deferred,
    ) -> Box<dyn Future<Output = wasmtime_wasi_http::Result<(http::Response<WasiBody>, Deferred)>> + Send> {
        Box::new(std::future::ready(Err(wasmtime_wasi_http::Error::HttpRequestDenied)))
    }
}

/// Increments the engine's epoch every [`EPOCH_TICK`] on a dedicated thread
/// (so the deadline holds even when every runtime worker is busy).
#[derive(Debug)]
pub(crate) struct EpochTicker {
    running: Arc<AtomicBool>,
}

impl EpochTicker {
    /// Starts ticking `engine`.
    pub(crate) fn start(engine: Engine) -> Result<Self> {
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        std::thread::Builder::new()
            .name("knowedge-epoch".into())
            .spawn(move || {
                while flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(Error::Thread)?;
        Ok(Self { running })
    }

    /// Stops ticking (within one tick).
    pub(crate) fn stop(&self) {
        self.running.store(false, Ordering::Relaxed);
    }
}
