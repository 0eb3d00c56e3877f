//! Every setting, read once from flags, the environment or `.env`.
//!
//! One clap struct: each field is a flag with an environment fallback, so
//! `LISTEN_ADDR=… lobby` and `lobby --listen-addr …` mean the same thing.
//! `.env.example` documents each of them.

use std::{fmt, net::SocketAddr, time::Duration};

use clap::{Parser, Subcommand};
use url::Url;

#[derive(Parser, Debug, Clone)]
#[command(name = "lobby", version, about = "A small, fast, self-hosted chat server")]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Where accounts, sessions and messages live: sqlite://PATH (created if
    /// missing) or postgres://USER@HOST/DATABASE (any number of nodes).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://lobby.db")]
    pub database_url: DatabaseUrl,

    /// The address and port to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:3000")]
    pub listen_addr: SocketAddr,

    /// Where to serve Prometheus metrics (`GET /metrics`); unset: not at all.
    /// Keep it off the public port (e.g. 127.0.0.1:9100).
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// The origin users reach the server at (scheme, host, port). Defaults to
    /// http:// + the listen address; an https URL makes the session cookie Secure.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<Url>,

    /// More host names (host or host:port, comma-separated) requests may be
    /// sent to, besides PUBLIC_URL's. With PUBLIC_URL set, a request for any
    /// other host gets 421 (so DNS rebinding cannot reach the server); an
    /// entry without a port allows that host on any port.
    #[arg(long, env = "ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<HostPort>,

    /// A client must finish sending a request's headers within this long of
    /// its first byte, or lose the connection.
    #[arg(long, env = "HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// A kept-alive HTTP connection waiting longer than this for its next
    /// request is closed.
    #[arg(long, env = "IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// A request's body must arrive within this long of its headers, whatever
    /// its pace; slower: 408 and the connection closes (but see MIN_BODY_RATE).
    #[arg(long, env = "BODY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,

    /// Past BODY_TIMEOUT, a long body (an upload) goes on only while its
    /// average pace since its headers is at least this: "16KiB/s", "1MB/s", or
    /// a plain number of bytes per second. 0: no body goes past BODY_TIMEOUT.
    #[arg(long, env = "MIN_BODY_RATE", default_value = "16KiB/s")]
    pub min_body_rate: ByteRate,

    /// Connections one client address may have that have not finished sending
    /// a request (headers or body); past that, new ones are closed at once.
    /// Idle kept-alive connections, WebSockets and TRUSTED_PROXIES do not
    /// count. 0: no limit.
    #[arg(long, env = "MAX_PENDING_PER_CLIENT", default_value_t = 32)]
    pub max_pending_per_client: usize,

    /// How long a session lives after login however active it is, e.g. "7d", "12h".
    #[arg(long, env = "SESSION_LIFETIME", default_value = "7d", value_parser = humantime::parse_duration)]
    pub session_lifetime: Duration,

    /// A session with no request and no open socket for this long ends.
    #[arg(long, env = "SESSION_IDLE", default_value = "24h", value_parser = humantime::parse_duration)]
    pub session_idle: Duration,

    /// How often expired sessions are deleted from the database.
    #[arg(long, env = "SESSION_CLEANUP_INTERVAL", default_value = "1m", value_parser = humantime::parse_duration)]
    pub session_cleanup_interval: Duration,

    /// How long a session or user read from the database is reused before it is read
    /// again. A logout elsewhere (another server on the same database) takes effect
    /// here within this long; on this server it is immediate. 0s turns caching off.
    #[arg(long, env = "SESSION_CACHE_TTL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub cache_ttl: Duration,

    /// Proxies (addresses or CIDR ranges, comma-separated) whose
    /// X-Forwarded-For is believed: behind them, the client's address is the
    /// last one in that header they did not add themselves. Empty: the TCP
    /// peer is the client.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ProxyNet>,

    /// Login and registration attempts one client address may make per minute.
    #[arg(long, env = "AUTH_ATTEMPTS_PER_MINUTE", default_value_t = 30)]
    pub auth_attempts_per_minute: u32,

    /// Failed logins a name may have from one client address in a burst before it must wait…
    #[arg(long, env = "LOGIN_FAILURE_BURST", default_value_t = 10)]
    pub login_failure_burst: u32,
    /// …and how long each further try waits for.
    #[arg(long, env = "LOGIN_FAILURE_REFILL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub login_failure_refill: Duration,

    /// Who may register: open (anyone), invite (only with an invite link) or
    /// closed. Once an admin chooses a mode on /admin, that choice wins.
    #[arg(long, env = "REGISTRATION", default_value = "open")]
    pub registration: crate::domain::RegistrationMode,

    /// Rooms one user may be in, the lobby aside; past it, joining or being
    /// added is refused (409).
    #[arg(long, env = "MAX_ROOMS_PER_USER", default_value_t = 1000)]
    pub max_rooms_per_user: u32,

    /// Who may make open and private rooms: anyone (any member) or admins.
    #[arg(long, env = "ROOM_CREATION", default_value = "anyone")]
    pub room_creation: RoomCreation,

    /// How long after sending a message its author may still edit it.
    #[arg(long, env = "EDIT_WINDOW", default_value = "15m", value_parser = humantime::parse_duration)]
    pub edit_window: Duration,

    #[command(flatten)]
    pub files: FileSettings,

    #[command(flatten)]
    pub argon2: HashCost,

    #[command(flatten)]
    pub database: DatabaseTuning,

    #[command(flatten)]
    pub live: LiveTuning,

    #[command(flatten)]
    pub sign_in: SignIn,

    #[command(flatten)]
    pub push: PushSettings,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Serve (the default).
    Serve,
    /// Apply the migrations and exit.
    Migrate,
    /// Change who is an admin (on the database of DATABASE_URL; a running
    /// server sees the change within a few seconds).
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    /// Make the user an admin.
    Grant { username: String },
    /// Make the user a member again (the last admin stays one).
    Revoke { username: String },
}

