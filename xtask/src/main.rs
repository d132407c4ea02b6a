//! `cargo xtask`: builds and tests the knowedge workspace.
//!
//! * `cargo xtask build`: installs missing rustup targets and builds the edge component.
//! * `cargo xtask dev [ARGS]`: builds, then runs `knowedge dev ARGS` (the whole platform with demo data).
//! * `cargo xtask edge-bench [ARGS]`: builds the edge benchmark program natively and for
//!   `wasm32-wasip2`, then runs `knowedge edge bench ARGS` (add `--wrk 30` for HTTP load).
//! * `cargo xtask sentiment-bench [ARGS]`: builds the wasm scoring program and the release
//!   command line, then runs `knowedge sentiment bench ARGS` (native and wasmtime in one run).
//! * `cargo xtask worker`: installs the Worker tools when missing (wasm-bindgen-cli, worker-build,
//!   wrangler and binaryen from npm) and builds the Cloudflare Worker with worker-build.
//! * `cargo xtask package [--arch arm64|x86_64] [--only BINARY]`: cross-builds every Lambda function
//!   (the binaries under `functions/`) with cargo-lambda into `target/lambda/<binary>/bootstrap.zip`,
//!   checks each zip and prints the sizes (see [`package`]).
//! * `cargo xtask cuda-check`: `cargo check -p knowedge-train --features cuda` with the CUDA 13.0
//!   toolkit from PyPI wheels (no GPU needed; see [`cuda`]).
//! * `cargo xtask infra`: the offline checks of `infra/` (terraform fmt, checkov, script syntax).
//! * `cargo xtask cold-start [--runs N]`: measures each function's cold start against a runtime API
//!   stand-in (see [`coldstart`]).
//! * `cargo xtask test`: formatting, the offline checks of `infra/` (terraform fmt, checkov), portable-core checks for both wasm targets, clippy, the edge
//!   component, and every test; prints the time of each step.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

mod coldstart;
mod cuda;
mod package;

const WASM_TARGETS: [&str; 2] = ["wasm32-wasip2", "wasm32-unknown-unknown"];
/// wasm-bindgen-cli version the Worker build needs (the `worker` crate's wasm-bindgen).
const WASM_BINDGEN_VERSION: &str = "0.2.130";
/// worker-build version matching the `worker` crate.
const WORKER_BUILD_VERSION: &str = "0.8.7";
/// wrangler version pinned in edge/worker/package.json (newer ones need Node 22).
const WRANGLER_VERSION: &str = "4.86.0";
/// The Worker crate, its npm tools and its built Worker live here.
const WORKER_DIR: &str = "edge/worker";
/// The dashboard's npm packages: ECharts (inlined into each page) and playwright-core (its browser test).
const DASHBOARD_DIR: &str = "functions/report/dashboard";
/// Python packages the tests use as independent peers: an S3 API server and a Parquet reader.
const PYTHON_TEST_PACKAGES: [&str; 2] = ["moto[server]==5.2.1", "duckdb==2.0.1"];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("build") => build(),
        Some("dev") => {
            build()?;
            ensure_dashboard_packages()?;
            let mut cmd = cargo();
            cmd.args(["run", "--quiet", "-p", "knowedge", "--", "dev"]).args(&args[1..]);
            run("knowedge dev", &mut cmd)
        }
        Some("test") => test(),
        Some("package") => package::package(&args[1..]),
        Some("infra") => infra_checks(),
        Some("cuda-check") => cuda::cuda_check(),
        Some("cold-start") => coldstart::cold_start(&args[1..]),
        Some("worker") => build_worker(),
        Some("edge-bench") => {
            build()?;
            run(
                "build the edge benchmark program (native, release)",
                cargo().args(["build", "-p", "knowedge-scoring", "--example", "edge_bench", "--release"]),
            )?;
            run(
                "build the edge benchmark program (wasm32-wasip2 with simd128, release)",
                cargo().args([
                    "build",
                    "-p",
                    "knowedge-scoring",
                    "--example",
                    "edge_bench",
                    "--target",
                    "wasm32-wasip2",
                    "--release",
                ]),
            )?;
            let mut cmd = cargo();
            // `cargo xtask edge-bench -- ARGS` and `cargo xtask edge-bench ARGS` both work.
            let extra = args[1..].iter().skip_while(|a| *a == "--");
            cmd.args(["run", "--quiet", "--release", "-p", "knowedge", "--", "edge", "bench"]).args(extra);
            run("knowedge edge bench", &mut cmd)
        }
        Some("sentiment-bench") => {
            ensure_targets()?;
            run(
                "build the sentiment scoring program (wasm32-wasip2, release)",
                cargo().args([
                    "build",
                    "-p",
                    "knowedge-scoring",
                    "--example",
                    "sentiment_bench",
                    "--target",
                    "wasm32-wasip2",
                    "--release",
                ]),
            )?;
            let mut cmd = cargo();
            cmd.args(["run", "--quiet", "--release", "-p", "knowedge", "--", "sentiment", "bench"]).args(&args[1..]);
            run("knowedge sentiment bench", &mut cmd)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <build | dev [ARGS] | edge-bench [ARGS] | sentiment-bench [ARGS] | worker | package [ARGS] | cold-start | cuda-check | infra | test>"
            );
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace
/// root when relative; xtask runs there), else `target`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("target"),
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(label: &str, cmd: &mut Command) -> Result<()> {
    let t = Instant::now();
    eprintln!("==> {label}");
    let status = cmd.status().with_context(|| format!("starting {label}"))?;
    eprintln!("    {label}: {:.1}s", t.elapsed().as_secs_f32());
    if !status.success() {
        bail!("{label} failed ({status})");
    }
    Ok(())
}

