//! One WebSocket: messages read from the client, frames queued to it.

use std::{
    collections::VecDeque,
    io::{self, IoSlice},
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tungstenite::Utf8Bytes;

use super::{
    Violation,
    frame::{self, Header, OpCode},
    stream::{Direct, Stream},
};

/// What one read asks of the kernel at most, into a buffer on the stack:
/// client frames are small, and an idle socket keeps no read buffer.
const READ_CHUNK: usize = 2048;
/// Bytes queued before `feed` waits for the kernel to take some: a client
/// that does not read is pushed back rather than queued for.
const HIGH_WATER: usize = 64 * 1024;
/// Frames handed to the kernel in one vectored write, at most.
pub(super) const MAX_SLICES: usize = 64;

/// What the client sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    /// Answered already: the pong is queued.
    Ping,
    Pong,
    /// The client closed. The answering Close is queued: flush it, then
    /// the socket is done.
    Close,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Violation(#[from] Violation),
    #[error("reading from the client failed: {0}")]
    Io(#[from] io::Error),
}

pub struct Socket<T> {
    io: T,
    /// Bytes read and not yet taken as frames. Empty, and unallocated,
    /// except while a frame is arriving in parts or several came at once.
    read: Vec<u8>,
    /// Bytes still missing from the frame at the front of `read`, once its
    /// header says.
    missing: usize,
    /// A fragmented message being gathered: boxed, as most sockets never see one.
    fragments: Option<Box<Fragments>>,
    out: Outbox,
    max_message: usize,
    /// After a frame that broke the protocol, frames are no longer trusted:
    /// they are skipped, looking only for the client's Close.
    broken: bool,
    /// Skipping past a broken frame: its payload bytes still to come.
    skip: usize,
    close_sent: bool,
    close_received: bool,
}

struct Fragments {
    text: bool,
    data: Vec<u8>,
    /// How much of `data` is known to be UTF-8 (a character may straddle fragments).
    valid: usize,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Socket<T> {
    /// `early`: what the client sent after its handshake, read already.
    /// No frame or message may be longer than `max_message`.
    pub fn new(io: T, early: Vec<u8>, max_message: usize) -> Self {
        Self {
            io,
            read: early,
            missing: 0,
            fragments: None,
            out: Outbox::default(),
            max_message,
            broken: false,
            skip: 0,
            close_sent: false,
            close_received: false,
        }
    }

    /// The next message or control frame; `None` once the client has
    /// closed (or gone). Cancel-safe: what was read stays for the next call.
    pub async fn next(&mut self) -> Option<Result<Incoming, ReadError>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, ReadError>>> {
        loop {
            if self.close_received {
                return Poll::Ready(None);
            }
            let taken = if self.broken { Ok(self.skip_to_close()) } else { self.take_frame() };
            match taken {
                Ok(Some(incoming)) => return Poll::Ready(Some(Ok(incoming))),
                Ok(None) => {}
                Err(violation) => {
                    self.broken = true;
                    return Poll::Ready(Some(Err(violation.into())));
                }
            }
            match ready!(self.poll_fill(cx)) {
                Ok(0) => return Poll::Ready(None),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
            }
        }
    }

    /// Reads what the kernel has. Into a buffer on the stack, copied out
    /// at its size; only the rest of a large frame is read in place.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.missing > READ_CHUNK {
            self.read.reserve(self.missing);
            return tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read);
        }
        // Not zeroed: most polls find nothing to read (a wake for a
        // delivery polls the client's side first).
        let mut chunk = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        self.read.extend_from_slice(buf.filled());
        Poll::Ready(Ok(buf.filled().len()))
    }

    /// Takes whole frames from `read` until one makes something to return.
    fn take_frame(&mut self) -> Result<Option<Incoming>, Violation> {
        loop {
            let Some(header) = frame::read_header(&self.read, self.max_message)? else {
                self.missing = 0;
                return Ok(None);
            };
            let end = header.size + header.payload;
            if self.read.len() < end {
                self.missing = end - self.read.len();
                return Ok(None);
            }
            self.missing = 0;
            let mut read = std::mem::take(&mut self.read);
            let payload = &mut read[header.size..end];
            frame::unmask(payload, header.mask);
            let incoming = self.on_frame(header, payload);
            self.read = read;
            self.consume(end);
            if let Some(incoming) = incoming? {
                return Ok(Some(incoming));
            }
        }
    }

    fn on_frame(&mut self, header: Header, payload: &[u8]) -> Result<Option<Incoming>, Violation> {
        match header.opcode {
            OpCode::Text | OpCode::Binary => {
                if self.fragments.is_some() {
                    return Err(Violation::Protocol("a new message before the last one ended"));
                }
                let text = header.opcode == OpCode::Text;
                if header.fin {
                    return whole(text, payload.to_vec()).map(Some);
                }
                let mut fragments = Fragments { text, data: payload.to_vec(), valid: 0 };
                fragments.check()?;
                self.fragments = Some(Box::new(fragments));
                Ok(None)
            }
            OpCode::Continue => {
                let Some(fragments) = self.fragments.as_mut() else {
                    return Err(Violation::Protocol("a continuation with no message to continue"));
                };
                if fragments.data.len() + payload.len() > self.max_message {
                    return Err(Violation::TooBig);
                }
                fragments.data.extend_from_slice(payload);
                fragments.check()?;
                if !header.fin {
                    return Ok(None);
                }
                let Fragments { text, data, .. } = *self.fragments.take().expect("gathering");
                whole(text, data).map(Some)
            }
            OpCode::Ping => {
                if !self.close_sent {
                    self.out.push(OpCode::Pong, Bytes::copy_from_slice(payload));
                }
                Ok(Some(Incoming::Ping))
            }
            OpCode::Pong => Ok(Some(Incoming::Pong)),
            OpCode::Close => {
                let echo = close_payload(payload)?;
                self.close_received = true;
                if !self.close_sent {
                    self.close_sent = true;
                    self.out.push(OpCode::Close, Bytes::copy_from_slice(echo));
                }
                Ok(Some(Incoming::Close))
            }
        }
    }

    /// Past a broken frame: skips frames by their length alone, until the
    /// client's Close.
    fn skip_to_close(&mut self) -> Option<Incoming> {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(self.read.len());
                self.skip -= n;
                self.consume(n);
                if self.skip > 0 {
                    // Read in small pieces: nothing skipped is kept.
                    self.missing = self.skip.min(READ_CHUNK);
                    return None;
                }
            }
            let Some(extent) = frame::extent(&self.read) else {
                self.missing = 0;
                return None;
            };
            if extent.opcode == Some(OpCode::Close) {
                self.close_received = true;
                self.read = Vec::new();
                return Some(Incoming::Close);
            }
            self.consume(extent.size);
            self.skip = usize::try_from(extent.payload).unwrap_or(usize::MAX);
        }
    }

    fn consume(&mut self, n: usize) {
        self.read.drain(..n);
        self.free_if_empty();
    }

    fn free_if_empty(&mut self) {
        if self.read.is_empty() {
            self.read = Vec::new();
        }
    }

    /// Queues a text message, shared with every socket it goes to.
    pub fn queue_text(&mut self, text: Utf8Bytes) {
        if !self.close_sent {
            self.out.push(OpCode::Text, Bytes::from(text));
        }
    }

    pub fn queue_binary(&mut self, data: Bytes) {
        if !self.close_sent {
            self.out.push(OpCode::Binary, data);
        }
    }

    pub fn queue_ping(&mut self) {
        if !self.close_sent {
            self.out.push(OpCode::Ping, Bytes::new());
        }
    }

    /// Queues our Close; nothing is sent after it.
    pub fn queue_close(&mut self, code: u16, reason: &'static str) {
        if !self.close_sent {
            self.close_sent = true;
            let mut payload = Vec::with_capacity(2 + reason.len());
            payload.extend_from_slice(&code.to_be_bytes());
            payload.extend_from_slice(reason.as_bytes());
            self.out.push(OpCode::Close, Bytes::from(payload));
        }
    }

    /// Queues a text message; first waits for the kernel to take some of
    /// what is queued, if that is already a lot.
    pub async fn feed(&mut self, text: Utf8Bytes) -> io::Result<()> {
        if self.out.queued >= HIGH_WATER {
            self.flush().await?;
        }
        self.queue_text(text);
        Ok(())
    }

    /// Bytes queued and not yet taken by the kernel.
    pub fn queued(&self) -> usize {
        self.out.queued
    }

    /// Hands everything queued to the kernel.
    pub async fn flush(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| {
            ready!(self.out.poll_write(&mut self.io, cx))?;
            Pin::new(&mut self.io).poll_flush(cx)
        })
        .await
    }
}

