//! Web Push, as Lobby means it: a browser's subscription (where to send,
//! and the keys a push is encrypted for), who is pushed for a message, and
//! what a push says.

use serde::Serialize;

use super::{LOBBY, Level, RoomKind};

/// A subscription's keys, as a browser's `PushSubscription` gives them
/// (base64url): `p256dh` an uncompressed P-256 point that is on the curve,
/// `auth` 16 bytes. Once held, the push can be encrypted for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionKeys {
    p256dh: String,
    auth: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "The subscription's keys are not a browser's: p256dh must be a P-256 public key and auth 16 bytes, both base64url."
)]
pub struct InvalidKeys;

impl SubscriptionKeys {
    pub fn parse(p256dh: &str, auth: &str) -> Result<Self, InvalidKeys> {
        let point = decode(p256dh).ok_or(InvalidKeys)?;
        // 0x04 ‖ x ‖ y: the uncompressed form aes128gcm's key exchange uses.
        if point.len() != 65 || point[0] != 4 || p256::PublicKey::from_sec1_bytes(&point).is_err() {
            return Err(InvalidKeys);
        }
        if decode(auth).is_none_or(|secret| secret.len() != 16) {
            return Err(InvalidKeys);
        }
        Ok(Self {
            p256dh: p256dh.trim_end_matches('=').to_owned(),
            auth: auth.trim_end_matches('=').to_owned(),
        })
    }

    pub fn p256dh(&self) -> &str {
        &self.p256dh
    }

    pub fn auth(&self) -> &str {
        &self.auth
    }
}

/// base64url, with or without padding (browsers send it without).
pub fn decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

pub fn encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Is a member of a room of `kind`, at `level` there, pushed for a message
/// by someone else that does (or does not) mention them? At `all`, always;
/// at `mentions`, when mentioned, and in a direct room always (a direct
/// message is meant for them); at `nothing`, never.
pub fn wants_push(kind: RoomKind, level: Level, mentioned: bool) -> bool {
    match level {
        Level::All => true,
        Level::Mentions => mentioned || kind == RoomKind::Direct,
        Level::Nothing => false,
    }
}

/// The longest `text` a push carries, in characters.
pub const TEXT_CHARS: usize = 200;

/// What one push says (the contract's payload), as the service worker reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub room: i64,
    /// The room's name; a direct room's is the other people's names.
    pub room_name: String,
    /// Who wrote the newest message it stands for.
    pub from: String,
    /// That message, cut to [`TEXT_CHARS`].
    pub text: String,
    /// On the site: the chat page opened on the room (`/chat/ID`; the
    /// page has no anchor for one message, so it opens at the room's unread).
    pub url: String,
    /// How many messages it stands for (those held back since the last push).
    pub count: i64,
}

impl Notice {
    pub fn new(room: i64, room_name: String, from: String, text: &str, count: i64) -> Self {
        Self { room, room_name, from, text: cut(text, TEXT_CHARS), url: room_url(room), count }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `text` in at most `chars` characters: cut with "…" when longer.
pub fn cut(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The chat page opened on `room`: `/chat/ID`, the lobby's `/chat` (the
/// page's own addresses: `roomPath` in public/js/rooms.js).
pub fn room_url(room: i64) -> String {
    if room == LOBBY { "/chat".to_owned() } else { format!("/chat/{room}") }
}

/// A direct room's name for one of its members: the others' names.
pub fn direct_name(others: &[String]) -> String {
    others.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256DH: &str =
        "BLn9b-VR0ca83knDNZ32dCHGyjJp-1riX9ZTN40MqV8K_LpQmLqxC_DoHvqvFXO_nGdAB4W9dogZb_sM-uV4JbY";
    const AUTH: &str = "_ordMnz7uTCmrpBTeUV4Bw";

    #[test]
    fn keys_are_a_point_on_the_curve_and_sixteen_bytes() {
        let keys = SubscriptionKeys::parse(P256DH, AUTH).unwrap();
        assert_eq!((keys.p256dh(), keys.auth()), (P256DH, AUTH));
        assert!(SubscriptionKeys::parse(&format!("{P256DH}="), &format!("{AUTH}==")).is_ok(), "padding");
        let off_curve = format!("{}A", &P256DH[..P256DH.len() - 1]);
        for (p256dh, auth) in [
            ("", AUTH),
            (P256DH, ""),
            ("not base64!", AUTH),
            (&off_curve, AUTH),
            (&P256DH[..40], AUTH),
            (P256DH, "AAAA"),
            (P256DH, &encode(&[0; 32])),
            (&encode(&[4; 65]), AUTH),
        ] {
            assert_eq!(SubscriptionKeys::parse(p256dh, auth), Err(InvalidKeys), "{p256dh:?} {auth:?}");
        }
    }

    #[test]
    fn who_is_pushed_follows_the_level_mentions_and_direct_rooms() {
        use Level::*;
        use RoomKind::*;
        for kind in [Open, Private, Direct] {
            assert!(wants_push(kind, All, false));
            assert!(wants_push(kind, Mentions, true));
            assert!(!wants_push(kind, Nothing, true));
        }
        assert!(!wants_push(Open, Mentions, false));
        assert!(!wants_push(Private, Mentions, false));
        assert!(wants_push(Direct, Mentions, false), "a direct message is meant for them");
    }

    #[test]
    fn text_is_cut_to_two_hundred_characters_with_an_ellipsis() {
        assert_eq!(cut("short", TEXT_CHARS), "short");
        let exact = "é".repeat(200);
        assert_eq!(cut(&exact, TEXT_CHARS), exact);
        let long = "é".repeat(201);
        let cut = cut(&long, TEXT_CHARS);
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with("é…"));
    }

    #[test]
    fn a_notice_is_the_contracts_payload() {
        let notice = Notice::new(7, "study".into(), "alice".into(), "hi @bob", 3);
        let json: serde_json::Value = serde_json::from_str(&notice.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"room": 7, "roomName": "study", "from": "alice", "text": "hi @bob",
                               "url": "/chat/7", "count": 3})
        );
        assert_eq!(room_url(LOBBY), "/chat");
        assert_eq!(direct_name(&["bob".into(), "carol".into()]), "bob, carol");
    }
}
