//! Crash safety of ingestion: the `knowedge ingest serve` process is killed
//! with SIGKILL again and again while a client sends batches and re-sends
//! whatever was not acknowledged. Afterwards every acknowledged event is in
//! the lake exactly once, as plain Parquet readers see it after compaction
//! and as the training reader sees it at any time.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use knowedge::demo::{self, DemoConfig, ReviewTexts};
use knowedge::keys::Keys;
use knowedge_lake::Lake;
use serde_json::Value;

fn spawn_ingest(lake: &Path, keys: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_knowedge"))
        .args(["ingest", "serve", "--lake", lake.to_str().unwrap(), "--keys", keys.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "ingestion did not come back");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate().unwrap();
    keys.save(&dir.path().join("keys")).unwrap();
    let lake_dir = dir.path().join("lake");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = demo::generate(&DemoConfig { seed: 3, learners: 80, ..DemoConfig::default() }, &ReviewTexts::default());
    let events: Vec<Value> = data.events;
    let batches: Vec<Vec<Value>> = events.chunks(50).map(<[Value]>::to_vec).collect();

    let mut server = spawn_ingest(&lake_dir, &dir.path().join("keys"), port);
    wait_listening(port);
    let done = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));

    // The killer: SIGKILL at irregular moments, then restart on the same port.
    let killer = {
        let (done, kills) = (done.clone(), kills.clone());
        let (lake_dir, keys_dir) = (lake_dir.clone(), dir.path().join("keys"));
        std::thread::spawn(move || {
            let mut delay = 37u64;
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(delay));
                delay = (delay * 7 + 13) % 90 + 10;
                server.kill().unwrap(); // SIGKILL
                server.wait().unwrap();
                kills.fetch_add(1, Ordering::SeqCst);
                server = spawn_ingest(&lake_dir, &keys_dir, port);
                wait_listening(port);
            }
            server.kill().unwrap();
            server.wait().unwrap();
        })
    };

    // The client: every batch until acknowledged.
    let url = format!("http://127.0.0.1:{port}/v1/events");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut acked: HashSet<String> = HashSet::new();
    let mut attempts = 0;
    for batch in &batches {
        loop {
            attempts += 1;
            let body = serde_json::to_vec(&serde_json::json!({ "events": batch })).unwrap();
            let sent = client
                .post(&url)
                .header("authorization", format!("Bearer {}", keys.ingest_key))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            if let Ok(resp) = sent {
                if resp.status() == 200 {
                    let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
                    assert_eq!(v["accepted"].as_u64().unwrap() as usize, batch.len());
                    acked.extend(batch.iter().map(|e| e["event_id"].as_str().unwrap().to_owned()));
                    break;
                }
                assert!(resp.status().is_server_error(), "unexpected {}", resp.status());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    done.store(true, Ordering::SeqCst);
    killer.join().unwrap();
    let kills = kills.load(Ordering::SeqCst);
    eprintln!("{} batches, {attempts} attempts, {kills} SIGKILLs", batches.len());
    assert!(kills >= 3, "the server was killed only {kills} times");
    assert_eq!(acked.len(), events.len());

    let lake = Lake::open(lake_dir.to_str().unwrap()).unwrap();
    // The training reader counts each event once even before compaction.
    let read: Vec<String> = lake.read_events().await.unwrap().into_iter().map(|e| e.event.event_id).collect();
    assert_eq!(read.len(), acked.len());
    assert_eq!(read.iter().cloned().collect::<HashSet<_>>(), acked);

    let stored_rows = lake.scan_events().await.unwrap().len();
    eprintln!("{stored_rows} rows stored for {} events before compaction", acked.len());
    assert!(stored_rows >= acked.len());

    // After compaction the files themselves hold each event once.
    let out = Command::new(env!("CARGO_BIN_EXE_knowedge"))
        .args(["lake", "compact", "--lake", lake_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<String> = lake.scan_events().await.unwrap().into_iter().map(|e| e.event.event_id).collect();
    assert_eq!(rows.len(), acked.len(), "duplicates or losses after compaction");
    assert_eq!(rows.into_iter().collect::<HashSet<_>>(), acked);
}
