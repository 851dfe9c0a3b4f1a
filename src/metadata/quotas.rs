//! Client quotas (KIP-13, KIP-55, KIP-124, KIP-546): the entities quotas are set on, the
//! quota keys, Kafka's name sanitizing for the ZooKeeper paths, and the precedence that picks
//! the quota of a (user, client id). Pure data; enforcement is `broker::client_quotas`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `producer_byte_rate`: bytes/s a producer may send (a Kafka LONG).
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
/// `consumer_byte_rate`: bytes/s a consumer may fetch (a Kafka LONG).
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// `request_percentage`: the share of one request thread's time (a Kafka DOUBLE).
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
/// `controller_mutation_rate`: topic partitions created/deleted per second (KIP-599).
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";

/// The quota keys of user and client-id entities, and whether each is a whole number.
pub const QUOTA_KEYS: [(&str, bool); 4] = [
    (PRODUCER_BYTE_RATE, true),
    (CONSUMER_BYTE_RATE, true),
    (REQUEST_PERCENTAGE, false),
    (CONTROLLER_MUTATION_RATE, false),
];

/// Whether `key` is a quota key of user / client-id entities.
pub fn is_quota_key(key: &str) -> bool {
    QUOTA_KEYS.iter().any(|(k, _)| *k == key)
}

/// The name of an entity: a specific user or client id, or the default for all of them
/// (`<default>` in ZooKeeper paths, a null name in the Kafka APIs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuotaName {
    Default,
    Named(String),
}

impl QuotaName {
    /// The name in a ZooKeeper path (Kafka's `Sanitizer`), `<default>` for the default.
    pub fn zk_name(&self) -> String {
        match self {
            QuotaName::Default => DEFAULT_ZK_NAME.to_owned(),
            QuotaName::Named(n) => sanitize(n),
        }
    }

    /// From a ZooKeeper path segment; `None` if its percent-escapes are not UTF-8.
    pub fn from_zk(segment: &str) -> Option<Self> {
        if segment == DEFAULT_ZK_NAME {
            return Some(QuotaName::Default);
        }
        desanitize(segment).map(QuotaName::Named)
    }

    /// The Kafka API form: `None` for the default.
    pub fn api_name(&self) -> Option<&str> {
        match self {
            QuotaName::Default => None,
            QuotaName::Named(n) => Some(n),
        }
    }
}

/// How ZooKeeper-mode Kafka names the default entity in its paths.
pub const DEFAULT_ZK_NAME: &str = "<default>";

/// What a quota is set on: a user, a client id, or both (at least one).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    pub user: Option<QuotaName>,
    pub client_id: Option<QuotaName>,
}

impl QuotaEntity {
    /// Kafka's ZooKeeper path of the entity, relative to `/config`:
    /// `users/<u>`, `clients/<c>` or `users/<u>/clients/<c>`.
    pub fn zk_path(&self) -> String {
        match (&self.user, &self.client_id) {
            (Some(u), Some(c)) => format!("users/{}/clients/{}", u.zk_name(), c.zk_name()),
            (Some(u), None) => format!("users/{}", u.zk_name()),
            (None, Some(c)) => format!("clients/{}", c.zk_name()),
            (None, None) => String::new(),
        }
    }
}

/// A quota value (Kafka keeps them as doubles). Compared by bits so that images stay `Eq`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct QuotaValue(pub f64);

impl PartialEq for QuotaValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for QuotaValue {}

/// Every entity's quotas; an entity without quotas is not kept.
pub type ClientQuotas = BTreeMap<QuotaEntity, BTreeMap<String, QuotaValue>>;

/// Changes to one entity's quotas: each key set (`Some`) or removed (`None`).
pub type QuotaChanges = Vec<(String, Option<QuotaValue>)>;

