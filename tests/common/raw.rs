//! Speaking HTTP and WebSocket byte by byte, for requests and frames no
//! well-behaved client would send.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Sends `request` as is and returns the status and the head of the answer.
pub async fn request(base: &str, request: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    read_head(&mut tcp).await
}

/// Reads an HTTP response head (up to the blank line).
pub async fn read_head(tcp: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head)
}

/// A valid handshake for `/ws` with `cookie`, and any extra header lines.
pub fn handshake(host: &str, cookie: &str, extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: {cookie}\r\n{extra}\r\n"
    )
}

/// An upgraded connection on which frames are written by hand.
pub struct RawSocket {
    pub tcp: TcpStream,
}

impl RawSocket {
    pub async fn open(base: &str, cookie: &str) -> RawSocket {
        let host = base.trim_start_matches("http://");
        let mut tcp = TcpStream::connect(host).await.unwrap();
        tcp.write_all(handshake(host, cookie, "").as_bytes()).await.unwrap();
        let (status, head) = read_head(&mut tcp).await;
        assert_eq!(status, 101, "{head}");
        RawSocket { tcp }
    }

    /// One frame: `first` is the first byte (FIN, RSV bits, opcode); masked
    /// as clients must, unless `masked` is false.
    pub async fn frame(&mut self, first: u8, payload: &[u8], masked: bool) {
        let mut out = vec![first];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n @ 0..=125 => out.push(mask_bit | n as u8),
            n @ 126..=65535 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            let key = [0x37, 0xfa, 0x21, 0x3d];
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            out.extend_from_slice(payload);
        }
        // The server may already have closed: what it said is read next.
        let _ = self.tcp.write_all(&out).await;
    }

    /// Reads the server's frames until its Close; returns the code (`None`:
    /// the connection ended without a close frame).
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            let mut head = [0u8; 2];
            tokio::time::timeout(Duration::from_secs(5), self.tcp.read_exact(&mut head)).await.ok()?.ok()?;
            let opcode = head[0] & 0x0f;
            let len = match head[1] & 0x7f {
                126 => {
                    let mut n = [0u8; 2];
                    self.tcp.read_exact(&mut n).await.ok()?;
                    u64::from(u16::from_be_bytes(n))
                }
                127 => {
                    let mut n = [0u8; 8];
                    self.tcp.read_exact(&mut n).await.ok()?;
                    u64::from_be_bytes(n)
                }
                n => u64::from(n),
            };
            let mut payload = vec![0u8; len as usize];
            self.tcp.read_exact(&mut payload).await.ok()?;
            if opcode == 0x8 {
                return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    }
}
