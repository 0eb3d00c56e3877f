//! A real WebSocket client for tests (tokio-tungstenite), speaking the
//! contract's `{"event", "data"}` frames.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest, http::HeaderValue, protocol::CloseFrame},
};

pub type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Ws {
    pub stream: Stream,
    /// The last `user count` seen.
    pub count: Option<u64>,
}

/// What a socket saw before it ended, or the next frame.
#[derive(Debug)]
pub enum Seen {
    Event(String, Value),
    Closed(Option<u16>),
}

/// Opens `/ws` with an optional session cookie and extra headers; on a
/// refused upgrade, the HTTP status.
pub async fn connect(
    base: &str,
    cookie: Option<&str>,
    query: &str,
    headers: &[(&'static str, &str)],
) -> Result<Ws, u16> {
    let url = format!("{}/ws{query}", base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    if let Some(cookie) = cookie {
        request.headers_mut().insert("cookie", HeaderValue::from_str(cookie).unwrap());
    }
    for (k, v) in headers {
        request.headers_mut().insert(*k, HeaderValue::from_str(v).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, _)) => Ok(Ws { stream, count: None }),
        Err(tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("unexpected connect error: {e}"),
    }
}

/// Opens `/ws` over a TCP connection with a tiny receive buffer: a reader
/// that stops reading fills it at once, so the server really sees it stall.
pub async fn connect_stalling(base: &str, cookie: &str, query: &str) -> Ws {
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let mut request = format!("ws://{addr}/ws{query}").into_client_request().unwrap();
    request.headers_mut().insert("cookie", HeaderValue::from_str(cookie).unwrap());
    let (stream, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp)).await.unwrap();
    Ws { stream, count: None }
}

impl Ws {
    pub async fn open(base: &str, cookie: &str) -> Ws {
        connect(base, Some(cookie), "", &[]).await.expect("the upgrade is accepted")
    }

    pub async fn emit(&mut self, event: &str, data: Value) {
        self.send_text(json!({ "event": event, "data": data }).to_string()).await;
    }

    pub async fn chat(&mut self, text: &str) {
        self.emit("chat message", json!(text)).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream.send(Message::text(text)).await.unwrap();
    }

    /// The next event or the close, within `within`; panics on silence.
    pub async fn next_within(&mut self, within: Duration) -> Seen {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(frame) => frame,
                Err(_) => panic!("no frame within {within:?}"),
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(text.as_str()).expect("frames are JSON");
                    let event = v["event"].as_str().expect("frames name their event").to_owned();
                    if event == "user count" {
                        self.count = v["data"].as_u64();
                    }
                    return Seen::Event(event, v["data"].clone());
                }
                Some(Ok(Message::Close(frame))) => {
                    return Seen::Closed(frame.map(|f: CloseFrame| f.code.into()));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Seen::Closed(None),
            }
        }
    }

    pub async fn next(&mut self) -> Seen {
        self.next_within(Duration::from_secs(5)).await
    }

    /// Reads until an event named `name` comes; returns its data.
    pub async fn until(&mut self, name: &str) -> Value {
        loop {
            match self.next().await {
                Seen::Event(event, data) if event == name => return data,
                Seen::Event(..) => continue,
                Seen::Closed(code) => panic!("closed ({code:?}) while waiting for {name}"),
            }
        }
    }

    /// Reads until the `chat history`; returns the ids in it.
    pub async fn history_ids(&mut self) -> Vec<i64> {
        let history = self.until("chat history").await;
        history
            .as_array()
            .expect("the history is an array")
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect()
    }

    /// Reads until the socket has seen `user count` == n.
    pub async fn until_count(&mut self, n: u64) {
        while self.count != Some(n) {
            if let Seen::Closed(code) = self.next().await {
                panic!("closed ({code:?}) while waiting for count {n}, last {:?}", self.count);
            }
        }
    }

    /// Reads until the close; returns its code.
    pub async fn until_closed(&mut self, within: Duration) -> Option<u16> {
        loop {
            if let Seen::Closed(code) = self.next_within(within).await {
                return code;
            }
        }
    }

    /// Keeps reading (so pings are answered and counts noted) for `period`.
    pub async fn read_for(&mut self, period: Duration) {
        let deadline = tokio::time::Instant::now() + period;
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, self.stream.next()).await {
            if let Message::Text(text) = frame {
                let v: Value = serde_json::from_str(text.as_str()).unwrap();
                if v["event"] == "user count" {
                    self.count = v["data"].as_u64();
                }
            }
        }
    }

    /// Reads everything available for `quiet` with nothing new.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<(String, Value)> {
        let mut seen = Vec::new();
        while let Ok(Some(Ok(frame))) = tokio::time::timeout(quiet, self.stream.next()).await {
            if let Message::Text(text) = frame {
                let v: Value = serde_json::from_str(text.as_str()).unwrap();
                let event = v["event"].as_str().unwrap().to_owned();
                if event == "user count" {
                    self.count = v["data"].as_u64();
                }
                seen.push((event, v["data"].clone()));
            }
        }
        seen
    }
}

