//! Files shared in rooms: the storage adapter below the web layer.
//!
//! An upload's bytes stream from the request into the storage (never held
//! whole: at most one part of a multipart upload at a time), with the
//! location taken out of images on the way ([`scrub`]). Images are then
//! read back one at a time, off the async workers, for their size and a
//! thumbnail ([`picture`]). Every object is recorded as unowned before its
//! first byte is written, and stops being so in the transaction that
//! commits its message; the sweep ([`Files::start_sweep`]) deletes what no
//! file owns once it is due: a failed upload's objects (even after a
//! crash) and a deleted message's.
//!
//! - [`storage`]: the store itself (a directory, or S3).
//! - [`scrub`]: EXIF GPS removed as the bytes pass, without re-encoding.
//! - [`picture`]: an image's size and thumbnail, under decoding limits.

pub mod picture;
pub mod scrub;
pub mod storage;

use std::{sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use object_store::MultipartUpload;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::{
    domain::{FileKind, FileName},
    store::{NewFile, Store, StoreError},
    tasks::Tasks,
};
pub use storage::{Storage, StorageError};

/// How often the sweep looks for objects to delete.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Objects the sweep deletes in one go.
const SWEEP_BATCH: usize = 100;
/// Thumbnails made at once on this node: each holds an image and its
/// decoded pixels, so they take turns.
const THUMBNAILERS: usize = 1;
/// The most of a body's chunk scrubbed and copied at once.
const SLICE: usize = 64 << 10;

/// The limits on uploads, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// The largest file, in bytes (`MAX_UPLOAD`).
    pub max_bytes: u64,
    /// Uploads per user in any hour (`UPLOADS_PER_HOUR`).
    pub per_hour: u32,
    /// How long an upload may take at the slowest (its body's deadline), and
    /// then some: its objects are swept after this if no file owns them.
    pub unowned_for: Duration,
}

/// Files: the storage and what the database knows of it. Cheap to clone.
#[derive(Clone)]
pub struct Files(Arc<Shared>);

struct Shared {
    storage: Storage,
    store: Store,
    limits: UploadLimits,
    thumbnailers: Semaphore,
    tasks: Tasks,
}

