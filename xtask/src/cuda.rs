//! `cargo xtask cuda-check`: `cargo check -p knowedge-train --features cuda`
//! on a machine without a CUDA installation.
//!
//! The CUDA 13.0 toolkit's parts ship as PyPI wheels; they go into a virtual
//! environment under `target/tools/cuda13` (pinned to one release: the
//! compiler front end and `ptxas` must agree on the PTX version), and candle's
//! kernels are compiled with its `nvcc` for compute capability 8.6 (the A10G
//! of g5 and close to the L4 of g6) unless `CUDA_COMPUTE_CAP` says otherwise.
//! No GPU is needed: the check compiles, it runs nothing. It builds into
//! `target/cuda-check` so the normal build is not invalidated.

use std::process::Command;

use anyhow::Result;

use crate::{cargo, run, target_dir};

/// The toolkit's wheels, all from the 13.0 release.
const WHEELS: [&str; 5] = [
    "nvidia-cuda-nvcc==13.0.88",
    "nvidia-nvvm==13.0.88",
    "nvidia-cuda-crt==13.0.88",
    "nvidia-cuda-runtime==13.0.96",
    "nvidia-cuda-cccl==13.0.85",
];

pub(crate) fn cuda_check() -> Result<()> {
    let venv = std::env::current_dir()?.join(target_dir()).join("tools").join("cuda13");
    let root = venv.join("lib/python3.11/site-packages/nvidia/cu13");
    if !root.join("bin/nvcc").exists() {
        if !venv.join("bin/pip").exists() {
            run("python3 -m venv target/tools/cuda13", Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        }
        run(
            "pip install the CUDA 13.0 toolkit wheels",
            Command::new(venv.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check"]).args(WHEELS),
        )?;
    }
    let root = match std::fs::read_dir(venv.join("lib")).ok().and_then(|mut d| d.next()).and_then(|e| e.ok()) {
        // The Python version in the path is the venv's.
        Some(python) => python.path().join("site-packages/nvidia/cu13"),
        None => root,
    };
    let mut path = std::ffi::OsString::from(root.join("bin"));
    if let Some(old) = std::env::var_os("PATH") {
        path.push(":");
        path.push(old);
    }
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "86".into());
    let mut check = cargo();
    check
        .args(["check", "-p", "knowedge-train", "--features", "cuda", "--target-dir"])
        .arg(target_dir().join("cuda-check"))
        .env("PATH", path)
        .env("CUDA_ROOT", &root)
        .env("CUDA_PATH", &root)
        .env("CUDA_TOOLKIT_ROOT_DIR", &root)
        .env("CUDA_COMPUTE_CAP", cap);
    run("cargo check -p knowedge-train --features cuda", &mut check)
}
