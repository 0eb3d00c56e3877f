//! An OpenID Connect provider's discovery document and keys, fetched when
//! first needed and kept.
//!
//! Nothing is fetched at start: the first login discovers
//! (`ISSUER/.well-known/openid-configuration`, then the key set it names),
//! and the result serves every login for [`DISCOVERY_TTL`]. A failed
//! discovery is not kept, so the next login tries again and a provider that
//! was down comes back by itself; once one discovery has succeeded, a failed
//! renewal keeps the last one. The keys are fetched again, once, when an ID
//! token names a key id they do not have: that is how providers rotate.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use openidconnect::{
    DiscoveryError, IssuerUrl, JsonWebKeySet,
    core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata},
};

use super::{
    PROVIDER_TIMEOUT, SsoError,
    http::{Http, HttpError},
};

/// How long a discovery is used before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(60 * 60);

/// How long an old discovery's renewal may take before the old one is used
/// after all (a first discovery has all of `PROVIDER_TIMEOUT`).
const RENEWAL_TIMEOUT: Duration = Duration::from_secs(3);

/// What discovery found: the provider's endpoints and its published keys.
pub(super) struct Discovered {
    pub(super) metadata: CoreProviderMetadata,
    pub(super) keys: CoreJsonWebKeySet,
    at: Instant,
}

pub(super) struct Discovery {
    issuer: IssuerUrl,
    /// The ID token algorithms Lobby accepts, to warn of a provider that
    /// offers none of them.
    accepted: &'static [CoreJwsSigningAlgorithm],
    /// The last discovery. A std lock, held only to copy the `Arc` out:
    /// never across an await.
    current: RwLock<Option<Arc<Discovered>>>,
    /// Held while fetching, so that many logins at once after a restart (or
    /// a key rotation) cause one fetch, not one each.
    fetching: tokio::sync::Mutex<()>,
}

impl Discovery {
    pub(super) fn new(issuer: IssuerUrl, accepted: &'static [CoreJwsSigningAlgorithm]) -> Self {
        Self { issuer, accepted, current: RwLock::new(None), fetching: tokio::sync::Mutex::new(()) }
    }

    /// The provider's discovery, from the cache while it is fresh.
    pub(super) async fn get(&self, http: &Http) -> Result<Arc<Discovered>, SsoError> {
        if let Some(d) = self.cached().filter(|d| d.at.elapsed() < DISCOVERY_TTL) {
            return Ok(d);
        }
        let _fetching = self.fetching.lock().await;
        // Another login may have fetched it while this one waited.
        let stale = self.cached();
        if let Some(d) = stale.as_ref().filter(|d| d.at.elapsed() < DISCOVERY_TTL) {
            return Ok(d.clone());
        }
        let budget = if stale.is_some() { RENEWAL_TIMEOUT } else { PROVIDER_TIMEOUT };
        let discovered =
            tokio::time::timeout(budget, CoreProviderMetadata::discover_async(self.issuer.clone(), http))
                .await
                .unwrap_or(Err(DiscoveryError::Request(HttpError::TimedOut)));
        match discovered {
            Ok(metadata) => {
                let offered = metadata.id_token_signing_alg_values_supported();
                if !self.accepted.iter().any(|alg| offered.contains(alg)) {
                    tracing::warn!(
                        ?offered,
                        "the provider signs ID tokens with no public-key algorithm Lobby accepts: no login will pass"
                    );
                }
                let keys = metadata.jwks().clone();
                let fresh = Arc::new(Discovered { metadata, keys, at: Instant::now() });
                self.store(fresh.clone());
                tracing::info!(issuer = %self.issuer.as_str(), "OpenID Connect provider discovered");
                Ok(fresh)
            }
            // Better the last known endpoints and keys than no login at all.
            Err(e) => match stale {
                Some(d) => {
                    failed(e, "renewing the discovery (the last one stays in use)");
                    Ok(d)
                }
                None => Err(failed(e, "discovery")),
            },
        }
    }

    /// Fetches the key set again, unless another login already did since
    /// `seen` was read.
    pub(super) async fn refresh_keys(
        &self,
        http: &Http,
        seen: &Arc<Discovered>,
    ) -> Result<Arc<Discovered>, SsoError> {
        let _fetching = self.fetching.lock().await;
        if let Some(current) = self.cached().filter(|c| !Arc::ptr_eq(c, seen)) {
            return Ok(current);
        }
        let keys = JsonWebKeySet::fetch_async(seen.metadata.jwks_uri(), http)
            .await
            .map_err(|e| failed(e, "fetching the provider's keys"))?;
        let fresh = Arc::new(Discovered { metadata: seen.metadata.clone(), keys, at: seen.at });
        self.store(fresh.clone());
        tracing::info!("the provider's keys were fetched again for a key id not seen before");
        Ok(fresh)
    }

    fn cached(&self) -> Option<Arc<Discovered>> {
        // A poisoned lock still holds a whole Arc: nothing half-written.
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn store(&self, discovered: Arc<Discovered>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(discovered);
    }
}

/// What a failed discovery or key fetch means to the user; logs the detail.
fn failed(e: DiscoveryError<HttpError>, during: &'static str) -> SsoError {
    match e {
        DiscoveryError::Request(e) => e.to_sso(during),
        DiscoveryError::Response(status, _, _) => {
            tracing::warn!(%status, "{during} failed");
            SsoError::Unavailable
        }
        e => {
            tracing::warn!(error = %e, "{during} failed");
            SsoError::BadResponse
        }
    }
}
