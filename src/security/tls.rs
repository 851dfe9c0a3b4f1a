//! TLS for the Kafka listeners (rustls with the ring provider): key and trust stores in PEM or
//! PKCS#12 with Kafka's `ssl.*` keys, `ssl.client.auth`, protocol and cipher-suite choice,
//! the mTLS principal from the client certificate's subject (`ssl.principal.mapping.rules`,
//! Kafka's `SslPrincipalMapper`), and reloading the stores when their files change.
//!
//! Kafka's default principal for a certificate is `User:` + the subject DN in RFC 2253 form
//! as Java prints it (`CN=alice,OU=eng,O=acme,C=US`: the last RDN of the certificate first).

use super::Principal;
use crate::config::security::{ClientAuth, TlsSettings};
use regex::Regex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

/// Largest key or trust store file read (a store is a few KiB; this bounds a wrong path).
const STORE_MAX_BYTES: u64 = 16 << 20;

/// Builds the rustls server config of a listener.
///
/// # Errors
/// A store that cannot be read or parsed, a key that does not match, an unknown cipher suite;
/// the message names the key and never contains a password.
#[allow(deprecated)] // ring's provider lacks post-quantum key exchange; aws-lc-rs would add a large C build
pub fn server_config(s: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !s.cipher_suites.is_empty() {
        let mut suites = Vec::new();
        for name in &s.cipher_suites {
            let found = provider
                .cipher_suites
                .iter()
                .find(|cs| suite_name(cs) == *name || format!("{:?}", cs.suite()) == *name)
                .ok_or_else(|| {
                    format!(
                        "ssl.cipher.suites: {name} is not available (available: {})",
                        provider
                            .cipher_suites
                            .iter()
                            .map(suite_name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            suites.push(*found);
        }
        provider.cipher_suites = suites;
    }
    let provider = Arc::new(provider);
    let mut versions = Vec::new();
    if s.enabled_protocols.iter().any(|p| p == "TLSv1.3") {
        versions.push(&rustls::version::TLS13);
    }
    if s.enabled_protocols.iter().any(|p| p == "TLSv1.2") {
        versions.push(&rustls::version::TLS12);
    }
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("ssl.enabled.protocols / ssl.cipher.suites: {e}"))?;
    let (chain, key) = keystore(s)?;
    let builder = match s.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let roots = Arc::new(truststore(s)?);
            let v = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let v = if auth == ClientAuth::Requested {
                v.allow_unauthenticated()
            } else {
                v
            };
            let v = v.build().map_err(|e| format!("ssl.truststore: {e}"))?;
            builder.with_client_cert_verifier(v)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("ssl.keystore: the key does not fit the certificate: {e}"))?;
    Ok(Arc::new(config))
}

/// The IANA name of a suite (`TLS_AES_128_GCM_SHA256`; rustls spells TLS 1.3 suites `TLS13_`).
fn suite_name(cs: &rustls::SupportedCipherSuite) -> String {
    let n = format!("{:?}", cs.suite());
    n.strip_prefix("TLS13_")
        .map_or(n.clone(), |rest| format!("TLS_{rest}"))
}

fn read_store(key: &str, path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{key} {}: {e}", path.display()))?;
    if meta.len() > STORE_MAX_BYTES {
        return Err(format!(
            "{key} {}: larger than {STORE_MAX_BYTES} bytes",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| format!("{key} {}: {e}", path.display()))
}

fn is_pem(kind: Option<&str>, data: &[u8]) -> bool {
    match kind {
        Some(t) => t == "PEM",
        None => data.windows(11).take(4096).any(|w| w == b"-----BEGIN "),
    }
}

fn pem_certs(key: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{key}: bad PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{key}: no certificate found"));
    }
    Ok(certs)
}

fn pem_key(key: &str, pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    if pem
        .windows(29)
        .any(|w| w == b"BEGIN ENCRYPTED PRIVATE KEY--")
    {
        return Err(format!(
            "{key}: an encrypted PEM key is not supported; give it unencrypted (file mode 0600) or use a PKCS12 key store"
        ));
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("{key}: no usable private key: {e}"))
}

/// The certificate chain and key.
fn keystore(
    s: &TlsSettings,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    if let (Some(k), Some(c)) = (&s.keystore_key, &s.keystore_certificate_chain) {
        return Ok((
            pem_certs("ssl.keystore.certificate.chain", c.as_bytes())?,
            pem_key("ssl.keystore.key", k.as_bytes())?,
        ));
    }
    let path = s
        .keystore_location
        .as_deref()
        .ok_or("ssl.keystore.location is not set")?;
    let data = read_store("ssl.keystore.location", path)?;
    if is_pem(s.keystore_type.as_deref(), &data) {
        return Ok((
            pem_certs("ssl.keystore.location", &data)?,
            pem_key("ssl.keystore.location", &data)?,
        ));
    }
    let password = s.keystore_password.as_deref().unwrap_or("");
    let store = p12_keystore::KeyStore::from_pkcs12(&data, password)
        .map_err(|e| format!("ssl.keystore.location {}: not a readable PKCS12 store (wrong ssl.keystore.password?): {e}", path.display()))?;
    let (_, chain) = store.private_key_chain().ok_or_else(|| {
        format!(
            "ssl.keystore.location {}: no private key entry",
            path.display()
        )
    })?;
    let certs = chain
        .chain()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect::<Vec<_>>();
    if certs.is_empty() {
        return Err(format!(
            "ssl.keystore.location {}: the key has no certificate",
            path.display()
        ));
    }
    Ok((
        certs,
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().to_vec())),
    ))
}

/// The trusted certificates (for client authentication).
fn truststore(s: &TlsSettings) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for c in trusted_certs(s)? {
        roots
            .add(c)
            .map_err(|e| format!("ssl.truststore: unusable certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("ssl.truststore: no trusted certificate".into());
    }
    Ok(roots)
}

/// The trust store's certificates.
fn trusted_certs(s: &TlsSettings) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = if let Some(pem) = &s.truststore_certificates {
        pem_certs("ssl.truststore.certificates", pem.as_bytes())?
    } else {
        let path = s
            .truststore_location
            .as_deref()
            .ok_or("ssl.truststore.location is not set")?;
        let data = read_store("ssl.truststore.location", path)?;
        if is_pem(s.truststore_type.as_deref(), &data) {
            pem_certs("ssl.truststore.location", &data)?
        } else {
            let store = p12_keystore::KeyStore::from_pkcs12(&data, s.truststore_password.as_deref().unwrap_or(""))
                .map_err(|e| format!("ssl.truststore.location {}: not a readable PKCS12 store (wrong ssl.truststore.password?): {e}", path.display()))?;
            let mut out = Vec::new();
            for (_, entry) in store.entries() {
                match entry {
                    p12_keystore::KeyStoreEntry::Certificate(c) => {
                        out.push(CertificateDer::from(c.as_der().to_vec()))
                    }
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(k) => {
                        out.extend(
                            k.chain()
                                .iter()
                                .map(|c| CertificateDer::from(c.as_der().to_vec())),
                        );
                    }
                    p12_keystore::KeyStoreEntry::Secret(_) => {}
                }
            }
            out
        }
    };
    if certs.is_empty() {
        return Err("ssl.truststore: no trusted certificate".into());
    }
    Ok(certs)
}

/// Node-to-node TLS material as PEM text (what tonic's TLS configs take): the chain, the key
/// and the trusted CAs, read from the same PEM or PKCS#12 stores as a listener's.
///
/// # Errors
/// As [`server_config`]; a trust store is required.
pub fn pem_material(s: &TlsSettings) -> Result<(String, String, String), String> {
    let (chain, key) = keystore(s)?;
    let chain_pem: String = chain
        .iter()
        .map(|c| pem("CERTIFICATE", c.as_ref()))
        .collect();
    let key_pem = match &key {
        PrivateKeyDer::Pkcs8(k) => pem("PRIVATE KEY", k.secret_pkcs8_der()),
        PrivateKeyDer::Sec1(k) => pem("EC PRIVATE KEY", k.secret_sec1_der()),
        PrivateKeyDer::Pkcs1(k) => pem("RSA PRIVATE KEY", k.secret_pkcs1_der()),
        _ => return Err("ssl.keystore: unsupported private key format".into()),
    };
    let roots: String = trusted_certs(s)?
        .iter()
        .map(|c| pem("CERTIFICATE", c.as_ref()))
        .collect();
    Ok((chain_pem, key_pem, roots))
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The modification times of the store files (what a reload compares).
fn stamp(s: &TlsSettings) -> Vec<Option<SystemTime>> {
    [&s.keystore_location, &s.truststore_location]
        .into_iter()
        .map(|p| {
            p.as_ref()
                .and_then(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        })
        .collect()
}

/// A listener's current server config, rebuilt when its store files change.
#[derive(Debug)]
pub struct ReloadingConfig {
    settings: Arc<TlsSettings>,
    state: RwLock<(Arc<ServerConfig>, Vec<Option<SystemTime>>, Instant)>,
}

/// What a reload check did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Reloaded,
    /// The files changed but do not load: the previous config stays in use.
    Failed(String),
}

impl ReloadingConfig {
    /// Loads the stores now.
    ///
    /// # Errors
    /// See [`server_config`].
    pub fn new(settings: Arc<TlsSettings>) -> Result<Self, String> {
        let config = server_config(&settings)?;
        let st = stamp(&settings);
        Ok(Self {
            settings,
            state: RwLock::new((config, st, Instant::now())),
        })
    }

    /// The config to accept the next connection with (checking the files at most once per
    /// `ssl.keystore.reload.interval.ms`).
    pub fn current(&self) -> (Arc<ServerConfig>, Reload) {
        let interval = self.settings.reload_interval;
        {
            let st = self
                .state
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if interval.is_zero() || st.2.elapsed() < interval {
                return (st.0.clone(), Reload::Unchanged);
            }
        }
        let mut st = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        st.2 = Instant::now();
        let now = stamp(&self.settings);
        if now == st.1 {
            return (st.0.clone(), Reload::Unchanged);
        }
        st.1 = now;
        match server_config(&self.settings) {
            Ok(c) => {
                st.0 = c.clone();
                (c, Reload::Reloaded)
            }
            Err(e) => (st.0.clone(), Reload::Failed(e)),
        }
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }
}

/// One rule of `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
enum Rule {
    Default,
    Pattern {
        regex: Regex,
        replacement: String,
        case: Option<char>,
    },
}

/// Kafka's `SslPrincipalMapper`: `DEFAULT` and `RULE:<pattern>/<replacement>/[LU]`, comma
/// separated, tried in order; the first whose pattern matches the whole DN gives the name.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

impl PrincipalMapper {
    /// # Errors
    /// A malformed rule or pattern.
    pub fn parse(rules: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        let group_ref = Regex::new(r"\$(\d+)").expect("valid");
        let mut rest = rules.trim();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("DEFAULT") {
                out.push(Rule::Default);
                rest = r;
            } else if let Some(r) = rest.strip_prefix("RULE:") {
                let (pattern, r) = until_slash(r)
                    .ok_or("ssl.principal.mapping.rules: RULE needs pattern/replacement/")?;
                let (replacement, r) = until_slash(r)
                    .ok_or("ssl.principal.mapping.rules: RULE needs pattern/replacement/")?;
                let (case, r) = match r.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &r[1..]),
                    _ => (None, r),
                };
                let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                    format!("ssl.principal.mapping.rules: bad pattern {pattern:?}: {e}")
                })?;
                // Java's $1 is the regex crate's ${1} (a following letter would extend the name).
                let replacement = group_ref.replace_all(&replacement, "$${$1}").into_owned();
                out.push(Rule::Pattern {
                    regex,
                    replacement,
                    case,
                });
                rest = r;
            } else {
                return Err(format!(
                    "ssl.principal.mapping.rules: cannot parse {rest:?}"
                ));
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(r) => rest = r.trim_start(),
                None if rest.is_empty() => {}
                None => {
                    return Err(format!(
                        "ssl.principal.mapping.rules: expected , before {rest:?}"
                    ))
                }
            }
        }
        if out.is_empty() {
            out.push(Rule::Default);
        }
        Ok(Self { rules: out })
    }

    /// The principal name for a DN; `None` when no rule applies (authentication then fails).
    pub fn name(&self, dn: &str) -> Option<String> {
        for r in &self.rules {
            match r {
                Rule::Default => return Some(dn.to_owned()),
                Rule::Pattern {
                    regex,
                    replacement,
                    case,
                } => {
                    if regex.is_match(dn) {
                        let n = regex.replace(dn, replacement.as_str()).into_owned();
                        return Some(match case {
                            Some('L') => n.to_lowercase(),
                            Some('U') => n.to_uppercase(),
                            _ => n,
                        });
                    }
                }
            }
        }
        None
    }
}

