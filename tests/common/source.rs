//! Clients at other addresses: every 127.x.y.z is this machine, so a test
//! binds its connections to 127.0.0.2, 127.0.0.3, … and the server sees as
//! many different clients.

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    MaybeTlsStream,
    tungstenite::{client::IntoClientRequest, http::HeaderValue},
};

use super::ws::Ws;

/// A TCP connection to `addr` from `source` (a loopback address); `None` if
/// it could not be made.
pub async fn tcp_from(source: &str, addr: SocketAddr) -> Option<TcpStream> {
    let source: IpAddr = source.parse().unwrap();
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(source, 0)).ok()?;
    socket.connect(addr).await.ok()
}

/// A browser-like client (cookies kept, redirects not followed) whose
/// connections come from `source`, one new connection per request.
pub fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// `/ws` opened from `source` with the session `cookie`.
pub async fn ws_from(source: &str, addr: SocketAddr, cookie: &str) -> Ws {
    let tcp = tcp_from(source, addr).await.expect("connected");
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request.headers_mut().insert("cookie", HeaderValue::from_str(cookie).unwrap());
    let (stream, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
        .await
        .expect("the upgrade is accepted");
    Ws { stream, count: None }
}
