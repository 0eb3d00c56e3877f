//! Building and running the server. The listener is bound here and its
//! address reported, so tests start the real app on port 0; the shutdown
//! signal is passed in, so tests can stop it too.

use std::{future::Future, net::SocketAddr};

use tokio::{net::TcpListener, task::JoinHandle};
use tower_sessions::session_store::ExpiredDeletion;
use url::Url;

use crate::{
    accounts::{Accounts, HashError, Hasher},
    config::Config,
    db::{self, DbError, Pool},
    web::{self, AppState, SessionSettings, origin::PublicOrigin},
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("could not listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error("PUBLIC_URL {0} must be an http:// or https:// URL")]
    PublicUrl(Url),
}

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    pool: Pool,
    public_url: Url,
    session_cleanup: JoinHandle<()>,
}

impl Application {
    /// Opens (and migrates) the database, binds the listener and wires the app.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let pool = db::connect(&config.database_url, &config.database).await?;
        db::migrate(&pool).await?;

        let listener = TcpListener::bind(config.listen_addr)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen_addr, source })?;
        let local_addr =
            listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen_addr, source })?;
        let public_url = match config.public_url.clone() {
            Some(url) if matches!(url.scheme(), "http" | "https") => url,
            Some(url) => return Err(StartError::PublicUrl(url)),
            // Parsing "http://" + a socket address cannot fail.
            None => Url::parse(&format!("http://{local_addr}")).map_err(|_| StartError::Bind {
                addr: local_addr,
                source: std::io::Error::other("listen address is not a URL host"),
            })?,
        };

        let hasher = Hasher::new(&config.argon2).await?;
        let state = AppState {
            pool: pool.clone(),
            accounts: Accounts::new(pool.clone(), hasher),
            origin: PublicOrigin::of(&public_url),
        };
        let store = db::session_store(&pool);
        let session_cleanup =
            tokio::spawn(delete_expired_sessions(store.clone(), config.session_cleanup_interval));
        let sessions = SessionSettings {
            store,
            lifetime: config.session_lifetime,
            secure: public_url.scheme() == "https",
        };
        let router = web::router(state, sessions);
        Ok(Self { listener, router, pool, public_url, session_cleanup })
    }

    pub fn local_addr(&self) -> SocketAddr {
        // The listener was bound successfully, so it has an address.
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    pub fn public_url(&self) -> &Url {
        &self.public_url
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets requests
    /// in flight finish, and closes the pool.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr(), public_url = %self.public_url, "listening");
        let served = axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await;
        self.session_cleanup.abort();
        self.pool.close().await;
        tracing::info!("stopped");
        served
    }
}

/// The background task that deletes expired sessions. A failed sweep is
/// logged and retried on the next tick: it must not end the task.
async fn delete_expired_sessions(store: db::SessionStore, period: std::time::Duration) {
    let mut tick = tokio::time::interval(period.max(std::time::Duration::from_secs(1)));
    loop {
        tick.tick().await;
        if let Err(e) = store.delete_expired().await {
            tracing::warn!(error = %e, "could not delete expired sessions");
        }
    }
}
