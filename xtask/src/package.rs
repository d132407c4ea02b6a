//! `cargo xtask package`: the Lambda functions as deployable zips.
//!
//! Every binary of a package under `functions/` is a Lambda function. Each is
//! cross-built in release mode with cargo-lambda (zig as the linker, so no
//! cross toolchain is needed) for `provided.al2023` into
//! `target/lambda/<binary>/bootstrap.zip`, then checked: the zip holds one
//! executable entry `bootstrap` whose bytes (CRC-32 and size) are the binary
//! just built, and that binary is an ELF executable for the chosen
//! architecture. A function that needs files beside its binary gets them
//! added to its zip ([`extra_files`]: `knowedge-report` inlines Apache ECharts
//! from `functions/report/dashboard`, installed with `npm ci`), and the check
//! then wants exactly those entries too, with their bytes. cargo-lambda and zig come from PyPI into a virtual
//! environment under `target/tools/lambda` when `cargo lambda` is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, path_with, python_tools, run, target_dir};

/// cargo-lambda from PyPI (ships its own binary; zig comes from `ziglang`).
const CARGO_LAMBDA: &str = "cargo-lambda==1.9.2";
/// zig for cross-linking (the version cargo-lambda 1.9 is tested with).
const ZIGLANG: &str = "ziglang==0.17.1";

/// A Lambda architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arch {
    Arm64,
    X86_64,
}

impl Arch {
    fn triple(self) -> &'static str {
        match self {
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
        }
    }

    fn cargo_lambda_flag(self) -> &'static str {
        match self {
            Arch::Arm64 => "--arm64",
            Arch::X86_64 => "--x86-64",
        }
    }

    /// The ELF `e_machine` of this architecture.
    fn elf_machine(self) -> u16 {
        match self {
            Arch::Arm64 => 183,
            Arch::X86_64 => 62,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Arch::Arm64 => "arm64",
            Arch::X86_64 => "x86_64",
        }
    }
}

/// A Lambda function of the workspace: its package and binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Function {
    pub(crate) package: String,
    pub(crate) binary: String,
}

/// Every binary of the packages under `functions/`, from `cargo metadata`.
pub(crate) fn functions() -> Result<Vec<Function>> {
    let out =
        cargo().args(["metadata", "--no-deps", "--format-version", "1"]).output().context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).context("reading cargo metadata")?;
    let root = meta["workspace_root"].as_str().unwrap_or(".");
    let functions_dir = Path::new(root).join("functions");
    let mut found = Vec::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        let manifest = Path::new(package["manifest_path"].as_str().unwrap_or(""));
        if !manifest.starts_with(&functions_dir) {
            continue;
        }
        for target in package["targets"].as_array().into_iter().flatten() {
            let is_bin = target["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin"));
            if is_bin {
                found.push(Function {
                    package: package["name"].as_str().unwrap_or_default().to_owned(),
                    binary: target["name"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.binary.cmp(&b.binary));
    if found.is_empty() {
        bail!("no Lambda binaries found under {}", functions_dir.display());
    }
    Ok(found)
}

/// `cargo xtask package [--arch arm64|x86_64] [--only BINARY]...`
pub(crate) fn package(args: &[String]) -> Result<()> {
    let mut arch = Arch::Arm64;
    let mut only = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--arch" => {
                arch = match it.next().map(String::as_str) {
                    Some("arm64" | "aarch64") => Arch::Arm64,
                    Some("x86_64" | "x86-64" | "amd64") => Arch::X86_64,
                    other => bail!("--arch takes arm64 or x86_64, not {other:?}"),
                }
            }
            "--only" => only.push(it.next().context("--only takes a binary name")?.clone()),
            other => {
                bail!("unknown argument {other:?} (usage: cargo xtask package [--arch arm64|x86_64] [--only BINARY])")
            }
        }
    }
    let mut functions = functions()?;
    if !only.is_empty() {
        if let Some(unknown) = only.iter().find(|o| !functions.iter().any(|f| &f.binary == *o)) {
            bail!("{unknown} is not a Lambda binary of the workspace");
        }
        functions.retain(|f| only.contains(&f.binary));
    }
    let cargo_lambda = ensure_cargo_lambda()?;
    let mut cmd = Command::new(&cargo_lambda.program);
    cmd.args(["lambda", "build", "--release", "--output-format", "zip", arch.cargo_lambda_flag()]);
    for f in &functions {
        cmd.args(["--bin", &f.binary]);
    }
    if let Some(path) = &cargo_lambda.path {
        cmd.env("PATH", path);
    }
    run(&format!("cargo lambda build ({}, release)", arch.name()), &mut cmd)?;
    for f in &functions {
        let extra = extra_files(&f.binary);
        if !extra.is_empty() {
            crate::ensure_dashboard_packages()?;
            add_to_zip(&target_dir().join("lambda").join(&f.binary).join("bootstrap.zip"), &extra)?;
        }
    }

    println!("{:<20} {:>12} {:>12}  path", "function", "binary", "zip");
    for f in &functions {
        let zip = target_dir().join("lambda").join(&f.binary).join("bootstrap.zip");
        let binary = target_dir().join(arch.triple()).join("release").join(&f.binary);
        let (zip_len, bin_len) = check(&zip, &binary, arch, &extra_files(&f.binary))
            .with_context(|| format!("checking {}", zip.display()))?;
        println!("{:<20} {:>9.1} MB {:>9.1} MB  {}", f.binary, mb(bin_len), mb(zip_len), zip.display());
    }
    Ok(())
}

