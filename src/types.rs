//! Newtypes with validating constructors. Imports nothing internal.
//!
//! Departure from the style guide: offsets and epochs stay plain `i64` / `i32` (named
//! `*_offset`, `leader_epoch`, `partition_epoch`) because they flow through the wire types of the
//! `kafka-protocol` crate and hot-path arithmetic; ids and names that cross layers are newtypes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Kafka's limit on topic name length.
pub const TOPIC_NAME_LEN_MAX: usize = 249;

/// A broker / Raft node id (`broker.id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub i32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A validated topic name: 1..=249 chars of `[a-zA-Z0-9._-]`, not `.` or `..`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicName(String);

/// Why a topic name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicNameError {
    #[error("topic name is empty")]
    Empty,
    #[error("topic name is longer than {TOPIC_NAME_LEN_MAX} characters")]
    TooLong,
    #[error("topic name cannot be '.' or '..'")]
    Dots,
    #[error("topic name contains the illegal character {0:?}; legal are ASCII alphanumerics, '.', '_' and '-'")]
    IllegalChar(char),
}

impl TopicName {
    /// # Errors
    /// Returns why `name` is not a legal Kafka topic name.
    pub fn new(name: &str) -> Result<Self, TopicNameError> {
        if name.is_empty() {
            return Err(TopicNameError::Empty);
        }
        if name.len() > TOPIC_NAME_LEN_MAX {
            return Err(TopicNameError::TooLong);
        }
        if name == "." || name == ".." {
            return Err(TopicNameError::Dots);
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_' || *c == '-'))
        {
            return Err(TopicNameError::IllegalChar(c));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Kafka treats '.' and '_' as colliding in metric names.
    pub fn collision_key(&self) -> String {
        self.0.replace('.', "_")
    }

    pub fn is_internal(&self) -> bool {
        self.0.starts_with("__")
    }
}

// Ord/Eq of `TopicName` are those of its string, so `Borrow<str>` lookups are consistent.
impl std::borrow::Borrow<str> for TopicName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A topic's UUID (KIP-516). Never nil for an existing topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicId(pub uuid::Uuid);

impl TopicId {
    pub fn random() -> Self {
        loop {
            let id = uuid::Uuid::new_v4();
            // Kafka reserves the nil id and the "metadata topic" id with all-but-one bits zero.
            if id.as_u128() > 1 {
                return Self(id);
            }
        }
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A (topic, partition) pair, by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: TopicName,
    pub partition: i32,
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Wall-clock milliseconds since the Unix epoch: the one clock for timestamps that go into
/// records, commands and Kafka answers (0 if the clock is before 1970). Durations and
/// deadlines use `Instant`, never this.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(TopicName::new("numtest").is_ok());
        assert!(TopicName::new("a.b_c-D9").is_ok());
        assert_eq!(TopicName::new(""), Err(TopicNameError::Empty));
        assert_eq!(TopicName::new(".."), Err(TopicNameError::Dots));
        assert_eq!(TopicName::new("a b"), Err(TopicNameError::IllegalChar(' ')));
        assert_eq!(
            TopicName::new(&"x".repeat(250)),
            Err(TopicNameError::TooLong)
        );
        assert!(TopicName::new(&"x".repeat(249)).is_ok());
    }
}
