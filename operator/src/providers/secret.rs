//! A string that must never be printed.

use std::fmt;

/// A secret value (password, DSN with password). `Debug` prints `<redacted>`, there is no
/// `Display`, and the only way to read it is [`SecretString::expose`], which makes every place
/// that reads it easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: only for writing it where it belongs (a Kubernetes Secret, a
    /// connection), never for logs, events or status.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let dsn = SecretString::new("postgres://u:hunter2@h/db");
        assert_eq!(format!("{dsn:?}"), "SecretString(<redacted>)");
        assert!(!format!("{:?}", Some(&dsn)).contains("hunter2"));
    }
}
