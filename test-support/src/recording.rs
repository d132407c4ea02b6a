//! An object store that records what is done to it: which actions on which
//! keys. Tests run a function's real code paths on it and compare the record
//! with the access the function declares (`knowedge_lake::deploy::ObjectAccess`),
//! which `infra/` grants.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream::BoxStream;
use knowedge_lake::deploy::{Action, Bucket, ObjectAccess};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, Result,
};

/// What was done: `(bucket, key or listed prefix + "/", action)`.
pub type Log = Arc<Mutex<BTreeSet<(Bucket, String, Action)>>>;

/// A store that forwards to `inner` and records each operation.
#[derive(Debug)]
pub struct Recording {
    inner: Arc<dyn ObjectStore>,
    bucket: Bucket,
    log: Log,
}

impl Recording {
    /// Records operations on `inner` as done to `bucket` into `log`.
    pub fn new(inner: Arc<dyn ObjectStore>, bucket: Bucket, log: Log) -> Arc<Self> {
        Arc::new(Self { inner, bucket, log })
    }

    fn note(&self, key: String, action: Action) {
        if let Ok(mut log) = self.log.lock() {
            log.insert((self.bucket, key, action));
        }
    }
}

/// The records that no declared access allows.
pub fn not_declared(log: &Log, declared: &[ObjectAccess]) -> Vec<(Bucket, String, Action)> {
    let log = log.lock().map(|l| l.clone()).unwrap_or_default();
    log.into_iter()
        .filter(|(bucket, key, action)| {
            !declared.iter().any(|a| a.bucket == *bucket && key.starts_with(a.prefix) && a.actions.contains(action))
        })
        .collect()
}

impl fmt::Display for Recording {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recording({})", self.inner)
    }
}

fn listed(prefix: Option<&Path>) -> String {
    prefix.map(|p| format!("{p}/")).unwrap_or_default()
}

#[async_trait::async_trait]
impl ObjectStore for Recording {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.note(location.to_string(), Action::Put);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.note(location.to_string(), Action::Put);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.note(location.to_string(), Action::Get);
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        let (log, bucket) = (self.log.clone(), self.bucket);
        let noted = locations
            .map(move |p| {
                if let (Ok(path), Ok(mut log)) = (&p, log.lock()) {
                    log.insert((bucket, path.to_string(), Action::Delete));
                }
                p
            })
            .boxed();
        self.inner.delete_stream(noted)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.note(listed(prefix), Action::List);
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.note(listed(prefix), Action::List);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.note(from.to_string(), Action::Get);
        self.note(to.to_string(), Action::Put);
        self.inner.copy_opts(from, to, options).await
    }
}
