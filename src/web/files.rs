//! Files in rooms over HTTP. `POST /api/rooms/ID/files` takes one file
//! (and an optional `message`) as a multipart form and makes a chat
//! message of it; `GET /files/ID/NAME` and `GET /files/ID/thumbnail/NAME`
//! serve a file and its thumbnail to the members of its room, and to nobody
//! else (404, as for an id never used).
//!
//! Serving is safe by construction: only PNG, JPEG, GIF and WebP (judged by
//! their bytes when they were stored) are served as what they are, inline;
//! everything else is `application/octet-stream` and a download. Every
//! answer under `/files/` (304 and 404 too) says `nosniff` and carries a
//! sandboxing CSP, so even a file a browser opened by itself can run nothing.

use axum::{
    Json, Router,
    body::Body,
    extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State, multipart::MultipartError},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tower_http::set_header::SetResponseHeaderLayer;

use super::{AppState, error::AppError, json::ApiError};
use crate::{
    accounts::AuthSession,
    domain::{ChatText, FileKind, FileName},
    files::ReceiveError,
    realtime::wire::MessageJson,
    store::{StoredFile, UploadOutcome},
};

/// What a multipart body may carry besides the file: its boundaries and
/// part headers, and the message (1000 characters, at most 4 bytes each).
const FORM_SLACK: u64 = 64 * 1024;
/// The most a `message` field may be, in bytes, before it is refused.
const MESSAGE_BYTES: usize = 8 * 1024;
/// The headers every answer under `/files/` carries.
const SANDBOX: &str = "sandbox; default-src 'none'";

/// The routes: the upload with a body limit of its own (the rest of the app
/// keeps its small one), and the files with their headers.
pub fn routes(state: &AppState) -> Router<AppState> {
    let limit = state.files.limits().max_bytes.saturating_add(FORM_SLACK);
    let upload = Router::new()
        .route("/api/rooms/{id}/files", post(upload))
        .layer(DefaultBodyLimit::max(usize::try_from(limit).unwrap_or(usize::MAX)));
    // Nested, so anything else under /files/ meets the fallback, with the
    // same headers (a catch-all beside the parameters is not a valid route).
    let serving = Router::new()
        .route("/{id}/{name}", get(file))
        .route("/{id}/thumbnail/{name}", get(thumbnail))
        .fallback(missing_file)
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SANDBOX),
        ));
    upload.nest("/files", serving)
}

/// A body that hands over one piece of at most `PIECE` bytes per poll, then
/// yields. The multipart parser reads whatever is ready in one go into a
/// buffer of its own: without this, while an upload waits on the storage,
/// it would gather all the socket had meanwhile, in a buffer that grows.
struct OnePiece {
    body: Body,
    /// What is left of the last frame, handed over next.
    rest: Bytes,
    /// A piece was just handed over: the next poll yields first.
    handed: bool,
}

/// The most a [`OnePiece`] hands over at once.
const PIECE: usize = 64 * 1024;

impl HttpBody for OnePiece {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if std::mem::take(&mut self.handed) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if self.rest.is_empty() {
            match std::task::ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.rest = data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                other => return Poll::Ready(other),
            }
        }
        let at = self.rest.len().min(PIECE);
        let piece = self.rest.split_to(at);
        self.handed = true;
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.body.size_hint();
        let rest = self.rest.len() as u64;
        hint.set_lower(hint.lower() + rest);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + rest);
        }
        hint
    }
}

fn refused(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::new(status, message)
}

fn too_large(max: u64) -> Response {
    let mut response =
        refused(StatusCode::PAYLOAD_TOO_LARGE, format!("A file may be at most {}.", human_size(max)))
            .into_response();
    // Not a byte more is read: the connection closes after this answer.
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn too_many(wait_ms: i64, what: &str) -> ApiError {
    let secs = (wait_ms.max(0) as u64).div_ceil(1000).max(1);
    ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        message: format!("{what} Try again in {secs} seconds."),
        retry_after: Some(secs),
    }
}