/// A socket read all the time by a task of its own (so it answers pings and
/// never stalls), which keeps every event it saw for the test to look at.
pub struct Recorder {
    seen: std::sync::Arc<std::sync::Mutex<Recorded>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Recorded {
    events: Vec<(String, Value)>,
    count: Option<u64>,
    /// `Some(code)` once the socket closed.
    closed: Option<Option<u16>>,
}

impl Recorder {
    /// Starts recording `ws` (knowing the count it has already seen).
    pub fn spawn(mut ws: Ws) -> Recorder {
        let seen =
            std::sync::Arc::new(std::sync::Mutex::new(Recorded { count: ws.count, ..Recorded::default() }));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let frame = ws.stream.next().await;
                let mut seen = record.lock().unwrap();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        let v: Value = serde_json::from_str(text.as_str()).expect("frames are JSON");
                        let event = v["event"].as_str().unwrap_or_default().to_owned();
                        if event == "user count" {
                            seen.count = v["data"].as_u64();
                        }
                        seen.events.push((event, v["data"].clone()));
                    }
                    Some(Ok(Message::Close(frame))) => {
                        seen.closed = Some(frame.map(|f| f.code.into()));
                        return;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        seen.closed.get_or_insert(None);
                        return;
                    }
                }
            }
        });
        Recorder { seen, task }
    }

    pub fn count(&self) -> Option<u64> {
        self.seen.lock().unwrap().count
    }

    pub fn closed(&self) -> Option<Option<u16>> {
        self.seen.lock().unwrap().closed
    }

    /// The events named `name`, in order.
    pub fn events(&self, name: &str) -> Vec<Value> {
        self.seen.lock().unwrap().events.iter().filter(|(e, _)| e == name).map(|(_, d)| d.clone()).collect()
    }

    /// How many `user` announcements of `username` with this `connected`.
    pub fn announced(&self, username: &str, connected: bool) -> usize {
        self.events("user")
            .iter()
            .filter(|n| n["username"] == username && n["connected"] == connected)
            .count()
    }

    /// The ids of every chat message seen, history first, in order.
    pub fn chat_ids(&self) -> Vec<i64> {
        let seen = self.seen.lock().unwrap();
        let mut ids = Vec::new();
        for (event, data) in &seen.events {
            match event.as_str() {
                "chat history" => {
                    ids.extend(data.as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()))
                }
                "chat message" => ids.push(data["id"].as_i64().unwrap()),
                _ => {}
            }
        }
        ids
    }

    pub async fn until_count(&self, n: u64, within: Duration) -> bool {
        crate::common::eventually(within, || async { self.count() == Some(n) }).await
    }

    pub async fn until_closed(&self, within: Duration) -> Option<Option<u16>> {
        crate::common::eventually(within, || async { self.closed().is_some() }).await;
        self.closed()
    }

    pub async fn until_chat(&self, id: i64, within: Duration) -> bool {
        crate::common::eventually(within, || async { self.chat_ids().last().is_some_and(|last| *last >= id) })
            .await
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Dropping the task drops the socket: its TCP connection ends.
        self.task.abort();
    }
}
