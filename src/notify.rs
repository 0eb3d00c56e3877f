//! Notifications between nodes (PostgreSQL's `NOTIFY`): the channels, what
//! each payload says and how it is written and read, and sending. Payloads
//! are hints that wake a node up to read the tables, or carry what is not
//! stored (who is typing, sessions that ended); the tables are the truth.
//!
//! PostgreSQL refuses a payload of 8000 bytes or more, so a list (the
//! sessions of a ban, a tick's typists, a second's read markers) goes out
//! in as many notifications as it takes ([`payloads`]).
//!
//! One SQLite server has no other node to tell: sending on SQLite does
//! nothing ([`Notify`]).

use sqlx::{Postgres, Sqlite, Transaction};
use tower_sessions::session::Id;

use crate::domain::{Ending, Reason};

/// A notification channel; each node listens to all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The chat log grew; the payload is the new head position.
    Log,
    /// Presence changed (a join, a leave, a node counted out).
    Presence,
    /// Sessions ended ([`ending_payloads`]).
    Revoke,
    /// A node's own liveness probe, sent to itself.
    Probe,
    /// Who started typing on a node ([`typing_payloads`]).
    Typing,
    /// Read markers a node moved ([`marker_payloads`]).
    Read,
}

impl Channel {
    pub const ALL: [Channel; 6] =
        [Channel::Log, Channel::Presence, Channel::Revoke, Channel::Probe, Channel::Typing, Channel::Read];

    pub fn name(self) -> &'static str {
        match self {
            Channel::Log => "lobby_log",
            Channel::Presence => "lobby_presence",
            Channel::Revoke => "lobby_revoke",
            Channel::Probe => "lobby_probe",
            Channel::Typing => "lobby_typing",
            Channel::Read => "lobby_read",
        }
    }

    pub fn named(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The longest payload sent (PostgreSQL refuses 8000 bytes or more).
pub const MAX_PAYLOAD: usize = 7000;

/// Entries joined by spaces into payloads of at most `MAX_PAYLOAD` bytes,
/// each starting with `head` (an entry is never split; none is near that
/// long). No entries: one payload of the head alone, if there is a head.
pub fn payloads<'a>(head: &str, entries: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut payloads: Vec<String> = Vec::new();
    for entry in entries {
        match payloads.last_mut() {
            Some(last) if last.len() + 1 + entry.len() <= MAX_PAYLOAD => {
                last.push(' ');
                last.push_str(entry);
            }
            _ if head.is_empty() => payloads.push(entry.to_owned()),
            _ => payloads.push(format!("{head} {entry}")),
        }
    }
    if payloads.is_empty() && !head.is_empty() {
        payloads.push(head.to_owned());
    }
    payloads
}

/// Sends notifications, on whichever engine the transaction is (nothing on SQLite).
pub trait Notify: Send {
    fn notify(
        &mut self,
        channel: Channel,
        payloads: &[String],
    ) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send;
}

impl Notify for Transaction<'static, Sqlite> {
    async fn notify(&mut self, _: Channel, _: &[String]) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl Notify for Transaction<'static, Postgres> {
    /// Delivered at commit, and only if it commits.
    async fn notify(&mut self, channel: Channel, payloads: &[String]) -> Result<(), sqlx::Error> {
        for payload in payloads {
            send(&mut **self, channel, payload).await?;
        }
        Ok(())
    }
}

/// One notification, on a connection, a pool or in a transaction.
pub async fn send<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    channel: Channel,
    payload: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(channel.name()).bind(payload).execute(executor).await?;
    Ok(())
}

// Sessions that ended: "REASON [u=USER] [x=SESSION] SESSION…"; the first
// payload carries the user and the exception, each the reason.

fn reason_word(reason: Reason) -> &'static str {
    match reason {
        Reason::Ended => "ended",
        Reason::Renewed => "renewed",
        Reason::Banned => "banned",
        Reason::AccountChanged => "changed",
    }
}

pub fn ending_payloads(ending: &Ending) -> Vec<String> {
    let mut entries: Vec<String> = Vec::new();
    if let Some(user) = ending.user {
        entries.push(format!("u={user}"));
    }
    if let Some(except) = ending.except {
        entries.push(format!("x={except}"));
    }
    entries.extend(ending.sessions.iter().map(Id::to_string));
    payloads(reason_word(ending.reason), entries.iter().map(String::as_str))
}

pub fn parse_ending(payload: &str) -> Option<Ending> {
    let mut parts = payload.split_ascii_whitespace();
    let reason = match parts.next()? {
        "ended" => Reason::Ended,
        "renewed" => Reason::Renewed,
        "banned" => Reason::Banned,
        "changed" => Reason::AccountChanged,
        _ => return None,
    };
    let mut ending = Ending::sessions(reason, &[]);
    for part in parts {
        if let Some(user) = part.strip_prefix("u=") {
            ending.user = Some(user.parse().ok()?);
        } else if let Some(except) = part.strip_prefix("x=") {
            ending.except = Some(except.parse().ok()?);
        } else {
            ending.sessions.push(part.parse().ok()?);
        }
    }
    Some(ending)
}