/// `POST /api/rooms/ID/files`
pub async fn upload(
    State(state): State<AppState>,
    auth: AuthSession,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    match receive(&state, auth, &id, request).await {
        Ok(response) | Err(response) => response,
    }
}

async fn receive(
    state: &AppState,
    auth: AuthSession,
    id: &str,
    request: Request,
) -> Result<Response, Response> {
    let fail = |e: ApiError| e.into_response();
    let Some(user) = auth.user else { return Err(fail(ApiError::unauthorized())) };
    let no_room = || fail(refused(StatusCode::NOT_FOUND, "There is no such room."));
    let room = id.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(no_room)?;
    if !state.store.is_member(user.id, room).await.map_err(|e| fail(e.into()))? {
        return Err(no_room());
    }
    let limits = state.files.limits();
    // A body declared too large is refused before any of it is read.
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_bytes.saturating_add(FORM_SLACK)) {
        return Err(too_large(limits.max_bytes));
    }
    if let Some(wait) = state.store.upload_wait(user.id, limits.per_hour).await.map_err(|e| fail(e.into()))? {
        return Err(fail(too_many(
            wait.as_millis() as i64,
            "You have shared as many files as anyone may in an hour.",
        )));
    }
    let request = request.map(|body| Body::new(OnePiece { body, rest: Bytes::new(), handed: false }));
    let mut form = Multipart::from_request(request, state).await.map_err(|_| {
        fail(refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send the file as a multipart form (multipart/form-data).",
        ))
    })?;
    let unreadable = |e: MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(limits.max_bytes)
        } else {
            tracing::info!(error = %e, "an upload's form could not be read");
            fail(refused(
                StatusCode::BAD_REQUEST,
                "The form could not be read: send a file field and, if you like, a message field.",
            ))
        }
    };
    let invalid = |message: &str| fail(refused(StatusCode::UNPROCESSABLE_ENTITY, message));
    let mut caption = None;
    let mut received = None;
    while let Some(mut field) = form.next_field().await.map_err(unreadable)? {
        match field.name() {
            Some("message") => {
                let mut text = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
                    text.extend_from_slice(&chunk);
                    if text.len() > MESSAGE_BYTES {
                        return Err(invalid("A message is 1 to 1000 characters."));
                    }
                }
                let text = String::from_utf8(text).map_err(|_| invalid("A message is text (UTF-8)."))?;
                if !text.trim().is_empty() {
                    caption = Some(ChatText::parse(&text).map_err(|e| invalid(&e.to_string()))?);
                }
            }
            Some("file") if received.is_none() => {
                let name = FileName::clean(field.file_name().unwrap_or_default());
                let stored = state.files.receive(name, Box::pin(field)).await.map_err(|e| match e {
                    ReceiveError::TooLarge => too_large(limits.max_bytes),
                    ReceiveError::Empty => invalid("The file is empty."),
                    ReceiveError::Body(e) => unreadable(e),
                    ReceiveError::Storage(e) => {
                        tracing::warn!(error = %e, "an upload could not be stored");
                        fail(refused(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "Files cannot be stored right now. Try again in a moment.",
                        ))
                    }
                    ReceiveError::Database(e) => fail(e.into()),
                })?;
                received = Some(stored);
            }
            Some("file") => return Err(invalid("Send one file at a time.")),
            _ => return Err(invalid("The form takes a file field and, if you like, a message field.")),
        }
    }
    let Some(received) = received else { return Err(invalid("Attach a file (the form field file).")) };
    let outcome = state
        .realtime
        .post_file(user.id, room, caption.as_ref(), &received.file, limits.per_hour)
        .await
        .map_err(|e| fail(e.into()))?;
    let id = match outcome {
        UploadOutcome::Appended(id) => id,
        UploadOutcome::NotAMember => return Err(no_room()),
        UploadOutcome::RateLimited { retry_after_ms } => {
            return Err(fail(too_many(retry_after_ms, "You are sending messages too fast.")));
        }
        UploadOutcome::TooManyUploads { retry_after_ms } => {
            return Err(fail(too_many(
                retry_after_ms,
                "You have shared as many files as anyone may in an hour.",
            )));
        }
        UploadOutcome::Lost => return Err(fail(ApiError::unavailable())),
    };
    received.unowned.keep();
    tracing::info!(room, user.id = user.id, message = id, bytes = received.file.size, "a file was shared");
    match state.store.message(id).await {
        Ok(Some(message)) => Ok((StatusCode::CREATED, Json(MessageJson(&message))).into_response()),
        Ok(None) => Err(no_room()),
        Err(e) => Err(fail(e.into())),
    }
}

