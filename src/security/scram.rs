//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802 / RFC 7677) as Kafka implements them
//! (`ScramSaslServer`, `ScramFormatter`, `ScramMessages`): the stored credential (salt,
//! StoredKey, ServerKey, iterations — never the password), its derivation from a salted
//! password or a password, and the server side of the three-message exchange.
//!
//! Kafka's rules kept here: iterations within 4096..=16384, the client-first message
//! `n,[a=<authzid>],n=<saslname>,r=<nonce>[,ext=...]` with an authzid equal to the user name
//! if given, the user name unescaped from `=2C`/`=3D`, the final message's nonce checked to
//! *end with* the combined nonce (Kafka's `endsWith`; librdkafka 2.0 repeats its own nonce in
//! front), and the proof checked against StoredKey in constant time. Delegation tokens
//! (`tokenauth=true`) are not served.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use base64::Engine as _;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Longest SCRAM message accepted from a client (Kafka's messages are well under 1 KiB).
pub const MESSAGE_MAX_BYTES: usize = 4096;
/// Longest salt accepted in a credential (Kafka's tools use 32 to 64 bytes).
pub const SALT_MAX_BYTES: usize = 1024;

/// A SCRAM mechanism (the protocol's `mechanism` byte: 1 = SHA-256, 2 = SHA-512).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name (`SCRAM-SHA-256`).
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The AlterUserScramCredentials / DescribeUserScramCredentials mechanism byte.
    pub fn type_id(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_type_id(id: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.type_id() == id)
    }

    /// Kafka's minimum (RFC 7677 recommends 4096).
    pub fn min_iterations(self) -> i32 {
        4096
    }

    /// Kafka's maximum.
    pub fn max_iterations(self) -> i32 {
        16384
    }

    /// Bytes of the hash (and of a salted password).
    pub fn hash_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi(password, salt, i)`: PBKDF2 with this mechanism's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.hash_len()];
        match self {
            ScramMechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
            }
            ScramMechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
            }
        }
        out
    }
}

/// What a server stores for one user and mechanism.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    #[serde(with = "b64")]
    pub stored_key: Vec<u8>,
    #[serde(with = "b64")]
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl std::fmt::Debug for ScramCredential {
    /// Only the iteration count: keys and salts stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScramCredential {{ iterations: {} }}", self.iterations)
    }
}

/// Why a credential is refused (AlterUserScramCredentials' UNACCEPTABLE_CREDENTIAL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("Too few iterations")]
    TooFewIterations,
    #[error("Too many iterations")]
    TooManyIterations,
    #[error("salt must be 1 to {SALT_MAX_BYTES} bytes")]
    BadSalt,
    #[error("salted password must be {0} bytes")]
    BadSaltedPassword(usize),
}

impl ScramCredential {
    /// The credential for a salted password (what AlterUserScramCredentials carries).
    ///
    /// # Errors
    /// Iterations outside the mechanism's range, an empty or oversize salt, or a salted
    /// password that is not one hash long.
    pub fn from_salted_password(
        mech: ScramMechanism,
        salt: &[u8],
        salted_password: &[u8],
        iterations: i32,
    ) -> Result<Self, CredentialError> {
        check_iterations(mech, iterations)?;
        if salt.is_empty() || salt.len() > SALT_MAX_BYTES {
            return Err(CredentialError::BadSalt);
        }
        if salted_password.len() != mech.hash_len() {
            return Err(CredentialError::BadSaltedPassword(mech.hash_len()));
        }
        let client_key = mech.hmac(salted_password, b"Client Key");
        Ok(Self {
            salt: salt.to_vec(),
            stored_key: mech.hash(&client_key),
            server_key: mech.hmac(salted_password, b"Server Key"),
            iterations,
        })
    }

    /// The credential for a password with a fresh random salt (Kafka's `ScramFormatter`
    /// uses a random 130-bit string as salt; 32 random bytes here).
    ///
    /// # Errors
    /// Iterations outside the mechanism's range.
    pub fn from_password(
        mech: ScramMechanism,
        password: &str,
        iterations: i32,
    ) -> Result<Self, CredentialError> {
        check_iterations(mech, iterations)?;
        let salt: [u8; 32] = rand::random();
        let salted = mech.salted_password(
            password.as_bytes(),
            &salt,
            u32::try_from(iterations).expect("checked positive"),
        );
        Self::from_salted_password(mech, &salt, &salted, iterations)
    }

    /// Whether `password` is the one this credential was made from (the stored key of its
    /// salted password, compared in constant time).
    pub fn verify_password(&self, mech: ScramMechanism, password: &str) -> bool {
        let Ok(iterations) = u32::try_from(self.iterations) else {
            return false;
        };
        let salted = mech.salted_password(password.as_bytes(), &self.salt, iterations);
        let stored = mech.hash(&mech.hmac(&salted, b"Client Key"));
        bool::from(stored.ct_eq(&self.stored_key))
    }

    /// Kafka's ZooKeeper form (`/config/users/<u>`):
    /// `salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=<n>`.
    pub fn to_zk_string(&self) -> String {
        format!(
            "salt={},stored_key={},server_key={},iterations={}",
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key),
            self.iterations
        )
    }

    /// Parses [`to_zk_string`](Self::to_zk_string)'s form (any order, as Kafka's
    /// `ScramCredentialUtils.credentialFromString` reads it).
    pub fn from_zk_string(mech: ScramMechanism, s: &str) -> Option<Self> {
        let (mut salt, mut stored, mut server, mut iterations) = (None, None, None, None);
        for kv in s.split(',') {
            let (k, v) = kv.split_once('=')?;
            match k.trim() {
                "salt" => salt = Some(B64.decode(v.trim()).ok()?),
                "stored_key" => stored = Some(B64.decode(v.trim()).ok()?),
                "server_key" => server = Some(B64.decode(v.trim()).ok()?),
                "iterations" => iterations = Some(v.trim().parse::<i32>().ok()?),
                _ => return None,
            }
        }
        let c = Self {
            salt: salt?,
            stored_key: stored?,
            server_key: server?,
            iterations: iterations?,
        };
        let ok = check_iterations(mech, c.iterations).is_ok()
            && !c.salt.is_empty()
            && c.salt.len() <= SALT_MAX_BYTES
            && c.stored_key.len() == mech.hash_len()
            && c.server_key.len() == mech.hash_len();
        ok.then_some(c)
    }
}

fn check_iterations(mech: ScramMechanism, iterations: i32) -> Result<(), CredentialError> {
    if iterations < mech.min_iterations() {
        Err(CredentialError::TooFewIterations)
    } else if iterations > mech.max_iterations() {
        Err(CredentialError::TooManyIterations)
    } else {
        Ok(())
    }
}

/// Why an exchange failed. The client is told only Kafka's generic message; the variant is
/// for the server's log (it never carries a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message")]
    Malformed,
    #[error("authorization id differs from the user name")]
    AuthzidMismatch,
    #[error("unknown user or no credential for this mechanism")]
    UnknownUser,
    #[error("delegation tokens are not supported")]
    TokenAuth,
    #[error("invalid client nonce in the final client message")]
    Nonce,
    #[error("channel binding differs from the client-first message")]
    ChannelBinding,
    #[error("invalid client proof")]
    Proof,
    #[error("message after the exchange completed")]
    Complete,
}

enum Stage {
    ClientFirst,
    ClientFinal {
        user: String,
        credential: ScramCredential,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done,
}

/// The server side of one SCRAM exchange.
pub struct ScramServer {
    mech: ScramMechanism,
    stage: Stage,
}

impl std::fmt::Debug for ScramServer {
    /// The mechanism only: the exchange's state holds a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScramServer({})", self.mech.name())
    }
}

/// The outcome of one client message.
#[derive(Debug, PartialEq, Eq)]
pub enum ScramStep {
    /// Send this challenge and wait for the next message.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send the server-final message.
    Done { user: String, server_final: Vec<u8> },
}

/// `saslname` unescaping (RFC 5802: `=2C` → `,`, `=3D` → `=`; any other `=` is malformed).
fn unescape_saslname(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3)?;
        match esc {
            "=2C" => out.push(','),
            "=3D" => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

fn printable_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

impl ScramServer {
    pub fn new(mech: ScramMechanism) -> Self {
        Self {
            mech,
            stage: Stage::ClientFirst,
        }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mech
    }

    /// Handles one client message; `lookup` finds the user's credential for this mechanism.
    ///
    /// # Errors
    /// Any malformed message, unknown user, or a failed proof; the exchange is then over.
    pub fn step(
        &mut self,
        msg: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<ScramStep, ScramError> {
        if msg.len() > MESSAGE_MAX_BYTES {
            return Err(ScramError::Malformed);
        }
        let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed)?;
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::ClientFirst => self.client_first(msg, lookup),
            Stage::ClientFinal {
                user,
                credential,
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
            } => {
                let server_final = self.client_final(
                    msg,
                    &credential,
                    &gs2_header,
                    &client_first_bare,
                    &server_first,
                    &nonce,
                )?;
                Ok(ScramStep::Done { user, server_final })
            }
            Stage::Done => Err(ScramError::Complete),
        }
    }

    fn client_first(
        &mut self,
        msg: &str,
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<ScramStep, ScramError> {
        // gs2-header: "n," or "y," (no channel binding), then "[a=authzid],".
        let (cbind, rest) = msg.split_once(',').ok_or(ScramError::Malformed)?;
        if cbind != "n" && cbind != "y" {
            return Err(ScramError::Malformed);
        }
        let (authzid, bare) = rest.split_once(',').ok_or(ScramError::Malformed)?;
        let authzid = match authzid {
            "" => None,
            a => Some(
                a.strip_prefix("a=")
                    .and_then(unescape_saslname)
                    .ok_or(ScramError::Malformed)?,
            ),
        };
        let gs2_header = &msg[..msg.len() - bare.len()];
        let mut parts = bare.split(',');
        let user = parts
            .next()
            .and_then(|p| p.strip_prefix("n="))
            .and_then(unescape_saslname)
            .filter(|u| !u.is_empty())
            .ok_or(ScramError::Malformed)?;
        let client_nonce = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .filter(|n| printable_nonce(n))
            .ok_or(ScramError::Malformed)?;
        for ext in parts {
            let (k, v) = ext.split_once('=').ok_or(ScramError::Malformed)?;
            if k == "tokenauth" && v.eq_ignore_ascii_case("true") {
                return Err(ScramError::TokenAuth);
            }
        }
        if authzid.as_deref().is_some_and(|a| a != user) {
            return Err(ScramError::AuthzidMismatch);
        }
        let credential = lookup(&user).ok_or(ScramError::UnknownUser)?;
        if check_iterations(self.mech, credential.iterations).is_err() {
            return Err(ScramError::UnknownUser);
        }
        let server_nonce: [u8; 24] = rand::random();
        let nonce = format!(
            "{client_nonce}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(server_nonce)
        );
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        let out = server_first.clone().into_bytes();
        self.stage = Stage::ClientFinal {
            user,
            credential,
            gs2_header: gs2_header.to_owned(),
            client_first_bare: bare.to_owned(),
            server_first,
            nonce,
        };
        Ok(ScramStep::Continue(out))
    }

    fn client_final(
        &self,
        msg: &str,
        credential: &ScramCredential,
        gs2_header: &str,
        client_first_bare: &str,
        server_first: &str,
        nonce: &str,
    ) -> Result<Vec<u8>, ScramError> {
        // c=<b64 gs2 header>,r=<nonce>[,ext...],p=<b64 proof>; the proof is last.
        let (without_proof, proof) = msg.rsplit_once(",p=").ok_or(ScramError::Malformed)?;
        let mut parts = without_proof.split(',');
        let cb = parts
            .next()
            .and_then(|p| p.strip_prefix("c="))
            .ok_or(ScramError::Malformed)?;
        let r = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .ok_or(ScramError::Malformed)?;
        if B64.decode(cb).map_err(|_| ScramError::Malformed)? != gs2_header.as_bytes() {
            return Err(ScramError::ChannelBinding);
        }
        // Kafka checks `endsWith`, not equality, and clients rely on it: librdkafka before
        // 2.1 sends its own nonce in front of the combined one.
        if !r.ends_with(nonce) {
            return Err(ScramError::Nonce);
        }
        let proof = B64.decode(proof).map_err(|_| ScramError::Malformed)?;
        if proof.len() != self.mech.hash_len() {
            return Err(ScramError::Proof);
        }
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = self
            .mech
            .hmac(&credential.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let stored = self.mech.hash(&client_key);
        if !bool::from(stored.ct_eq(&credential.stored_key)) {
            return Err(ScramError::Proof);
        }
        let server_signature = self
            .mech
            .hmac(&credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// The client side of one exchange (for `raftka users` and tests): `first()`, then
/// `final_message(server_first)`, then `verify(server_final)`.
pub struct ScramClient {
    mech: ScramMechanism,
    user: String,
    password: String,
    nonce: String,
    first_bare: String,
    expected_server_signature: Option<Vec<u8>>,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScramClient({}, {})", self.mech.name(), self.user)
    }
}

impl ScramClient {
    pub fn new(mech: ScramMechanism, user: &str, password: &str) -> Self {
        let nonce: [u8; 24] = rand::random();
        let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce);
        let first_bare = format!(
            "n={},r={nonce}",
            user.replace('=', "=3D").replace(',', "=2C")
        );
        Self {
            mech,
            user: user.to_owned(),
            password: password.to_owned(),
            nonce,
            first_bare,
            expected_server_signature: None,
        }
    }

    /// The client-first message.
    pub fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// The client-final message for the server-first message.
    ///
    /// # Errors
    /// A malformed server message, a nonce that does not extend ours, or iterations out of range.
    pub fn final_message(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        if server_first.len() > MESSAGE_MAX_BYTES {
            return Err(ScramError::Malformed);
        }
        let sf = std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed)?;
        let (mut r, mut salt, mut iterations) = (None, None, None);
        for kv in sf.split(',') {
            let (k, v) = kv.split_once('=').ok_or(ScramError::Malformed)?;
            match k {
                "r" => r = Some(v),
                "s" => salt = Some(B64.decode(v).map_err(|_| ScramError::Malformed)?),
                "i" => iterations = v.parse::<i32>().ok(),
                _ => {}
            }
        }
        let (r, salt, iterations) = (
            r.ok_or(ScramError::Malformed)?,
            salt.ok_or(ScramError::Malformed)?,
            iterations.ok_or(ScramError::Malformed)?,
        );
        if !r.starts_with(&self.nonce) || r.len() == self.nonce.len() {
            return Err(ScramError::Nonce);
        }
        check_iterations(self.mech, iterations).map_err(|_| ScramError::Malformed)?;
        let salted = self.mech.salted_password(
            self.password.as_bytes(),
            &salt,
            u32::try_from(iterations).expect("checked positive"),
        );
        let without_proof = format!("c={},r={r}", B64.encode("n,,"));
        let auth = format!("{},{sf},{without_proof}", self.first_bare);
        let client_key = self.mech.hmac(&salted, b"Client Key");
        let stored = self.mech.hash(&client_key);
        let signature = self.mech.hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = self.mech.hmac(&salted, b"Server Key");
        self.expected_server_signature = Some(self.mech.hmac(&server_key, auth.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message (`v=<signature>`): the server knew the credential.
    pub fn verify(&self, server_final: &[u8]) -> bool {
        let Some(expected) = &self.expected_server_signature else {
            return false;
        };
        std::str::from_utf8(server_final)
            .ok()
            .and_then(|s| s.strip_prefix("v="))
            .and_then(|v| B64.decode(v).ok())
            .is_some_and(|v| bool::from(v.ct_eq(expected)))
    }
}

mod b64 {
    use super::B64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client side written from RFC 5802, to drive the server.
    struct Client {
        mech: ScramMechanism,
        password: String,
        nonce: String,
        first_bare: String,
    }

    impl Client {
        fn first(mech: ScramMechanism, user: &str, password: &str, nonce: &str) -> (Self, String) {
            let first_bare = format!(
                "n={},r={nonce}",
                user.replace('=', "=3D").replace(',', "=2C")
            );
            let c = Self {
                mech,
                password: password.into(),
                nonce: nonce.into(),
                first_bare: first_bare.clone(),
            };
            (c, format!("n,,{first_bare}"))
        }

        fn final_msg(&self, server_first: &str) -> (String, Vec<u8>) {
            let mut r = None;
            let mut s = None;
            let mut i = None;
            for kv in server_first.split(',') {
                let (k, v) = kv.split_once('=').expect("test value");
                match k {
                    "r" => r = Some(v.to_owned()),
                    "s" => s = Some(B64.decode(v).expect("test value")),
                    "i" => i = Some(v.parse::<u32>().expect("test value")),
                    _ => {}
                }
            }
            let r = r.expect("test value");
            assert!(r.starts_with(&self.nonce));
            let salted = self.mech.salted_password(
                self.password.as_bytes(),
                &s.expect("test value"),
                i.expect("test value"),
            );
            let without_proof = format!("c={},r={r}", B64.encode("n,,"));
            let auth = format!("{},{server_first},{without_proof}", self.first_bare);
            let client_key = self.mech.hmac(&salted, b"Client Key");
            let stored = self.mech.hash(&client_key);
            let sig = self.mech.hmac(&stored, auth.as_bytes());
            let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
            let server_key = self.mech.hmac(&salted, b"Server Key");
            let expect_v = self.mech.hmac(&server_key, auth.as_bytes());
            (format!("{without_proof},p={}", B64.encode(proof)), expect_v)
        }
    }

    fn run(
        mech: ScramMechanism,
        stored_pw: &str,
        client_pw: &str,
        user: &str,
    ) -> Result<String, ScramError> {
        let cred = ScramCredential::from_password(mech, stored_pw, 4096).expect("test value");
        let mut server = ScramServer::new(mech);
        let (client, first) = Client::first(mech, user, client_pw, "fyko+d2lbbFgONRv9qkxdawL");
        let ScramStep::Continue(sf) =
            server.step(first.as_bytes(), |u| (u == user).then(|| cred.clone()))?
        else {
            panic!("expected a challenge")
        };
        let sf = String::from_utf8(sf).expect("test value");
        let (fin, expect_v) = client.final_msg(&sf);
        match server.step(fin.as_bytes(), |_| unreachable!())? {
            ScramStep::Done { user, server_final } => {
                assert_eq!(
                    server_final,
                    format!("v={}", B64.encode(expect_v)).into_bytes()
                );
                assert_eq!(server.step(b"x", |_| None), Err(ScramError::Complete));
                Ok(user)
            }
            ScramStep::Continue(_) => panic!("expected the end"),
        }
    }

    #[test]
    fn exchange_succeeds_with_the_right_password_only() {
        for mech in ScramMechanism::ALL {
            assert_eq!(
                run(mech, "alice-secret", "alice-secret", "alice").expect("test value"),
                "alice"
            );
            assert_eq!(
                run(mech, "pw", "pw", "we,i=rd").expect("test value"),
                "we,i=rd"
            );
            assert_eq!(
                run(mech, "alice-secret", "wrong", "alice"),
                Err(ScramError::Proof)
            );
        }
    }

    #[test]
    fn the_client_and_the_server_agree() {
        for mech in ScramMechanism::ALL {
            let cred = ScramCredential::from_password(mech, "pw", 4096).expect("test value");
            let mut server = ScramServer::new(mech);
            let mut client = ScramClient::new(mech, "u,=x", "pw");
            let ScramStep::Continue(sf) = server
                .step(&client.first(), |u| (u == "u,=x").then(|| cred.clone()))
                .expect("test value")
            else {
                panic!()
            };
            let fin = client.final_message(&sf).expect("test value");
            let ScramStep::Done { user, server_final } =
                server.step(&fin, |_| None).expect("test value")
            else {
                panic!()
            };
            assert_eq!(user, "u,=x");
            assert!(client.verify(&server_final));
            assert!(!client.verify(b"v=AAAA"));
        }
    }

    #[test]
    fn rfc7677_sha256_test_vector() {
        // RFC 7677 section 3: user "user", password "pencil".
        let mech = ScramMechanism::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("test value");
        let salted = mech.salted_password(b"pencil", &salt, 4096);
        let cred =
            ScramCredential::from_salted_password(mech, &salt, &salted, 4096).expect("test value");
        let client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let without_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let sig = mech.hmac(&cred.stored_key, auth.as_bytes());
        let client_key = mech.hmac(&salted, b"Client Key");
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        assert_eq!(
            B64.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_sig = mech.hmac(&cred.server_key, auth.as_bytes());
        assert_eq!(
            B64.encode(server_sig),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn malformed_and_refused_first_messages() {
        let cred =
            ScramCredential::from_password(ScramMechanism::Sha256, "pw", 4096).expect("test value");
        let cases: &[(&[u8], ScramError)] = &[
            (b"", ScramError::Malformed),
            (b"p=tls-unique,,n=a,r=x", ScramError::Malformed),
            (b"n,,n=,r=x", ScramError::Malformed),
            (b"n,,n=a=ZZ,r=x", ScramError::Malformed),
            (b"n,,n=a", ScramError::Malformed),
            (b"n,,n=a,r=", ScramError::Malformed),
            (b"n,a=b,n=a,r=x", ScramError::AuthzidMismatch),
            (b"n,,n=a,r=x,tokenauth=true", ScramError::TokenAuth),
            (b"n,,n=nobody,r=x", ScramError::UnknownUser),
            (&[0xff, 0xfe], ScramError::Malformed),
        ];
        for (msg, want) in cases {
            let mut s = ScramServer::new(ScramMechanism::Sha256);
            let got = s.step(msg, |u| (u == "a").then(|| cred.clone()));
            assert_eq!(
                got.as_ref().err(),
                Some(want),
                "{:?}",
                String::from_utf8_lossy(msg)
            );
        }
        let mut s = ScramServer::new(ScramMechanism::Sha256);
        assert!(s.step(b"n,a=a,n=a,r=x", |_| Some(cred.clone())).is_ok());
        let big = vec![b'a'; MESSAGE_MAX_BYTES + 1];
        assert_eq!(
            ScramServer::new(ScramMechanism::Sha256).step(&big, |_| None),
            Err(ScramError::Malformed)
        );
    }

    #[test]
    fn final_message_checks_nonce_and_binding() {
        let mech = ScramMechanism::Sha512;
        let cred = ScramCredential::from_password(mech, "pw", 4096).expect("test value");
        let mut s = ScramServer::new(mech);
        let ScramStep::Continue(_) = s
            .step(b"n,,n=u,r=abc", |_| Some(cred.clone()))
            .expect("test value")
        else {
            panic!()
        };
        let mut s2 = ScramServer::new(mech);
        s2.step(b"n,,n=u,r=abc", |_| Some(cred.clone()))
            .expect("test value");
        assert_eq!(
            s.step(b"c=biws,r=abcWRONG,p=AAAA", |_| None),
            Err(ScramError::Nonce)
        );
        // A nonce that ends with the combined one passes the nonce check (then fails the proof).
        let mut s3 = ScramServer::new(mech);
        let ScramStep::Continue(sf) = s3
            .step(b"n,,n=u,r=abc", |_| Some(cred.clone()))
            .expect("test value")
        else {
            panic!()
        };
        let sf = String::from_utf8(sf).expect("test value");
        let combined = sf
            .split(',')
            .next()
            .expect("test value")
            .strip_prefix("r=")
            .expect("test value");
        let fin = format!("c=biws,r=abc{combined},p=AAAA");
        assert_eq!(s3.step(fin.as_bytes(), |_| None), Err(ScramError::Proof));
        assert_eq!(
            s2.step(b"c=eSws,r=abc,p=AAAA", |_| None),
            Err(ScramError::ChannelBinding)
        );
    }

    #[test]
    fn credential_limits_and_zk_form() {
        let m = ScramMechanism::Sha256;
        assert_eq!(
            ScramCredential::from_password(m, "p", 4095).err(),
            Some(CredentialError::TooFewIterations)
        );
        assert_eq!(
            ScramCredential::from_password(m, "p", 16385).err(),
            Some(CredentialError::TooManyIterations)
        );
        assert_eq!(
            ScramCredential::from_salted_password(m, b"", &[0; 32], 4096).err(),
            Some(CredentialError::BadSalt)
        );
        assert_eq!(
            ScramCredential::from_salted_password(m, b"s", &[0; 31], 4096).err(),
            Some(CredentialError::BadSaltedPassword(32))
        );
        let c = ScramCredential::from_password(m, "p", 8192).expect("test value");
        let s = c.to_zk_string();
        assert!(
            s.starts_with("salt=") && s.ends_with(",iterations=8192"),
            "{s}"
        );
        assert_eq!(ScramCredential::from_zk_string(m, &s), Some(c.clone()));
        assert_eq!(
            ScramCredential::from_zk_string(ScramMechanism::Sha512, &s),
            None
        );
        assert_eq!(
            ScramCredential::from_zk_string(m, "salt=AA==,iterations=8192"),
            None
        );
        assert!(!format!("{c:?}").contains("salt"));
        let json = serde_json::to_string(&c).expect("test value");
        assert_eq!(
            serde_json::from_str::<ScramCredential>(&json).expect("test value"),
            c
        );
    }
}