/// Splits at the first unescaped `/` (`\/` is a literal slash).
fn until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, o)) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            },
            '/' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// The subject of a DER certificate as Java's `X500Principal.getName()` (RFC 2253) writes it.
pub fn subject_dn(cert: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).ok()?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let mut parts = Vec::new();
        for atv in rdn.iter() {
            let oid = atv.attr_type().to_id_string();
            let key = match oid.as_str() {
                "2.5.4.3" => "CN".to_owned(),
                "2.5.4.6" => "C".to_owned(),
                "2.5.4.7" => "L".to_owned(),
                "2.5.4.8" => "ST".to_owned(),
                "2.5.4.9" => "STREET".to_owned(),
                "2.5.4.10" => "O".to_owned(),
                "2.5.4.11" => "OU".to_owned(),
                "0.9.2342.19200300.100.1.25" => "DC".to_owned(),
                "0.9.2342.19200300.100.1.1" => "UID".to_owned(),
                other => other.to_owned(),
            };
            let value = atv.as_str().ok()?;
            parts.push(format!("{key}={}", escape_rfc2253(value)));
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

fn escape_rfc2253(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let lead = i == 0 && (c == ' ' || c == '#');
        let trail = i + 1 == v.chars().count() && c == ' ';
        if lead || trail || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The principal of a TLS client: its certificate's DN through the mapping rules, or
/// `User:ANONYMOUS` without a certificate.
///
/// # Errors
/// A certificate whose subject cannot be read, or a DN no rule maps.
pub fn principal(
    peer_certs: Option<&[CertificateDer<'_>]>,
    mapper: &PrincipalMapper,
) -> Result<Principal, String> {
    let Some(first) = peer_certs.and_then(<[_]>::first) else {
        return Ok(Principal::anonymous());
    };
    let dn = subject_dn(first).ok_or("the client certificate's subject cannot be read")?;
    mapper
        .name(&dn)
        .map(Principal::user)
        .ok_or_else(|| format!("no ssl.principal.mapping.rules rule applies to {dn}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_rules_as_kafka_documents_them() {
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/, RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L, DEFAULT",
        )
        .expect("valid");
        assert_eq!(
            m.name("CN=kafka-server,OU=ServiceUsers,O=Org,C=US")
                .as_deref(),
            Some("kafka-server")
        );
        assert_eq!(
            m.name("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa Clara,ST=CA,C=US")
                .as_deref(),
            Some("duke@javasoft")
        );
        assert_eq!(
            m.name("OU=JavaSoft,cN=Alice.Smith").as_deref(),
            Some("alice.smith")
        );
        assert_eq!(m.name("O=x").as_deref(), Some("O=x"));
        let only = PrincipalMapper::parse("RULE:^CN=([a-z]+)$/$1/U").expect("valid");
        assert_eq!(only.name("CN=bob").as_deref(), Some("BOB"));
        assert_eq!(only.name("CN=Bob1"), None);
        assert_eq!(
            PrincipalMapper::parse("DEFAULT")
                .expect("valid")
                .name("CN=a,O=b")
                .as_deref(),
            Some("CN=a,O=b")
        );
        assert!(PrincipalMapper::parse("RULE:^(.*$/x/").is_err());
        assert!(PrincipalMapper::parse("BOGUS").is_err());
        let slash = PrincipalMapper::parse(r"RULE:^CN=a\/b$/ab/").expect("valid");
        assert_eq!(slash.name("CN=a/b").as_deref(), Some("ab"));
    }

    #[test]
    fn rfc2253_escaping() {
        assert_eq!(escape_rfc2253("a,b"), "a\\,b");
        assert_eq!(escape_rfc2253(" x "), "\\ x\\ ");
        assert_eq!(escape_rfc2253("plain"), "plain");
    }
}