/// "10 MiB", "500 kB", "700 bytes": a size as people read it.
fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// Which of a file's objects is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    File,
    Thumbnail,
}

/// `GET /files/ID/NAME`
pub async fn file(
    State(state): State<AppState>,
    auth: AuthSession,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    serve(&state, auth, &id, &name, &headers, Variant::File).await.unwrap_or_else(|e| e)
}

/// `GET /files/ID/thumbnail/NAME`
pub async fn thumbnail(
    State(state): State<AppState>,
    auth: AuthSession,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    serve(&state, auth, &id, &name, &headers, Variant::Thumbnail).await.unwrap_or_else(|e| e)
}

/// Anything else under `/files/`.
pub async fn missing_file() -> Response {
    AppError::Missing("There is no such file.").into_response()
}

async fn serve(
    state: &AppState,
    auth: AuthSession,
    id: &str,
    name: &str,
    headers: &HeaderMap,
    variant: Variant,
) -> Result<Response, Response> {
    let missing = missing_file_now;
    let unavailable = |e: crate::store::StoreError| AppError::from(e).into_response();
    let user = auth.user.ok_or_else(missing)?;
    let id = id.parse::<i64>().map_err(|_| missing())?;
    let file: StoredFile = state.store.file(id).await.map_err(unavailable)?.ok_or_else(missing)?;
    // One question for every read path: is this user in the file's room now?
    if file.name != name || !state.store.is_member(user.id, file.room_id).await.map_err(unavailable)? {
        return Err(missing());
    }
    let (object, etag, kind) = match variant {
        Variant::File => (file.object, file.etag, FileKind::stored(&file.kind)),
        Variant::Thumbnail => match (file.thumbnail, file.thumbnail_etag) {
            (Some(object), Some(etag)) => {
                let kind = if object.ends_with(".png") { FileKind::Png } else { FileKind::Jpeg };
                (object, etag, kind)
            }
            _ => return Err(missing()),
        },
    };
    let etag = format!("\"{etag}\"");
    let mut answer = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, "private, no-cache")
        .header(header::ACCEPT_RANGES, "bytes");
    if matches_etag(headers.get(header::IF_NONE_MATCH), &etag) {
        return Ok(answer.status(StatusCode::NOT_MODIFIED).body(Body::empty()).unwrap_or_default());
    }
    let size = match variant {
        Variant::File => file.size as u64,
        Variant::Thumbnail => state.files.storage().size(&object).await.map_err(|_| missing())?,
    };
    let honour_range = headers.get(header::IF_RANGE).is_none_or(|v| v.as_bytes() == etag.as_bytes());
    let range =
        match headers.get(header::RANGE).filter(|_| honour_range).map(|v| parse_range(v.as_bytes(), size)) {
            Some(Some(Ok(range))) => Some(range),
            Some(Some(Err(()))) => {
                return Ok(answer
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .body(Body::empty())
                    .unwrap_or_default());
            }
            // Several ranges, or one we cannot read: the whole file.
            Some(None) | None => None,
        };
    let got = state.files.storage().get(&object, range.clone()).await.map_err(|e| {
        tracing::warn!(error = %e, object, "a file's bytes could not be read");
        missing()
    })?;
    answer = answer.header(header::CONTENT_TYPE, kind.mime());
    let disposition = if kind.is_image() { "inline" } else { "attachment" };
    answer = answer.header(header::CONTENT_DISPOSITION, content_disposition(disposition, &file.name));
    answer = match &range {
        Some(range) => answer
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {}-{}/{size}", range.start, range.end - 1))
            .header(header::CONTENT_LENGTH, range.end - range.start),
        None => answer.status(StatusCode::OK).header(header::CONTENT_LENGTH, size),
    };
    Ok(answer.body(Body::from_stream(got.into_stream())).unwrap_or_default())
}