/// Files a function's zip holds beside `bootstrap`: (entry name, file).
pub(crate) fn extra_files(binary: &str) -> Vec<(&'static str, PathBuf)> {
    match binary {
        "knowedge-report" => {
            vec![("echarts.min.js", Path::new(crate::DASHBOARD_DIR).join("node_modules/echarts/dist/echarts.min.js"))]
        }
        _ => Vec::new(),
    }
}

/// Adds `files` to the zip (deflated), with Python's `zipfile`: the same
/// Python that installs cargo-lambda.
fn add_to_zip(zip: &Path, files: &[(&str, PathBuf)]) -> Result<()> {
    let script = "import sys, zipfile\n\
                  z = zipfile.ZipFile(sys.argv[1], 'a', zipfile.ZIP_DEFLATED)\n\
                  for name, path in zip(sys.argv[2::2], sys.argv[3::2]):\n    \
                  if name not in z.namelist(): z.write(path, name)\n\
                  z.close()\n";
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).arg(zip);
    for (name, path) in files {
        cmd.arg(name).arg(path);
    }
    run(&format!("add {} to {}", files.iter().map(|f| f.0).collect::<Vec<_>>().join(", "), zip.display()), &mut cmd)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

struct Tool {
    program: PathBuf,
    /// `PATH` with the tool's virtual environment first (for zig), when installed there.
    path: Option<std::ffi::OsString>,
}

/// `cargo lambda` on the `PATH`, else cargo-lambda and zig from PyPI in a
/// virtual environment under `target/tools/lambda`.
fn ensure_cargo_lambda() -> Result<Tool> {
    let on_path = Command::new("cargo-lambda").args(["lambda", "--version"]).output();
    if on_path.is_ok_and(|o| o.status.success()) && Command::new("zig").arg("version").output().is_ok() {
        return Ok(Tool { program: "cargo-lambda".into(), path: None });
    }
    let bin = python_tools("lambda", &[CARGO_LAMBDA, ZIGLANG])?.join("bin");
    Ok(Tool { program: bin.join("cargo-lambda"), path: Some(path_with(&bin)) })
}

/// Checks a function zip against the binary (and the extra files) it should
/// hold; returns the sizes of the zip and of the binary.
fn check(zip: &Path, binary: &Path, arch: Arch, extra: &[(&str, PathBuf)]) -> Result<(u64, u64)> {
    let zip_bytes = std::fs::read(zip).context("reading the zip")?;
    let bin = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let mut entries = zip_entries(&zip_bytes)?;
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let mut wanted: Vec<&str> = std::iter::once("bootstrap").chain(extra.iter().map(|e| e.0)).collect();
    names.sort_unstable();
    wanted.sort_unstable();
    if names != wanted {
        bail!("expected the entries {wanted:?}, found {names:?} (Lambda runs `bootstrap`)");
    }
    for (name, path) in extra {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let e = entries.iter().find(|e| e.name == *name).context("entry vanished")?;
        if e.size != bytes.len() as u64 || e.crc32 != crc32(&bytes) {
            bail!("`{name}` is not {}", path.display());
        }
    }
    entries.retain(|e| e.name == "bootstrap");
    let entry = &entries[0];
    if entry.unix_mode & 0o111 == 0 {
        bail!("`bootstrap` is not executable (mode {:o})", entry.unix_mode);
    }
    if entry.size != bin.len() as u64 || entry.crc32 != crc32(&bin) {
        bail!("`bootstrap` is not the binary at {}", binary.display());
    }
    if bin.get(..4) != Some(b"\x7fELF".as_slice()) || bin.get(4) != Some(&2) {
        bail!("{} is not a 64-bit ELF file", binary.display());
    }
    let machine = u16::from_le_bytes([bin[18], bin[19]]);
    if machine != arch.elf_machine() {
        bail!("{} is built for ELF machine {machine}, not {}", binary.display(), arch.name());
    }
    Ok((zip_bytes.len() as u64, bin.len() as u64))
}