impl Socket<Stream> {
    /// A handle that writes frames into this socket while its task is not
    /// writing (see [`super::stream`]).
    pub fn direct(&self) -> Direct {
        self.io.direct()
    }

    /// Gives the write side back to direct writes, if nothing is queued
    /// here and no Close was sent.
    pub fn release_writes(&self) {
        if self.out.chunks.is_empty() && !self.close_sent {
            self.io.release();
        }
    }
}

/// A whole message, checked.
fn whole(text: bool, data: Vec<u8>) -> Result<Incoming, Violation> {
    if text {
        String::from_utf8(data).map(Incoming::Text).map_err(|_| Violation::NotUtf8)
    } else {
        Ok(Incoming::Binary(data))
    }
}

impl Fragments {
    /// Fails as soon as the text so far cannot be UTF-8, whatever follows.
    fn check(&mut self) -> Result<(), Violation> {
        if !self.text {
            return Ok(());
        }
        match std::str::from_utf8(&self.data[self.valid..]) {
            Ok(_) => self.valid = self.data.len(),
            Err(e) if e.error_len().is_none() => self.valid += e.valid_up_to(),
            Err(_) => return Err(Violation::NotUtf8),
        }
        Ok(())
    }
}

/// Checks a client's Close payload (§5.5.1, §7.4) and gives what the
/// answering Close carries: the same code, or nothing if it gave none.
fn close_payload(payload: &[u8]) -> Result<&[u8], Violation> {
    match payload {
        [] => Ok(&[]),
        [_] => Err(Violation::Protocol("a close frame with a one-byte payload")),
        [high, low, reason @ ..] => {
            if !frame::is_sendable_close_code(u16::from_be_bytes([*high, *low])) {
                return Err(Violation::Protocol("a close code no peer may send"));
            }
            std::str::from_utf8(reason).map_err(|_| Violation::NotUtf8)?;
            Ok(&payload[..2])
        }
    }
}