/// Why an upload's bytes were not stored.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError<E> {
    #[error("the file is larger than the limit")]
    TooLarge,
    #[error("the file is empty")]
    Empty,
    /// Reading the request failed (cut off, too slow).
    #[error("the upload could not be read: {0}")]
    Body(E),
    #[error("the storage failed: {0}")]
    Storage(#[from] object_store::Error),
    #[error(transparent)]
    Database(#[from] StoreError),
}

/// Objects written for an upload and not yet owned by a file: removed (in
/// the background) when this is dropped, unless [`Unowned::keep`] was
/// called once their file was committed.
pub struct Unowned {
    objects: Vec<String>,
    files: Files,
}

impl Unowned {
    /// Their file is committed: they stay.
    pub fn keep(mut self) {
        self.objects.clear();
    }
}

impl Drop for Unowned {
    fn drop(&mut self) {
        if self.objects.is_empty() {
            return;
        }
        let (objects, files) = (std::mem::take(&mut self.objects), self.files.clone());
        self.files.0.tasks.spawn(async move { files.remove(&objects).await });
    }
}

/// An upload whose bytes are stored: what to commit with its message.
pub struct Received {
    pub file: NewFile,
    /// Its objects, removed unless kept.
    pub unowned: Unowned,
}

/// A multipart upload that is aborted if dropped unfinished (a request cut
/// off, a handler dropped mid-way), so the store keeps no stray parts.
struct Writing(Option<Box<dyn MultipartUpload>>, Tasks);

impl Writing {
    async fn part(&mut self, bytes: Bytes) -> object_store::Result<()> {
        match &mut self.0 {
            Some(upload) => upload.put_part(bytes.into()).await,
            None => Ok(()),
        }
    }

    async fn complete(mut self) -> object_store::Result<()> {
        match self.0.take() {
            Some(mut upload) => upload.complete().await.map(drop),
            None => Ok(()),
        }
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if let Some(mut upload) = self.0.take() {
            self.1.spawn(async move {
                if let Err(e) = upload.abort().await {
                    tracing::warn!(error = %e, "an unfinished upload could not be aborted");
                }
            });
        }
    }
}

impl Files {
    pub fn new(storage: Storage, store: Store, limits: UploadLimits, tasks: &Tasks) -> Files {
        tracing::info!(storage = storage.describe(), "files are kept in");
        Files(Arc::new(Shared {
            storage,
            store,
            limits,
            thumbnailers: Semaphore::new(THUMBNAILERS),
            tasks: tasks.clone(),
        }))
    }

    pub fn limits(&self) -> UploadLimits {
        self.0.limits
    }

    pub fn storage(&self) -> &Storage {
        &self.0.storage
    }

    /// Streams one file's bytes into the storage (its location taken out,
    /// if an image), then, for an image, reads it back for its size and a
    /// thumbnail. Past `max_bytes` it stops reading at once (`TooLarge`);
    /// whatever fails, nothing it wrote stays.
    pub async fn receive<E>(
        &self,
        name: FileName,
        mut body: impl Stream<Item = Result<Bytes, E>> + Unpin,
    ) -> Result<Received, ReceiveError<E>> {
        let shared = &self.0;
        let object = object_name();
        shared.store.expect_objects(&[&object], shared.limits.unowned_for).await?;
        let mut unowned = Unowned { objects: vec![object.clone()], files: self.clone() };
        let mut writing = Writing(Some(shared.storage.begin(&object).await?), shared.tasks.clone());
        let part_size = shared.storage.part_size();
        let mut part = BytesMut::with_capacity(part_size);
        // The kind is judged from the first bytes, held until there are enough.
        let mut head: Vec<u8> = Vec::new();
        let mut scrubber: Option<(FileKind, scrub::Scrubber)> = None;
        let mut hash = Sha256::new();
        let (mut read, mut size) = (0u64, 0u64);
        let mut cleaned = Vec::new();
        loop {
            let chunk = match body.next().await {
                Some(Ok(chunk)) => Some(chunk),
                Some(Err(e)) => return Err(ReceiveError::Body(e)),
                None => None,
            };
            let ended = chunk.is_none();
            if let Some(chunk) = &chunk {
                read += chunk.len() as u64;
                if read > shared.limits.max_bytes {
                    return Err(ReceiveError::TooLarge);
                }
            }
            // A chunk may be large (whatever the socket had): it is taken a
            // slice at a time, so what is held besides it stays small.
            let chunk = chunk.as_deref().unwrap_or_default();
            let slices = chunk.chunks(SLICE).map(Some).chain(ended.then_some(None));
            for slice in slices {
                match (&mut scrubber, slice) {
                    (Some((_, scrubber)), Some(slice)) => scrubber.feed(slice, &mut cleaned),
                    (None, Some(slice)) => head.extend_from_slice(slice),
                    (_, None) => {}
                }
                if scrubber.is_none() && (head.len() >= FileKind::SNIFF_BYTES || slice.is_none()) {
                    let kind = FileKind::sniff(&head);
                    let mut fresh = scrub::Scrubber::new(kind);
                    fresh.feed(&std::mem::take(&mut head), &mut cleaned);
                    scrubber = Some((kind, fresh));
                }
                if let (None, Some((_, scrubber))) = (slice, &mut scrubber) {
                    scrubber.finish(&mut cleaned);
                }
                hash.update(&cleaned);
                size += cleaned.len() as u64;
                // Parts are filled to exactly `part_size`, so the one buffer
                // is reused rather than grown. One part in memory at a time:
                // it is sent before more is read.
                let mut rest = &cleaned[..];
                while !rest.is_empty() {
                    let take = rest.len().min(part_size - part.len());
                    part.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if part.len() == part_size {
                        writing.part(part.split().freeze()).await?;
                    }
                }
                cleaned.clear();
            }
            if ended {
                if !part.is_empty() {
                    writing.part(part.split().freeze()).await?;
                }
                break;
            }
        }
        if size == 0 {
            return Err(ReceiveError::Empty);
        }
        writing.complete().await?;
        let kind = scrubber.map_or(FileKind::Other, |(kind, _)| kind);
        let mut file = NewFile {
            name,
            kind,
            size: size as i64,
            width: None,
            height: None,
            object: object.clone(),
            etag: hex(&hash.finalize()),
            thumbnail: None,
        };
        if kind.is_image() {
            self.picture(&mut file, &mut unowned).await?;
        }
        Ok(Received { file, unowned })
    }

    /// An image's size, and its thumbnail stored beside it: one image at a
    /// time per node, read back whole (at most `MAX_UPLOAD`) and decoded on
    /// a blocking thread.
    async fn picture<E>(&self, file: &mut NewFile, unowned: &mut Unowned) -> Result<(), ReceiveError<E>> {
        let shared = &self.0;
        let examined = {
            let _turn =
                shared.thumbnailers.acquire().await.map_err(|_| StoreError::timed_out("a thumbnail"))?;
            let bytes = shared.storage.read(&file.object).await?;
            let kind = file.kind;
            tokio::task::spawn_blocking(move || picture::examine(&bytes, kind)).await.unwrap_or_default()
        };
        (file.width, file.height) = (examined.width, examined.height);
        if let Some(thumbnail) = examined.thumbnail {
            let extension = if thumbnail.kind == FileKind::Png { "png" } else { "jpg" };
            let object = format!("{}.thumbnail.{extension}", file.object);
            shared.store.expect_objects(&[&object], shared.limits.unowned_for).await?;
            unowned.objects.push(object.clone());
            let etag = hex(&Sha256::digest(&thumbnail.bytes));
            shared.storage.put(&object, thumbnail.bytes).await?;
            file.thumbnail = Some((object, etag));
        }
        Ok(())
    }

    /// Removes objects from the storage, and then from the unowned list.
    async fn remove(&self, objects: &[String]) {
        for object in objects {
            match self.0.storage.remove(object).await {
                Ok(()) => {
                    if let Err(e) = self.0.store.forget_objects(&[object]).await {
                        tracing::warn!(error = %e, "a removed object stays listed until the next sweep");
                    }
                }
                Err(e) => tracing::warn!(error = %e, object, "an unowned object could not be removed yet"),
            }
        }
    }

    /// Deletes, every few seconds until the tasks stop, the objects no file
    /// owns once they are due; and forgets uploads older than an hour. Every
    /// node sweeps: deleting twice is harmless.
    pub fn start_sweep(&self, tasks: &Tasks) {
        let (files, stop) = (self.clone(), tasks.stop_token());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => return,
                }
                files.sweep().await;
            }
        });
    }

    /// One sweep (see [`Files::start_sweep`]).
    pub async fn sweep(&self) {
        match self.0.store.due_objects(SWEEP_BATCH).await {
            Ok(due) if !due.is_empty() => {
                tracing::debug!(objects = due.len(), "sweeping unowned objects");
                self.remove(&due).await;
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "could not look for unowned objects"),
        }
        if let Err(e) = self.0.store.prune_uploads().await {
            tracing::debug!(error = %e, "could not forget old uploads");
        }
    }
}

/// A new object's name: random, so no two uploads on any node collide and
/// none can be guessed; in one of 256 folders.
fn object_name() -> String {
    let token = crate::token::hex(16);
    format!("files/{}/{token}", &token[..2])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
