//! Where files' bytes are kept, through `object_store`: a local directory
//! (`STORAGE_URL=file://DIR`, by default `uploads/` beside the SQLite file)
//! or any S3-compatible store (`s3://BUCKET[/PREFIX]` with the `S3_*`
//! settings). A cluster needs a store every node reaches, so on PostgreSQL
//! there is no default: the server refuses to start without one.

use std::{ops::Range, path::PathBuf, sync::Arc};

use bytes::Bytes;
use object_store::{
    GetOptions, GetRange, GetResult, MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload,
    aws::AmazonS3Builder, local::LocalFileSystem, path::Path, prefix::PrefixStore,
};

use crate::{
    config::{DatabaseUrl, FileSettings},
    store::Engine,
};

/// Parts of a multipart upload: S3 takes none smaller but the last (5 MiB);
/// a local file takes its parts as they come, so they are kept small.
const S3_PART: usize = 5 << 20;
const LOCAL_PART: usize = 256 << 10;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "STORAGE_URL is not set: on PostgreSQL, files must be kept where every node reaches them. \
         Set STORAGE_URL to s3://BUCKET (with S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY_ID and \
         S3_SECRET_ACCESS_KEY) or to file://DIR on a directory every node shares"
    )]
    Missing,
    #[error("STORAGE_URL {0} is neither file://DIR nor s3://BUCKET")]
    BadUrl(String),
    #[error("could not use {dir} for files: {source}")]
    Local { dir: PathBuf, source: std::io::Error },
    #[error("could not set up the S3 store: {0}")]
    S3(#[source] object_store::Error),
}

/// The store files are kept in. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// How many bytes an upload holds before it sends them as a part.
    part_size: usize,
    /// The directory, for a local store: its unfinished uploads' leftovers
    /// are removed with their object.
    local: Option<PathBuf>,
    /// What it is, for the log (no secrets).
    describe: String,
}

impl Storage {
    /// The store `settings` name (see the module's comment).
    pub fn open(settings: &FileSettings, database: &DatabaseUrl) -> Result<Storage, StorageError> {
        let url = match (&settings.storage_url, Engine::of(database)) {
            (Some(url), _) => url.clone(),
            (None, Some(Engine::Postgres)) => return Err(StorageError::Missing),
            (None, _) => format!("file://{}", beside_sqlite(database).display()),
        };
        if let Some(dir) = url.strip_prefix("file://") {
            return Self::local(PathBuf::from(dir));
        }
        let Some(rest) = url.strip_prefix("s3://") else { return Err(StorageError::BadUrl(url)) };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StorageError::BadUrl(url));
        }
        let mut builder = AmazonS3Builder::new().with_bucket_name(bucket).with_region(&settings.s3_region);
        if let Some(endpoint) = &settings.s3_endpoint {
            // A store of one's own (MinIO, Garage, …) is addressed by path.
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let Some(key) = &settings.s3_access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.s3_secret_access_key {
            builder = builder.with_secret_access_key(secret.expose());
        }
        let s3 = builder.build().map_err(StorageError::S3)?;
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> =
            if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix)) };
        Ok(Storage { store, part_size: S3_PART, local: None, describe: format!("s3://{rest}") })
    }

    fn local(dir: PathBuf) -> Result<Storage, StorageError> {
        let failed = |source| StorageError::Local { dir: dir.clone(), source };
        std::fs::create_dir_all(&dir).map_err(failed)?;
        let store = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| failed(std::io::Error::other(e.to_string())))?
            .with_automatic_cleanup(true);
        let describe = format!("file://{}", dir.display());
        let dir = std::fs::canonicalize(&dir).map_err(failed)?;
        Ok(Storage { store: Arc::new(store), part_size: LOCAL_PART, local: Some(dir), describe })
    }

    pub fn describe(&self) -> &str {
        &self.describe
    }

    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// Starts writing `object` in parts.
    pub async fn begin(&self, object: &str) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.store.put_multipart(&Path::from(object)).await
    }

    /// Writes a small object at once.
    pub async fn put(&self, object: &str, bytes: Vec<u8>) -> object_store::Result<()> {
        self.store.put(&Path::from(object), PutPayload::from(bytes)).await.map(drop)
    }

    /// The object's bytes in `range` (all of them without one), as a stream.
    pub async fn get(&self, object: &str, range: Option<Range<u64>>) -> object_store::Result<GetResult> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
        self.store.get_opts(&Path::from(object), options).await
    }

    /// The object's size in bytes.
    pub async fn size(&self, object: &str) -> object_store::Result<u64> {
        Ok(self.store.head(&Path::from(object)).await?.size)
    }

    /// The whole object (a file to make a thumbnail of, at most `MAX_UPLOAD`).
    pub async fn read(&self, object: &str) -> object_store::Result<Bytes> {
        self.store.get(&Path::from(object)).await?.bytes().await
    }

    /// Removes the object; one that is not there is removed already. On a
    /// local store, an unfinished upload's leftovers go too (the parts a
    /// process killed mid-upload had written beside it).
    pub async fn remove(&self, object: &str) -> object_store::Result<()> {
        match self.store.delete(&Path::from(object)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        if let Some(dir) = &self.local {
            let path = dir.join(object);
            let (Some(folder), Some(name)) = (path.parent(), path.file_name()) else { return Ok(()) };
            let staged = format!("{}#", name.to_string_lossy());
            if let Ok(entries) = std::fs::read_dir(folder) {
                for entry in entries.flatten() {
                    if entry.file_name().to_string_lossy().starts_with(&staged) {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
            }
        }
        Ok(())
    }
}

/// `uploads/` in the SQLite file's folder (`sqlite://lobby.db`: ./uploads).
fn beside_sqlite(database: &DatabaseUrl) -> PathBuf {
    let url = database.expose();
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    let folder = std::path::Path::new(path).parent().map(PathBuf::from).unwrap_or_default();
    folder.join("uploads")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_files_are_beside_the_sqlite_file() {
        let url = |u: &str| DatabaseUrl::new(u);
        assert_eq!(beside_sqlite(&url("sqlite://lobby.db")), PathBuf::from("uploads"));
        assert_eq!(
            beside_sqlite(&url("sqlite:///var/lib/lobby/lobby.db?mode=rwc")),
            PathBuf::from("/var/lib/lobby/uploads")
        );
        assert_eq!(beside_sqlite(&url("sqlite:data/chat.db")), PathBuf::from("data/uploads"));
    }

    #[test]
    fn postgres_without_a_store_is_refused_with_the_reason() {
        let settings = crate::Config::defaults().files;
        let err = Storage::open(&settings, &DatabaseUrl::new("postgres://lobby@db/lobby")).unwrap_err();
        assert!(matches!(err, StorageError::Missing));
        assert!(err.to_string().contains("STORAGE_URL is not set"));
        let bad = FileSettings { storage_url: Some("ftp://x".into()), ..settings };
        assert!(matches!(
            Storage::open(&bad, &DatabaseUrl::new("sqlite://x.db")),
            Err(StorageError::BadUrl(_))
        ));
    }
}
