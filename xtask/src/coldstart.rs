//! `cargo xtask cold-start`: how long each Lambda function takes from process
//! start until it asks the runtime API for its first event.
//!
//! The functions are built natively in release mode (the x86_64 Lambda
//! package is the same code for the same target; the arm64 one cannot run on
//! this machine). A small Lambda runtime API stand-in listens on loopback; each
//! run starts the binary with `AWS_LAMBDA_RUNTIME_API` pointing at it and
//! stops the clock when `GET /2018-06-01/runtime/invocation/next` arrives.
//! Secrets come, as in production, from a stand-in of the AWS Parameters and
//! Secrets extension (`<NAME>_SECRET` settings), so the figure includes those
//! round trips.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::package::functions;
use crate::{cargo, run, target_dir};

/// Runs per function (the first one warms the page cache and is not counted).
const RUNS: usize = 21;

pub(crate) fn cold_start(args: &[String]) -> Result<()> {
    let runs = match args {
        [flag, n] if flag == "--runs" => n.parse().context("--runs takes a number")?,
        [] => RUNS,
        _ => bail!("usage: cargo xtask cold-start [--runs N]"),
    };
    let functions = functions()?;
    let mut build = cargo();
    build.args(["build", "--release"]);
    for f in &functions {
        build.args(["-p", &f.package, "--bin", &f.binary]);
    }
    run("build the Lambda functions (native, release)", &mut build)?;

    let scratch = std::env::temp_dir().join(format!("knowedge-cold-start-{}", std::process::id()));
    std::fs::create_dir_all(scratch.join("lake"))?;
    std::fs::create_dir_all(scratch.join("models"))?;
    // The report function reads ECharts at start-up (its zip carries the real one).
    std::fs::write(scratch.join("echarts.min.js"), "/* stand-in */")?;
    let extension = Extension::start()?;
    println!("{:<20} {:>10} {:>10} {:>10}  (ms, {} runs)", "function", "median", "p90", "max", runs - 1);
    for f in &functions {
        let binary = target_dir().join("release").join(&f.binary);
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            times.push(one_start(&binary, &scratch, extension.port)?);
        }
        times.remove(0);
        times.sort_unstable();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
        println!("{:<20} {:>10.1} {:>10.1} {:>10.1}", f.binary, at(0.5), at(0.9), at(1.0));
    }
    // The floor in the same run: starting and reaping a process that does nothing.
    let mut floor = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        Command::new("true").status().context("running `true`")?;
        floor.push(t.elapsed());
    }
    floor.sort_unstable();
    println!(
        "{:<20} {:>10.1}  (a process that does nothing, the same way: the floor)",
        "baseline: true",
        floor[runs / 2].as_secs_f64() * 1000.0
    );
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// One cold start: spawn, wait for the first `invocation/next`, kill.
fn one_start(binary: &std::path::Path, scratch: &std::path::Path, extension_port: u16) -> Result<Duration> {
    let api = TcpListener::bind("127.0.0.1:0")?;
    let port = api.local_addr()?.port();
    let lake = scratch.join("lake");
    let models = scratch.join("models");
    let started = Instant::now();
    let child = Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "cold-start")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_SESSION_TOKEN", "cold-start-session")
        .env("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", extension_port.to_string())
        .env("KNOWEDGE_LAKE", &lake)
        .env("KNOWEDGE_MODELS", &models)
        .env("KNOWEDGE_ECHARTS", scratch.join("echarts.min.js"))
        .env("KNOWEDGE_REPORT_WORK_DIR", scratch.join("report-work"))
        .env("KNOWEDGE_API_KEYS_SECRET", "api-keys")
        .env("KNOWEDGE_PSEUDONYM_KEY_SECRET", "pseudonym-key")
        .env("KNOWEDGE_SIGNING_KEY_SECRET", "signing-key")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut child = Killed(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((stream, _)) = api.accept() {
            let line = BufReader::new(&stream).lines().next().and_then(|l| l.ok()).unwrap_or_default();
            let _ = tx.send((Instant::now(), line));
        }
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok((at, line)) if line.contains("/runtime/invocation/next") => Ok(at - started),
        Ok((_, line)) => bail!("{} asked the runtime API `{line}` first", binary.display()),
        Err(_) => {
            let _ = child.0.kill();
            let mut err = String::new();
            if let Some(mut e) = child.0.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            bail!("{} did not poll for an event within 10 s: {err}", binary.display())
        }
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Parameters and Secrets extension's HTTP interface, serving fixed
/// development secrets.
struct Extension {
    port: u16,
}

impl Extension {
    fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve_secret(stream);
            }
        });
        Ok(Self { port })
    }
}

fn serve_secret(mut stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let id = request_line.split("secretId=").nth(1).and_then(|s| s.split([' ', '&']).next()).unwrap_or("");
    let value = match id {
        "api-keys" => "app:events.write:cold-start-secret-0001",
        "pseudonym-key" => "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "signing-key" => "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100",
        _ => "",
    };
    let body = format!(r#"{{"Name":"{id}","SecretString":"{value}"}}"#);
    write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}