/// Frames waiting for the kernel: headers, and payloads by reference.
#[derive(Default)]
pub(super) struct Outbox {
    chunks: VecDeque<Chunk>,
    /// How much of the front chunk the kernel has taken.
    offset: usize,
    pub(super) queued: usize,
}

enum Chunk {
    Header([u8; frame::MAX_SERVER_HEADER], u8),
    Payload(Bytes),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Header(bytes, used) => &bytes[..usize::from(*used)],
            Chunk::Payload(bytes) => bytes,
        }
    }
}

impl Outbox {
    pub(super) fn push(&mut self, opcode: OpCode, payload: Bytes) {
        let (header, used) = frame::server_header(opcode, payload.len());
        self.queued += used + payload.len();
        self.chunks.push_back(Chunk::Header(header, used as u8));
        if !payload.is_empty() {
            self.chunks.push_back(Chunk::Payload(payload));
        }
    }

    /// Writes until everything is taken, then frees the queue.
    fn poll_write<T: AsyncWrite + Unpin>(
        &mut self,
        io: &mut T,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while !self.chunks.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let count = self.slices(&mut slices);
            let written = ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(written);
        }
        self.chunks = VecDeque::new();
        Poll::Ready(Ok(()))
    }

    /// Writes with `write` (a non-blocking write) until everything is
    /// taken, or it fails (`WouldBlock` too).
    pub(super) fn write_now(
        &mut self,
        mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<()> {
        while !self.chunks.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let count = self.slices(&mut slices);
            match write(&slices[..count])? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                written => self.advance(written),
            }
        }
        Ok(())
    }

    /// The front of the queue as slices; how many.
    fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_SLICES]) -> usize {
        let mut count = 0;
        for (slice, chunk) in slices.iter_mut().zip(&self.chunks) {
            let bytes = chunk.bytes();
            *slice = IoSlice::new(if count == 0 { &bytes[self.offset..] } else { bytes });
            count += 1;
        }
        count
    }

    pub(super) fn advance(&mut self, mut written: usize) {
        self.queued -= written;
        while written > 0 {
            let left = self.chunks.front().expect("written from the queue").bytes().len() - self.offset;
            if written < left {
                self.offset += written;
                return;
            }
            written -= left;
            self.offset = 0;
            self.chunks.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    use super::*;

    /// A client frame: masked, as every client frame must be.
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mask = [7, 1, 9, 3];
        let mut frame = vec![first, 0x80 | payload.len() as u8];
        frame.extend(mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    fn pair() -> (Socket<DuplexStream>, DuplexStream) {
        let (server, client) = duplex(1 << 16);
        (Socket::new(server, Vec::new(), 1000), client)
    }

    async fn read_some(client: &mut DuplexStream) -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        let n = client.read(&mut buf).await.unwrap();
        buf.truncate(n);
        buf
    }

    #[tokio::test]
    async fn reads_messages_whole_and_fragmented_and_holds_nothing_after() {
        let (mut socket, mut client) = pair();
        let mut bytes = client_frame(0x81, b"hello");
        // "é" split across two fragments, with a ping between them.
        bytes.extend(client_frame(0x01, b"caf\xc3"));
        bytes.extend(client_frame(0x89, b"p"));
        bytes.extend(client_frame(0x80, b"\xa9"));
        client.write_all(&bytes).await.unwrap();
        assert_eq!(socket.next().await.unwrap().unwrap(), Incoming::Text("hello".into()));
        assert_eq!(socket.next().await.unwrap().unwrap(), Incoming::Ping);
        assert_eq!(socket.next().await.unwrap().unwrap(), Incoming::Text("café".into()));
        assert_eq!(socket.read.capacity(), 0, "no read buffer is kept between frames");
        socket.flush().await.unwrap();
        assert_eq!(read_some(&mut client).await, [0x8A, 1, b'p'], "the ping is answered");
    }

    #[tokio::test]
    async fn a_frame_in_pieces_is_waited_for() {
        let (mut socket, mut client) = pair();
        let frame = client_frame(0x81, b"in pieces");
        let (first, rest) = frame.split_at(4);
        client.write_all(first).await.unwrap();
        let read = tokio::time::timeout(std::time::Duration::from_millis(50), socket.next()).await;
        assert!(read.is_err(), "nothing before the frame is whole");
        client.write_all(rest).await.unwrap();
        assert_eq!(socket.next().await.unwrap().unwrap(), Incoming::Text("in pieces".into()));
    }

    #[tokio::test]
    async fn text_that_cannot_be_utf8_fails_at_the_fragment_that_breaks_it() {
        let (mut socket, mut client) = pair();
        client.write_all(&client_frame(0x01, b"ok \xff")).await.unwrap();
        assert!(matches!(socket.next().await, Some(Err(ReadError::Violation(Violation::NotUtf8)))));
    }

    #[tokio::test]
    async fn after_a_broken_frame_only_the_close_is_looked_for() {
        let (mut socket, mut client) = pair();
        let mut bytes = client_frame(0x83, b"reserved opcode");
        bytes.extend(client_frame(0x81, b"ignored"));
        bytes.extend(client_frame(0x88, &1000u16.to_be_bytes()));
        client.write_all(&bytes).await.unwrap();
        assert!(matches!(socket.next().await, Some(Err(ReadError::Violation(Violation::Protocol(_))))));
        assert_eq!(socket.next().await.unwrap().unwrap(), Incoming::Close);
        assert!(socket.next().await.is_none());
    }

    #[tokio::test]
    async fn a_close_is_answered_with_its_code_and_nothing_goes_after() {
        let (mut socket, mut client) = pair();
        client.write_all(&client_frame(0x88, &[0x0F, 0xA0, b'b', b'y', b'e'])).await.unwrap();
        assert_eq!(socket.next().await.unwrap().unwrap(), Incoming::Close);
        socket.queue_text(Utf8Bytes::from_static("too late"));
        socket.flush().await.unwrap();
        assert_eq!(read_some(&mut client).await, [0x88, 2, 0x0F, 0xA0]);
    }

    #[tokio::test]
    async fn queued_frames_go_in_one_write_and_the_queue_is_freed() {
        let (mut socket, mut client) = pair();
        let shared = Utf8Bytes::from_static("shared by every socket");
        socket.queue_text(shared.clone());
        socket.queue_text(shared);
        assert_eq!(socket.queued(), 2 * (2 + 22));
        socket.flush().await.unwrap();
        assert_eq!(socket.queued(), 0);
        assert_eq!(socket.out.chunks.capacity(), 0, "nothing is held once written");
        let mut got = vec![0u8; 48];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..2], &[0x81, 22]);
        assert_eq!(&got[2..24], b"shared by every socket");
        assert_eq!(&got[24..26], &[0x81, 22]);
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_is_pushed_back() {
        let (server, _client) = duplex(4096);
        let mut socket = Socket::new(server, Vec::new(), 1000);
        let chunk = Utf8Bytes::from("x".repeat(16 * 1024));
        let filled = async {
            loop {
                socket.feed(chunk.clone()).await.unwrap();
            }
        };
        let stalled = tokio::time::timeout(std::time::Duration::from_millis(200), filled).await;
        assert!(stalled.is_err(), "feeding stops once the high-water mark is reached");
        assert!(socket.queued() <= HIGH_WATER + chunk.len() + frame::MAX_SERVER_HEADER);
    }

    proptest::proptest! {
        /// Whatever a client sends, the socket answers with messages, a
        /// violation or the end: never a panic, never a hang.
        #[test]
        fn any_bytes_end_in_an_answer(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let (mut socket, mut client) = pair();
                client.write_all(&bytes).await.unwrap();
                drop(client);
                for _ in 0..=bytes.len() {
                    match socket.next().await {
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    }
                }
            });
        }
    }
}
