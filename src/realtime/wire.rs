//! A WebSocket's TCP stream, with a write buffer that exists only while
//! there is something to write.
//!
//! tungstenite formats every frame into a buffer of its own and keeps that
//! buffer's capacity for the socket's life: a socket that was once sent a
//! backlog would hold KiBs while idle ever after. So tungstenite is told to
//! hand every frame straight down (a write buffer size of 0), and this type
//! gathers the frames of one flush, writes them in one `write`, and frees the
//! buffer once the kernel has taken it all.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use std::future::Future;

use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
};
use tokio_tungstenite::WebSocketStream;

/// Bytes gathered before a write waits for the kernel to take some: a
/// client that does not read is pushed back rather than buffered for.
const HIGH_WATER: usize = 64 * 1024;

pub struct Wire {
    tcp: TcpStream,
    /// What the kernel has not taken yet, from `sent` on; empty (and
    /// unallocated) between writes.
    out: Vec<u8>,
    sent: usize,
}

impl Wire {
    pub fn new(tcp: TcpStream) -> Self {
        Self { tcp, out: Vec::new(), sent: 0 }
    }

    /// Writes out what is gathered; frees the buffer once it is all taken.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.out = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Wire {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.out.len() - self.sent >= HIGH_WATER {
            ready!(self.poll_drain(cx))?;
        }
        self.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// A socket whose `Wire` can be drained directly. At the end tungstenite
/// may have handed the wire a close frame (its answer to a client's Close,
/// or to a frame that broke the protocol) and, its state being closed
/// already, never flush it.
pub trait DrainWire {
    fn drain_wire(&mut self) -> impl Future<Output = ()> + Send;
}

impl DrainWire for WebSocketStream<Wire> {
    async fn drain_wire(&mut self) {
        let _ = self.get_mut().flush().await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn gathers_until_flushed_then_frees_the_buffer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut wire = Wire::new(server);
        wire.write_all(b"hello, ").await.unwrap();
        wire.write_all(b"world").await.unwrap();
        assert_eq!(wire.out.len(), 12, "nothing written before the flush");
        wire.flush().await.unwrap();
        assert_eq!(wire.out.capacity(), 0, "the buffer is freed");
        let mut client = client;
        let mut got = [0u8; 12];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello, world");
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_is_pushed_back() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut wire = Wire::new(server);
        let chunk = vec![0u8; 16 * 1024];
        let filled = async {
            loop {
                wire.write_all(&chunk).await.unwrap();
            }
        };
        let stalled = tokio::time::timeout(std::time::Duration::from_millis(500), filled).await;
        assert!(stalled.is_err(), "writes stop once the kernel and the high-water mark are full");
        assert!(wire.out.len() - wire.sent <= HIGH_WATER + chunk.len());
    }
}