/// argon2id cost. The defaults are OWASP's first recommendation.
#[derive(clap::Args, Debug, Clone)]
pub struct HashCost {
    /// Memory per hash, in KiB.
    #[arg(long = "argon2-memory-kib", env = "ARGON2_MEMORY_KIB", default_value_t = 19 * 1024)]
    pub memory_kib: u32,
    /// Passes over the memory.
    #[arg(long = "argon2-iterations", env = "ARGON2_ITERATIONS", default_value_t = 2)]
    pub iterations: u32,
    /// Lanes per hash.
    #[arg(long = "argon2-parallelism", env = "ARGON2_PARALLELISM", default_value_t = 1)]
    pub parallelism: u32,
    /// Hashes computed at once (0 = one per CPU core but one, which is left to the sockets).
    #[arg(long = "hash-concurrency", env = "HASH_CONCURRENCY", default_value_t = 0)]
    pub concurrency: usize,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DatabaseTuning {
    /// Connections in the pool.
    #[arg(long = "db-max-connections", env = "DB_MAX_CONNECTIONS", default_value_t = 8)]
    pub pool_size: u32,
    /// How long a statement waits for a lock held by another writer.
    #[arg(long = "db-busy-timeout", env = "DB_BUSY_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub busy_timeout: Duration,
    /// How long a request waits for a free pooled connection before answering 503.
    #[arg(long = "db-acquire-timeout", env = "DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub acquire_timeout: Duration,
    /// PostgreSQL: a statement running longer is cancelled by the server (and
    /// a transaction left idle twice as long is ended).
    #[arg(long = "db-statement-timeout", env = "DB_STATEMENT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub statement_timeout: Duration,
    /// SQLite durability: NORMAL survives a process crash, FULL also a power loss.
    #[arg(long = "sqlite-synchronous", env = "SQLITE_SYNCHRONOUS", default_value = "normal")]
    pub sqlite_synchronous: Synchronous,
}

/// The WebSocket side: liveness, chat rate, limits.
#[derive(clap::Args, Debug, Clone)]
pub struct LiveTuning {
    /// How often the server pings each connection.
    #[arg(long, env = "PING_INTERVAL", default_value = "25s", value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,
    /// How long a connection has to answer a ping before it is closed and counted out.
    /// Must be shorter than PING_INTERVAL.
    #[arg(long, env = "PING_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    pub ping_timeout: Duration,
    /// Chat messages a user (all tabs together) may send in a burst.
    #[arg(long, env = "CHAT_BURST", default_value_t = 20)]
    pub chat_burst: u32,
    /// Chat messages per second that refill the burst.
    #[arg(long, env = "CHAT_RATE", default_value_t = 5.0)]
    pub chat_rate: f64,
    /// A socket that does not take a write within this long is closed.
    #[arg(long, env = "SEND_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub send_timeout: Duration,
    /// How often open sockets' sessions are checked for expiry (logout closes them at once).
    #[arg(long, env = "SESSION_CHECK_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub session_check_interval: Duration,
    /// While messages keep coming, each node reads new ones from the log and
    /// sends them at most once per this window, so each socket is woken once
    /// for several messages and writes them in one go; a message after a
    /// quiet moment goes out at once. 0s: read after every commit.
    #[arg(long, env = "FANOUT_WINDOW", default_value = "25ms", value_parser = humantime::parse_duration)]
    pub fanout_window: Duration,
    /// Events a socket may fall behind before it is caught up from the history or closed (1013).
    #[arg(long, env = "EVENT_BACKLOG", default_value_t = 1024)]
    pub event_backlog: usize,
    /// `user count` goes out once joins and leaves pause this long (keep it well
    /// under 100ms: the contract's bound after the last change)…
    #[arg(long, env = "COUNT_QUIET", default_value = "30ms", value_parser = humantime::parse_duration)]
    pub count_quiet: Duration,
    /// …or this long after the first change while they keep coming (a storm of
    /// joins costs each socket about one count frame per this period).
    #[arg(long, env = "COUNT_MAX_DELAY", default_value = "1s", value_parser = humantime::parse_duration)]
    pub count_max_delay: Duration,
    /// The most WebSocket connections held at once (0 = as many as the open-file limit allows).
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,
    /// Open WebSockets one user may have (all tabs, on all nodes); one more upgrade gets 429.
    #[arg(long, env = "MAX_SOCKETS_PER_USER", default_value_t = 20)]
    pub max_sockets_per_user: usize,
    /// PostgreSQL: a node whose heartbeat is older than this is counted out by
    /// the others, and a node that cannot write its heartbeat this long closes
    /// its sockets. The heartbeat runs every tenth of it (at most every second).
    #[arg(long, env = "NODE_TTL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub node_ttl: Duration,
}

/// Sign-in through GitHub or one OpenID Connect provider (see `sso`). Each
/// is on when its client id and secret are both set.
#[derive(clap::Args, Debug, Clone)]
pub struct SignIn {
    /// The client ID of Lobby's OAuth app on GitHub; with GITHUB_CLIENT_SECRET
    /// it turns on "Log in with GitHub". The app's callback URL is
    /// PUBLIC_URL/auth/github/callback.
    #[arg(long, env = "GITHUB_CLIENT_ID")]
    pub github_client_id: Option<String>,
    /// The client secret of that OAuth app.
    #[arg(long, env = "GITHUB_CLIENT_SECRET", hide_env_values = true)]
    pub github_client_secret: Option<Secret>,
    /// Where GitHub's sign-in pages are (another for GitHub Enterprise Server).
    #[arg(long, env = "GITHUB_URL", default_value = "https://github.com")]
    pub github_url: String,
    /// Where GitHub's REST API is (GitHub Enterprise Server: https://HOST/api/v3).
    #[arg(long, env = "GITHUB_API_URL", default_value = "https://api.github.com")]
    pub github_api_url: String,

