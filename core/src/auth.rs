//! Who a connection is, and what an ACL lets it do (reference/client-wire.md §12).
//!
//! Matches ZooKeeper's providers: `world` (anyone), `ip` (remote address under a prefix mask, v4 and v6),
//! `digest` (`user:base64(sha1("user:password"))`), `super` (digest auth with the configured superDigest
//! bypasses every check), and the `auth` pseudo-scheme expanded at create/setACL time; `sasl` and `x509`
//! where their providers are configured.

use std::net::IpAddr;

use base64::Engine;
use fk_net::client::{Acl, ErrorCode, Id};
use sha1::{Digest, Sha1};

/// The identities a connection has proven. Every connection starts with `ip:<remote address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthIds {
    pub ids: Vec<Id>,
}

impl AuthIds {
    /// The address as ZooKeeper writes it (Java's `getHostAddress`: IPv6 uncompressed).
    pub fn for_peer(addr: IpAddr) -> AuthIds {
        AuthIds { ids: vec![Id::new("ip", &crate::servers::java_host_string(&addr.to_string()))] }
    }

    /// A SASL exchange completed as `identity`; `is_super` when it is the configured `superUser`.
    pub fn add_sasl(&mut self, identity: &str, is_super: bool) {
        self.add(Id::new("sasl", identity));
        if is_super {
            self.add(Id::new("super", ""));
        }
    }

    /// A TLS client certificate with this subject (Java's RFC 2253 text) was verified; `is_super` when it
    /// is `X509AuthenticationProvider.superUser`, which ZooKeeper records as `super:<subject>`.
    pub fn add_x509(&mut self, subject: &str, is_super: bool) {
        if is_super {
            self.add(Id::new("super", subject));
        }
        self.add(Id::new("x509", subject));
    }

    pub fn is_super(&self) -> bool {
        self.ids.iter().any(|id| id.scheme == "super")
    }

    fn add(&mut self, id: Id) {
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
    }

    /// Handles an auth packet (scheme + credentials). Unknown schemes fail with AuthFailed, after which
    /// ZooKeeper closes the connection.
    pub fn authenticate(
        &mut self,
        scheme: &str,
        credentials: &[u8],
        super_digest: Option<&str>,
    ) -> Result<(), ErrorCode> {
        match scheme {
            "digest" => {
                let digest = digest_id(&String::from_utf8_lossy(credentials));
                if super_digest == Some(digest.as_str()) {
                    self.add(Id::new("super", ""));
                }
                self.add(Id::new("digest", &digest));
                Ok(())
            }
            // The ip provider authenticates a connection as its own address, which it already is.
            "ip" => Ok(()),
            // ZooKeeper's x509 provider looks at the connection's certificate again, whatever was sent.
            "x509" if self.ids.iter().any(|id| id.scheme == "x509") => Ok(()),
            _ => Err(ErrorCode::AuthFailed),
        }
    }

    /// The identities in the order ZooKeeper lists them (`whoAmI`, the audit log's users): its set of a
    /// connection's ids is backed by a `ConcurrentHashMap`, hashed by jute's `Id.hashCode`.
    pub fn in_java_order(&self) -> Vec<&Id> {
        let hash = |id: &Id| {
            let scheme = crate::java_order::java_string_hash(&id.scheme);
            let value = crate::java_order::java_string_hash(&id.id);
            (17i32.wrapping_mul(37).wrapping_add(scheme)).wrapping_mul(37).wrapping_add(value)
        };
        let keyed: Vec<(i32, &Id)> = self.ids.iter().map(|id| (hash(id), id)).collect();
        crate::java_order::concurrent_hash_map_order(&keyed)
    }

    /// `whoAmI`: (scheme, user) per identity; a digest's user is the part before ':'.
    pub fn client_infos(&self) -> Vec<fk_net::client::ClientInfo> {
        self.in_java_order()
            .into_iter()
            .map(|id| fk_net::client::ClientInfo {
                auth_scheme: id.scheme.clone(),
                user: match id.scheme.as_str() {
                    "digest" => id.id.split(':').next().unwrap_or_default().to_owned(),
                    _ => id.id.clone(),
                },
            })
            .collect()
    }
}

