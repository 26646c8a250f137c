//! The server side of SASL DIGEST-MD5 (RFC 2831) as ZooKeeper's clients speak it to Java's
//! `DigestMD5Server`: service `zookeeper`, server name and realm `zk-sasl-md5` (between members:
//! `zookeeper-quorum` and `zk-quorum-sasl-md5`, [`Service::QUORUM`]), quality of protection
//! `auth` only (ZooKeeper asks for no integrity or confidentiality layer), `md5-sess`. Pure: the nonce is
//! given, the users' passwords are looked up through a closure.
//!
//! The exchange: the client's first (empty) token gets the challenge; its digest-response is checked
//! (realm, nonce, nonce count 1, digest-uri, qop, then the response digest, which proves the password)
//! and answered with `rspauth`, which proves ours; the identity is then the authorization id (the user
//! name unless the client asked for the same one explicitly).

use md5::{Digest, Md5};
use thiserror::Error;

/// A protocol and server name DIGEST-MD5 is spoken for: they make the digest-uri, and the server name is
/// the realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub protocol: &'static str,
    pub server_name: &'static str,
}

impl Service {
    /// Clients (`ZooKeeperSaslServer`).
    pub const CLIENTS: Service = Service { protocol: "zookeeper", server_name: "zk-sasl-md5" };
    /// Members authenticating to each other (`QuorumAuth`).
    pub const QUORUM: Service = Service { protocol: "zookeeper-quorum", server_name: "zk-quorum-sasl-md5" };

    fn uri(&self) -> String {
        format!("{}/{}", self.protocol, self.server_name)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("DIGEST-MD5: the digest-response is malformed: {0}")]
    Malformed(String),
    #[error("DIGEST-MD5: {0} does not match the challenge")]
    Mismatch(&'static str),
    #[error("DIGEST-MD5: unknown user {0:?}")]
    UnknownUser(String),
    #[error("DIGEST-MD5: wrong password for user {0:?}")]
    WrongPassword(String),
    #[error("DIGEST-MD5: authorization id {authzid:?} is not user {user:?}")]
    NotAuthorized { user: String, authzid: String },
    #[error("DIGEST-MD5: a token arrived after the exchange was complete")]
    TooManyTokens,
    #[error("DIGEST-MD5: the mechanism has no initial response, but the first token was not empty")]
    InitialResponse,
}

enum Stage {
    /// The challenge is not sent yet.
    Start,
    /// Waiting for the digest-response to this nonce.
    Challenged,
    Done,
}

pub struct DigestMd5Server {
    service: Service,
    nonce: String,
    stage: Stage,
}

/// What one token brought.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    /// The token to send back.
    pub token: Vec<u8>,
    /// The authenticated identity, once the exchange is complete.
    pub identity: Option<String>,
}

impl DigestMd5Server {
    /// For clients. `nonce`: random, unpredictable (the caller draws it from the OS), without quotes or
    /// commas.
    pub fn new(nonce: String) -> DigestMd5Server {
        Self::for_service(Service::CLIENTS, nonce)
    }

    pub fn for_service(service: Service, nonce: String) -> DigestMd5Server {
        assert!(!nonce.contains(['"', ',', '\\']), "a nonce needs no quoting");
        DigestMd5Server { service, nonce, stage: Stage::Start }
    }

    /// Takes the client's next token; `password` looks a user's password up.
    pub fn step(&mut self, token: &[u8], password: impl Fn(&str) -> Option<String>) -> Result<Step, DigestError> {
        match self.stage {
            Stage::Start => {
                // As Java's DigestMD5Server: the client speaks second.
                if !token.is_empty() {
                    self.stage = Stage::Done;
                    return Err(DigestError::InitialResponse);
                }
                self.stage = Stage::Challenged;
                let challenge = format!(
                    "realm=\"{}\",nonce=\"{}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess",
                    self.service.server_name, self.nonce
                );
                Ok(Step { token: challenge.into_bytes(), identity: None })
            }
            Stage::Challenged => {
                self.stage = Stage::Done;
                let (rspauth, identity) = self.verify(token, password)?;
                Ok(Step { token: format!("rspauth={rspauth}").into_bytes(), identity: Some(identity) })
            }
            Stage::Done => Err(DigestError::TooManyTokens),
        }
    }