    /// The issuer of an OpenID Connect provider, exactly as it names itself
    /// (found at OIDC_ISSUER/.well-known/openid-configuration). With
    /// OIDC_CLIENT_ID and OIDC_CLIENT_SECRET it turns on its login button.
    /// The client's redirect URI is PUBLIC_URL/auth/oidc/callback.
    #[arg(long, env = "OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// Lobby's client ID at that provider.
    #[arg(long, env = "OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// Lobby's client secret at that provider.
    #[arg(long, env = "OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<Secret>,
    /// The provider's name on its button ("Log in with NAME"); unset: the issuer's host.
    #[arg(long, env = "OIDC_NAME")]
    pub oidc_name: Option<String>,
}

/// Files shared in rooms: where they are kept, and how much may come.
#[derive(clap::Args, Debug, Clone)]
pub struct FileSettings {
    /// Where uploaded files are kept: file://DIR (a directory; relative to
    /// the working directory unless it starts with /) or s3://BUCKET[/PREFIX]
    /// (any S3-compatible store, see S3_*). Unset: uploads/ beside the
    /// SQLite file. On PostgreSQL it must be set, to a store every node reaches.
    #[arg(long, env = "STORAGE_URL")]
    pub storage_url: Option<String>,
    /// The S3 endpoint (http:// allowed, for a store on the same network);
    /// unset: AWS itself.
    #[arg(long, env = "S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    #[arg(long, env = "S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,
    #[arg(long, env = "S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<Secret>,
    /// The largest file one upload may carry: "10MiB", "500kB", or a number of bytes.
    #[arg(long, env = "MAX_UPLOAD", default_value = "10MiB")]
    pub max_upload: ByteSize,
    /// Uploads one user may make in any hour (all nodes together).
    #[arg(long, env = "UPLOADS_PER_HOUR", default_value_t = 60)]
    pub uploads_per_hour: u32,
}

/// A secret setting (a client secret): its value never reaches `Debug`
/// output or a log line; `expose` is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Web Push: notifications when no tab is open.
#[derive(clap::Args, Debug, Clone)]
pub struct PushSettings {
    /// Who runs this server, as push services are told (VAPID's `sub`): a
    /// `mailto:` address or an `https:` URL. Unset: PUBLIC_URL.
    #[arg(long, env = "VAPID_SUBJECT")]
    pub vapid_subject: Option<String>,
    /// Also send to push endpoints that are plain http, or whose host is (or
    /// resolves to) a loopback, private, link-local or multicast address.
    /// For tests only: off, a subscription cannot make the server send
    /// requests into its own network.
    #[arg(long = "push-allow-insecure", env = "PUSH_ALLOW_INSECURE", default_value = "false",
          action = clap::ArgAction::Set)]
    pub allow_insecure: bool,
    /// At most one push per user and room per this long; messages held back
    /// meanwhile go out at its end, in one push that counts them.
    #[arg(long = "push-window", env = "PUSH_WINDOW", default_value = "30s", value_parser = humantime::parse_duration)]
    pub window: Duration,
    /// How long a push service has to answer one push.
    #[arg(long = "push-timeout", env = "PUSH_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Pushes this node sends at once.
    #[arg(
        id = "push_concurrency",
        long = "push-concurrency",
        env = "PUSH_CONCURRENCY",
        default_value_t = 16
    )]
    pub concurrency: usize,
    /// A push that keeps failing (not 404 or 410) is tried again, further
    /// apart each time, for this long.
    #[arg(long = "push-retry-for", env = "PUSH_RETRY_FOR", default_value = "10m", value_parser = humantime::parse_duration)]
    pub retry_for: Duration,
}

