//! Deadlines on an HTTP connection's bytes, which hyper's HTTP/1.1 server
//! does not give us on its own (its header timer also runs while a
//! keep-alive connection waits, so it cannot tell "slow headers" from "idle"):
//!
//! - a request's headers must be complete (`\r\n\r\n`) within `headers` of
//!   its first byte (or of the connection, for the first request): a client
//!   that dribbles them, or never sends them, loses its connection and the
//!   buffer it held;
//! - a connection that waits for its next request longer than `idle` is closed;
//! - a request whose answer has not begun `idle` after its headers, and
//!   whose client has sent nothing meanwhile, is given up.
//!
//! It also keeps the connection's place in its client's count of pending
//! connections (see `pending`): taken when a request's first byte comes on
//! a kept-alive connection (no place: the connection closes), given back
//! when the answer begins. (The body gives it back sooner, once it has all
//! arrived: see `body`.) A request's body has a deadline of its own, kept on
//! the body, which alone knows where it ends.
//!
//! A WebSocket upgrade takes the inner stream back out (`into_inner`): the
//! socket then has its own liveness (pings) and no deadline of these.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

use super::pending::Pending;

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From a request's first byte to the end of its headers.
    pub headers: Duration,
    /// Between requests on a kept-alive connection.
    pub idle: Duration,
}

/// Where the connection is in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between requests (or before the first).
    Waiting,
    /// Reading a request's headers; `matched` bytes of `\r\n\r\n` seen.
    Headers { matched: u8 },
    /// Headers read; the request is being handled.
    Busy { answering: bool },
}

const END_OF_HEADERS: &[u8; 4] = b"\r\n\r\n";

pub struct Deadlines<S> {
    inner: S,
    phase: Phase,
    timeouts: Timeouts,
    /// The current phase's deadline.
    timer: Pin<Box<Sleep>>,
    /// The connection's place among its client's pending ones (`None`: not
    /// counted, e.g. a trusted proxy). Held on arrival, as the first request
    /// is due.
    pending: Option<Arc<Pending>>,
}

impl<S> Deadlines<S> {
    /// A new connection: its first request's headers are due within `headers`.
    pub fn new(inner: S, timeouts: Timeouts, pending: Option<Arc<Pending>>) -> Self {
        let timer = Box::pin(tokio::time::sleep(timeouts.headers));
        Self { inner, phase: Phase::Headers { matched: 0 }, timeouts, timer, pending }
    }

    pub fn into_inner(self) -> S {
        self.inner
    }

    fn arm(&mut self, after: Duration) {
        self.timer.as_mut().reset(Instant::now() + after);
    }

    /// Follows the request cycle through the bytes just read; false when a
    /// new request may not start (its client has too many pending).
    #[must_use]
    fn saw(&mut self, bytes: &[u8]) -> bool {
        for &byte in bytes {
            match self.phase {
                Phase::Waiting => {
                    if self.pending.as_ref().is_some_and(|pending| !pending.hold()) {
                        return false;
                    }
                    self.phase = Phase::Headers { matched: 0 };
                    self.arm(self.timeouts.headers);
                    self.advance(byte);
                }
                Phase::Headers { .. } => self.advance(byte),
                // The body (or pipelined requests) while busy: no deadline
                // of ours beyond the idle one, which any byte pushes back.
                Phase::Busy { answering: false } => self.arm(self.timeouts.idle),
                Phase::Busy { answering: true } => {}
            }
        }
        true
    }

    /// The answer begins: the request is no longer pending (whatever of its
    /// body was not read, hyper will not wait for).
    fn answering(&mut self) {
        if self.phase == (Phase::Busy { answering: false }) {
            self.phase = Phase::Busy { answering: true };
            if let Some(pending) = &self.pending {
                pending.release();
            }
        }
    }

