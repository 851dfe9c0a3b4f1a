//! Listener security: `listener.security.protocol.map`, the SASL mechanisms a listener offers
//! (`sasl.enabled.mechanisms`, `listener.name.<l>.sasl.enabled.mechanisms`) and the PLAIN
//! users of its `PlainLoginModule` JAAS config (`listener.name.<l>.plain.sasl.jaas.config`,
//! else `sasl.jaas.config`), plus the authentication limits: `connection.failed.
//! authentication.delay.ms`, `connections.max.reauth.ms`, `sasl.server.max.receive.size`.
//!
//! TLS listeners: `ssl.keystore.*`, `ssl.truststore.*`, `ssl.client.auth`,
//! `ssl.enabled.protocols`, `ssl.cipher.suites`, `ssl.principal.mapping.rules` ([`TlsSettings`]);
//! `security::tls` loads them.
//!
//! Departure from Kafka: `sasl.enabled.mechanisms` defaults to `PLAIN,SCRAM-SHA-256,
//! SCRAM-SHA-512` instead of `GSSAPI` (Kerberos is not served; naming it is an error).

use super::{invalid, ConfigError};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// How a listener talks (Kafka's `SecurityProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    Plaintext,
    SaslPlaintext,
    Ssl,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        [
            SecurityProtocol::Plaintext,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(s))
    }

    pub fn is_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    pub fn is_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

/// The SASL mechanisms this node can serve.
pub const SUPPORTED_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// What a SASL listener offers.
#[derive(Clone, PartialEq, Eq)]
pub struct ListenerSasl {
    /// Enabled mechanisms, in the configured order (SaslHandshake lists them so).
    pub mechanisms: Vec<String>,
    /// PLAIN users and their passwords (`user_<name>="<password>"`).
    pub plain_users: BTreeMap<String, String>,
}

impl fmt::Debug for ListenerSasl {
    /// User names only: passwords stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerSasl")
            .field("mechanisms", &self.mechanisms)
            .field("plain_users", &self.plain_users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Authentication limits shared by every listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthLimits {
    /// `connection.failed.authentication.delay.ms` (100): how long a failed authentication's
    /// answer and close are held back.
    pub failed_delay: Duration,
    /// `connections.max.reauth.ms` (0 = off): the longest an authenticated session lasts before
    /// the client must re-authenticate (KIP-368).
    pub reauth_max: Option<Duration>,
    /// `sasl.server.max.receive.size` (524 288): the largest frame accepted before
    /// authentication completes.
    pub receive_max: usize,
}

impl Default for AuthLimits {
    fn default() -> Self {
        Self {
            failed_delay: Duration::from_millis(100),
            reauth_max: None,
            receive_max: 524_288,
        }
    }
}

/// The authorizer class names that turn ACL authorization on: Kafka's own authorizers, all
/// with the same ACL model and decision.
pub const AUTHORIZER_CLASSES: &[&str] = &[
    "kafka.security.auth.SimpleAclAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
];

/// `authorizer.class.name` (empty: no authorizer), `super.users` (`User:a;User:b`) and
/// `allow.everyone.if.no.acl.found` (false).
///
/// # Errors
/// An authorizer class that is not one of Kafka's (raftka cannot load Java classes), a bad
/// boolean, or a super user that is not `Type:name`.
pub fn authorizer(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<crate::security::acl::AuthorizerConfig>, ConfigError> {
    let class = get("authorizer.class.name").unwrap_or_default();
    let class = class.trim();
    if class.is_empty() {
        return Ok(None);
    }
    if !AUTHORIZER_CLASSES.contains(&class) {
        return Err(ConfigError::Invalid {
            key: "authorizer.class.name".into(),
            value: class.into(),
            reason: format!(
                "raftka implements Kafka's ACL authorizer only: one of {}",
                AUTHORIZER_CLASSES.join(", ")
            ),
        });
    }
    let mut super_users = Vec::new();
    let raw = get("super.users").unwrap_or_default();
    for p in raw.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        if !p.contains(':') || p.starts_with(':') {
            return Err(ConfigError::Invalid {
                key: "super.users".into(),
                value: raw.clone(),
                reason: format!("{p:?} is not a principal (Type:name, e.g. User:admin)"),
            });
        }
        super_users.push(p.to_owned());
    }
    let allow_if_no_acl = match get("allow.everyone.if.no.acl.found")
        .as_deref()
        .map(str::trim)
    {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(ConfigError::Invalid {
                key: "allow.everyone.if.no.acl.found".into(),
                value: v.into(),
                reason: "expected true or false".into(),
            })
        }
    };
    Ok(Some(crate::security::acl::AuthorizerConfig {
        super_users,
        allow_if_no_acl,
    }))
}

/// Whether a broker config holds a secret (Kafka's PASSWORD type): DescribeConfigs shows it
/// as sensitive with a null value, and nothing logs it.
pub fn is_sensitive(key: &str) -> bool {
    key.ends_with("sasl.jaas.config")
        || key.ends_with(".password")
        || key.ends_with("ssl.keystore.key")
        || key.ends_with("ssl.keystore.certificate.chain")
        || key.ends_with("ssl.truststore.certificates")
}

/// `listener.security.protocol.map` (Kafka's default maps each protocol name to itself).
///
/// # Errors
/// A malformed entry or an unknown protocol.
pub fn parse_protocol_map(
    s: Option<&str>,
) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let default = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";
    let s = s.unwrap_or(default);
    let mut out = BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, proto) = item
            .split_once(':')
            .ok_or_else(|| invalid(KEY, s, format!("{item:?} is not NAME:PROTOCOL")))?;
        let proto = SecurityProtocol::from_name(proto.trim())
            .ok_or_else(|| invalid(KEY, s, format!("unknown security protocol {proto:?}")))?;
        if out
            .insert(name.trim().to_ascii_uppercase(), proto)
            .is_some()
        {
            return Err(invalid(KEY, s, format!("listener {name} mapped twice")));
        }
    }
    Ok(out)
}

