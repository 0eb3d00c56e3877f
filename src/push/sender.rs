//! Sending: deliveries leased from the queue go out with bounded
//! concurrency (`PUSH_CONCURRENCY` at once per node), each bounded in time
//! (`PUSH_TIMEOUT`), on tasks of their own: a push service that hangs holds
//! a permit and nothing else, and chat never waits on it. The answer
//! decides what becomes of the delivery: 2xx done; 404 or 410 the
//! subscription is gone and deleted; anything else (a 5xx, a 429, a
//! redirect, which is never followed, a timeout, a refused connection) is
//! tried again later, further apart each time, until `PUSH_RETRY_FOR`.

use std::{sync::Arc, time::Duration};

use tokio::sync::{Notify, Semaphore};
use url::Url;
use web_push_native::{Auth, WebPushBuilder, p256::PublicKey};

use super::{
    endpoint::{Endpoints, Refused},
    vapid::Vapid,
};
use crate::{
    domain::push::decode,
    store::{Store, log::now_millis, push::Delivery},
    tasks::Tasks,
};

/// How long a push service may keep a push for a browser that is offline
/// (its `TTL`): a chat notification older than this is of little use.
const TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// Deliveries are looked for at least this often (a retry falls due).
const TICK: Duration = Duration::from_secs(1);
/// The first retry waits this long, each next one twice as long…
const FIRST_RETRY: Duration = Duration::from_secs(5);
/// …up to this.
const LONGEST_RETRY: Duration = Duration::from_secs(120);

/// How long to wait before attempt `attempt + 1`, after `attempt` failed
/// ones: 5 s, 10 s, 20 s… up to 2 minutes.
pub fn backoff(attempt: i64) -> Duration {
    let doublings = attempt.clamp(1, 16) - 1;
    (FIRST_RETRY * 2u32.pow(doublings as u32)).min(LONGEST_RETRY)
}

/// What one attempt came to.
#[derive(Debug)]
enum Outcome {
    Sent,
    /// 404 or 410: the subscription is no more.
    Gone(u16),
    /// Worth another try later.
    Failed(String),
    /// Never to be sent: the endpoint or its keys cannot be sent to.
    Refused(String),
}

#[derive(Clone)]
pub(super) struct Sender {
    pub store: Store,
    pub client: reqwest::Client,
    pub vapid: Arc<Vapid>,
    pub endpoints: Endpoints,
    pub timeout: Duration,
    pub permits: Arc<Semaphore>,
    /// Wakes the loop: deliveries were queued, or a send finished.
    pub wake: Arc<Notify>,
}