fn ensure_targets() -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    let Ok(out) = installed else {
        eprintln!("rustup not found; assuming the wasm targets are installed");
        return Ok(());
    };
    let have = String::from_utf8_lossy(&out.stdout).to_string();
    let missing: Vec<&str> = WASM_TARGETS.iter().copied().filter(|t| !have.lines().any(|l| l.trim() == *t)).collect();
    if !missing.is_empty() {
        run("rustup target add", Command::new("rustup").arg("target").arg("add").args(&missing))?;
    }
    Ok(())
}

/// Builds the edge components (wasm32-wasip2, profile `edge`): the Spin
/// HTTP component and the scoring component of `wit/scorer.wit`.
fn build() -> Result<()> {
    ensure_targets()?;
    run(
        "build the Spin edge component and the scoring component (wasm32-wasip2)",
        cargo().args([
            "build",
            "-p",
            "knowedge-edge-spin",
            "-p",
            "knowedge-edge-scorer",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "edge",
        ]),
    )?;
    for name in ["knowedge_edge_spin", "knowedge_edge_scorer"] {
        let wasm = target_dir().join("wasm32-wasip2/edge").join(format!("{name}.wasm"));
        let size = std::fs::metadata(&wasm).with_context(|| format!("{} was not produced", wasm.display()))?.len();
        eprintln!("    {} ({} KiB)", wasm.display(), size / 1024);
    }
    Ok(())
}

/// A cargo-installed binary: in `$CARGO_HOME/bin` when there, else found on `PATH`.
fn cargo_bin(name: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    home.map(|h| h.join("bin").join(name)).filter(|p| p.is_file()).unwrap_or_else(|| PathBuf::from(name))
}

/// Whether `program --version` runs and prints `version`.
fn has_version(program: &Path, version: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(version))
}

/// `cargo install`s `krate` at `version` unless `bin --version` already says it.
fn ensure_cargo_tool(bin: &str, krate: &str, version: &str, locked: bool) -> Result<()> {
    if has_version(&cargo_bin(bin), version) {
        return Ok(());
    }
    let mut cmd = cargo();
    cmd.args(["install", krate, "--version", version]);
    if locked {
        cmd.arg("--locked");
    }
    run(&format!("cargo install {krate} {version}"), &mut cmd)
}