/// The SASL settings of listener `name` from the properties (`get` trims and drops empty
/// values).
///
/// # Errors
/// An unsupported mechanism, no mechanism, a malformed JAAS config, or PLAIN enabled without
/// any user.
pub fn listener_sasl(
    name: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<ListenerSasl, ConfigError> {
    let lname = name.to_ascii_lowercase();
    let mech_key = format!("listener.name.{lname}.sasl.enabled.mechanisms");
    let (key, value) = match get(&mech_key) {
        Some(v) => (mech_key, v),
        None => (
            "sasl.enabled.mechanisms".to_owned(),
            get("sasl.enabled.mechanisms").unwrap_or_else(|| SUPPORTED_MECHANISMS.join(",")),
        ),
    };
    let mut mechanisms = Vec::new();
    for m in value.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let m = m.to_ascii_uppercase();
        if !SUPPORTED_MECHANISMS.contains(&m.as_str()) {
            return Err(invalid(
                &key,
                &value,
                format!(
                    "mechanism {m} is not supported (supported: {})",
                    SUPPORTED_MECHANISMS.join(", ")
                ),
            ));
        }
        if !mechanisms.contains(&m) {
            mechanisms.push(m);
        }
    }
    if mechanisms.is_empty() {
        return Err(invalid(&key, &value, "no SASL mechanism enabled"));
    }
    let mut plain_users = BTreeMap::new();
    if mechanisms.iter().any(|m| m == "PLAIN") {
        let jaas_key = format!("listener.name.{lname}.plain.sasl.jaas.config");
        let (jkey, jaas) = match get(&jaas_key) {
            Some(v) => (jaas_key.clone(), Some(v)),
            None => ("sasl.jaas.config".to_owned(), get("sasl.jaas.config")),
        };
        let Some(jaas) = jaas else {
            return Err(ConfigError::Relation(format!(
                "listener {name} enables PLAIN but neither {jaas_key} nor sasl.jaas.config names \
                 its users"
            )));
        };
        // The error never echoes the value: it holds passwords.
        let module = parse_jaas(&jaas).map_err(|reason| invalid(&jkey, "<hidden>", reason))?;
        if !module.class.ends_with("PlainLoginModule") {
            return Err(invalid(
                &jkey,
                "<hidden>",
                format!("login module {} is not PlainLoginModule", module.class),
            ));
        }
        for (k, v) in module.options {
            if let Some(user) = k.strip_prefix("user_") {
                if !user.is_empty() {
                    plain_users.insert(user.to_owned(), v);
                }
            }
        }
    }
    Ok(ListenerSasl {
        mechanisms,
        plain_users,
    })
}

/// One JAAS login module entry (`Class flag key="value" ...;`).
#[derive(Debug, PartialEq, Eq)]
pub struct JaasModule {
    pub class: String,
    pub flag: String,
    pub options: Vec<(String, String)>,
}

