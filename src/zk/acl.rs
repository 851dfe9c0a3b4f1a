//! ZooKeeper access control on the facade, as ZooKeeper 3.8 does it (`ZooKeeperServer.checkACL`,
//! `PrepRequestProcessor.fixupACL`, the `digest` and `ip` providers): who a connection is
//! ([`AuthInfo`]: its address, the digests `addauth` added, super), whether an ACL grants a
//! permission ([`allows`]), and the ACL a create or setACL stores ([`fixup`]: duplicates
//! dropped, `auth` expanded to the connection's digests, every id checked).
//!
//! Which ACL guards a node ([`acl_of`]): a stored znode's own; projected and skeleton nodes are
//! open, except that with Kafka's `zookeeper.set.acl=true` the Kafka-owned paths (everything of
//! the Kafka tree but `/consumers`) can be read by anyone (`/config/users` by nobody) and
//! changed by super users only, as Kafka's secure ACLs (`ZkData.defaultAcls`) allow.

use super::tree::{kafka_top_segment, TreeView};
use crate::codec::jute::Acl;
use crate::metadata::ZnodeAcl;
use base64::Engine as _;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

pub const READ: i32 = 1;
pub const WRITE: i32 = 2;
pub const CREATE: i32 = 4;
pub const DELETE: i32 = 8;
pub const ADMIN: i32 = 16;
pub const ALL: i32 = 31;

/// The most entries one znode's ACL may have (raftka's bound; ZooKeeper's is the packet).
pub const ACL_ENTRIES_MAX: usize = 64;

/// What the facade's ACLs depend on besides the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclSettings {
    /// `zookeeper.DigestAuthenticationProvider.superDigest`: `super:<base64 sha1>`; a
    /// connection that adds this digest may do everything.
    pub super_digest: Option<String>,
    /// Kafka's `zookeeper.set.acl`: Kafka-owned paths change only for super users.
    pub kafka_paths_secure: bool,
}

impl AclSettings {
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            super_digest: config.zk_super_digest.clone(),
            kafka_paths_secure: config.zk_set_acl,
        }
    }
}

/// `addauth` with a scheme the facade has no provider for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownScheme;

/// The ids a connection holds, as ZooKeeper's `authInfo`: `ip:<address>` from the start, a
/// `digest:<user>:<hash>` per `addauth digest`, and `super:` for the super digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthInfo {
    ids: Vec<(String, String)>,
}