    fn verify(&self, token: &[u8], password: impl Fn(&str) -> Option<String>) -> Result<(String, String), DigestError> {
        let text = std::str::from_utf8(token).map_err(|_| DigestError::Malformed("not UTF-8".into()))?;
        let fields = parse_directives(text)?;
        let get = |key: &str| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str());
        let need = |key: &'static str| get(key).ok_or_else(|| DigestError::Malformed(format!("no {key}")));
        let username = need("username")?;
        let realm = get("realm").unwrap_or("");
        if realm != self.service.server_name {
            return Err(DigestError::Mismatch("realm"));
        }
        if need("nonce")? != self.nonce {
            return Err(DigestError::Mismatch("nonce"));
        }
        let cnonce = need("cnonce")?;
        let nc = need("nc")?;
        if u32::from_str_radix(nc, 16) != Ok(1) {
            return Err(DigestError::Mismatch("nonce count"));
        }
        let qop = get("qop").unwrap_or("auth");
        if qop != "auth" {
            return Err(DigestError::Mismatch("qop"));
        }
        let uri = need("digest-uri")?;
        if uri
            .split_once('/')
            .is_none_or(|(protocol, host)| protocol != self.service.protocol || host != self.service.server_name)
        {
            return Err(DigestError::Mismatch("digest-uri"));
        }
        let authzid = get("authzid");
        let secret = password(username).ok_or_else(|| DigestError::UnknownUser(username.into()))?;
        let exchange =
            Exchange { username, realm, password: &secret, nonce: &self.nonce, cnonce, nc, qop, uri, authzid };
        let expected = exchange.response("AUTHENTICATE");
        if !constant_time_eq(need("response")?.as_bytes(), expected.as_bytes()) {
            return Err(DigestError::WrongPassword(username.into()));
        }
        if let Some(authzid) = authzid.filter(|a| *a != username) {
            return Err(DigestError::NotAuthorized { user: username.into(), authzid: authzid.into() });
        }
        Ok((exchange.response(""), username.to_owned()))
    }
}

/// The client side: answers a server's challenge for `user` with `password` (`cnonce`: random, unquoted),
/// and checks the server's final `rspauth` with [`DigestMd5Client::check_rspauth`].
pub struct DigestMd5Client {
    expected_rspauth: String,
}

impl DigestMd5Client {
    /// The digest-response to `challenge` (from a server for clients), and the client that checks the
    /// server's answer to it.
    pub fn respond(challenge: &[u8], user: &str, password: &str, cnonce: &str) -> Result<(Vec<u8>, Self), DigestError> {
        Self::respond_for(Service::CLIENTS, challenge, user, password, cnonce)
    }

    pub fn respond_for(
        service: Service,
        challenge: &[u8],
        user: &str,
        password: &str,
        cnonce: &str,
    ) -> Result<(Vec<u8>, Self), DigestError> {
        let text = std::str::from_utf8(challenge).map_err(|_| DigestError::Malformed("not UTF-8".into()))?;
        let fields = parse_directives(text)?;
        let get = |key: &str| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str());
        let nonce = get("nonce").ok_or_else(|| DigestError::Malformed("no nonce in the challenge".into()))?;
        let realm = get("realm").unwrap_or(service.server_name);
        if get("qop").is_some_and(|q| !q.split(',').any(|q| q.trim() == "auth")) {
            return Err(DigestError::Mismatch("qop"));
        }
        let uri = service.uri();
        let exchange = Exchange {
            username: user,
            realm,
            password,
            nonce,
            cnonce,
            nc: "00000001",
            qop: "auth",
            uri: &uri,
            authzid: None,
        };
        let response = format!(
            "charset=utf-8,username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",nc=00000001,cnonce=\"{cnonce}\",\
             digest-uri=\"{uri}\",maxbuf=65536,response={},qop=auth",
            exchange.response("AUTHENTICATE")
        );
        Ok((response.into_bytes(), DigestMd5Client { expected_rspauth: exchange.response("") }))
    }

    /// Whether the server's final token proves it knows the password too.
    pub fn check_rspauth(&self, token: &[u8]) -> Result<(), DigestError> {
        let text = std::str::from_utf8(token).map_err(|_| DigestError::Malformed("not UTF-8".into()))?;
        let fields = parse_directives(text)?;
        let rspauth = fields.iter().find(|(k, _)| k == "rspauth").map(|(_, v)| v.as_bytes());
        match rspauth {
            Some(value) if constant_time_eq(value, self.expected_rspauth.as_bytes()) => Ok(()),
            _ => Err(DigestError::Mismatch("rspauth")),
        }
    }
}

