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

    #[test]
    fn trims_surrounding_space() {
        assert_eq!(Username::parse("  bob ").unwrap().as_str(), "bob");
    }
}
