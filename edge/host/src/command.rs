//! Running a WASI 0.2 command component (`wasi:cli/command`) to completion,
//! with the same engine settings as the edge guests: used to measure code of
//! the portable core inside wasmtime (see `knowedge sentiment bench` and
//! `knowedge edge bench`).

use std::path::{Path, PathBuf};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use crate::{Error, Result};

/// Most bytes of standard output kept.
const STDOUT_CAPACITY: usize = 1 << 20;

/// What a command printed and whether it succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutput {
    /// Its standard output.
    pub stdout: String,
    /// Whether `run` returned success.
    pub success: bool,
}

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Compiles and runs the command component at `wasm` with `args` (the first
/// is the program name), each `(host directory, guest path)` in `dirs`
/// preopened read-only, standard error inherited. With `epoch_interruption`
/// the code is compiled with the deadline checks the edge guests run with
/// (the deadline is never reached); without, as a runtime without deadlines would.
pub fn run_command(
    wasm: &Path,
    args: &[String],
    dirs: &[(PathBuf, String)],
    epoch_interruption: bool,
) -> Result<CommandOutput> {
    let err = |context: &str, error: wasmtime::Error| Error::Wasm { context: context.to_owned(), error };
    let mut config = crate::guest::engine_config();
    config.epoch_interruption(epoch_interruption);
    let engine = Engine::new(&config).map_err(|e| err("creating the engine", e))?;
    let bytes = std::fs::read(wasm).map_err(|source| Error::Io { path: wasm.to_owned(), source })?;
    let component = Component::new(&engine, &bytes).map_err(|e| err("compiling the command", e))?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| err("linking WASI", e))?;
    let stdout = MemoryOutputPipe::new(STDOUT_CAPACITY);
    let mut wasi = WasiCtx::builder();
    wasi.args(args).stdout(stdout.clone()).inherit_stderr();
    for (host, guest) in dirs {
        wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
            .map_err(|e| err(&format!("preopening {}", host.display()), e))?;
    }
    let mut store = Store::new(&engine, State { wasi: wasi.build(), table: ResourceTable::new() });
    if epoch_interruption {
        store.set_epoch_deadline(u64::MAX);
    }
    let command = Command::instantiate(&mut store, &component, &linker).map_err(|e| err("instantiating", e))?;
    let success = command.wasi_cli_run().call_run(&mut store).map_err(|e| err("running the command", e))?.is_ok();
    Ok(CommandOutput { stdout: String::from_utf8_lossy(&stdout.contents()).into_owned(), success })
}
