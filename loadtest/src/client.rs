//! Speaking the contract: the forms (to get session cookies) and /ws.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use tokio::{net::TcpSocket, sync::Semaphore};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig},
};

pub type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub const PASSWORD: &str = "load-test-password";

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("an HTTP client")
}

fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lobby_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// Registers `username` (or logs in if it exists); returns its cookie.
pub async fn account(base: &str, username: &str) -> Result<String, String> {
    let client = http();
    let form = [("username", username), ("password", PASSWORD)];
    let res = client.post(format!("{base}/register")).form(&form).send().await.map_err(|e| e.to_string())?;
    if res.status().as_u16() == 409 {
        return login(base, username).await;
    }
    if res.status().as_u16() != 303 {
        return Err(format!("register {username}: {}", res.status()));
    }
    session_cookie(&res).ok_or_else(|| "no session cookie".to_owned())
}

pub async fn login(base: &str, username: &str) -> Result<String, String> {
    let form = [("username", username), ("password", PASSWORD)];
    let res = http().post(format!("{base}/login")).form(&form).send().await.map_err(|e| e.to_string())?;
    if res.status().as_u16() != 303 {
        return Err(format!("login {username}: {}", res.status()));
    }
    session_cookie(&res).ok_or_else(|| "no session cookie".to_owned())
}

/// `k` accounts named `load0…`, created 8 at a time (hashing is the cost).
pub async fn accounts(base: &str, k: usize) -> Result<Vec<String>, String> {
    let permits = Arc::new(Semaphore::new(8));
    let tasks: Vec<_> = (0..k)
        .map(|i| {
            let base = base.to_owned();
            let permits = permits.clone();
            tokio::spawn(async move {
                let _permit = permits.acquire().await;
                account(&base, &format!("load{i}")).await
            })
        })
        .collect();
    let mut cookies = Vec::with_capacity(k);
    for task in tasks {
        cookies.push(task.await.map_err(|e| e.to_string())??);
    }
    Ok(cookies)
}

/// Where connections come from: 127.0.0.1, or spread over 127.0.0.2… so that
/// more than ~28k connections can reach one server port.
#[derive(Clone, Copy)]
pub struct Sources(pub u8);

impl Sources {
    fn pick(self, i: usize) -> Option<IpAddr> {
        (self.0 > 0).then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % usize::from(self.0)) as u8)))
    }
}

/// Opens /ws with small buffers (the tool holds thousands of sockets too).
pub async fn open(base: &str, cookie: &str, query: &str, sources: Sources, i: usize) -> Result<Ws, String> {
    let addr: SocketAddr = base.trim_start_matches("http://").parse().map_err(|e| format!("{base}: {e}"))?;
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(source) = sources.pick(i) {
        socket.bind(SocketAddr::new(source, 0)).map_err(|e| e.to_string())?;
    }
    let tcp = tokio::time::timeout(Duration::from_secs(30), socket.connect(addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    // Closing a socket on purpose resets it (no FIN handshake): the abrupt drop churn needs.
    #[allow(deprecated)]
    let _ = tcp.set_linger(Some(Duration::ZERO));
    let mut request = format!("ws://{addr}/ws{query}").into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert("cookie", HeaderValue::from_str(cookie).map_err(|e| e.to_string())?);
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(request, MaybeTlsStream::Plain(tcp), Some(config))
            .await
            .map_err(|e| e.to_string())?;
    Ok(ws)
}