/// A trusted proxy: one address (`10.0.0.5`) or a range (`10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet(pub ipnet::IpNet);

impl std::str::FromStr for ProxyNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(net) = s.parse::<ipnet::IpNet>() {
            return Ok(Self(net));
        }
        s.parse::<std::net::IpAddr>()
            .map(|ip| Self(ipnet::IpNet::from(ip)))
            .map_err(|_| format!("{s:?} is neither an IP address nor a CIDR range (such as 10.0.0.0/8)"))
    }
}

/// A pace in bytes per second: a plain number of bytes ("16384"), or a
/// number with a unit, "/s" optional: B, kB or KB (1000), KiB (1024), MB,
/// MiB, GB, GiB; "16KiB/s", "1.5 MB/s". Units are read without regard to case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRate(pub u64);

impl ByteRate {
    pub fn per_second(self) -> u64 {
        self.0
    }
}

impl std::str::FromStr for ByteRate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let text = text.strip_suffix("/s").unwrap_or(text).trim_end();
        bytes(text).map(ByteRate).ok_or_else(|| {
            format!("{s:?} is not a rate in bytes per second (such as 16KiB/s, 1MB/s or 16384)")
        })
    }
}

/// A size in bytes: a plain number ("10485760"), or a number with a unit
/// (B, kB or KB, KiB, MB, MiB, GB, GiB), read without regard to case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        bytes(s.trim())
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is not a size in bytes (such as 10MiB, 500kB or 10485760)"))
    }
}