/// The values a response digest is computed from (RFC 2831 §2.1.2.1).
struct Exchange<'a> {
    username: &'a str,
    realm: &'a str,
    password: &'a str,
    nonce: &'a str,
    cnonce: &'a str,
    nc: &'a str,
    qop: &'a str,
    uri: &'a str,
    authzid: Option<&'a str>,
}

impl Exchange<'_> {
    /// `response` for `method` "AUTHENTICATE" (the client's proof), `rspauth` for "" (the server's).
    fn response(&self, method: &str) -> String {
        let secret = Md5::digest(format!("{}:{}:{}", self.username, self.realm, self.password));
        let mut a1 = secret.to_vec();
        a1.extend_from_slice(format!(":{}:{}", self.nonce, self.cnonce).as_bytes());
        if let Some(authzid) = self.authzid {
            a1.extend_from_slice(format!(":{authzid}").as_bytes());
        }
        let a2 = format!("{method}:{}", self.uri);
        let (ha1, ha2) = (hex(&Md5::digest(&a1)), hex(&Md5::digest(a2)));
        hex(&Md5::digest(format!("{ha1}:{}:{}:{}:{}:{ha2}", self.nonce, self.nc, self.cnonce, self.qop)))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `key=value` and `key="quoted value"` directives, comma-separated (RFC 2831 §7.1).
fn parse_directives(text: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut fields = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or_else(|| DigestError::Malformed(format!("no '=' in {rest:?}")))?;
        let key = key.trim().to_owned();
        let after = after.trim_start();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => value.extend(chars.next().map(|(_, c)| c)),
                    Some((i, '"')) => break i + 1,
                    Some((_, c)) => value.push(c),
                    None => return Err(DigestError::Malformed(format!("unterminated quote in {key}"))),
                }
            };
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        fields.push((key, value));
        rest = after.trim_start().strip_prefix(',').unwrap_or(after).trim_start();
        if !after.trim_start().is_empty() && !after.trim_start().starts_with(',') {
            return Err(DigestError::Malformed(format!("expected ',' before {after:?}")));
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831 §4's example (IMAP): the client's response and the server's rspauth.
    #[test]
    fn rfc_2831_example() {
        let exchange = Exchange {
            username: "chris",
            realm: "elwood.innosoft.com",
            password: "secret",
            nonce: "OA6MG9tEQGm2hh",
            cnonce: "OA6MHXh6VqTrRk",
            nc: "00000001",
            qop: "auth",
            uri: "imap/elwood.innosoft.com",
            authzid: None,
        };
        assert_eq!(exchange.response("AUTHENTICATE"), "d388dad90d4bbd760a152321f2143af7");
        assert_eq!(exchange.response(""), "ea40f60335c427b5527b84dbabcdfffd");
    }

    fn client_response(server_nonce: &str, user: &str, password: &str, uri: &str) -> String {
        let exchange = Exchange {
            username: user,
            realm: Service::CLIENTS.server_name,
            password,
            nonce: server_nonce,
            cnonce: "c1",
            nc: "00000001",
            qop: "auth",
            uri,
            authzid: None,
        };
        format!(
            "charset=utf-8,username=\"{user}\",realm=\"zk-sasl-md5\",nonce=\"{server_nonce}\",nc=00000001,\
             cnonce=\"c1\",digest-uri=\"{uri}\",maxbuf=65536,response={},qop=auth",
            exchange.response("AUTHENTICATE")
        )
    }

    #[test]
    fn the_client_side_talks_to_the_server_side() {
        let mut server = DigestMd5Server::new("n0nce".into());
        let challenge = server.step(b"", users).unwrap().token;
        let (response, client) = DigestMd5Client::respond(&challenge, "bob", "bobsecret", "c0nce").unwrap();
        let done = server.step(&response, users).unwrap();
        assert_eq!(done.identity.as_deref(), Some("bob"));
        assert_eq!(client.check_rspauth(&done.token), Ok(()));
        assert_eq!(client.check_rspauth(b"rspauth=0000"), Err(DigestError::Mismatch("rspauth")));
    }

    fn users(name: &str) -> Option<String> {
        (name == "bob").then(|| "bobsecret".into())
    }

    #[test]
    fn an_exchange_authenticates_the_user_or_says_why_not() {
        let mut server = DigestMd5Server::new("n0nce".into());
        let challenge = server.step(b"", users).unwrap();
        assert_eq!(
            String::from_utf8(challenge.token).unwrap(),
            "realm=\"zk-sasl-md5\",nonce=\"n0nce\",qop=\"auth\",charset=utf-8,algorithm=md5-sess"
        );
        let uri = "zookeeper/zk-sasl-md5";
        let done = server.step(client_response("n0nce", "bob", "bobsecret", uri).as_bytes(), users).unwrap();
        assert_eq!(done.identity.as_deref(), Some("bob"));
        assert!(String::from_utf8(done.token).unwrap().starts_with("rspauth="));
        assert_eq!(server.step(b"", users), Err(DigestError::TooManyTokens));

        let refused = |response: String| {
            let mut server = DigestMd5Server::new("n0nce".into());
            server.step(b"", users).unwrap();
            server.step(response.as_bytes(), users).unwrap_err()
        };
        assert_eq!(refused(client_response("n0nce", "bob", "wrong", uri)), DigestError::WrongPassword("bob".into()));
        assert_eq!(refused(client_response("n0nce", "eve", "x", uri)), DigestError::UnknownUser("eve".into()));
        assert_eq!(refused(client_response("other", "bob", "bobsecret", uri)), DigestError::Mismatch("nonce"));
        assert_eq!(
            refused(client_response("n0nce", "bob", "bobsecret", "imap/x")),
            DigestError::Mismatch("digest-uri")
        );
        assert!(matches!(refused("garbage".into()), DigestError::Malformed(_)));
        assert!(matches!(refused("username=\"bob".into()), DigestError::Malformed(_)));
    }

    /// Between members the digest-uri and realm are the quorum's; a client of one service does not pass
    /// the other's server.
    #[test]
    fn the_quorum_service_is_its_own() {
        let mut server = DigestMd5Server::for_service(Service::QUORUM, "n0nce".into());
        let challenge = server.step(b"", |_| None).unwrap().token;
        assert!(String::from_utf8_lossy(&challenge).contains("realm=\"zk-quorum-sasl-md5\""));
        let (response, client) =
            DigestMd5Client::respond_for(Service::QUORUM, &challenge, "member", "pw", "c0nce").unwrap();
        assert!(String::from_utf8_lossy(&response).contains("digest-uri=\"zookeeper-quorum/zk-quorum-sasl-md5\""));
        let step = server.step(&response, |user| (user == "member").then(|| "pw".to_owned())).unwrap();
        client.check_rspauth(&step.token).unwrap();
        let mut clients = DigestMd5Server::new("n0nce".into());
        clients.step(b"", |_| None).unwrap();
        let refused = clients.step(&response, |_| Some("pw".to_owned())).unwrap_err();
        assert!(matches!(refused, DigestError::Mismatch(_)), "{refused:?}");
    }
}
