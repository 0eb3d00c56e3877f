//! How a socket ends: with a close code, the closing handshake.

use std::time::Duration;

#[cfg(feature = "autobahn")]
use super::read_failed;
use super::{CLOSE_HANDSHAKE, End, WebSocket, flush};
use crate::websocket::Incoming;

/// The end of a socket: with a close code, the closing handshake.
pub(super) async fn goodbye(socket: &mut WebSocket, end: End, send_timeout: Duration) {
    let ending: std::borrow::Cow<'static, str> = match end {
        End::Close(code, _) => code.to_string().into(),
        End::ClientClosed => "client".into(),
        End::Gone => "gone".into(),
    };
    metrics::counter!(crate::metrics::SOCKET_CLOSES, "code" => ending).increment(1);
    let (code, reason) = match end {
        End::Close(code, reason) => (code, reason),
        End::ClientClosed => {
            let _ = flush(socket, send_timeout).await;
            return;
        }
        End::Gone => return,
    };
    socket.queue_close(code, reason);
    if flush(socket, send_timeout).await.is_ok() {
        // The closing handshake: read (and drop) what the client still sends
        // until its Close. Closing with unread data would make the kernel
        // reset the connection, and a reset can overtake our close frame, so
        // the client would never learn the code.
        let drained = async {
            while let Some(Ok(incoming)) = socket.next().await {
                if incoming == Incoming::Close {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_HANDSHAKE, drained).await;
    }
}

/// The conformance endpoint's socket (the `autobahn` feature): every text and
/// binary message echoed, and every way of ending the same as a chat socket's.
#[cfg(feature = "autobahn")]
pub async fn echo(mut socket: WebSocket, send_timeout: Duration) {
    let end = loop {
        let sent = match socket.next().await {
            Some(Ok(Incoming::Text(text))) => {
                socket.queue_text(text.into());
                flush(&mut socket, send_timeout).await
            }
            Some(Ok(Incoming::Binary(data))) => {
                socket.queue_binary(data.into());
                flush(&mut socket, send_timeout).await
            }
            // The pong is queued.
            Some(Ok(Incoming::Ping)) => flush(&mut socket, send_timeout).await,
            Some(Ok(Incoming::Pong)) => Ok(()),
            Some(Ok(Incoming::Close)) => break End::ClientClosed,
            Some(Err(e)) => break read_failed(&e),
            None => break End::Gone,
        };
        if let Err(end) = sent {
            break end;
        }
    };
    goodbye(&mut socket, end, send_timeout).await;
}