/// "16KiB", "1.5 MB", "16384": the number of bytes, or `None`.
fn bytes(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    let bytes = number * unit as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return None;
    }
    Some(bytes.round() as u64)
}

/// A host name requests may name in `Host`: `chat.example.com`,
/// `chat.example.com:8443`, `10.0.0.5`, `[::1]:3000`. The host is kept as
/// the URL standard writes it (lowercase, IDNA); no port means any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: Option<u16>,
}

impl HostPort {
    /// Reads `host[:port]` (a `Host` header, or an `ALLOWED_HOSTS` entry).
    pub fn parse(s: &str) -> Option<HostPort> {
        let (host, port) = match s.strip_prefix('[') {
            // [IPv6] or [IPv6]:port
            Some(rest) => {
                let (inside, after) = rest.split_once(']')?;
                (&s[..inside.len() + 2], if after.is_empty() { None } else { Some(after.strip_prefix(':')?) })
            }
            None => match s.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (s, None),
            },
        };
        let port = match port {
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Some(digits.parse().ok()?)
            }
            Some(_) => return None,
            None => None,
        };
        let host = url::Host::parse(host).ok()?.to_string();
        Some(HostPort { host, port })
    }
}

impl std::str::FromStr for HostPort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        HostPort::parse(s).ok_or_else(|| {
            format!(
                "{s:?} is not a host name with an optional port (such as chat.example.com or 10.0.0.5:3000)"
            )
        })
    }
}

/// Who may make rooms (`ROOM_CREATION`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomCreation {
    Anyone,
    Admins,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    Normal,
    Full,
}

impl Config {
    /// Settings for tests and embedding: defaults for everything, no flags read.
    pub fn defaults() -> Self {
        // Parsing an empty command line cannot fail: every field has a default.
        Config::parse_from(["lobby"])
    }
}