impl Sender {
    /// Claims and sends deliveries until the tasks stop.
    pub async fn run(self, tasks: Tasks) {
        let mut forgotten = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
                _ = tasks.stopping() => return,
            }
            if forgotten.elapsed() > Duration::from_secs(60) {
                forgotten = tokio::time::Instant::now();
                if let Err(e) = self.store.forget_expired_deliveries(now_millis()).await {
                    tracing::warn!(error = %e, "could not forget expired pushes");
                }
            }
            self.send_due(&tasks).await;
        }
    }

    /// Claims as many due deliveries as there are free permits, and sends
    /// each on a task of its own.
    async fn send_due(&self, tasks: &Tasks) {
        loop {
            let free = self.permits.available_permits();
            if free == 0 {
                return; // a send that finishes wakes the loop
            }
            let now = now_millis();
            // Longer than any attempt takes: a node that dies mid-send leaves
            // its deliveries to be taken again once this has passed.
            let lease = now + (self.timeout * 2 + Duration::from_secs(30)).as_millis() as i64;
            let claimed = match self.store.claim_deliveries(now, free, lease).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim pushes to send");
                    return;
                }
            };
            let full = claimed.len() == free;
            for delivery in claimed {
                let Ok(permit) = self.permits.clone().acquire_owned().await else { return };
                let sender = self.clone();
                let stop = tasks.stop_token();
                tasks.spawn(async move {
                    tokio::select! {
                        outcome = sender.attempt(&delivery) => sender.record(&delivery, outcome).await,
                        // Shutdown does not wait for a push service: the lease
                        // runs out and the delivery is sent after the restart.
                        _ = stop.cancelled() => {}
                    }
                    drop(permit);
                    sender.wake.notify_one();
                });
            }
            if !full {
                return;
            }
        }
    }

    /// One attempt: encrypt (RFC 8291), sign (RFC 8292), send (RFC 8030).
    #[tracing::instrument(skip_all, fields(delivery = delivery.id, attempt = delivery.attempts + 1))]
    async fn attempt(&self, delivery: &Delivery) -> Outcome {
        let url = match self.endpoints.check_written(&delivery.endpoint) {
            Ok(url) => url,
            Err(e) => return Outcome::Refused(e.to_string()),
        };
        let request = match self.request(delivery, &url) {
            Ok(request) => request,
            Err(why) => return Outcome::Refused(why),
        };
        match tokio::time::timeout(self.timeout, self.client.execute(request)).await {
            Err(_) => Outcome::Failed("no answer in time".into()),
            Ok(Err(e)) if refused_by_resolver(&e) => Outcome::Refused(error_chain(&e)),
            Ok(Err(e)) => Outcome::Failed(error_chain(&e)),
            Ok(Ok(response)) => match response.status().as_u16() {
                200..=299 => Outcome::Sent,
                status @ (404 | 410) => Outcome::Gone(status),
                status => Outcome::Failed(format!("the push service answered {status}")),
            },
        }
    }

    fn request(&self, delivery: &Delivery, url: &Url) -> Result<reqwest::Request, String> {
        let p256dh = decode(&delivery.p256dh)
            .and_then(|key| PublicKey::from_sec1_bytes(&key).ok())
            .ok_or("the subscription's p256dh is not a P-256 key")?;
        let auth = decode(&delivery.auth)
            .filter(|a| a.len() == 16)
            .ok_or("the subscription's auth is not 16 bytes")?;
        let uri: http::Uri = delivery.endpoint.parse().map_err(|_| "the endpoint is not a URI")?;
        let mut request = WebPushBuilder::new(uri, p256dh, Auth::clone_from_slice(&auth))
            .with_valid_duration(TTL)
            .build(delivery.payload.clone().into_bytes())
            .map_err(|e| format!("could not encrypt the push: {e}"))?;
        let now = now_millis() / 1000;
        let headers = request.headers_mut();
        let authorization = self.vapid.authorization(url, now);
        headers.insert(http::header::AUTHORIZATION, authorization.parse().map_err(|_| "a bad VAPID header")?);
        // A newer push for the room replaces one still waiting at the push
        // service (RFC 8030 section 5.4), as the notification replaces the
        // one shown (its tag).
        headers.insert("topic", http::HeaderValue::from(delivery.room_id).clone());
        headers.insert("urgency", http::HeaderValue::from_static("normal"));
        reqwest::Request::try_from(request).map_err(|e| format!("could not make the request: {e}"))
    }

    async fn record(&self, delivery: &Delivery, outcome: Outcome) {
        let result = match &outcome {
            Outcome::Sent => {
                tracing::debug!(delivery = delivery.id, "push sent");
                metrics::counter!(crate::metrics::PUSHES, "outcome" => "sent").increment(1);
                self.store.delivery_done(delivery.id).await
            }
            Outcome::Gone(status) => {
                tracing::info!(delivery = delivery.id, status, "the push subscription is gone: deleted");
                metrics::counter!(crate::metrics::PUSHES, "outcome" => "gone").increment(1);
                self.store.subscription_gone(delivery.subscription_id).await
            }
            Outcome::Refused(why) => {
                tracing::warn!(delivery = delivery.id, why, "a push was not sent");
                metrics::counter!(crate::metrics::PUSHES, "outcome" => "refused").increment(1);
                self.store.delivery_done(delivery.id).await
            }
            Outcome::Failed(why) => {
                let now = now_millis();
                let next = now + backoff(delivery.attempts + 1).as_millis() as i64;
                metrics::counter!(crate::metrics::PUSHES, "outcome" => "failed").increment(1);
                if next >= delivery.expires_at {
                    tracing::warn!(delivery = delivery.id, why, "a push kept failing: given up");
                    self.store.delivery_done(delivery.id).await
                } else {
                    tracing::info!(delivery = delivery.id, why, retry_in_ms = next - now, "a push failed");
                    self.store.delivery_later(delivery.id, next).await
                }
            }
        };
        if let Err(e) = result {
            // The lease runs out and the delivery is taken again.
            tracing::warn!(error = %e, delivery = delivery.id, "could not record a push's outcome");
        }
    }
}

/// Did the client fail because our resolver refused the name?
fn refused_by_resolver(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<Refused>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// "outer: inner: innermost", so the log says what failed.
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_within_thirty_seconds_and_fit_ten_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(5), Duration::from_secs(80));
        assert_eq!(backoff(6), LONGEST_RETRY);
        assert_eq!(backoff(1000), LONGEST_RETRY);
        let tries_in_ten_minutes = (1..)
            .scan(Duration::ZERO, |at, n| {
                *at += backoff(n);
                (*at < Duration::from_secs(600)).then_some(n)
            })
            .count();
        assert!((6..=12).contains(&tries_in_ten_minutes), "{tries_in_ten_minutes}");
    }
}
