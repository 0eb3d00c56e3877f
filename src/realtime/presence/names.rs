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

    /// The frame, with `joining` in it too: a socket about to take its seat
    /// counts itself, though its own join is announced only after.
    pub(super) fn frame_with(&mut self, joining: &str) -> Utf8Bytes {
        let key = joining.to_ascii_lowercase();
        if self.names.contains_key(&key) {
            return self.frame();
        }
        // A user's first tab: a list of its own (the shared one does not have it).
        let mut names: Vec<&str> = self.names.values().map(|n| &**n).collect();
        let at = self.names.keys().position(|k| *k > key).unwrap_or(names.len());
        names.insert(at, joining);
        frame("online users", &names)
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
