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
    use proptest::prelude::*;

    proptest! {
        /// Whatever `next` holds, where it leads is on this site.
        #[test]
        fn next_never_leaves_the_site(next in "\\PC{0,40}|[/\\\\a-z:.@%]{0,20}") {
            if let Some(path) = local_path(Some(&next)) {
                let base = url::Url::parse("https://chat.example.com/").unwrap();
                let resolved = base.join(path).unwrap();
                prop_assert_eq!(resolved.host_str(), Some("chat.example.com"), "{} led to {}", path, resolved);
                prop_assert!(path.starts_with('/') && !path.starts_with("//"));
            }
        }
    }

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
