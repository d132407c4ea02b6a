//! Running the component: engine, per-request stores, limits and deadlines.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::{debug, warn};
use wasmtime::component::{Component, Linker, Resource, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder,
    UpdateDeadline,
};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::kv::ModelsKv;
use crate::{Error, Result};

/// Most linear memory one request's guest may use; growing past it traps (answered `500`).
pub const MEMORY_LIMIT_BYTES: usize = 256 * 1024 * 1024;
/// Longest a request may run in the guest before it is interrupted (answered `500`).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Period of the engine's epoch ticks: the granularity of the deadline.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Where the guest sees the model store.
pub(crate) const GUEST_STORE_DIR: &str = "/store";

/// The `fermyon:spin/variables` import (see `edge/host/wit/spin-variables.wit`).
mod spin_variables {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "wit/spin-variables.wit",
        world: "variables-host",
    });
}

use spin_variables::fermyon::spin::variables as spin_vars;

/// Requests one guest instance serves before it is dropped for a fresh one.
pub const MAX_REQUESTS_PER_INSTANCE: u32 = 10_000;
/// Most idle instances kept for the next requests.
const MAX_IDLE_INSTANCES: usize = 32;

/// An instance that finished a request cleanly, kept for the next one: the
/// guest keeps what it loaded (the verified model) in its memory.
struct Warm {
    store: Store<GuestState>,
    proxy: Proxy,
    served: u32,
}

type Idle = Arc<std::sync::Mutex<Vec<Warm>>>;

/// The compiled component and the idle instances.
///
/// A request takes an idle instance (or instantiates a fresh one, which the
/// pooling allocator makes cheap), gets a fresh deadline, and runs the
/// guest's handler. An instance whose handler returned normally goes back to
/// the idle list, at most [`MAX_REQUESTS_PER_INSTANCE`] times; one that
/// trapped, hit its deadline or its memory limit is dropped.
pub(crate) struct Guests {
    pre: ProxyPre<GuestState>,
    dirs: Dirs,
    env: Vec<(String, String)>,
    outbound: OutboundHttp,
    /// The guests' standard output (exposure lines go to ingestion).
    stdout: crate::exposures::Tap,
    idle: Idle,
    /// Guest runs in progress (see [`Guests::drain`]).
    running: Arc<std::sync::atomic::AtomicUsize>,
    /// Spin variables: the environment's `KNOWEDGE_*` names, lower-cased without the prefix.
    variables: Arc<Vec<(String, String)>>,
    /// The key-value store `models`: the live directory.
    kv: Arc<ModelsKv>,
}

/// What the guest sees of the host's file system.
#[derive(Clone, Debug)]
pub(crate) struct Dirs {
    /// The live models: the guest's key-value store `models` (see [`crate::kv`]).
    pub(crate) live: PathBuf,
    /// Held while the live directory is written (by the guest's store or a watcher).
    pub(crate) live_lock: Arc<std::sync::Mutex<()>>,
    /// The model store (published versions, for experiment variants), at [`GUEST_STORE_DIR`].
    pub(crate) store: PathBuf,
}

