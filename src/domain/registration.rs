//! Who may create an account: the registration mode an admin chose (or
//! `REGISTRATION` configured).

use std::{fmt, str::FromStr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistrationMode {
    /// Anyone may register.
    #[default]
    Open,
    /// Only with a valid invite link.
    Invite,
    /// Nobody (but the very first account, so there is always an admin).
    Closed,
}

impl RegistrationMode {
    pub const ALL: [RegistrationMode; 3] = [Self::Open, Self::Invite, Self::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Invite => "invite",
            Self::Closed => "closed",
        }
    }

    /// What the admin page says of it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Open => "Open: anyone may register",
            Self::Invite => "By invitation: only with an invite link",
            Self::Closed => "Closed: nobody may register",
        }
    }
}

impl fmt::Display for RegistrationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the registration mode is open, invite or closed, not {0:?}")]
pub struct UnknownMode(pub String);

impl FromStr for RegistrationMode {
    type Err = UnknownMode;
    fn from_str(text: &str) -> Result<Self, UnknownMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(Self::Open),
            "invite" => Ok(Self::Invite),
            "closed" => Ok(Self::Closed),
            _ => Err(UnknownMode(text.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_in_any_case_and_nothing_else() {
        assert_eq!("Invite".parse(), Ok(RegistrationMode::Invite));
        assert_eq!(" closed ".parse(), Ok(RegistrationMode::Closed));
        assert!("sometimes".parse::<RegistrationMode>().is_err());
    }
}
