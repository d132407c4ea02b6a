//! Calling the scoring component (`knowedge:edge/scorer`, world `scoring`
//! of `wit/scorer.wit`) directly, through bindings `bindgen!` generates
//! from the WIT contract.
//!
//! A [`Scorer`] compiles the component once (`knowedge_edge_scorer.wasm`),
//! instantiates it in one store with the edge's limits (memory, and an epoch
//! deadline per call), and keeps it: models loaded with [`Scorer::load`] stay
//! in the component's memory and answer every later call. A call that traps
//! or runs past its deadline poisons the instance; make a new [`Scorer`].
//!
//! ```no_run
//! # fn run() -> knowedge_edge_host::Result<()> {
//! use knowedge_edge_host::scorer::{Filters, Scorer};
//!
//! let mut scorer = Scorer::new("target/wasm32-wasip2/edge/knowedge_edge_scorer.wasm".as_ref())?;
//! let artifact = std::fs::read("model.kwm").expect("an artifact");
//! let public_key = [0u8; 32]; // the signer's ed25519 public key
//! let model = scorer.load(&artifact, &public_key)?.expect("a valid model");
//! let filters = Filters { category: None, max_price: None, exclude: vec![] };
//! let top = scorer.recommend(&model, "pseudonym", 10, &filters, &[])?;
//! # Ok(())
//! # }
//! ```

use std::path::Path;
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::guest::{EPOCH_TICK, EpochTicker, MEMORY_LIMIT_BYTES, REQUEST_DEADLINE, engine_config};
use crate::{Error, Result};

/// Bindings generated from `wit/scorer.wit`.
mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "scoring",
    });
}

use bindings::Scoring;
pub use bindings::knowedge::edge::types::{
    Error as ScoreError, Filters, ModelInfo, Ranked, Scored, SentimentLabel, SentimentResult,
};

/// A model loaded inside the component (a `model` resource handle).
#[derive(Debug)]
pub struct LoadedModel(ResourceAny);

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// One instance of the scoring component and the models loaded in it.
pub struct Scorer {
    store: Store<State>,
    bindings: Scoring,
    ticker: EpochTicker,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer").finish_non_exhaustive()
    }
}

impl Drop for Scorer {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

fn wasm_error(context: &str, error: wasmtime::Error) -> Error {
    Error::Wasm { context: context.to_owned(), error }
}

impl Scorer {
    /// Compiles and instantiates the component at `wasm`.
    pub fn new(wasm: &Path) -> Result<Self> {
        let engine = Engine::new(&engine_config()).map_err(|e| wasm_error("creating the engine", e))?;
        let bytes = std::fs::read(wasm).map_err(|source| Error::Io { path: wasm.to_owned(), source })?;
        let component =
            Component::new(&engine, &bytes).map_err(|e| wasm_error(&format!("compiling {}", wasm.display()), e))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| wasm_error("linking WASI", e))?;
        let state = State {
            wasi: WasiCtx::builder().inherit_stderr().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT_BYTES).trap_on_grow_failure(true).build(),
        };
        let mut store = Store::new(&engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(deadline_ticks());
        let bindings = Scoring::instantiate(&mut store, &component, &linker)
            .map_err(|e| wasm_error("instantiating the scoring component", e))?;
        let ticker = EpochTicker::start(engine)?;
        Ok(Self { store, bindings, ticker })
    }

    /// Gives the next call [`REQUEST_DEADLINE`]; past it the call traps.
    fn arm(&mut self) {
        self.store.set_epoch_deadline(deadline_ticks());
    }

    /// Verifies and loads an artifact in the component (`model.load`).
    pub fn load(
        &mut self,
        artifact: &[u8],
        public_key: &[u8; 32],
    ) -> Result<std::result::Result<LoadedModel, ScoreError>> {
        self.arm();
        let r = self
            .bindings
            .knowedge_edge_scorer()
            .model()
            .call_load(&mut self.store, artifact, public_key)
            .map_err(|e| wasm_error("model.load", e))?;
        Ok(r.map(LoadedModel))
    }

    /// `model.info`.
    pub fn info(&mut self, model: &LoadedModel) -> Result<ModelInfo> {
        self.arm();
        self.bindings
            .knowedge_edge_scorer()
            .model()
            .call_info(&mut self.store, model.0)
            .map_err(|e| wasm_error("model.info", e))
    }

    /// `model.recommend`.
    pub fn recommend(
        &mut self,
        model: &LoadedModel,
        user: &str,
        k: u32,
        filters: &Filters,
        session_items: &[String],
    ) -> Result<std::result::Result<Vec<Scored>, ScoreError>> {
        self.arm();
        self.bindings
            .knowedge_edge_scorer()
            .model()
            .call_recommend(&mut self.store, model.0, user, k, filters, session_items)
            .map_err(|e| wasm_error("model.recommend", e))
    }

    /// `model.rank`.
    pub fn rank(
        &mut self,
        model: &LoadedModel,
        user: &str,
        candidates: &[String],
        session_items: &[String],
    ) -> Result<std::result::Result<Ranked, ScoreError>> {
        self.arm();
        self.bindings
            .knowedge_edge_scorer()
            .model()
            .call_rank(&mut self.store, model.0, user, candidates, session_items)
            .map_err(|e| wasm_error("model.rank", e))
    }

    /// `model.similar`.
    pub fn similar(
        &mut self,
        model: &LoadedModel,
        item: &str,
        k: u32,
    ) -> Result<std::result::Result<Vec<Scored>, ScoreError>> {
        self.arm();
        self.bindings
            .knowedge_edge_scorer()
            .model()
            .call_similar(&mut self.store, model.0, item, k)
            .map_err(|e| wasm_error("model.similar", e))
    }

    /// `model.sentiment`.
    pub fn sentiment(
        &mut self,
        model: &LoadedModel,
        texts: &[String],
    ) -> Result<std::result::Result<Vec<SentimentResult>, ScoreError>> {
        self.arm();
        self.bindings
            .knowedge_edge_scorer()
            .model()
            .call_sentiment(&mut self.store, model.0, texts)
            .map_err(|e| wasm_error("model.sentiment", e))
    }

    /// Drops a model inside the component.
    pub fn unload(&mut self, model: LoadedModel) -> Result<()> {
        model.0.resource_drop(&mut self.store).map_err(|e| wasm_error("dropping a model", e))
    }
}

fn deadline_ticks() -> u64 {
    (REQUEST_DEADLINE.as_millis() / EPOCH_TICK.as_millis().max(1)) as u64 + 1
}

/// The deadline of one call, for documentation and tests.
pub const CALL_DEADLINE: Duration = REQUEST_DEADLINE;