/// Serde for [`ClientQuotas`] as a list of `[entity, values]` pairs (JSON map keys must be
/// strings).
pub mod serde_entries {
    use super::{ClientQuotas, QuotaEntity, QuotaValue};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(q: &ClientQuotas, s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<(&QuotaEntity, &BTreeMap<String, QuotaValue>)> = q.iter().collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ClientQuotas, D::Error> {
        let v: Vec<(QuotaEntity, BTreeMap<String, QuotaValue>)> = Vec::deserialize(d)?;
        Ok(v.into_iter().collect())
    }
}

/// A quota value as Kafka's `kafka-configs.sh` writes it into ZooKeeper (`1024`, `12.5`).
pub fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Validates one quota key and value as Kafka's controller does (known key, whole number for
/// the byte rates) and, beyond it, refuses negative, NaN and infinite values.
///
/// # Errors
/// The message for INVALID_REQUEST.
pub fn validate(key: &str, value: f64) -> Result<(), String> {
    let Some((_, whole)) = QUOTA_KEYS.iter().find(|(k, _)| *k == key) else {
        return Err(format!("Invalid configuration key {key}"));
    };
    if !value.is_finite() {
        return Err(format!("Configuration {key} must be a finite number"));
    }
    if value < 0.0 {
        return Err(format!(
            "Configuration {key} must not be negative, got {value}"
        ));
    }
    if *whole && (value.fract() != 0.0 || value > i64::MAX as f64) {
        return Err(format!("Configuration {key} must be a Long value"));
    }
    Ok(())
}

/// Kafka's `Sanitizer.sanitize`: URL-encoding (UTF-8) with `*` as `%2A` and space as `%20`.
pub fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Kafka's `Sanitizer.desanitize` (URL-decoding; `+` is a space); `None` if not UTF-8 or a
/// `%` is not followed by two hex digits.
pub fn desanitize(name: &str) -> Option<String> {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The quota that applies to `user` and `client_id` for `key`, and the entity whose sensor
/// counts the usage: Kafka's precedence (`ClientQuotaManager`), first match wins —
/// `/config/users/<user>/clients/<client-id>`, `/config/users/<user>/clients/<default>`,
/// `/config/users/<user>`, `/config/users/<default>/clients/<client-id>`,
/// `/config/users/<default>/clients/<default>`, `/config/users/<default>`,
/// `/config/clients/<client-id>`, `/config/clients/<default>`.
///
/// The returned sensor entity names the actual user and client id where the matched quota
/// has that component (a default quota is a quota for each user / client id on its own), and
/// leaves out a component the matched quota does not have.
pub fn resolve(
    quotas: &ClientQuotas,
    key: &str,
    user: &str,
    client_id: &str,
) -> Option<(QuotaEntity, f64)> {
    if quotas.is_empty() {
        return None;
    }
    let named_user = || Some(QuotaName::Named(user.to_owned()));
    let named_client = || Some(QuotaName::Named(client_id.to_owned()));
    let d = || Some(QuotaName::Default);
    let order = [
        (named_user(), named_client()),
        (named_user(), d()),
        (named_user(), None),
        (d(), named_client()),
        (d(), d()),
        (d(), None),
        (None, named_client()),
        (None, d()),
    ];
    for (u, c) in order {
        let has_user = u.is_some();
        let has_client = c.is_some();
        let entity = QuotaEntity {
            user: u,
            client_id: c,
        };
        if let Some(v) = quotas.get(&entity).and_then(|q| q.get(key)) {
            let sensor = QuotaEntity {
                user: has_user.then(named_user).flatten(),
                client_id: has_client.then(named_client).flatten(),
            };
            return Some((sensor, v.0));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(u: Option<&str>, c: Option<&str>) -> QuotaEntity {
        let n = |s: &str| {
            if s == "<default>" {
                QuotaName::Default
            } else {
                QuotaName::Named(s.to_owned())
            }
        };
        QuotaEntity {
            user: u.map(n),
            client_id: c.map(n),
        }
    }

    fn set(q: &mut ClientQuotas, ent: QuotaEntity, v: f64) {
        q.entry(ent)
            .or_default()
            .insert(PRODUCER_BYTE_RATE.into(), QuotaValue(v));
    }

    #[test]
    fn precedence_is_kafkas() {
        let mut q = ClientQuotas::new();
        assert!(resolve(&q, PRODUCER_BYTE_RATE, "alice", "app").is_none());
        set(&mut q, e(None, Some("<default>")), 8.0);
        let (s, v) = resolve(&q, PRODUCER_BYTE_RATE, "alice", "app").expect("default client");
        assert_eq!((s, v), (e(None, Some("app")), 8.0));
        set(&mut q, e(None, Some("app")), 7.0);
        assert_eq!(
            resolve(&q, PRODUCER_BYTE_RATE, "alice", "app").map(|r| r.1),
            Some(7.0)
        );
        set(&mut q, e(Some("<default>"), None), 6.0);
        let (s, v) = resolve(&q, PRODUCER_BYTE_RATE, "alice", "app").expect("default user");
        assert_eq!((s, v), (e(Some("alice"), None), 6.0));
        set(&mut q, e(Some("<default>"), Some("<default>")), 5.0);
        set(&mut q, e(Some("<default>"), Some("app")), 4.0);
        set(&mut q, e(Some("alice"), None), 3.0);
        set(&mut q, e(Some("alice"), Some("<default>")), 2.0);
        assert_eq!(
            resolve(&q, PRODUCER_BYTE_RATE, "alice", "app").map(|r| r.1),
            Some(2.0)
        );
        set(&mut q, e(Some("alice"), Some("app")), 1.0);
        let (s, v) = resolve(&q, PRODUCER_BYTE_RATE, "alice", "app").expect("most specific");
        assert_eq!((s, v), (e(Some("alice"), Some("app")), 1.0));
        // Another user falls back to the default user + this client.
        assert_eq!(
            resolve(&q, PRODUCER_BYTE_RATE, "bob", "app").map(|r| r.1),
            Some(4.0)
        );
        assert_eq!(
            resolve(&q, PRODUCER_BYTE_RATE, "bob", "other").map(|r| r.1),
            Some(5.0)
        );
        // Other keys are not set.
        assert!(resolve(&q, CONSUMER_BYTE_RATE, "alice", "app").is_none());
    }

    #[test]
    fn names_round_trip_through_kafkas_sanitizer() {
        assert_eq!(sanitize("alice"), "alice");
        assert_eq!(sanitize("CN=a b,O=*"), "CN%3Da%20b%2CO%3D%2A");
        assert_eq!(
            desanitize("CN%3Da+b%2CO%3D%2A").as_deref(),
            Some("CN=a b,O=*")
        );
        assert_eq!(desanitize(&sanitize("ü/x")).as_deref(), Some("ü/x"));
        assert_eq!(desanitize("%zz"), None);
        assert_eq!(desanitize("%4"), None);
        assert_eq!(QuotaName::from_zk("<default>"), Some(QuotaName::Default));
        assert_eq!(
            e(Some("<default>"), Some("a b")).zk_path(),
            "users/<default>/clients/a%20b"
        );
    }

    #[test]
    fn values_are_validated() {
        assert!(validate(PRODUCER_BYTE_RATE, 1024.0).is_ok());
        assert!(validate(REQUEST_PERCENTAGE, 12.5).is_ok());
        assert!(validate(PRODUCER_BYTE_RATE, 10.5).is_err());
        assert!(validate(PRODUCER_BYTE_RATE, -1.0).is_err());
        assert!(validate(REQUEST_PERCENTAGE, f64::NAN).is_err());
        assert!(validate(REQUEST_PERCENTAGE, f64::INFINITY).is_err());
        assert!(validate("connection_creation_rate", 1.0).is_err());
        assert_eq!(format_value(1024.0), "1024");
        assert_eq!(format_value(12.5), "12.5");
    }
}