// Typists: "ID:ROOM:NAME ID:ROOM:NAME …" (names have no spaces or colons).

/// One user typing in one room: (user id, room, name).
pub type Typist<'a> = (i64, i64, &'a str);

pub fn typing_payloads<'a>(typists: impl IntoIterator<Item = Typist<'a>>) -> Vec<String> {
    let entries: Vec<String> =
        typists.into_iter().map(|(id, room, name)| format!("{id}:{room}:{name}")).collect();
    payloads("", entries.iter().map(String::as_str))
}

pub fn parse_typing(payload: &str) -> Vec<(i64, i64, String)> {
    payload
        .split_ascii_whitespace()
        .filter_map(|entry| {
            let mut parts = entry.splitn(3, ':');
            let id = parts.next()?.parse().ok()?;
            let room = parts.next()?.parse().ok()?;
            Some((id, room, parts.next()?.to_owned()))
        })
        .collect()
}

// Read markers: "USER:ROOM:ID USER:ROOM:ID …".

/// A marker moved: (user, room, the newest message read).
pub type Marker = (i64, i64, i64);

pub fn marker_payloads(moves: &[Marker]) -> Vec<String> {
    let entries: Vec<String> = moves.iter().map(|(user, room, id)| format!("{user}:{room}:{id}")).collect();
    payloads("", entries.iter().map(String::as_str))
}

pub fn parse_markers(payload: &str) -> Vec<Marker> {
    payload
        .split_ascii_whitespace()
        .filter_map(|entry| {
            let mut parts = entry.split(':');
            let marker =
                (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
            parts.next().is_none().then_some(marker)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_named_and_found_by_name() {
        for channel in Channel::ALL {
            assert_eq!(Channel::named(channel.name()), Some(channel));
        }
        assert_eq!(Channel::named("lobby_other"), None);
    }

    #[test]
    fn endings_round_trip() {
        let ids = [Id::default(), Id::default()];
        for ending in [
            Ending::sessions(Reason::Ended, &ids),
            Ending::user(Reason::Banned, 17, vec![], None),
            Ending::user(Reason::Ended, 17, ids.to_vec(), Some(ids[0])),
            Ending::account_changed(5),
            Ending::sessions(Reason::Renewed, &ids[..1]),
        ] {
            let payloads = ending_payloads(&ending);
            assert_eq!(payloads.len(), 1);
            assert_eq!(parse_ending(&payloads[0]), Some(ending));
        }
        assert_eq!(parse_ending("banned"), Some(Ending::sessions(Reason::Banned, &[])));
        assert_eq!(parse_ending("x y"), None);
        assert_eq!(parse_ending("ended not-an-id"), None);
        assert_eq!(parse_ending("ended u=x"), None);
    }

    #[test]
    fn a_ban_of_many_sessions_goes_out_in_several_notifications() {
        let ids: Vec<Id> = (0..1000).map(|_| Id::default()).collect();
        let ending = Ending::user(Reason::Banned, 17, ids.clone(), None);
        let payloads = ending_payloads(&ending);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let parsed: Vec<Ending> = payloads.iter().map(|p| parse_ending(p).unwrap()).collect();
        assert_eq!(parsed[0].user, Some(17));
        assert!(parsed.iter().all(|e| e.reason == Reason::Banned));
        let sessions: Vec<Id> = parsed.into_iter().flat_map(|e| e.sessions).collect();
        assert_eq!(sessions, ids);
    }

    #[test]
    fn typists_and_markers_round_trip_in_payloads_postgres_accepts() {
        let payloads = typing_payloads([(4, 1, "u4"), (17, 9, "u17")]);
        assert_eq!(payloads, vec!["4:1:u4 17:9:u17".to_owned()]);
        assert_eq!(parse_typing(&payloads[0]), vec![(4, 1, "u4".to_owned()), (17, 9, "u17".to_owned())]);
        let names: Vec<String> = (0..2000).map(|i| format!("user{i}")).collect();
        let payloads = typing_payloads(names.iter().enumerate().map(|(i, n)| (i as i64, 1, n.as_str())));
        assert!(payloads.len() > 1 && payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        assert_eq!(payloads.iter().map(|p| parse_typing(p).len()).sum::<usize>(), 2000);
        assert!(parse_typing("junk 5:1:").iter().all(|(id, _, _)| *id == 5));

        let moves: Vec<Marker> = (0..3000).map(|u| (u, u % 7, u * 10)).collect();
        let payloads = marker_payloads(&moves);
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        assert_eq!(payloads.iter().flat_map(|p| parse_markers(p)).collect::<Vec<_>>(), moves);
    }
}