/// Installs what building and testing the Worker needs, skipping what is there:
/// wasm-bindgen-cli and worker-build (cargo), wrangler and binaryen (`npm ci` in edge/worker).
fn ensure_worker_tools() -> Result<()> {
    // Without --locked: one of its locked dependencies is missing from the registry mirror.
    ensure_cargo_tool("wasm-bindgen", "wasm-bindgen-cli", WASM_BINDGEN_VERSION, false)?;
    ensure_cargo_tool("worker-build", "worker-build", WORKER_BUILD_VERSION, true)?;
    let bin = Path::new(WORKER_DIR).join("node_modules/.bin");
    if !has_version(&bin.join("wrangler"), WRANGLER_VERSION) || !bin.join("wasm-opt").is_file() {
        run(
            "npm ci in edge/worker (wrangler, binaryen)",
            Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(WORKER_DIR),
        )?;
    }
    Ok(())
}

/// Builds the Cloudflare Worker into edge/worker/build with worker-build,
/// pointed at the installed wasm-bindgen, npm's esbuild and binaryen's wasm-opt
/// (its own downloads of them need GitHub).
fn build_worker() -> Result<()> {
    ensure_targets()?;
    ensure_worker_tools()?;
    let bin = Path::new(WORKER_DIR).join("node_modules/.bin").canonicalize()?;
    run(
        "build the Cloudflare Worker (worker-build, wasm32-unknown-unknown)",
        Command::new(cargo_bin("worker-build"))
            .arg("--release")
            .current_dir(WORKER_DIR)
            .env("WASM_BINDGEN_BIN", cargo_bin("wasm-bindgen"))
            .env("ESBUILD_BIN", bin.join("esbuild"))
            .env("WASM_OPT_BIN", bin.join("wasm-opt")),
    )?;
    // worker-build runs cargo in edge/worker: a relative target directory is relative to it.
    let worker_target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => Path::new(WORKER_DIR).join(dir),
        _ => PathBuf::from("target"),
    };
    for wasm in [
        worker_target.join("wasm32-unknown-unknown/release/knowedge_edge_worker.wasm"),
        "edge/worker/build/index_bg.wasm".into(),
    ] {
        let size = std::fs::metadata(&wasm).with_context(|| format!("{} was not produced", wasm.display()))?.len();
        eprintln!("    {} ({} KiB)", wasm.display(), size / 1024);
    }
    Ok(())
}

/// `npm ci` in the dashboard's folder unless ECharts and playwright-core are there.
fn ensure_dashboard_packages() -> Result<()> {
    let modules = Path::new(DASHBOARD_DIR).join("node_modules");
    if !modules.join("echarts/dist/echarts.min.js").is_file() || !modules.join("playwright-core").is_dir() {
        run(
            "npm ci in functions/report/dashboard (echarts, playwright-core)",
            Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(DASHBOARD_DIR),
        )?;
    }
    Ok(())
}

/// checkov, the Terraform scanner (from PyPI, into `target/tools/checkov`).
const CHECKOV: &str = "checkov==3.3.30";

/// The offline checks of `infra/` (providers cannot be downloaded here, so
/// `terraform validate` cannot run): `terraform fmt`, checkov with no failed
/// check, and the shell scripts' syntax. The test crate `infra/check` holds
/// the Terraform against the code.
fn infra_checks() -> Result<()> {
    match Command::new("terraform").arg("version").output() {
        Ok(_) => run("terraform fmt -check", Command::new("terraform").args(["fmt", "-check", "-recursive", "infra"]))?,
        Err(e) => bail!("terraform (for `terraform fmt -check` of infra/) is not installed: {e}"),
    }
    let checkov = python_tools("checkov", &[CHECKOV])?.join("bin").join("checkov");
    run("checkov (infra/)", Command::new(&checkov).args(["--config-file", "infra/.checkov.yaml"]))?;
    for script in ["infra/smoke.sh", "infra/put-secrets.sh"] {
        run(&format!("bash -n {script}"), Command::new("bash").args(["-n", script]))?;
    }
    Ok(())
}