/// `DigestAuthenticationProvider.generateDigest`: "user:password" → "user:base64(sha1(user:password))".
pub fn digest_id(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or_default();
    let hash = Sha1::digest(user_password.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// Is `acl` satisfied for `perm` by `auth`? An empty list allows everything, as in ZooKeeper.
pub fn check_acl(acl: &[Acl], auth: &AuthIds, perm: i32, skip_acl: bool) -> bool {
    if skip_acl || acl.is_empty() || auth.is_super() {
        return true;
    }
    acl.iter().filter(|a| a.perms & perm != 0).any(|a| {
        let Id { scheme, id } = &a.id;
        match scheme.as_str() {
            "world" => id == "anyone",
            "digest" => auth.ids.iter().any(|c| c.scheme == "digest" && &c.id == id),
            "ip" => auth.ids.iter().any(|c| c.scheme == "ip" && ip_matches(&c.id, id)),
            // Only a connection that authenticated with SASL holds such an id.
            "sasl" => auth.ids.iter().any(|c| c.scheme == "sasl" && &c.id == id),
            "x509" => auth.ids.iter().any(|c| c.scheme == "x509" && &c.id == id),
            _ => false,
        }
    })
}

/// The schemes whose providers are configured beyond the built-in ones; without its provider, ZooKeeper
/// knows no such scheme (an ACL naming it is invalid, and `auth` does not expand to its ids).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AclSchemes {
    /// SASLAuthenticationProvider.
    pub sasl: bool,
    /// X509AuthenticationProvider.
    pub x509: bool,
}

impl AclSchemes {
    fn has(&self, scheme: &str) -> bool {
        match scheme {
            "digest" => true,
            "sasl" => self.sasl,
            "x509" => self.x509,
            _ => false,
        }
    }
}

/// Validates and expands an ACL list for create/setACL (`PrepRequestProcessor.fixupACL`): duplicates
/// removed, `auth` replaced by the caller's authenticated ids (digest, and those of the configured SASL
/// and x509 providers), every other id checked by its scheme. Any violation is InvalidACL.
pub fn fixup_acl(acl: &[Acl], auth: &AuthIds, schemes: AclSchemes) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for a in unique {
        match a.id.scheme.as_str() {
            "world" if a.id.id == "anyone" => fixed.push(a.clone()),
            "auth" => {
                let mut any = false;
                for id in auth.ids.iter().filter(|id| schemes.has(&id.scheme)) {
                    any = true;
                    fixed.push(Acl { perms: a.perms, id: id.clone() });
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if is_valid_digest_id(&a.id.id) => fixed.push(a.clone()),
            "ip" if parse_ip_acl(&a.id.id).is_some() => fixed.push(a.clone()),
            "sasl" if schemes.sasl && !a.id.id.is_empty() => fixed.push(a.clone()),
            "x509" if schemes.x509 && is_distinguished_name(&a.id.id) => fixed.push(a.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(fixed)
}

/// `DigestAuthenticationProvider.isValid`: Java's `id.split(":")` (which drops trailing empty parts) must
/// give exactly two parts.
fn is_valid_digest_id(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

/// Whether `id` reads as an X.500 name (`type=value` parts separated by unescaped commas or plus
/// signs), which ZooKeeper's x509 provider asks of an ACL id by parsing it as an `X500Principal`.
fn is_distinguished_name(id: &str) -> bool {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in id.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' | '+' | ';' => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        parts.last_mut().expect("never empty").push(c);
    }
    parts.iter().all(|p| p.split_once('=').is_some_and(|(k, _)| !k.trim().is_empty()))
}

/// Parses `addr[/bits]` as ZooKeeper 3.8.0's IPAuthenticationProvider does: IPv4 dotted quads only (an
/// IPv6 ACL id is InvalidACL there).
fn parse_ip_acl(expr: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (expr, None),
    };
    let addr = IpAddr::V4(addr.parse().ok()?);
    let max_bits = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b.parse::<i64>().ok().filter(|b| (0..=max_bits).contains(b))? as u32,
        None => max_bits as u32,
    };
    Some((addr, bits))
}

/// Does the connection address `addr` fall inside `expr` (`addr[/bits]`)?
fn ip_matches(addr: &str, expr: &str) -> bool {
    let (Some((IpAddr::V4(net), bits)), Ok(IpAddr::V4(remote))) = (parse_ip_acl(expr), addr.parse::<IpAddr>()) else {
        return false;
    };
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    u32::from(net) & mask == u32::from(remote) & mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use fk_net::client::perms;

    #[test]
    fn digest_matches_zookeeper() {
        // The fixture's alice:secret, as ZooKeeper 3.8 stored it.
        assert_eq!(digest_id("alice:secret"), "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=");
    }

    #[test]
    fn acl_check_table() {
        let mut alice = AuthIds::for_peer("127.0.0.1".parse().unwrap());
        alice.authenticate("digest", b"alice:secret", None).unwrap();
        let anon = AuthIds::for_peer("10.1.2.3".parse().unwrap());
        let cases: &[(Acl, &AuthIds, i32, bool)] = &[
            (Acl::new(perms::ALL, "world", "anyone"), &anon, perms::WRITE, true),
            (Acl::new(perms::READ, "world", "anyone"), &anon, perms::WRITE, false),
            (Acl::new(perms::ALL, "digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="), &alice, perms::DELETE, true),
            (Acl::new(perms::ALL, "digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="), &anon, perms::READ, false),
            (Acl::new(perms::ALL, "ip", "127.0.0.1"), &alice, perms::READ, true),
            (Acl::new(perms::ALL, "ip", "10.0.0.0/8"), &anon, perms::READ, true),
            (Acl::new(perms::ALL, "ip", "10.0.0.0/16"), &anon, perms::READ, false),
            (Acl::new(perms::ALL, "ip", "0.0.0.0/0"), &anon, perms::READ, true),
            (Acl::new(perms::ALL, "ip", "10.0.0.0"), &alice, perms::READ, false),
        ];
        for (acl, auth, perm, allowed) in cases {
            assert_eq!(check_acl(std::slice::from_ref(acl), auth, *perm, false), *allowed, "{acl:?} {perm}");
        }
        assert!(check_acl(&[], &anon, perms::ADMIN, false), "an empty ACL allows all");
    }

    #[test]
    fn super_digest_bypasses_acls() {
        let super_digest = digest_id("super:admin");
        let mut auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
        auth.authenticate("digest", b"super:admin", Some(&super_digest)).unwrap();
        assert!(check_acl(&[Acl::new(perms::READ, "digest", "bob:x")], &auth, perms::ADMIN, false));
        assert_eq!(auth.authenticate("kerberos", b"x", None), Err(ErrorCode::AuthFailed));
    }

    #[test]
    fn fixup_table() {
        let mut alice = AuthIds::for_peer("127.0.0.1".parse().unwrap());
        let anon = alice.clone();
        alice.authenticate("digest", b"alice:secret", None).unwrap();
        let ok = |acl: Acl, auth: &AuthIds| fixup_acl(&[acl], auth, AclSchemes::default());
        assert_eq!(
            ok(Acl::new(31, "auth", ""), &alice).unwrap(),
            vec![Acl::new(31, "digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=")]
        );
        assert_eq!(ok(Acl::new(31, "auth", ""), &anon), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup_acl(&[], &anon, AclSchemes::default()), Err(ErrorCode::InvalidAcl));
        assert!(ok(Acl::new(31, "ip", "1.2.3.4/32"), &anon).is_ok());
        for bad in [
            ("ip", "fe80::1/64"),
            ("ip", "1.2.3.4/33"),
            ("ip", "999.1.1.1"),
            ("digest", "nocolon"),
            ("digest", "a:b:c"),
            ("foo", "x"),
            ("world", "me"),
            ("super", ""),
        ] {
            assert_eq!(ok(Acl::new(31, bad.0, bad.1), &anon), Err(ErrorCode::InvalidAcl), "{bad:?}");
        }
        let dup = [Acl::new(31, "world", "anyone"), Acl::new(31, "world", "anyone")];
        assert_eq!(fixup_acl(&dup, &anon, AclSchemes::default()).unwrap().len(), 1);
    }

    #[test]
    fn x509_ids_with_the_provider() {
        let subject = "CN=alice,OU=Test,O=Example\\, Inc.,C=US";
        let mut alice = AuthIds::for_peer("127.0.0.1".parse().unwrap());
        alice.add_x509(subject, false);
        let x509 = AclSchemes { x509: true, ..AclSchemes::default() };
        assert_eq!(fixup_acl(&[Acl::new(31, "auth", "")], &alice, x509).unwrap(), vec![Acl::new(31, "x509", subject)]);
        assert_eq!(fixup_acl(&[Acl::new(31, "auth", "")], &alice, AclSchemes::default()), Err(ErrorCode::InvalidAcl));
        assert!(fixup_acl(&[Acl::new(31, "x509", "CN=bob+UID=7,O=x")], &alice, x509).is_ok());
        assert_eq!(fixup_acl(&[Acl::new(31, "x509", "bob")], &alice, x509), Err(ErrorCode::InvalidAcl));
        assert!(check_acl(&[Acl::new(1, "x509", subject)], &alice, perms::READ, false));
        assert!(!check_acl(&[Acl::new(1, "x509", "CN=bob")], &alice, perms::READ, false));
        assert_eq!(alice.authenticate("x509", b"", None), Ok(()));
        let mut admin = AuthIds::for_peer("127.0.0.1".parse().unwrap());
        admin.add_x509("CN=admin", true);
        assert!(check_acl(&[Acl::new(1, "x509", "CN=bob")], &admin, perms::READ, false), "the superUser");
    }
}
