//! Who is online, by name, with the `online users` frame made once per change.

use std::{collections::BTreeMap, sync::Arc};

use tungstenite::Utf8Bytes;

use crate::realtime::wire::frame;

/// The names of the users online, sorted without regard to case, with the
/// frame that lists them made once per change (a storm of connects between
/// two changes shares it).
#[derive(Debug, Default)]
pub(super) struct OnlineNames {
    /// Lowercase name → the name as registered.
    names: BTreeMap<String, Arc<str>>,
    frame: Option<Utf8Bytes>,
}

impl OnlineNames {
    pub(super) fn set(&mut self, name: &str, online: bool) {
        if online {
            self.names.insert(name.to_ascii_lowercase(), name.into());
        } else {
            self.names.remove(&name.to_ascii_lowercase());
        }
        self.frame = None;
    }

    /// Is the user (by lowercase name) online?
    pub(super) fn contains(&self, lowercase: &str) -> bool {
        self.names.contains_key(lowercase)
    }

    pub(super) fn frame(&mut self) -> Utf8Bytes {
        self.frame
            .get_or_insert_with(|| {
                let names: Vec<&str> = self.names.values().map(|n| &**n).collect();
                frame("online users", &names)
            })
            .clone()
    }
}