fn missing_file_now() -> Response {
    AppError::Missing("There is no such file.").into_response()
}

/// Does `If-None-Match` name this entity tag (or `*`)? Weak tags compare
/// as strong ones (the bytes never change).
fn matches_etag(header: Option<&HeaderValue>, etag: &str) -> bool {
    let Some(value) = header.and_then(|v| v.to_str().ok()) else { return false };
    value.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// One byte range of `size` bytes, as half-open offsets: `Some(Ok)` for a
/// range to serve, `Some(Err)` for one outside the file (416), `None` for
/// none we serve (several ranges, or a header we cannot read: the whole file).
fn parse_range(value: &[u8], size: u64) -> Option<Result<std::ops::Range<u64>, ()>> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let spec = value.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let suffix: u64 = end.parse().ok()?;
        if suffix == 0 {
            return Some(Err(()));
        }
        size.saturating_sub(suffix)..size
    } else {
        let start: u64 = start.parse().ok()?;
        let end = if end.is_empty() { size } else { end.parse::<u64>().ok()?.saturating_add(1).min(size) };
        if end <= start && start < size {
            return None;
        }
        start..end
    };
    if range.start >= size || range.is_empty() { Some(Err(())) } else { Some(Ok(range)) }
}

/// `inline` or `attachment`, with the name: plain ASCII for old browsers,
/// and exactly (RFC 8187) for the rest.
fn content_disposition(disposition: &str, name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let exact = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("{disposition}; filename=\"{plain}\"; filename*=UTF-8''{exact}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(parse_range(b"bytes=0-9", 100), Some(Ok(0..10)));
        assert_eq!(parse_range(b"bytes=90-", 100), Some(Ok(90..100)));
        assert_eq!(parse_range(b"bytes=-5", 100), Some(Ok(95..100)));
        assert_eq!(parse_range(b"bytes=50-500", 100), Some(Ok(50..100)));
        assert_eq!(parse_range(b"bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range(b"bytes=-0", 100), Some(Err(())));
        assert_eq!(parse_range(b"bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range(b"lines=1-2", 100), None);
        assert_eq!(parse_range(b"bytes=9-3", 100), None);
    }

    #[test]
    fn entity_tags_match_weak_or_strong_or_any() {
        let etag = "\"abc\"";
        assert!(matches_etag(Some(&HeaderValue::from_static("\"abc\"")), etag));
        assert!(matches_etag(Some(&HeaderValue::from_static("\"x\", W/\"abc\"")), etag));
        assert!(matches_etag(Some(&HeaderValue::from_static("*")), etag));
        assert!(!matches_etag(Some(&HeaderValue::from_static("\"abd\"")), etag));
        assert!(!matches_etag(None, etag));
    }

    #[test]
    fn names_are_given_plainly_and_exactly() {
        assert_eq!(
            content_disposition("attachment", "résumé \"v2\".pdf"),
            "attachment; filename=\"r_sum_ _v2_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22%2Epdf"
        );
        assert_eq!(human_size(10 << 20), "10 MiB");
        assert_eq!(human_size(1536), "1 KiB");
    }
}