struct Entry {
    name: String,
    size: u64,
    crc32: u32,
    unix_mode: u32,
}

/// The central directory of a zip archive (no zip64; function zips are far below 4 GiB).
fn zip_entries(zip: &[u8]) -> Result<Vec<Entry>> {
    const EOCD: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    const CENTRAL: [u8; 4] = [0x50, 0x4b, 0x01, 0x02];
    let u16_at = |b: &[u8], i: usize| -> Result<u16> {
        b.get(i..i + 2).map(|s| u16::from_le_bytes([s[0], s[1]])).context("truncated zip")
    };
    let u32_at = |b: &[u8], i: usize| -> Result<u32> {
        b.get(i..i + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]])).context("truncated zip")
    };
    let eocd =
        (0..zip.len().saturating_sub(21)).rev().find(|&i| zip[i..].starts_with(&EOCD)).context("not a zip file")?;
    let count = usize::from(u16_at(zip, eocd + 10)?);
    let mut at = u32_at(zip, eocd + 16)? as usize;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        if !zip.get(at..).is_some_and(|s| s.starts_with(&CENTRAL)) {
            bail!("corrupt central directory");
        }
        let made_by_os = zip.get(at + 5).copied().unwrap_or(0);
        let crc32 = u32_at(zip, at + 16)?;
        let size = u64::from(u32_at(zip, at + 24)?);
        let name_len = usize::from(u16_at(zip, at + 28)?);
        let extra_len = usize::from(u16_at(zip, at + 30)?);
        let comment_len = usize::from(u16_at(zip, at + 32)?);
        let external = u32_at(zip, at + 38)?;
        let name = zip.get(at + 46..at + 46 + name_len).context("truncated zip")?;
        // Host system 3 (Unix) keeps the file mode in the external attributes' upper half.
        let unix_mode = if made_by_os == 3 { external >> 16 } else { 0 };
        entries.push(Entry { name: String::from_utf8_lossy(name).into_owned(), size, crc32, unix_mode });
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(entries)
}

/// CRC-32 (IEEE), as zip records it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
        *slot = c;
    }
    !bytes.iter().fold(!0u32, |c, &b| table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A zip with an executable `bootstrap` (made by Python's zipfile, like the packager).
    fn function_zip(dir: &Path, binary: &[u8]) -> PathBuf {
        let bin = dir.join("bootstrap");
        std::fs::write(&bin, binary).unwrap();
        let zip = dir.join("bootstrap.zip");
        let script = "import sys, zipfile\n\
                      z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)\n\
                      i = zipfile.ZipInfo('bootstrap')\n\
                      i.external_attr = (0o100755 << 16)\n\
                      i.create_system = 3\n\
                      z.writestr(i, open(sys.argv[2], 'rb').read())\n\
                      z.close()\n";
        let ok = Command::new("python3").args(["-c", script]).arg(&zip).arg(&bin).status().unwrap();
        assert!(ok.success());
        zip
    }

    #[test]
    fn extra_files_are_added_and_checked() {
        let dir = std::env::temp_dir().join(format!("knowedge-package-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = Dir(dir);
        let mut elf = vec![0u8; 64];
        elf[..5].copy_from_slice(b"\x7fELF\x02");
        elf[18..20].copy_from_slice(&183u16.to_le_bytes());
        let zip = function_zip(dir.path(), &elf);
        let bin = dir.path().join("bootstrap");
        let asset = dir.path().join("asset.js");
        std::fs::write(&asset, "var chart = 1;").unwrap();
        let extra = vec![("echarts.min.js", asset.clone())];
        // Without the file the zip is refused; with it, accepted.
        assert!(check(&zip, &bin, Arch::Arm64, &extra).is_err());
        check(&zip, &bin, Arch::Arm64, &[]).unwrap();
        add_to_zip(&zip, &extra).unwrap();
        check(&zip, &bin, Arch::Arm64, &extra).unwrap();
        assert!(check(&zip, &bin, Arch::Arm64, &[]).is_err(), "an unexpected entry is refused");
        assert!(check(&zip, &bin, Arch::X86_64, &extra).is_err());
        // Another file's bytes under the name: refused.
        std::fs::write(&asset, "var chart = 2;").unwrap();
        assert!(check(&zip, &bin, Arch::Arm64, &extra).is_err());
        assert_eq!(extra_files("knowedge-report").len(), 1);
        assert!(extra_files("knowedge-ingest").is_empty());
    }

    #[test]
    fn crc32_of_a_known_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_zip_without_an_end_record_is_refused() {
        assert!(zip_entries(b"PK\x03\x04 not really").is_err());
    }
}