/// A virtual environment `target/tools/<name>` holding `packages` from
/// PyPI, made (or remade, when the pinned list changes) on first use; returns its directory.
pub(crate) fn python_tools(name: &str, packages: &[&str]) -> Result<PathBuf> {
    let venv = std::env::current_dir()?.join(target_dir()).join("tools").join(name);
    let stamp = venv.join(".installed");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        if !venv.join("bin").join("pip").exists() {
            run(
                &format!("python3 -m venv target/tools/{name}"),
                Command::new("python3").args(["-m", "venv"]).arg(&venv),
            )?;
        }
        run(
            &format!("pip install {}", packages.join(" ")),
            Command::new(venv.join("bin").join("pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(packages),
        )?;
        std::fs::write(&stamp, wanted)?;
    }
    Ok(venv)
}

/// `PATH` with `dir` first.
pub(crate) fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut path = std::ffi::OsString::from(dir.as_os_str());
    if let Some(old) = std::env::var_os("PATH") {
        path.push(":");
        path.push(old);
    }
    path
}

/// Installs the Python test peers (moto's S3 server, DuckDB) when they are missing.
fn ensure_python_packages() -> Result<()> {
    let have = Command::new("python3").args(["-c", "import duckdb, moto.server"]).output();
    match have {
        Ok(out) if out.status.success() => Ok(()),
        Ok(_) => run(
            "pip install the test peers (moto S3 server, DuckDB)",
            Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                .args(PYTHON_TEST_PACKAGES),
        ),
        Err(e) => bail!("python3 is needed by the storage tests (S3 server, DuckDB reader): {e}"),
    }
}

/// PySpark, for the test that runs the report SQL on Spark (from PyPI, into `target/tools/spark`).
const PYSPARK: &str = "pyspark==4.3.0";

fn test() -> Result<()> {
    let t = Instant::now();
    ensure_python_packages()?;
    python_tools("spark", &[PYSPARK])?;
    ensure_dashboard_packages()?;
    if !Path::new("/usr/bin/chromium").exists() && std::env::var_os("CHROMIUM").is_none() {
        bail!("chromium (for the dashboard's browser test) is not installed: apt-get install chromium");
    }
    if Command::new("java").arg("-version").output().is_err() {
        bail!("java (17, for the Spark test) is not installed: apt-get install openjdk-17-jre-headless");
    }
    run("cargo fmt --check", cargo().args(["fmt", "--all", "--", "--check"]))?;
    infra_checks()?;
    build()?;
    build_worker()?;
    for target in WASM_TARGETS {
        run(
            &format!("portable core for {target}"),
            cargo().args([
                "build",
                "-p",
                "knowedge-format",
                "-p",
                "knowedge-scoring",
                "-p",
                "knowedge-edge",
                "--target",
                target,
            ]),
        )?;
    }
    run(
        "clippy (workspace)",
        cargo().args([
            "clippy",
            "--workspace",
            "--exclude",
            "knowedge-edge-spin",
            "--exclude",
            "knowedge-edge-worker",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run(
        "clippy (edge components, wasm32-wasip2)",
        cargo().args([
            "clippy",
            "-p",
            "knowedge-edge-spin",
            "-p",
            "knowedge-edge-scorer",
            "--target",
            "wasm32-wasip2",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run(
        "clippy (Cloudflare Worker, wasm32-unknown-unknown)",
        cargo().args([
            "clippy",
            "-p",
            "knowedge-edge-worker",
            "--target",
            "wasm32-unknown-unknown",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run(
        "tests",
        cargo().args(["test", "--workspace", "--exclude", "knowedge-edge-spin", "--exclude", "knowedge-edge-worker"]),
    )?;
    eprintln!("all checks passed in {:.1} min", t.elapsed().as_secs_f32() / 60.0);
    Ok(())
}
