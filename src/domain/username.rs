use std::fmt;

/// A valid username: 3 to 32 characters of `A-Z a-z 0-9 _ . -`.
/// Holding one means it has been checked; names are ASCII, so comparing
/// `to_ascii_lowercase()` forms is exactly "unique without regard to case".
#[derive(Clone, PartialEq, Eq)]
pub struct Username(String);

pub const USERNAME_RULE: &str =
    "Usernames are 3 to 32 characters: letters, digits, underscore, dot or hyphen.";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{USERNAME_RULE}")]
pub struct InvalidUsername;

impl Username {
    pub fn parse(raw: &str) -> Result<Self, InvalidUsername> {
        let raw = raw.trim();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if (3..=32).contains(&raw.len()) && raw.chars().all(allowed) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidUsername)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as it looks: lowercase, with the look-alikes folded together
    /// (`rn` → `m`, `vv` → `w`, `0` → `o`, `1` and `i` → `l`). Two names with
    /// one skeleton are the same name. The migration that added skeletons
    /// computes them with the same steps, in the same order.
    pub fn skeleton(&self) -> String {
        self.0
            .to_ascii_lowercase()
            .replace("rn", "m")
            .replace("vv", "w")
            .chars()
            .map(|c| match c {
                '0' => 'o',
                '1' | 'i' => 'l',
                c => c,
            })
            .collect()
    }
}

/// The names a new account made through a provider may take, best first:
/// the provider's name for the person made valid, then the same with a
/// number (`alice`, `alice2`, `alice3`…). Whoever creates the account takes
/// the first one that is free by name and by look.
#[derive(Debug, Clone)]
pub struct DerivedNames {
    base: String,
    next: u32,
}

/// The name used when a provider gives nothing usable.
const FALLBACK_NAME: &str = "user";

impl Username {
    /// The names derived from `hint` (a GitHub login, an OpenID Connect
    /// `preferred_username`, an email's local part): of an address, the part
    /// before `@`; accents dropped (`Jörg` → `Jorg`); every other character
    /// outside the rule becomes `_`, runs of them one, and none at the ends;
    /// cut to the longest a name may be. A hint with nothing left is `user`.
    pub fn derived(hint: Option<&str>) -> DerivedNames {
        use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};
        let hint = hint.unwrap_or_default();
        let local = hint.split('@').find(|part| !part.trim().is_empty()).unwrap_or_default();
        let mut base = String::new();
        for c in local.nfkd().filter(|c| !is_combining_mark(*c)) {
            let c = if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' };
            let separator = matches!(c, '_' | '.' | '-');
            if !(separator && (base.is_empty() || base.ends_with(['_', '.', '-']))) {
                base.push(c);
            }
        }
        base.truncate(32);
        let base = base.trim_end_matches(['_', '.', '-']).to_owned();
        let base = if base.is_empty() { FALLBACK_NAME.to_owned() } else { base };
        // A name too short to stand alone starts numbered, long enough.
        let next = match base.len() {
            1 => 10,
            2 => 2,
            _ => 1,
        };
        DerivedNames { base, next }
    }
}

impl Iterator for DerivedNames {
    type Item = Username;

    fn next(&mut self) -> Option<Username> {
        let n = self.next;
        self.next = self.next.checked_add(1)?;
        let suffix = if n == 1 { String::new() } else { n.to_string() };
        let mut base = self.base.clone();
        base.truncate(32 - suffix.len());
        Username::parse(&format!("{base}{suffix}")).ok()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_parsed_name_follows_the_rule(raw in "\\PC{0,40}") {
            if let Ok(name) = Username::parse(&raw) {
                prop_assert!((3..=32).contains(&name.as_str().len()));
                prop_assert!(name.as_str().chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
                prop_assert!(name.skeleton().len() <= name.as_str().len());
            }
        }
    }

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["abc", "Alice_99", "a.b-c", &"x".repeat(32), "  bob  "] {
            assert!(Username::parse(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in ["", "ab", &"x".repeat(33), "a b c", "ünï", "al/ce", "<script>", "a\u{0}bc"] {
            assert_eq!(Username::parse(bad), Err(InvalidUsername), "{bad:?}");
        }
    }

    #[test]
    fn look_alikes_share_a_skeleton() {
        let skeleton = |name: &str| Username::parse(name).unwrap().skeleton();
        assert_eq!(skeleton("aIice"), skeleton("alice"));
        assert_eq!(skeleton("a1ice"), skeleton("ALICE"));
        assert_eq!(skeleton("rnartin"), skeleton("martin"));
        assert_eq!(skeleton("vvendy"), skeleton("wendy"));
        assert_eq!(skeleton("b0b"), skeleton("bob"));
        assert_ne!(skeleton("alice"), skeleton("alicia"));
    }

    fn derived(hint: &str, n: usize) -> Vec<String> {
        Username::derived(Some(hint)).take(n).map(|u| u.to_string()).collect()
    }

    #[test]
    fn names_derived_from_a_provider_are_valid_and_numbered() {
        assert_eq!(derived("octocat", 3), ["octocat", "octocat2", "octocat3"]);
        assert_eq!(derived("alice@school.example", 1), ["alice"]);
        assert_eq!(derived("bob.builder", 1), ["bob.builder"]);
        assert_eq!(derived("Jörg Müller", 1), ["Jorg_Muller"]);
        assert_eq!(derived("  --a  b!!c--  ", 1), ["a_b_c"]);
        assert_eq!(derived("张伟", 2), ["user", "user2"]);
        assert_eq!(derived("jo", 2), ["jo2", "jo3"], "too short to stand alone");
        assert_eq!(derived("j", 1), ["j10"]);
        assert_eq!(Username::derived(None).next().unwrap().as_str(), "user");
        let long = derived(&"x".repeat(40), 2);
        assert_eq!(long[0], "x".repeat(32));
        assert_eq!(long[1], format!("{}2", "x".repeat(31)), "the number fits");
    }

    proptest! {
        #[test]
        fn every_derived_name_follows_the_rule(hint in "\\PC{0,60}") {
            let names: Vec<Username> = Username::derived(Some(&hint)).take(12).collect();
            prop_assert_eq!(names.len(), 12);
            for name in &names {
                prop_assert!(Username::parse(name.as_str()).is_ok());
            }
        }
    }

    #[test]
    fn trims_surrounding_space() {
        assert_eq!(Username::parse("  bob ").unwrap().as_str(), "bob");
    }
}
