//! Spin's key-value interface (`fermyon:spin/key-value@2.0.0`) for the guest,
//! backed by the host's live model directory.
//!
//! The component keeps its models in the store labelled `models`; here that
//! store is the live directory (`<state>/live`), one file per key, which the
//! watchers write too. So the guest reads what the host's slots accepted,
//! and what the guest publishes through its publish route (after the checks
//! of [`knowedge_edge::publish`]) is served by every instance, and followed
//! by the watchers' rollback floor. Other labels are refused with
//! `no-such-store`. Writes go to a temporary file that is synced and renamed,
//! under the lock the watchers install with, so a reader sees a whole value
//! or the previous one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use wasmtime::component::Resource;

use crate::guest::GuestState;

/// The label of the store the component keeps its models in.
pub const MODELS_STORE: &str = "models";
/// Longest key accepted (Spin documents keys of up to 256 bytes).
const MAX_KEY_BYTES: usize = 255;

/// The `fermyon:spin/key-value` import (see `edge/host/wit/spin-key-value.wit`).
pub(crate) mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "wit/spin-key-value.wit",
        world: "key-value-host",
        with: { "fermyon:spin/key-value.store": super::OpenStore },
    });
}

use bindings::fermyon::spin::key_value::{self as kv, Error};

/// A store the guest opened (there is one: `models`).
#[derive(Debug)]
pub struct OpenStore;

/// The directory behind the `models` store, shared by every guest and the watchers.
#[derive(Clone, Debug)]
pub(crate) struct ModelsKv {
    dir: PathBuf,
    /// Held while a value is written (and while a watcher installs a model).
    lock: Arc<Mutex<()>>,
}

/// Numbers temporary files, so concurrent writers of one key do not share one.
static STAGING: AtomicU64 = AtomicU64::new(0);

impl ModelsKv {
    /// The store kept in `dir`, written under `lock`.
    pub(crate) fn new(dir: &Path, lock: Arc<Mutex<()>>) -> Self {
        Self { dir: dir.to_owned(), lock }
    }

    /// The file of `key`, if the key can name one.
    fn path(&self, key: &str) -> Result<PathBuf, Error> {
        let valid = !key.is_empty()
            && key.len() <= MAX_KEY_BYTES
            && !key.starts_with('.')
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if valid {
            Ok(self.dir.join(key))
        } else {
            Err(Error::Other(format!("`{key:.64}` is not a key this store holds (letters, digits, `-`, `_`, `.`)")))
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        match fs::read(self.path(key)?) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&e)),
        }
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        let path = self.path(key)?;
        let _writing = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        write_atomically(&self.dir, &path, value).map_err(|e| io_error(&e))
    }

    fn delete(&self, key: &str) -> Result<(), Error> {
        let path = self.path(key)?;
        let _writing = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&e)),
        }
    }

    fn keys(&self) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| io_error(&e))? {
            let entry = entry.map_err(|e| io_error(&e))?;
            if let Some(name) = entry.file_name().to_str()
                && self.path(name).is_ok()
                && entry.file_type().is_ok_and(|t| t.is_file())
            {
                keys.push(name.to_owned());
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// Writes `path` in `dir` through a temporary file that is synced and renamed.
pub(crate) fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("value");
    let staging = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), STAGING.fetch_add(1, Ordering::Relaxed)));
    let written = (|| {
        let mut file = File::create(&staging)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&staging, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&staging);
    }
    written?;
    // Make the rename itself durable where directories can be synced.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// An I/O failure, by kind only: the guest need not learn host paths.
fn io_error(e: &std::io::Error) -> Error {
    Error::Other(e.kind().to_string())
}

impl kv::Host for GuestState {}

impl kv::HostStore for GuestState {
    fn open(&mut self, label: String) -> Result<Resource<OpenStore>, Error> {
        if label != MODELS_STORE || self.kv.is_none() {
            return Err(Error::NoSuchStore);
        }
        self.table.push(OpenStore).map_err(|_| Error::StoreTableFull)
    }

    fn get(&mut self, _store: Resource<OpenStore>, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.models_kv()?.get(&key)
    }

    fn set(&mut self, _store: Resource<OpenStore>, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.models_kv()?.set(&key, &value)
    }

    fn delete(&mut self, _store: Resource<OpenStore>, key: String) -> Result<(), Error> {
        self.models_kv()?.delete(&key)
    }

    fn exists(&mut self, _store: Resource<OpenStore>, key: String) -> Result<bool, Error> {
        let path = self.models_kv()?.path(&key)?;
        Ok(path.is_file())
    }

    fn get_keys(&mut self, _store: Resource<OpenStore>) -> Result<Vec<String>, Error> {
        self.models_kv()?.keys()
    }

    fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl GuestState {
    fn models_kv(&self) -> Result<&ModelsKv, Error> {
        self.kv.as_deref().ok_or(Error::NoSuchStore)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn keys_are_file_names_and_writes_replace_whole_files() {
        let dir = tempfile::TempDir::new().unwrap();
        let kv = ModelsKv::new(dir.path(), Arc::default());
        assert_eq!(kv.get("current").unwrap(), None);
        kv.set("v1.kwm", b"artifact").unwrap();
        kv.set("current", b"v1").unwrap();
        kv.set("current", b"v2").unwrap();
        assert_eq!(kv.get("current").unwrap().as_deref(), Some(&b"v2"[..]));
        assert_eq!(kv.keys().unwrap(), ["current", "v1.kwm"]);
        for bad in ["", ".hidden", "../x", "a/b", "a b", &"k".repeat(300)] {
            assert!(matches!(kv.get(bad), Err(Error::Other(_))), "{bad}");
            assert!(matches!(kv.set(bad, b""), Err(Error::Other(_))), "{bad}");
        }
        kv.delete("v1.kwm").unwrap();
        kv.delete("v1.kwm").unwrap();
        assert_eq!(kv.keys().unwrap(), ["current"]);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
