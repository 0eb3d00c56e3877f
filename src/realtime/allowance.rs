//! Each user's chat allowance on this node, shared by all their tabs: a first,
//! cheap check before a message is queued. The authority is the allowance
//! stored beside the log (`store::log`), which holds across nodes; a user who
//! is over their limit here is over it everywhere, so refusing early is exact.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::rate::{Rate, TokenBucket};

#[derive(Clone)]
pub struct ChatAllowance {
    rate: Rate,
    /// A plain map under a short lock: one lookup per message.
    buckets: Arc<Mutex<HashMap<i64, TokenBucket>>>,
}

impl ChatAllowance {
    pub fn new(rate: Rate) -> Self {
        Self { rate, buckets: Arc::default() }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes one token from the user's bucket; or says how long until one is there.
    pub fn try_take(&self, user_id: i64) -> Result<(), std::time::Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(user_id).or_insert_with(|| TokenBucket::full(self.rate));
        if bucket.try_take(self.rate) { Ok(()) } else { Err(bucket.wait(self.rate)) }
    }

    /// How long until the user has a token (`None`: they have one now).
    pub fn wait(&self, user_id: i64) -> Option<std::time::Duration> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let wait = buckets.get(&user_id).map_or(std::time::Duration::ZERO, |b| b.wait(self.rate));
        (!wait.is_zero()).then_some(wait)
    }

    /// Forgets buckets that have refilled (forgetting them changes nothing).
    pub fn forget_full(&self) {
        let rate = self.rate;
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, bucket| !bucket.is_full(rate));
    }
}