impl Guests {
    /// Compiles and links the component at `wasm` (on a blocking thread).
    pub(crate) async fn load(
        wasm: PathBuf,
        dirs: Dirs,
        env: Vec<(String, String)>,
        outbound: OutboundHttp,
        stdout: crate::exposures::Tap,
    ) -> Result<Self> {
        let pre = tokio::task::spawn_blocking(move || compile(&wasm))
            .await
            .map_err(|e| wasm_error("compiling the component", wasmtime::Error::msg(e.to_string())))??;
        let variables = Arc::new(
            env.iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("KNOWEDGE_")?.to_ascii_lowercase(), v.clone())))
                .collect(),
        );
        let kv = Arc::new(ModelsKv::new(&dirs.live, dirs.live_lock.clone()));
        Ok(Self { pre, dirs, env, outbound, stdout, idle: Arc::default(), running: Arc::default(), variables, kv })
    }

    /// The engine the component is compiled for.
    pub(crate) fn engine(&self) -> &Engine {
        self.pre.engine()
    }

    /// Runs one request through an instance of the component (an idle one
    /// when there is one).
    ///
    /// Returns the guest's response, or the reason there is none (a trap,
    /// the deadline, a guest that never answered).
    pub(crate) async fn handle<B>(&self, req: hyper::Request<B>) -> wasmtime::Result<hyper::Response<HyperOutgoingBody>>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let warm = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let (mut store, proxy, served) = match warm {
            Some(w) => (w.store, Some(w.proxy), w.served),
            None => (self.new_store()?, None, 0),
        };
        arm_deadline(&mut store);
        let (sender, receiver) = oneshot::channel();
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let answered = Arc::new(AtomicBool::new(false));
        let answered_for_task = answered.clone();
        let instance = Instance { pre: self.pre.clone(), store, proxy, served, idle: self.idle.clone() };
        let running = Running::start(&self.running);
        let task = tokio::spawn(async move {
            let result = run(instance, req, out, answered_for_task).await;
            drop(running);
            result
        });
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

    /// Waits (at most `limit`) until no guest runs any more, then drops the
    /// idle instances: a clean stop, with nothing of the guests' left for
    /// the runtime to cancel.
    pub(crate) async fn drain(&self, limit: Duration) {
        let until = Instant::now() + limit;
        while self.running.load(Ordering::Acquire) > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// A store with the request's WASI context, limits and deadline.
    fn new_store(&self) -> wasmtime::Result<Store<GuestState>> {
        let mut wasi = WasiCtx::builder();
        // The guest reads its models through the key-value store (the live
        // directory) and variants' versions from the store's files: an
        // artifact once per instance and version (milliseconds), the pointer
        // once per request (microseconds). File reads run on the current
        // thread; a hand-off to the blocking pool per call cost a third of
        // the throughput under load.
        wasi.envs(&self.env).stdout(self.stdout.clone()).inherit_stderr().allow_blocking_current_thread(true);
        if self.dirs.store.is_dir() {
            wasi.preopened_dir(&self.dirs.store, GUEST_STORE_DIR, FsPerms::ReadOnly)?;
        }
        let state = GuestState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT_BYTES).trap_on_grow_failure(true).build(),
            hooks: self.outbound.clone(),
            variables: self.variables.clone(),
            kv: Some(self.kv.clone()),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.limits);
        Ok(store)
    }
}

/// Gives the store's next call [`REQUEST_DEADLINE`] from now.
fn arm_deadline(store: &mut Store<GuestState>) {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        // Yield to the executor every tick so a busy guest does not hog a
        // worker thread; interrupt it (a trap) once the deadline passed.
        Ok(if Instant::now() >= deadline { UpdateDeadline::Interrupt } else { UpdateDeadline::Yield(1) })
    });
}

/// Counts a guest run while alive.
struct Running(Arc<std::sync::atomic::AtomicUsize>);