/// Parses a `sasl.jaas.config` value: exactly one login module, as Kafka requires. Values
/// are double-quoted (with `\` escapes) or bare words.
///
/// # Errors
/// The reason, never containing an option's value.
pub fn parse_jaas(s: &str) -> Result<JaasModule, String> {
    let mut tokens = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted value".into()),
                    Some('"') => break,
                    Some('\\') => v.push(chars.next().ok_or("unterminated quoted value")?),
                    Some(c) => v.push(c),
                }
            }
            tokens.push(Tok::Quoted(v));
        } else if c == '=' || c == ';' {
            chars.next();
            tokens.push(if c == '=' { Tok::Eq } else { Tok::Semi });
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '=' || c == ';' || c == '"' {
                    break;
                }
                w.push(c);
                chars.next();
            }
            tokens.push(Tok::Word(w));
        }
    }
    let mut it = tokens.into_iter();
    let Some(Tok::Word(class)) = it.next() else {
        return Err("expected a login module class".into());
    };
    let Some(Tok::Word(flag)) = it.next() else {
        return Err("expected a control flag after the login module".into());
    };
    if !["required", "requisite", "sufficient", "optional"]
        .contains(&flag.to_ascii_lowercase().as_str())
    {
        return Err(format!("unknown control flag {flag:?}"));
    }
    let mut options = Vec::new();
    loop {
        match it.next() {
            Some(Tok::Semi) => break,
            Some(Tok::Word(k)) => {
                if it.next() != Some(Tok::Eq) {
                    return Err(format!("expected = after option {k}"));
                }
                match it.next() {
                    Some(Tok::Quoted(v) | Tok::Word(v)) => options.push((k, v)),
                    _ => return Err(format!("expected a value for option {k}")),
                }
            }
            _ => return Err("expected an option or ; to end the login module".into()),
        }
    }
    if it.next().is_some() {
        return Err("exactly one login module is allowed".into());
    }
    Ok(JaasModule {
        class,
        flag,
        options,
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Eq,
    Semi,
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// A TLS listener's key store, trust store and policy (Kafka's `ssl.*` keys, each overridable
/// per listener as `listener.name.<l>.ssl.*`). The files are read when the listener starts
/// and whenever they change (checked every `ssl.keystore.reload.interval.ms`).
#[derive(Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `ssl.keystore.type`: `PEM` or `PKCS12` (`None`: told by the file's content).
    pub keystore_type: Option<String>,
    pub keystore_location: Option<std::path::PathBuf>,
    pub keystore_password: Option<String>,
    /// `ssl.key.password` (an encrypted PEM key is refused: give it unencrypted or in PKCS#12).
    pub key_password: Option<String>,
    /// `ssl.keystore.key` and `ssl.keystore.certificate.chain`: PEM given inline.
    pub keystore_key: Option<String>,
    pub keystore_certificate_chain: Option<String>,
    pub truststore_type: Option<String>,
    pub truststore_location: Option<std::path::PathBuf>,
    pub truststore_password: Option<String>,
    /// `ssl.truststore.certificates`: PEM given inline.
    pub truststore_certificates: Option<String>,
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols` (`TLSv1.2,TLSv1.3`).
    pub enabled_protocols: Vec<String>,
    /// `ssl.cipher.suites` (IANA names; empty = rustls' defaults).
    pub cipher_suites: Vec<String>,
    /// `ssl.principal.mapping.rules` (`DEFAULT`).
    pub principal_mapping_rules: String,
    /// `ssl.keystore.reload.interval.ms` (raftka's; 10000): how often the key and trust store
    /// files are checked for changes (0 = never).
    pub reload_interval: Duration,
}

impl fmt::Debug for TlsSettings {
    /// Locations and policy only: passwords and inline keys stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("keystore_type", &self.keystore_type)
            .field("keystore_location", &self.keystore_location)
            .field("truststore_location", &self.truststore_location)
            .field("client_auth", &self.client_auth)
            .field("enabled_protocols", &self.enabled_protocols)
            .field("cipher_suites", &self.cipher_suites)
            .field("principal_mapping_rules", &self.principal_mapping_rules)
            .finish_non_exhaustive()
    }
}

/// The TLS settings of listener `name` (a `listener.name.<l>.` key wins over the plain one).
///
/// # Errors
/// No key store, an unknown client-auth value, a protocol rustls does not speak.
pub fn listener_tls(
    name: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<TlsSettings, ConfigError> {
    let lname = name.to_ascii_lowercase();
    tls_settings(
        &format!("listener {name}"),
        &format!("listener.name.{lname}."),
        get,
    )
}

/// The node-to-node (Raft / replication gRPC) TLS settings: `raft.ssl.*` keys, each falling
/// back to the plain `ssl.*` key. On when `raft.ssl.keystore.location` or
/// `raft.ssl.keystore.key` is set; clients are then always authenticated (mutual TLS), so
/// `ssl.client.auth` is forced to `required` and a trust store is needed.
///
/// # Errors
/// As [`listener_tls`].
pub fn raft_tls(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<TlsSettings>, ConfigError> {
    if get("raft.ssl.keystore.location").is_none() && get("raft.ssl.keystore.key").is_none() {
        return Ok(None);
    }
    let forced = |k: &str| {
        if k == "raft.ssl.client.auth" {
            Some("required".to_owned())
        } else {
            get(k)
        }
    };
    tls_settings("the node-to-node port (raft.listen)", "raft.", &forced).map(Some)
}

/// The ZooKeeper facade's secure port (`zk.secure.listen`): `zk.ssl.*` keys, each falling
/// back to the plain `ssl.*` key; a key store is required.
///
/// # Errors
/// As [`listener_tls`], and no key store.
pub fn zk_tls(get: &dyn Fn(&str) -> Option<String>) -> Result<TlsSettings, ConfigError> {
    let s = tls_settings("the ZooKeeper secure port (zk.secure.listen)", "zk.", get)?;
    if s.keystore_location.is_none() && s.keystore_key.is_none() {
        return Err(ConfigError::Relation(
            "zk.secure.listen needs a key store: zk.ssl.keystore.location (or ssl.keystore.location)".into(),
        ));
    }
    Ok(s)
}

/// TLS settings where each `ssl.*` key may be overridden by `<prefix>ssl.*`.
fn tls_settings(
    name: &str,
    prefix: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<TlsSettings, ConfigError> {
    let lname = prefix.trim_end_matches('.').to_owned();
    let key_of = |k: &str| {
        let specific = format!("{prefix}{k}");
        if get(&specific).is_some() {
            specific
        } else {
            k.to_owned()
        }
    };
    let val = |k: &str| get(&key_of(k));
    let client_auth = match val("ssl.client.auth")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("none") => ClientAuth::None,
        Some("requested") => ClientAuth::Requested,
        Some("required") => ClientAuth::Required,
        Some(other) => {
            return Err(invalid(
                &key_of("ssl.client.auth"),
                other,
                "expected none, requested or required",
            ))
        }
    };
    let list = |k: &str| -> Vec<String> {
        val(k)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut enabled_protocols = list("ssl.enabled.protocols");
    if enabled_protocols.is_empty() {
        enabled_protocols = vec!["TLSv1.2".into(), "TLSv1.3".into()];
    }
    for p in &enabled_protocols {
        if p != "TLSv1.2" && p != "TLSv1.3" {
            return Err(invalid(
                &key_of("ssl.enabled.protocols"),
                p,
                "only TLSv1.2 and TLSv1.3 are served",
            ));
        }
    }
    let store_type = |k: &str| -> Result<Option<String>, ConfigError> {
        match val(k).map(|v| v.to_ascii_uppercase()) {
            None => Ok(None),
            Some(t) if t == "PEM" || t == "PKCS12" => Ok(Some(t)),
            Some(t) => Err(invalid(&key_of(k), &t, "expected PEM or PKCS12 (JKS is not supported: convert it with keytool -importkeystore -deststoretype PKCS12)")),
        }
    };
    let settings = TlsSettings {
        keystore_type: store_type("ssl.keystore.type")?,
        keystore_location: val("ssl.keystore.location").map(Into::into),
        keystore_password: val("ssl.keystore.password"),
        key_password: val("ssl.key.password"),
        keystore_key: val("ssl.keystore.key"),
        keystore_certificate_chain: val("ssl.keystore.certificate.chain"),
        truststore_type: store_type("ssl.truststore.type")?,
        truststore_location: val("ssl.truststore.location").map(Into::into),
        truststore_password: val("ssl.truststore.password"),
        truststore_certificates: val("ssl.truststore.certificates"),
        client_auth,
        enabled_protocols,
        cipher_suites: list("ssl.cipher.suites"),
        principal_mapping_rules: val("ssl.principal.mapping.rules")
            .unwrap_or_else(|| "DEFAULT".into()),
        reload_interval: match val("ssl.keystore.reload.interval.ms") {
            None => Duration::from_secs(10),
            Some(v) => Duration::from_millis(v.parse::<u64>().map_err(|_| {
                invalid(
                    &key_of("ssl.keystore.reload.interval.ms"),
                    &v,
                    "not a number of milliseconds",
                )
            })?),
        },
    };
    if settings.keystore_location.is_none() && settings.keystore_key.is_none() {
        return Err(ConfigError::Relation(format!(
            "TLS on {name} needs a key store: ssl.keystore.location (or {lname}.ssl.keystore.location), or ssl.keystore.key with ssl.keystore.certificate.chain"
        )));
    }
    if client_auth != ClientAuth::None
        && settings.truststore_location.is_none()
        && settings.truststore_certificates.is_none()
    {
        return Err(ConfigError::Relation(format!(
            "TLS on {name} has ssl.client.auth={} but no trust store (ssl.truststore.location or ssl.truststore.certificates)",
            match client_auth {
                ClientAuth::Requested => "requested",
                _ => "required",
            }
        )));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorizer_settings() {
        let with = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(a, _)| *a == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(authorizer(&with(&[])), Ok(None));
        assert_eq!(
            authorizer(&with(&[("authorizer.class.name", " ")])),
            Ok(None)
        );
        let on = authorizer(&with(&[
            (
                "authorizer.class.name",
                "kafka.security.auth.SimpleAclAuthorizer",
            ),
            ("super.users", "User:admin; User:ops;"),
            ("allow.everyone.if.no.acl.found", "true"),
        ]))
        .expect("valid")
        .expect("on");
        assert_eq!(on.super_users, vec!["User:admin", "User:ops"]);
        assert!(on.allow_if_no_acl);
        for bad in [
            &[("authorizer.class.name", "com.example.MyAuthorizer")][..],
            &[
                (
                    "authorizer.class.name",
                    "kafka.security.authorizer.AclAuthorizer",
                ),
                ("super.users", "admin"),
            ][..],
            &[
                (
                    "authorizer.class.name",
                    "kafka.security.authorizer.AclAuthorizer",
                ),
                ("allow.everyone.if.no.acl.found", "yes"),
            ][..],
        ] {
            let owned: Vec<(String, String)> = bad
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let get = move |k: &str| owned.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
            assert!(authorizer(&get).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn jaas_as_kafka_docs_write_it() {
        let m = parse_jaas(
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" \
             user_alice=\"al\\\"ice\";",
        )
        .expect("test value");
        assert_eq!(
            m.class,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(m.flag, "required");
        assert_eq!(m.options[3], ("user_alice".into(), "al\"ice".into()));
        assert!(parse_jaas("X required a=\"b\"").is_err());
        assert!(parse_jaas("X maybe;").is_err());
        assert!(parse_jaas("X required a=\"b\"; Y required;").is_err());
        assert!(parse_jaas("X required a=\"unterminated;").is_err());
        assert!(parse_jaas("X required a b;").is_err());
        assert_eq!(
            parse_jaas("X required user_bob=pw;")
                .expect("test value")
                .options,
            vec![("user_bob".into(), "pw".into())]
        );
    }

    #[test]
    fn protocol_map_and_listener_sasl() {
        let m =
            parse_protocol_map(Some("INTERNAL:PLAINTEXT, EXTERNAL:sasl_ssl")).expect("test value");
        assert_eq!(m["EXTERNAL"], SecurityProtocol::SaslSsl);
        assert!(parse_protocol_map(Some("A:KERBEROS")).is_err());
        assert!(parse_protocol_map(Some("A:SSL,A:SSL")).is_err());
        assert_eq!(parse_protocol_map(None).expect("test value").len(), 4);

        let props: BTreeMap<&str, &str> = [
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"a-pw\";"),
            ("listener.name.other.sasl.enabled.mechanisms", "SCRAM-SHA-512"),
            ("listener.name.bad.sasl.enabled.mechanisms", "GSSAPI"),
        ]
        .into();
        let get = |k: &str| props.get(k).map(|s| s.to_string());
        let s = listener_sasl("SASL_PLAINTEXT", &get).expect("test value");
        assert_eq!(
            s.mechanisms,
            vec!["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
        );
        assert_eq!(s.plain_users["alice"], "a-pw");
        assert!(!format!("{s:?}").contains("a-pw"));
        assert_eq!(
            listener_sasl("OTHER", &get).expect("test value").mechanisms,
            vec!["SCRAM-SHA-512"]
        );
        assert!(listener_sasl("BAD", &get).is_err());
        // PLAIN without users is a configuration error.
        assert!(matches!(
            listener_sasl("NOUSERS", &get),
            Err(ConfigError::Relation(_))
        ));
    }
}
