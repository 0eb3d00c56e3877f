//! A socket's TCP stream, shared between the socket's task and whoever
//! delivers to it: a delivery writes its frames straight into the kernel
//! when the task is not writing, and the task is woken only when they
//! would not all go (or when it has writing of its own to do).
//!
//! The write side has a gate, a small mutex: `busy` while the task owns it
//! (it has taken frames to write, or is writing, or has ended), and the
//! `rest` a direct write left unwritten. A direct write happens only when
//! the gate is free and holds the lock while it writes, so it is whole
//! before anything else is written; what the kernel did not take becomes
//! the rest, the gate turns busy, and the task, woken, writes the rest
//! before anything of its own: frames never interleave. The task gives the
//! gate back when it has nothing left to write.

use std::{
    io::{self, IoSlice},
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tungstenite::Utf8Bytes;

use super::{
    frame::{self, OpCode},
    socket::{MAX_SLICES, Outbox},
};

/// The task's side: read and written by the socket's task alone.
pub struct Stream(Arc<Shared>);

/// The deliverers' side: writes frames when the gate is free.
#[derive(Clone)]
pub struct Direct(Arc<Shared>);

struct Shared {
    tcp: TcpStream,
    gate: Mutex<Gate>,
}

struct Gate {
    /// The task owns the write side.
    busy: bool,
    /// What a direct write left unwritten (boxed: rarely there).
    rest: Option<Box<Outbox>>,
}

impl Stream {
    /// The gate starts busy: the task writes the greeting first.
    pub fn new(tcp: TcpStream) -> Self {
        Self(Arc::new(Shared { tcp, gate: Mutex::new(Gate { busy: true, rest: None }) }))
    }

    /// A handle for writing directly.
    pub fn direct(&self) -> Direct {
        Direct(self.0.clone())
    }

    /// The task gives the write side back: it has nothing queued. Kept
    /// busy if a direct write's rest is still waiting for it.
    pub fn release(&self) {
        let mut gate = self.0.gate();
        gate.busy = gate.rest.is_some();
    }

    /// Writes what a direct write left, then `then` (if any); `Ready` with
    /// what `then` wrote once the rest is out. The task owns the gate from
    /// here.
    fn poll_write_after_rest(&self, cx: &mut Context<'_>, then: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let tcp = &self.0.tcp;
        loop {
            {
                let mut gate = self.0.gate();
                gate.busy = true;
                let written = match gate.rest.as_mut() {
                    Some(rest) => rest.write_now(|slices| tcp.try_write_vectored(slices)),
                    None => Ok(()),
                };
                match written {
                    Ok(()) => {
                        gate.rest = None;
                        if then.is_empty() {
                            return Poll::Ready(Ok(0));
                        }
                        match tcp.try_write_vectored(then) {
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            done => return Poll::Ready(done),
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            ready!(tcp.poll_write_ready(cx))?;
        }
    }
}

impl Shared {
    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Direct {
    /// The gate, if the task does not own the write side; held until the
    /// frames are sent (or the free gate is dropped).
    pub fn free(&self) -> Option<Free<'_>> {
        let gate = self.0.gate();
        (!gate.busy).then_some(Free { tcp: &self.0.tcp, gate })
    }

    /// Is the gate free now?
    pub fn is_free(&self) -> bool {
        !self.0.gate().busy
    }

    /// The task takes the write side (it took frames to write).
    pub fn claim(&self) {
        self.0.gate().busy = true;
    }
}

/// The write side, found free.
pub struct Free<'a> {
    tcp: &'a TcpStream,
    gate: MutexGuard<'a, Gate>,
}

/// Frames written in one direct write at most.
pub const DIRECT_FRAMES: usize = MAX_SLICES / 2;

impl Free<'_> {
    /// Writes `texts` as text frames, in one vectored write, as far as the
    /// kernel takes them. `true`: all went. `false`: the rest is kept and
    /// the gate is busy; the task must be woken to write it.
    pub fn send<'t>(mut self, texts: impl Iterator<Item = &'t Utf8Bytes> + Clone) -> bool {
        let mut headers = [([0; frame::MAX_SERVER_HEADER], 0); DIRECT_FRAMES];
        let mut count = 0;
        for (header, text) in headers.iter_mut().zip(texts.clone()) {
            *header = frame::server_header(OpCode::Text, text.len());
            count += 1;
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        for (i, ((header, used), text)) in headers[..count].iter().zip(texts.clone()).enumerate() {
            slices[2 * i] = IoSlice::new(&header[..*used]);
            slices[2 * i + 1] = IoSlice::new(text.as_ref());
        }
        // Any failure leaves it all to the task, whose own write reports it.
        let mut written = self.tcp.try_write_vectored(&slices[..2 * count]).unwrap_or(0);
        let mut rest = Outbox::default();
        for text in texts {
            let size = frame::server_header(OpCode::Text, text.len()).1 + text.len();
            if written >= size {
                written -= size;
                continue;
            }
            rest.push(OpCode::Text, Bytes::from(text.clone()));
            rest.advance(written);
            written = 0;
        }
        if rest.queued == 0 {
            return true;
        }
        self.gate.busy = true;
        self.gate.rest = Some(Box::new(rest));
        false
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let tcp = &self.0.tcp;
        loop {
            // Readiness first: most polls find nothing, and zero nothing.
            ready!(tcp.poll_read_ready(cx))?;
            match tcp.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_after_rest(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_after_rest(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Writes the rest a direct write left.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_write_after_rest(cx, &[]).map_ok(|_| ())
    }

    /// Flushes; the connection itself closes when both sides are dropped.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    async fn pair() -> (Stream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Stream::new(server), client)
    }

    fn text(payload: &[u8]) -> Vec<u8> {
        let (header, used) = frame::server_header(OpCode::Text, payload.len());
        [&header[..used], payload].concat()
    }

    #[tokio::test]
    async fn a_direct_write_goes_only_while_the_task_does_not_own_the_write_side() {
        let (stream, mut client) = pair().await;
        let direct = stream.direct();
        assert!(direct.free().is_none(), "busy until the task has written its greeting");
        stream.release();
        let frames = [Utf8Bytes::from_static("one"), Utf8Bytes::from_static("two")];
        assert!(direct.free().expect("free").send(frames.iter()));
        let mut got = vec![0; 10];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [text(b"one"), text(b"two")].concat(), "two frames, in one write");
        direct.claim();
        assert!(direct.free().is_none(), "the task took frames to write");
    }

    #[tokio::test]
    async fn what_a_direct_write_leaves_goes_before_anything_of_the_task() {
        let (mut stream, mut client) = pair().await;
        let direct = stream.direct();
        stream.release();
        // More than the kernel takes from a client that is not reading.
        let big = Utf8Bytes::from("x".repeat(8 << 20));
        assert!(!direct.free().expect("free").send(std::iter::once(&big)), "a rest is left");
        assert!(direct.free().is_none(), "busy with the rest");
        stream.release();
        assert!(direct.free().is_none(), "still busy: the rest is not out");
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        stream.write_all(&text(b"after")).await.unwrap();
        stream.flush().await.unwrap();
        stream.release();
        assert!(direct.free().is_some(), "free once all is out");
        drop((stream, direct));
        let got = reader.await.unwrap();
        assert_eq!(got, [text(big.as_bytes()), text(b"after")].concat(), "whole frames, in order");
    }
}