/// `user:password` → `user:base64(sha1(user:password))` (ZooKeeper's `generateDigest`).
pub fn digest(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or_default();
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

impl AuthInfo {
    pub fn new(peer: IpAddr) -> Self {
        Self {
            ids: vec![("ip".into(), peer.to_string())],
        }
    }

    pub fn is_super(&self) -> bool {
        self.ids.iter().any(|(s, _)| s == "super")
    }

    /// `addauth <scheme> <auth>`: `digest` adds the digest of `user:password` (and super for
    /// the super digest), `ip` the address again; any other scheme fails (AUTHFAILED, after
    /// which ZooKeeper's clients consider the session lost).
    ///
    /// # Errors
    /// An unknown scheme.
    pub fn add(
        &mut self,
        scheme: &str,
        auth: &[u8],
        settings: &AclSettings,
    ) -> Result<(), UnknownScheme> {
        match scheme {
            "digest" => {
                let d = digest(&String::from_utf8_lossy(auth));
                if settings.super_digest.as_deref() == Some(d.as_str()) {
                    self.push("super", "");
                }
                self.push("digest", &d);
                Ok(())
            }
            "ip" => {
                let ip = self.ids.first().map(|(_, a)| a.clone()).unwrap_or_default();
                self.push("ip", &ip);
                Ok(())
            }
            _ => Err(UnknownScheme),
        }
    }

    fn push(&mut self, scheme: &str, id: &str) {
        let id = (scheme.to_owned(), id.to_owned());
        // Bounded: a client repeating addauth adds nothing new.
        if !self.ids.contains(&id) && self.ids.len() < ACL_ENTRIES_MAX {
            self.ids.push(id);
        }
    }
}

/// `ip` ids: an address, or an address and a prefix length (`10.0.0.0/8`).
fn parse_ip(id: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match id.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (id, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b.parse::<u32>().ok().filter(|b| *b <= max)?,
        None => max,
    };
    Some((addr, bits))
}

fn ip_matches(client: &str, acl_id: &str) -> bool {
    let (Ok(c), Some((net, bits))) = (client.parse::<IpAddr>(), parse_ip(acl_id)) else {
        return false;
    };
    let (c, n, width) = match (c, net) {
        (IpAddr::V4(c), IpAddr::V4(n)) => (u128::from(u32::from(c)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(c), IpAddr::V6(n)) => (u128::from(c), u128::from(n), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (c >> shift) == (n >> shift)
}

/// ZooKeeper's `checkACL`: an empty ACL and super users pass; otherwise an entry must grant
/// one of `perm`'s bits to `world:anyone` or to an id the connection holds.
pub fn allows(acl: &[ZnodeAcl], perm: i32, auth: &AuthInfo) -> bool {
    if acl.is_empty() || auth.is_super() {
        return true;
    }
    acl.iter().filter(|a| a.perms & perm != 0).any(|a| {
        (a.scheme == "world" && a.id == "anyone")
            || auth.ids.iter().any(|(s, id)| {
                *s == a.scheme
                    && match s.as_str() {
                        "digest" => *id == a.id,
                        "ip" => ip_matches(id, &a.id),
                        _ => false,
                    }
            })
    })
}

/// ZooKeeper's `fixupACL` for create and setACL: the ACL to store, or `None` (INVALIDACL)
/// for an empty list, an unknown scheme, an ill-formed id, or `auth` without a digest.
pub fn fixup(acl: &[Acl], auth: &AuthInfo) -> Option<Vec<ZnodeAcl>> {
    // Duplicates dropped in order, in O(n log n): the list's length is bounded only by the
    // packet (tens of thousands of entries), so no pairwise comparison.
    let mut seen = std::collections::BTreeSet::new();
    let unique: Vec<&Acl> = acl
        .iter()
        .filter(|a| seen.insert((a.perms, a.scheme.as_str(), a.id.as_str())))
        .collect();
    if unique.is_empty() || unique.len() > ACL_ENTRIES_MAX {
        return None;
    }
    let mut out = Vec::new();
    for a in unique {
        let entry = |scheme: &str, id: &str| ZnodeAcl {
            perms: a.perms,
            scheme: scheme.to_owned(),
            id: id.to_owned(),
        };
        match a.scheme.as_str() {
            "world" if a.id == "anyone" => out.push(entry("world", "anyone")),
            "auth" => {
                let mut any = false;
                for (s, id) in auth.ids.iter().filter(|(s, _)| s == "digest") {
                    any = true;
                    out.push(entry(s, id));
                }
                if !any {
                    return None;
                }
            }
            // Java's split(":") drops trailing empty parts: exactly "user:hash".
            "digest"
                if a.id.split(':').filter(|p| !p.is_empty()).count() == 2
                    && a.id.matches(':').count() == 1 =>
            {
                out.push(entry("digest", &a.id))
            }
            "ip" if parse_ip(&a.id).is_some() => out.push(entry("ip", &a.id)),
            _ => return None,
        }
    }
    if out.len() > ACL_ENTRIES_MAX {
        return None;
    }
    Some(out)
}

/// The ACL that guards `path` (see the module comment); `None` if the node does not exist.
pub fn acl_of(view: &TreeView<'_>, path: &str, settings: &AclSettings) -> Vec<ZnodeAcl> {
    if let Some(z) = view.image.zk.znodes.get(path).filter(|z| !z.implicit) {
        return z.acl.clone();
    }
    match kafka_top_segment(view, path) {
        Some(top) if settings.kafka_paths_secure && top != "consumers" => {
            let sup = ZnodeAcl {
                perms: ALL,
                scheme: "digest".into(),
                id: settings
                    .super_digest
                    .clone()
                    .unwrap_or_else(|| "super:unset".into()),
            };
            // Kafka's sensitive root paths (credentials) are not world-readable.
            let sensitive = path.contains("/config/users");
            if sensitive {
                vec![sup]
            } else {
                vec![
                    ZnodeAcl {
                        perms: READ,
                        scheme: "world".into(),
                        id: "anyone".into(),
                    },
                    sup,
                ]
            }
        }
        _ => vec![ZnodeAcl::open()],
    }
}

/// The wire form of an ACL (getACL); without ADMIN, digest hashes are masked as ZooKeeper
/// 3.6+ does (`user:x`).
pub fn to_wire(acl: &[ZnodeAcl], mask_digests: bool) -> Vec<Acl> {
    acl.iter()
        .map(|a| Acl {
            perms: a.perms,
            scheme: a.scheme.clone(),
            id: if mask_digests && a.scheme == "digest" {
                format!("{}:x", a.id.split(':').next().unwrap_or_default())
            } else {
                a.id.clone()
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    #[test]
    fn digest_is_zookeepers() {
        // As Debian's ZooKeeper 3.8 prints it (`java -cp zookeeper.jar
        // org.apache.zookeeper.server.auth.DigestAuthenticationProvider super:superpw`).
        assert_eq!(
            digest("super:superpw"),
            "super:g9oN2HttPfn8MMWJZ2r45Np/LIA="
        );
        assert_eq!(digest("bob:bob-pw").split(':').count(), 2);
    }

    #[test]
    fn checks_fixups_and_ips() {
        let ip: IpAddr = "10.1.2.3".parse().expect("ip");
        let settings = AclSettings {
            super_digest: Some(digest("super:superpw")),
            kafka_paths_secure: false,
        };
        let mut a = AuthInfo::new(ip);
        assert!(
            fixup(&[acl(ALL, "auth", "")], &a).is_none(),
            "auth without a digest"
        );
        a.add("digest", b"alice:pw", &settings).expect("digest");
        let fixed =
            fixup(&[acl(ALL, "auth", ""), acl(READ, "world", "anyone")], &a).expect("valid");
        assert_eq!(fixed[0].id, digest("alice:pw"));
        assert_eq!(fixed.len(), 2);
        assert!(allows(&fixed, WRITE, &a));
        let bob = AuthInfo::new(ip);
        assert!(!allows(&fixed, WRITE, &bob) && allows(&fixed, READ, &bob));
        for bad in [
            acl(ALL, "world", "someone"),
            acl(ALL, "digest", "nocolon"),
            acl(ALL, "digest", "a:b:c"),
            acl(ALL, "ip", "300.1.1.1"),
            acl(ALL, "ip", "10.0.0.0/33"),
            acl(ALL, "sasl", "x"),
        ] {
            assert!(fixup(std::slice::from_ref(&bad), &a).is_none(), "{bad:?}");
        }
        assert!(fixup(&[], &a).is_none());
        let net = fixup(&[acl(READ, "ip", "10.0.0.0/8")], &a).expect("cidr");
        assert!(allows(&net, READ, &bob));
        assert!(!allows(
            &net,
            READ,
            &AuthInfo::new("11.0.0.1".parse().expect("ip"))
        ));
        assert!(!allows(&net, WRITE, &bob));
        let mut s = AuthInfo::new(ip);
        s.add("digest", b"super:superpw", &settings).expect("super");
        assert!(s.is_super() && allows(&net, ADMIN, &s));
        assert!(a.add("kerberos", b"x", &settings).is_err());
        assert!(allows(&[], ADMIN, &bob), "an empty ACL does not check");
        assert_eq!(to_wire(&fixed, true)[0].id, "alice:x");
        // A packet's worth of entries: duplicates collapse without pairwise comparison, and
        // more than ACL_ENTRIES_MAX distinct ones are refused.
        let many = vec![acl(READ, "world", "anyone"); 80_000];
        assert_eq!(fixup(&many, &a).map(|f| f.len()), Some(1));
        let distinct: Vec<Acl> = (0..=ACL_ENTRIES_MAX)
            .map(|i| acl(READ, "ip", &format!("10.0.0.{i}")))
            .collect();
        assert!(fixup(&distinct, &a).is_none());
    }
}
