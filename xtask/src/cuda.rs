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

use anyhow::{Context, Result};

use crate::{cargo, path_with, python_tools, run, target_dir};

/// The toolkit's wheels, all from the 13.0 release.
const WHEELS: [&str; 5] = [
    "nvidia-cuda-nvcc==13.0.88",
    "nvidia-nvvm==13.0.88",
    "nvidia-cuda-crt==13.0.88",
    "nvidia-cuda-runtime==13.0.96",
    "nvidia-cuda-cccl==13.0.85",
];

pub(crate) fn cuda_check() -> Result<()> {
    let venv = python_tools("cuda13", &WHEELS)?;
    // The wheels install under the venv's `lib/python3.X/site-packages`.
    let python = std::fs::read_dir(venv.join("lib"))?.flatten().next().context("the venv has no lib/python3.X")?;
    let root = python.path().join("site-packages/nvidia/cu13");
    let path = path_with(&root.join("bin"));
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
