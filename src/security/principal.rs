//! Kafka's `KafkaPrincipal`: a type and a name, written `User:alice`.

use std::fmt;

/// Who a connection is, as ACLs and logs name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    pub kind: String,
    pub name: String,
}

impl Principal {
    /// `User:<name>` (what SASL and mTLS authenticate).
    pub fn user(name: impl Into<String>) -> Self {
        Self {
            kind: "User".into(),
            name: name.into(),
        }
    }

    /// `User:ANONYMOUS`: a connection on a listener without authentication.
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_as_kafka_writes_it() {
        assert_eq!(Principal::user("alice").to_string(), "User:alice");
        assert_eq!(Principal::anonymous().to_string(), "User:ANONYMOUS");
    }
}
