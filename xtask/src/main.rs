//! `cargo xtask`: builds and tests the knowedge workspace.
//!
//! * `cargo xtask build`: installs missing rustup targets and builds the edge component.
//! * `cargo xtask dev [ARGS]`: builds, then runs `knowedge dev ARGS` (the whole platform with demo data).
//! * `cargo xtask test`: formatting, portable-core checks for both wasm targets, clippy, the edge
//!   component, and every test; prints the time of each step.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

const WASM_TARGETS: [&str; 2] = ["wasm32-wasip2", "wasm32-unknown-unknown"];
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
            let mut cmd = cargo();
            cmd.args(["run", "--quiet", "-p", "knowedge", "--", "dev"]).args(&args[1..]);
            run("knowedge dev", &mut cmd)
        }
        Some("test") => test(),
        _ => {
            eprintln!("usage: cargo xtask <build | dev [ARGS] | test>");
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
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

/// Builds the Spin edge component (wasm32-wasip2, profile `edge`).
fn build() -> Result<()> {
    ensure_targets()?;
    run(
        "build the Spin edge component (wasm32-wasip2)",
        cargo().args(["build", "-p", "knowedge-edge-spin", "--target", "wasm32-wasip2", "--profile", "edge"]),
    )?;
    let wasm = Path::new("target/wasm32-wasip2/edge/knowedge_edge_spin.wasm");
    let size = std::fs::metadata(wasm).with_context(|| format!("{} was not produced", wasm.display()))?.len();
    eprintln!("    {} ({} KiB)", wasm.display(), size / 1024);
    Ok(())
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

fn test() -> Result<()> {
    let t = Instant::now();
    ensure_python_packages()?;
    run("cargo fmt --check", cargo().args(["fmt", "--all", "--", "--check"]))?;
    build()?;
    for target in WASM_TARGETS {
        run(
            &format!("portable core for {target}"),
            cargo().args(["build", "-p", "knowedge-shared", "--target", target]),
        )?;
    }
    run(
        "clippy (workspace)",
        cargo().args([
            "clippy",
            "--workspace",
            "--exclude",
            "knowedge-edge-spin",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run(
        "clippy (edge component, wasm32-wasip2)",
        cargo().args(["clippy", "-p", "knowedge-edge-spin", "--target", "wasm32-wasip2", "--", "-D", "warnings"]),
    )?;
    run("tests", cargo().args(["test", "--workspace", "--exclude", "knowedge-edge-spin"]))?;
    eprintln!("all checks passed in {:.1} min", t.elapsed().as_secs_f32() / 60.0);
    Ok(())
}