impl Running {
    fn start(counter: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(counter.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What one request runs on.
struct Instance {
    pre: ProxyPre<GuestState>,
    store: Store<GuestState>,
    proxy: Option<Proxy>,
    served: u32,
    idle: Idle,
}

/// Instantiates the component if needed and calls its handler; a clean
/// return puts the instance back on the idle list.
async fn run(
    instance: Instance,
    req: Resource<HostIncomingRequest>,
    out: Resource<HostResponseOutparam>,
    answered: Arc<AtomicBool>,
) -> wasmtime::Result<()> {
    let Instance { pre, mut store, proxy, served, idle } = instance;
    let proxy = match proxy {
        Some(p) => p,
        None => pre.instantiate_async(&mut store).await?,
    };
    let result = proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await;
    match &result {
        Ok(()) if served + 1 < MAX_REQUESTS_PER_INSTANCE => {
            if let Ok(mut list) = idle.lock()
                && list.len() < MAX_IDLE_INSTANCES
            {
                list.push(Warm { store, proxy, served: served + 1 });
            }
        }
        Ok(()) => {}
        Err(e) if answered.load(Ordering::Acquire) => {
            // The client got the status already; the body is cut short.
            warn!(error = format!("{e:#}"), "guest failed after answering");
        }
        Err(_) => {}
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

/// Most guest instances alive at once (requests in flight); the pooling
/// allocator reserves their memories up front.
pub const MAX_CONCURRENT_GUESTS: u32 = 256;

/// The engine settings of the edge guests: epoch interruption (the
/// deadline), and the pooling instance allocator, which keeps memories and
/// tables of finished instances for the next ones, so that instantiating a
/// guest per request costs microseconds.
pub fn engine_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(MAX_CONCURRENT_GUESTS)
        .total_core_instances(4 * MAX_CONCURRENT_GUESTS)
        .total_memories(2 * MAX_CONCURRENT_GUESTS)
        .total_tables(4 * MAX_CONCURRENT_GUESTS)
        .max_memory_size(MEMORY_LIMIT_BYTES)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(8);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Times `n` instantiations of the component at `wasm`, each in a fresh
/// store set up as for a request (WASI context, limits, deadline), with the
/// host's engine settings. Returns the microseconds of each (store creation
/// and instantiation; compiling is done once, before).
pub async fn instantiation_micros(wasm: &std::path::Path, live_dir: &std::path::Path, n: usize) -> Result<Vec<f64>> {
    let dirs = Dirs { live: live_dir.to_owned(), live_lock: Arc::default(), store: live_dir.to_owned() };
    let guests =
        Guests::load(wasm.to_owned(), dirs, Vec::new(), OutboundHttp::default(), crate::exposures::Tap::print_all())
            .await?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut store = guests.new_store().map_err(|e| wasm_error("creating a store", e))?;
        arm_deadline(&mut store);
        let _proxy = guests.pre.instantiate_async(&mut store).await.map_err(|e| wasm_error("instantiating", e))?;
        out.push(t.elapsed().as_secs_f64() * 1e6);
        // The store (and with it the instance's pooled slot) is released here.
        drop(store);
    }
    Ok(out)
}

/// An engine with the edge settings ([`engine_config`]), and the component
/// linked against WASI 0.2 and wasi:http 0.2.
fn compile(wasm: &std::path::Path) -> Result<ProxyPre<GuestState>> {
    let engine = Engine::new(&engine_config()).map_err(|e| wasm_error("creating the engine", e))?;
    let bytes = std::fs::read(wasm).map_err(|source| Error::Io { path: wasm.to_owned(), source })?;
    let started = Instant::now();
    let component =
        Component::new(&engine, &bytes).map_err(|e| wasm_error(format!("compiling {}", wasm.display()), e))?;
    debug!(elapsed = ?started.elapsed(), "component compiled");
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| wasm_error("linking WASI", e))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| wasm_error("linking wasi:http", e))?;
    spin_vars::add_to_linker::<GuestState, wasmtime::component::HasSelf<GuestState>>(&mut linker, |s| s)
        .map_err(|e| wasm_error("linking fermyon:spin/variables", e))?;
    crate::kv::bindings::fermyon::spin::key_value::add_to_linker::<GuestState, wasmtime::component::HasSelf<GuestState>>(
        &mut linker,
        |s| s,
    )
    .map_err(|e| wasm_error("linking fermyon:spin/key-value", e))?;
    let pre = linker.instantiate_pre(&component).map_err(|e| wasm_error("resolving the component's imports", e))?;
    ProxyPre::new(pre).map_err(|e| wasm_error("the component is not a wasi:http/proxy component", e))
}

fn wasm_error(context: impl Into<String>, error: wasmtime::Error) -> Error {
    Error::Wasm { context: context.into(), error }
}

/// Per-request state of a guest.
pub(crate) struct GuestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    limits: StoreLimits,
    hooks: OutboundHttp,
    /// Spin application variables the guest may read.
    variables: Arc<Vec<(String, String)>>,
    /// The key-value store `models` (`None`: the guest has no store).
    pub(crate) kv: Option<Arc<ModelsKv>>,
}

impl spin_vars::Host for GuestState {
    fn get(&mut self, name: String) -> std::result::Result<String, spin_vars::Error> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(spin_vars::Error::InvalidName(name));
        }
        self.variables.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()).ok_or(spin_vars::Error::Undefined(name))
    }
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

/// wasi:http hooks that allow outgoing requests to one authority only: the
/// ingestion endpoint `POST /v1/events` forwards to (when configured). Every
/// other request is refused: the scorer needs no other network.
#[derive(Clone, Debug, Default)]
pub(crate) struct OutboundHttp {
    /// `host:port` of the allowed endpoint.
    pub(crate) allowed: Option<String>,
}

type Deferred = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Deferred,
    ) -> Box<dyn Future<Output = wasmtime_wasi_http::Result<(http::Response<WasiBody>, Deferred)>> + Send> {
        let authority = request.uri().authority().map(|a| authority_with_port(a.as_str(), request.uri()));
        if self.allowed.is_none() || authority != self.allowed {
            debug!(uri = %request.uri(), "outgoing request refused");
            return Box::new(std::future::ready(Err(wasmtime_wasi_http::Error::HttpRequestDenied)));
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Deferred))
        })
    }
}

/// `host:port` of an authority, with the scheme's default port when absent.
pub(crate) fn authority_with_port(authority: &str, uri: &http::Uri) -> String {
    if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        authority.to_owned()
    } else {
        let port = if uri.scheme_str() == Some("https") { 443 } else { 80 };
        format!("{authority}:{port}")
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
