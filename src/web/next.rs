/// Where to go after login: only a path on this site, so `next` can never
/// send a user to another site (`//evil.example`, `https://…`, `/\evil`).
pub fn local_path(next: Option<&str>) -> Option<&str> {
    let next = next?.trim();
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    local.then_some(next)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn keeps_local_paths() {
        for ok in ["/profile", "/chat?x=1", "/"] {
            assert_eq!(local_path(Some(ok)), Some(ok));
        }
    }

    #[test]
    fn drops_everything_else() {
        for bad in [
            "",
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "profile",
            "/\t/evil",
            "javascript:alert(1)",
        ] {
            assert_eq!(local_path(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(local_path(None), None);
    }
}