    fn advance(&mut self, byte: u8) {
        let Phase::Headers { matched } = self.phase else { return };
        let matched = if byte == END_OF_HEADERS[usize::from(matched)] {
            matched + 1
        } else if byte == b'\r' {
            1
        } else {
            0
        };
        if usize::from(matched) == END_OF_HEADERS.len() {
            self.phase = Phase::Busy { answering: false };
            self.arm(self.timeouts.idle);
        } else {
            self.phase = Phase::Headers { matched };
        }
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        match self.phase {
            Phase::Busy { answering: true } => false,
            _ => self.timer.as_mut().poll(cx).is_ready(),
        }
    }
}

fn timed_out(phase: Phase) -> io::Error {
    let what = match phase {
        Phase::Waiting => "an idle connection waited too long for its next request",
        Phase::Headers { .. } => "a request's headers took too long",
        Phase::Busy { .. } => "a request waited too long for its answer",
    };
    io::Error::new(io::ErrorKind::TimedOut, what)
}

fn too_many_pending() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionRefused, "the client has too many requests pending")
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadlines<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                if !read.is_empty() {
                    // Copy out the borrow: `saw` needs `this` mutably.
                    let read = read.to_vec();
                    if !this.saw(&read) {
                        return Poll::Ready(Err(too_many_pending()));
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // Nothing to read: the deadline may end the wait (polling the
            // timer registers this task to be woken when it fires).
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out(this.phase))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadlines<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.inner).poll_write(cx, data))?;
        if written > 0 {
            this.answering();
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        // An answer went out: the connection waits for its next request.
        if this.phase == (Phase::Busy { answering: true }) {
            this.phase = Phase::Waiting;
            this.arm(this.timeouts.idle);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        if written > 0 {
            this.answering();
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    const LIMITS: Timeouts = Timeouts { headers: Duration::from_secs(10), idle: Duration::from_secs(60) };

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_is_closed_at_the_header_deadline() {
        let (_client, server) = duplex(1024);
        let mut server = Deadlines::new(server, LIMITS, None);
        let started = Instant::now();
        let err = server.read(&mut [0u8; 16]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), LIMITS.headers);
    }

    #[tokio::test(start_paused = true)]
    async fn headers_must_finish_in_time() {
        let (mut client, server) = duplex(1024);
        let mut server = Deadlines::new(server, LIMITS, None);
        client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(server.read(&mut buf).await.is_ok());
        // The rest never comes: 10 s later the read fails.
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("headers"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answered_connection_may_idle_until_the_idle_deadline() {
        let (mut client, server) = duplex(1024);
        let mut server = Deadlines::new(server, LIMITS, None);
        client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(server.read(&mut buf).await.unwrap() > 0);
        server.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.unwrap();
        server.flush().await.unwrap();
        // 30 s idle is fine; a second request comes and is read.
        tokio::time::sleep(Duration::from_secs(30)).await;
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(server.read(&mut buf).await.is_ok());
        server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        server.flush().await.unwrap();
        let started = Instant::now();
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_alive_connection_cannot_start_a_request_while_its_client_has_too_many_pending() {
        let limit = super::super::pending::PendingLimit::new(1);
        let client_ip: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let (mut client, server) = duplex(1024);
        let mut server = Deadlines::new(server, LIMITS, limit.admit(client_ip));
        assert_eq!(limit.of(client_ip), 1, "pending from the accept");
        client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(server.read(&mut buf).await.unwrap() > 0);
        server.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.unwrap();
        server.flush().await.unwrap();
        assert_eq!(limit.of(client_ip), 0, "idle: not pending");
        let other = limit.admit(client_ip).expect("room for a new connection");
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        drop(other);
    }

    #[test]
    fn the_end_of_headers_is_found_across_reads_and_false_starts() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            let (_client, server) = duplex(16);
            let mut d = Deadlines::new(server, LIMITS, None);
            assert!(d.saw(b"GET / HTTP/1.1\r\nA: b\r"));
            assert!(matches!(d.phase, Phase::Headers { .. }));
            assert!(d.saw(b"\r\n\r"));
            assert!(matches!(d.phase, Phase::Headers { .. }), "\\r\\r\\n\\r is not the end");
            assert!(d.saw(b"\n"));
            assert_eq!(d.phase, Phase::Busy { answering: false });
        });
    }
}
