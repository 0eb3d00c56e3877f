//! Web Push: notifications for users with no tab open, through the push
//! service of each browser they subscribed in (RFC 8030), encrypted for
//! that browser (RFC 8291, aes128gcm) and signed by this server (RFC 8292,
//! VAPID).
//!
//! It sits above `realtime` (it asks presence who has a socket open, and
//! follows what the follower publishes) and below `web` (which offers its
//! routes); the database decides everything that must happen once on a
//! cluster (`store::push`).
//!
//! - [`vapid`]: the server's key pair and the signed token.
//! - [`endpoint`]: where pushes may be sent (https, public addresses only).
//! - [`queue`]: planning pushes for new messages, and taking those due.
//! - [`sender`]: sending, with bounded concurrency, timeouts and retries.

pub mod endpoint;
mod queue;
pub mod sender;
pub mod vapid;

use std::{sync::Arc, time::Duration};

use tokio::sync::{Notify, Semaphore};

use crate::{
    config::PushSettings,
    domain::push::SubscriptionKeys,
    realtime::Realtime,
    store::{Actor, Store, StoreError, push::PushError},
    tasks::Tasks,
};
use endpoint::{BadEndpoint, Endpoints, GuardedResolver};
use vapid::{UnreadableKey, Vapid};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not read or store the VAPID key pair: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] UnreadableKey),
    #[error("could not make the push client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error(transparent)]
    Endpoint(#[from] BadEndpoint),
    #[error("Log in first.")]
    NotAllowed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PushError> for SubscribeError {
    fn from(e: PushError) -> Self {
        match e {
            PushError::NotAllowed => SubscribeError::NotAllowed,
            PushError::Store(e) => SubscribeError::Store(e),
        }
    }
}

/// Web Push, to the web layer. Cheap to clone.
#[derive(Clone)]
pub struct Push(Arc<Shared>);

struct Shared {
    store: Store,
    vapid: Arc<Vapid>,
    endpoints: Endpoints,
}

impl Push {
    /// Reads the VAPID key pair (made now if this is the first start ever)
    /// and starts the queue and the sender; they stop with `tasks`.
    /// `subject` is VAPID's `sub` (a `mailto:` or https URL).
    pub async fn start(
        store: &Store,
        realtime: &Realtime,
        settings: &PushSettings,
        subject: String,
        tasks: &Tasks,
    ) -> Result<Push, StartError> {
        let (private, _) = store.push_keys(Vapid::generate()).await?;
        let vapid = Arc::new(Vapid::from_private(&private, subject)?);
        let endpoints = Endpoints { allow_insecure: settings.allow_insecure };
        let mut client = reqwest::Client::builder()
            // A push service answers; it never sends us elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .user_agent(concat!("Lobby/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_insecure {
            client = client.https_only(true).dns_resolver(Arc::new(GuardedResolver));
        }
        let sent = Arc::new(Notify::new());
        let sender = sender::Sender {
            store: store.clone(),
            client: client.build()?,
            vapid: vapid.clone(),
            endpoints,
            timeout: settings.timeout,
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            wake: sent.clone(),
        };
        tasks.spawn(sender.run(tasks.clone()));
        let queue = queue::Queue {
            store: store.clone(),
            realtime: realtime.clone(),
            window: settings.window.max(Duration::from_millis(1)),
            retry_for: settings.retry_for,
            sent,
        };
        tasks.spawn(queue.run(tasks.clone()));
        Ok(Push(Arc::new(Shared { store: store.clone(), vapid, endpoints })))
    }

    /// The key browsers subscribe with (`applicationServerKey`): base64url
    /// of the uncompressed P-256 point.
    pub fn public_key(&self) -> &str {
        self.0.vapid.public_key()
    }

    /// Keeps a browser's subscription for `by`'s session, once its endpoint
    /// passes the rules.
    pub async fn subscribe(
        &self,
        by: Actor,
        endpoint: &str,
        keys: &SubscriptionKeys,
    ) -> Result<(), SubscribeError> {
        let url = self.0.endpoints.check(endpoint).await?;
        self.0.store.subscribe_push(by, url.as_str(), keys).await?;
        Ok(())
    }

    /// Forgets one of `by`'s subscriptions.
    pub async fn unsubscribe(&self, by: Actor, endpoint: &str) -> Result<(), SubscribeError> {
        // Stored as parsed: the same URL written another way is the same endpoint.
        let endpoint = url::Url::parse(endpoint).map_or_else(|_| endpoint.to_owned(), String::from);
        self.0.store.unsubscribe_push(by, &endpoint).await?;
        Ok(())
    }
}
