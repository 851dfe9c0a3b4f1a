//! SASL/PLAIN (RFC 4616) as Kafka's `PlainSaslServer` checks it: exactly three
//! NUL-separated tokens `authzid \0 authcid \0 passwd`, user and password non-empty, the
//! password compared in constant time, and an authorization id, if given, equal to the user.
//! The error texts are Kafka's, which clients show to their users.

use subtle::ConstantTimeEq;

/// The largest PLAIN message accepted (user and password are short strings).
pub const MESSAGE_MAX_BYTES: usize = 4096;

/// Why a PLAIN message failed; `Display` is what the client is told (Kafka's text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    #[error("Invalid SASL/PLAIN response: expected 3 tokens, got {0}")]
    Tokens(usize),
    #[error("Authentication failed: username not specified")]
    NoUser,
    #[error("Authentication failed: password not specified")]
    NoPassword,
    #[error("Authentication failed: Invalid username or password")]
    Invalid,
    #[error("Authentication failed: Client requested an authorization id that is different from username")]
    Authzid,
}

/// Checks one PLAIN message; `password_of` gives a user's configured password.
///
/// # Errors
/// Kafka's [`PlainError`] for a malformed message or bad credentials.
pub fn authenticate<'a>(
    msg: &[u8],
    password_of: impl FnOnce(&str) -> Option<&'a str>,
) -> Result<String, PlainError> {
    if msg.len() > MESSAGE_MAX_BYTES {
        return Err(PlainError::Invalid);
    }
    let msg = std::str::from_utf8(msg).map_err(|_| PlainError::Invalid)?;
    let tokens: Vec<&str> = msg.split('\0').collect();
    if tokens.len() != 3 {
        return Err(PlainError::Tokens(tokens.len()));
    }
    let (authzid, user, password) = (tokens[0], tokens[1], tokens[2]);
    if user.is_empty() {
        return Err(PlainError::NoUser);
    }
    if password.is_empty() {
        return Err(PlainError::NoPassword);
    }
    let ok = password_of(user)
        .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(password.as_bytes())));
    if !ok {
        return Err(PlainError::Invalid);
    }
    if !authzid.is_empty() && authzid != user {
        return Err(PlainError::Authzid);
    }
    Ok(user.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(u: &str) -> Option<&'static str> {
        (u == "alice").then_some("alice-secret")
    }

    #[test]
    fn kafka_rules() {
        assert_eq!(
            authenticate(b"\0alice\0alice-secret", users).expect("test value"),
            "alice"
        );
        assert_eq!(
            authenticate(b"alice\0alice\0alice-secret", users).expect("test value"),
            "alice"
        );
        assert_eq!(
            authenticate(b"bob\0alice\0alice-secret", users),
            Err(PlainError::Authzid)
        );
        assert_eq!(
            authenticate(b"\0alice\0wrong", users),
            Err(PlainError::Invalid)
        );
        assert_eq!(
            authenticate(b"\0mallory\0alice-secret", users),
            Err(PlainError::Invalid)
        );
        assert_eq!(authenticate(b"\0\0pw", users), Err(PlainError::NoUser));
        assert_eq!(
            authenticate(b"\0alice\0", users),
            Err(PlainError::NoPassword)
        );
        assert_eq!(authenticate(b"alice", users), Err(PlainError::Tokens(1)));
        assert_eq!(
            authenticate(b"\0a\0b\0c", users),
            Err(PlainError::Tokens(4))
        );
        assert_eq!(authenticate(&[0xff, 0, 0], users), Err(PlainError::Invalid));
    }
}