/// A database URL whose password never reaches a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                f.write_str(url.as_str())
            }
            _ => f.write_str(&self.0),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_database_urls_are_hidden() {
        let url = DatabaseUrl::new("postgres://lobby:hunter22@db/lobby");
        assert_eq!(url.to_string(), "postgres://lobby:***@db/lobby");
        assert!(!format!("{url:?}").contains("hunter22"));
    }

    #[test]
    fn client_secrets_are_hidden() {
        let c = Config::parse_from([
            "lobby",
            "--github-client-id",
            "Iv1.abc",
            "--github-client-secret",
            "gh-hunter22",
            "--oidc-client-secret",
            "oidc-hunter22",
        ]);
        let debug = format!("{c:?}");
        assert!(debug.contains("Iv1.abc"));
        assert!(!debug.contains("hunter22"), "{debug}");
        assert_eq!(c.sign_in.github_client_secret.unwrap().expose(), "gh-hunter22");
        assert_eq!(c.sign_in.github_url, "https://github.com");
        assert_eq!(c.sign_in.github_api_url, "https://api.github.com");
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }

    #[test]
    fn admin_commands_and_community_settings() {
        let c = Config::parse_from(["lobby", "admin", "grant", "alice"]);
        assert_eq!(
            c.command,
            Some(Command::Admin { action: AdminAction::Grant { username: "alice".into() } })
        );
        let c = Config::parse_from(["lobby", "--registration", "invite", "--edit-window", "5m"]);
        assert_eq!(c.registration, crate::domain::RegistrationMode::Invite);
        assert_eq!(c.edit_window, Duration::from_secs(300));
        assert!(Config::try_parse_from(["lobby", "--registration", "sometimes"]).is_err());
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges() {
        let c = Config::parse_from(["lobby", "--trusted-proxies", "127.0.0.1,10.0.0.0/8,::1"]);
        assert_eq!(c.trusted_proxies.len(), 3);
        assert!(c.trusted_proxies[1].0.contains(&"10.2.3.4".parse::<std::net::IpAddr>().unwrap()));
        assert!(Config::try_parse_from(["lobby", "--trusted-proxies", "nginx"]).is_err());
        assert!(Config::defaults().trusted_proxies.is_empty());
    }

    #[test]
    fn allowed_hosts_are_hosts_with_an_optional_port() {
        let c =
            Config::parse_from(["lobby", "--allowed-hosts", "Chat.Example.com:8443, 10.0.0.5,[::1]:3000"]);
        let hosts: Vec<_> = c.allowed_hosts.iter().map(|h| (h.host.as_str(), h.port)).collect();
        assert_eq!(hosts, [("chat.example.com", Some(8443)), ("10.0.0.5", None), ("[::1]", Some(3000))]);
        for bad in ["https://chat.example.com", "chat.example.com/x", "a b", "host:", "host:99999", "::1", ""]
        {
            assert!(bad.parse::<HostPort>().is_err(), "{bad:?}");
        }
        assert!(Config::defaults().allowed_hosts.is_empty());
    }

    #[test]
    fn rates_are_bytes_per_second_with_or_without_a_unit() {
        for (text, bytes) in [
            ("16KiB/s", 16_384),
            ("16384", 16_384),
            ("16384/s", 16_384),
            ("1.5 MB/s", 1_500_000),
            ("2mib", 2 << 20),
            ("10kB/s", 10_000),
            ("0", 0),
            (" 512 B/s ", 512),
        ] {
            assert_eq!(text.parse::<ByteRate>(), Ok(ByteRate(bytes)), "{text}");
        }
        for bad in ["", "fast", "16 KiB/h", "-1", "1e400", "KiB/s", "1.2.3"] {
            let err = bad.parse::<ByteRate>().unwrap_err();
            assert!(err.contains("bytes per second"), "{bad}: {err}");
        }
    }

    #[test]
    fn sizes_are_bytes_with_or_without_a_unit() {
        for (text, bytes) in
            [("10MiB", 10 << 20), ("10485760", 10 << 20), ("500 kB", 500_000), ("1gib", 1 << 30)]
        {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
        for bad in ["", "big", "10 MiB/h", "-1"] {
            assert!(bad.parse::<ByteSize>().unwrap_err().contains("size in bytes"), "{bad}");
        }
        let c = Config::defaults();
        assert_eq!((c.files.max_upload, c.files.uploads_per_hour), (ByteSize(10 << 20), 60));
        assert!(c.files.storage_url.is_none());
        let c = Config::parse_from(["lobby", "--s3-secret-access-key", "hunter22"]);
        assert!(!format!("{c:?}").contains("hunter22"));
    }

    #[test]
    fn defaults_suit_production() {
        let c = Config::defaults();
        assert_eq!(c.body_timeout, Duration::from_secs(30));
        assert_eq!(c.min_body_rate, ByteRate(16 * 1024));
        assert_eq!(c.max_pending_per_client, 32);
        assert_eq!(c.listen_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.argon2.memory_kib, 19456);
        assert_eq!(c.session_lifetime, Duration::from_secs(7 * 24 * 3600));
        // The contract's push rules: one push per user and room per 30 s,
        // retried for 10 minutes, only to public https endpoints.
        assert_eq!(c.push.window, Duration::from_secs(30));
        assert_eq!(c.push.retry_for, Duration::from_secs(600));
        assert!(!c.push.allow_insecure);
        assert_eq!(c.push.vapid_subject, None);
    }

    #[test]
    fn push_allow_insecure_is_true_or_false() {
        assert!(Config::parse_from(["lobby", "--push-allow-insecure", "true"]).push.allow_insecure);
        assert!(Config::try_parse_from(["lobby", "--push-allow-insecure", "yes please"]).is_err());
    }
}
