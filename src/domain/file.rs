//! Files shared in rooms: a file's name as it is shown and served, what its
//! bytes say it is, and what a message says of each file it carries.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// A file's name as people see it: the last part of what the browser sent
/// (no folders), without control characters, bidirectional overrides or
/// slashes, trimmed, at most [`FileName::MAX_CHARS`] characters; never
/// empty, `.` or `..` (those become `file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    pub const MAX_CHARS: usize = 200;

    /// Whatever was sent, made into a name that is safe to show and to serve.
    pub fn clean(raw: &str) -> FileName {
        // Old browsers send the whole path ("C:\Users\…\cat.png").
        let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
        let cleaned: String = last
            .chars()
            .filter(|c| !c.is_control() && !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
            .collect();
        let trimmed = cleaned.trim();
        let name: String = trimmed.chars().take(Self::MAX_CHARS).collect();
        let name = name.trim();
        if name.is_empty() || name == "." || name == ".." {
            FileName("file".to_owned())
        } else {
            FileName(name.to_owned())
        }
    }

    /// A name read back from the database (cleaned when it was stored).
    pub fn stored(name: String) -> FileName {
        FileName(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a file's bytes say it is. Only the four image formats every
/// browser decodes itself are ever served as what they are; everything
/// else is a download, whatever its name or claimed type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Png,
    Jpeg,
    Gif,
    Webp,
    Other,
}

impl FileKind {
    /// Bytes enough to tell the kinds apart.
    pub const SNIFF_BYTES: usize = 12;

    /// The kind a file's first bytes announce (at least [`Self::SNIFF_BYTES`]
    /// of them, or the whole file if shorter).
    pub fn sniff(head: &[u8]) -> FileKind {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            FileKind::Png
        } else if head.starts_with(b"\xff\xd8\xff") {
            FileKind::Jpeg
        } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
            FileKind::Gif
        } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            FileKind::Webp
        } else {
            FileKind::Other
        }
    }

    /// The type it is served as.
    pub fn mime(self) -> &'static str {
        match self {
            FileKind::Png => "image/png",
            FileKind::Jpeg => "image/jpeg",
            FileKind::Gif => "image/gif",
            FileKind::Webp => "image/webp",
            FileKind::Other => "application/octet-stream",
        }
    }

    /// Read back from the database (its [`Self::mime`]).
    pub fn stored(mime: &str) -> FileKind {
        match mime {
            "image/png" => FileKind::Png,
            "image/jpeg" => FileKind::Jpeg,
            "image/gif" => FileKind::Gif,
            "image/webp" => FileKind::Webp,
            _ => FileKind::Other,
        }
    }

    pub fn is_image(self) -> bool {
        self != FileKind::Other
    }
}

/// A file as a message carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: i64,
    pub name: FileName,
    pub kind: FileKind,
    /// Bytes.
    pub size: i64,
    /// An image's size in pixels, as it is shown (after its EXIF
    /// orientation), when its header could be read.
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// Whether a thumbnail was made.
    pub thumbnail: bool,
}

/// What is escaped in a name put in a URL path: all but the unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

impl Attachment {
    /// `/files/ID/NAME`.
    pub fn url(&self) -> String {
        format!("/files/{}/{}", self.id, utf8_percent_encode(self.name.as_str(), SEGMENT))
    }

    /// `/files/ID/thumbnail/NAME`, if there is a thumbnail.
    pub fn thumbnail_url(&self) -> Option<String> {
        self.thumbnail.then(|| {
            format!("/files/{}/thumbnail/{}", self.id, utf8_percent_encode(self.name.as_str(), SEGMENT))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_folders_controls_and_overrides() {
        for (raw, clean) in [
            ("cat.png", "cat.png"),
            ("C:\\Users\\me\\cat.png", "cat.png"),
            ("../../etc/passwd", "passwd"),
            ("  report\u{202E}fdp.exe ", "reportfdp.exe"),
            ("a\u{0}b\nc.txt", "abc.txt"),
            ("", "file"),
            ("..", "file"),
            ("dir/", "file"),
        ] {
            assert_eq!(FileName::clean(raw).as_str(), clean, "{raw:?}");
        }
        assert_eq!(FileName::clean(&"é".repeat(500)).as_str().chars().count(), FileName::MAX_CHARS);
    }

    #[test]
    fn kinds_are_judged_by_their_bytes() {
        assert_eq!(FileKind::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), FileKind::Png);
        assert_eq!(FileKind::sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), FileKind::Jpeg);
        assert_eq!(FileKind::sniff(b"GIF89a\x01\0\x01\0"), FileKind::Gif);
        assert_eq!(FileKind::sniff(b"RIFF\x10\0\0\0WEBPVP8L"), FileKind::Webp);
        assert_eq!(FileKind::sniff(b"RIFF\x10\0\0\0AVI LIST"), FileKind::Other);
        assert_eq!(FileKind::sniff(b"<svg xmlns="), FileKind::Other);
        assert_eq!(FileKind::sniff(b"<html><script>"), FileKind::Other);
        for kind in [FileKind::Png, FileKind::Jpeg, FileKind::Gif, FileKind::Webp, FileKind::Other] {
            assert_eq!(FileKind::stored(kind.mime()), kind);
        }
    }

    #[test]
    fn urls_escape_the_name() {
        let file = Attachment {
            id: 7,
            name: FileName::clean("my cat?#.png"),
            kind: FileKind::Png,
            size: 1,
            width: None,
            height: None,
            thumbnail: true,
        };
        assert_eq!(file.url(), "/files/7/my%20cat%3F%23.png");
        assert_eq!(file.thumbnail_url().unwrap(), "/files/7/thumbnail/my%20cat%3F%23.png");
    }
}
