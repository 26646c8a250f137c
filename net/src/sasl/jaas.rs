//! JAAS login configuration files, as ZooKeeper's servers read them for SASL:
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="adminsecret"
//!     user_bob="bobsecret";
//! };
//! ```
//!
//! Sections of login modules, each a class name, a control flag and `key=value` options (values quoted
//! or not), ending with `;`; `//` and `/* */` comments. Only what ZooKeeper's SASL reads is interpreted:
//! a section with a `Krb5LoginModule` entry means Kerberos (GSSAPI) with that entry's principal and key
//! source, as ZooKeeper decides by the login's principals; otherwise its `DigestLoginModule` entry gives
//! a server's users (`user_<name>="<password>"`) or a client's `username` and `password`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";
const KERBEROS_MODULES: &[&str] = &["com.sun.security.auth.module.Krb5LoginModule"];

#[derive(Debug, Error)]
pub enum JaasError {
    #[error("cannot read the JAAS file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}, line {line}: {reason}")]
    Syntax { path: String, line: usize, reason: String },
    #[error("{path}: no section {section:?} (the server's SASL login, zookeeper.sasl.serverconfig)")]
    NoSection { path: String, section: String },
    #[error(
        "{path}: section {section:?}: a Krb5LoginModule entry must say where its key comes from without a \
         prompt: useKeyTab=true (with keyTab=\"<file>\") or useTicketCache=true"
    )]
    KerberosSource { path: String, section: String },
    #[error(
        "{path}: section {section:?} has no {DIGEST_LOGIN_MODULE} entry with credentials (a server's user_<name>=\"<password>\", a client's username and password)"
    )]
    NoUsers { path: String, section: String },
}

/// One login module entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub module: String,
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

/// The users a DIGEST-MD5 server knows, with their passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestUsers(BTreeMap<String, String>);

impl std::fmt::Debug for DigestUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the passwords.
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl DigestUsers {
    pub fn password(&self, user: &str) -> Option<&str> {
        self.0.get(user).map(String::as_str)
    }

    /// These users and `name` with `password` (ZooKeeper's `SASLAuthenticationProvider.superPassword`).
    pub fn with_user(mut self, name: &str, password: &str) -> DigestUsers {
        self.0.insert(name.to_owned(), password.to_owned());
        self
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// What a server section says: the DIGEST-MD5 users it takes, or (a `Krb5LoginModule` entry, which
/// ZooKeeper then takes to mean GSSAPI) the Kerberos principal it accepts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLogin {
    Digest(DigestUsers),
    Kerberos(KerberosLogin),
}

/// What a client section says: DIGEST-MD5 credentials, or the Kerberos principal it authenticates as.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientLogin {
    Digest { user: String, password: String },
    Kerberos(KerberosLogin),
}

impl std::fmt::Debug for ClientLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Never the password.
            ClientLogin::Digest { user, .. } => f.debug_struct("Digest").field("user", user).finish_non_exhaustive(),
            ClientLogin::Kerberos(login) => f.debug_tuple("Kerberos").field(login).finish(),
        }
    }
}

/// A `com.sun.security.auth.module.Krb5LoginModule` entry: whose key, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosLogin {
    /// `principal`: `service/host@REALM` for a server, any principal for a client.
    pub principal: Option<String>,
    pub source: KeySource,
}

/// Where a Kerberos login takes its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `useKeyTab=true`: the key from `keyTab` (the Kerberos configuration's default keytab if absent).
    Keytab(Option<PathBuf>),
    /// `useTicketCache=true` without a keytab: a ticket from `ticketCache` (else the default cache).
    TicketCache(Option<PathBuf>),
}

/// The login of the server section `section` (`Server`, `QuorumServer`, …) in the JAAS file at `path`.
pub fn server_login(path: &Path, section: &str) -> Result<ServerLogin, JaasError> {
    let (shown, entries) = read_section(path, section)?;
    if let Some(entry) = entries.iter().find(|e| KERBEROS_MODULES.contains(&e.module.as_str())) {
        return kerberos_login(&shown, section, entry).map(ServerLogin::Kerberos);
    }
    let users: BTreeMap<String, String> = entries
        .iter()
        .filter(|e| e.module == DIGEST_LOGIN_MODULE)
        .flat_map(|e| e.options.iter())
        .filter_map(|(key, value)| Some((key.strip_prefix("user_")?.to_owned(), value.clone())))
        .collect();
    if users.is_empty() {
        return Err(JaasError::NoUsers { path: shown, section: section.into() });
    }
    Ok(ServerLogin::Digest(DigestUsers(users)))
}

/// The login of the client section `section` (`Client`, `QuorumLearner`, …) in the JAAS file at `path`.
pub fn client_login(path: &Path, section: &str) -> Result<ClientLogin, JaasError> {
    let (shown, entries) = read_section(path, section)?;
    if let Some(entry) = entries.iter().find(|e| KERBEROS_MODULES.contains(&e.module.as_str())) {
        return kerberos_login(&shown, section, entry).map(ClientLogin::Kerberos);
    }
    entries
        .iter()
        .filter(|e| e.module == DIGEST_LOGIN_MODULE)
        .find_map(|e| {
            Some(ClientLogin::Digest {
                user: e.options.get("username")?.clone(),
                password: e.options.get("password")?.clone(),
            })
        })
        .ok_or(JaasError::NoUsers { path: shown, section: section.into() })
}

/// A `Krb5LoginModule` entry's options, as Java's module reads them for a login without a prompt.
fn kerberos_login(shown: &str, section: &str, entry: &Entry) -> Result<KerberosLogin, JaasError> {
    let option = |name: &str| entry.options.get(name).map(String::as_str);
    let enabled = |name: &str| option(name).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let source = if enabled("useKeyTab") {
        KeySource::Keytab(option("keyTab").map(PathBuf::from))
    } else if enabled("useTicketCache") {
        KeySource::TicketCache(option("ticketCache").map(PathBuf::from))
    } else {
        return Err(JaasError::KerberosSource { path: shown.into(), section: section.into() });
    };
    Ok(KerberosLogin { principal: option("principal").map(str::to_owned), source })
}

/// Whether the JAAS file at `path` has a section `section`.
pub fn has_section(path: &Path, section: &str) -> Result<bool, JaasError> {
    match read_section(path, section) {
        Ok(_) => Ok(true),
        Err(JaasError::NoSection { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The entries of `section` in the JAAS file at `path`, and the path as messages show it.
fn read_section(path: &Path, section: &str) -> Result<(String, Vec<Entry>), JaasError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| JaasError::Io { path: shown.clone(), source })?;
    let mut sections =
        parse(&text).map_err(|(line, reason)| JaasError::Syntax { path: shown.clone(), line, reason })?;
    let entries = sections
        .remove(section)
        .ok_or_else(|| JaasError::NoSection { path: shown.clone(), section: section.into() })?;
    Ok((shown, entries))
}

/// Every section's entries; a syntax error as (line, reason).
pub fn parse(text: &str) -> Result<BTreeMap<String, Vec<Entry>>, (usize, String)> {
    let tokens = tokenize(text)?;
    let mut at = 0;
    let mut sections = BTreeMap::new();
    let next = |at: &mut usize| -> Option<&(usize, Token)> {
        let token = tokens.get(*at);
        *at += 1;
        token
    };
    let last_line = tokens.last().map_or(1, |(line, _)| *line);
    let expect = |token: Option<&(usize, Token)>, what: &str| -> Result<(usize, Token), (usize, String)> {
        token.cloned().ok_or_else(|| (last_line, format!("the file ends where {what} should be")))
    };
    while at < tokens.len() {
        let (line, name) = expect(next(&mut at), "a section name")?;
        let Token::Word(name) = name else { return Err((line, "expected a section name".into())) };
        let (brace_line, brace) = expect(next(&mut at), "'{'")?;
        if brace != Token::Open {
            return Err((brace_line, format!("expected '{{' after {name}")));
        }
        let mut entries = Vec::new();
        loop {
            let (line, token) = expect(next(&mut at), "a login module or '}'")?;
            let module = match token {
                Token::Close => break,
                Token::Word(module) => module,
                _ => return Err((line, "expected a login module class".into())),
            };
            let (flag_line, flag) = expect(next(&mut at), "a control flag")?;
            let Token::Word(flag) = flag else {
                return Err((flag_line, format!("expected a control flag after {module}")));
            };
            let mut options = BTreeMap::new();
            loop {
                let (line, token) = expect(next(&mut at), "an option or ';'")?;
                match token {
                    Token::Semicolon => break,
                    Token::Word(key) => {
                        if !matches!(expect(next(&mut at), "'='")?.1, Token::Equals) {
                            return Err((line, format!("expected '=' after {key}")));
                        }
                        let (line, value) = expect(next(&mut at), "a value")?;
                        let (Token::Word(value) | Token::Quoted(value)) = value else {
                            return Err((line, format!("expected a value for {key}")));
                        };
                        options.insert(key, value);
                    }
                    _ => return Err((line, "expected an option or ';'".into())),
                }
            }
            entries.push(Entry { module, flag, options });
        }
        if let Some((_, Token::Semicolon)) = tokens.get(at) {
            at += 1;
        }
        sections.insert(name, entries);
    }
    Ok(sections)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semicolon,
    Equals,
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, (usize, String)> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '{' => tokens.push((line, Token::Open)),
            '}' => tokens.push((line, Token::Close)),
            ';' => tokens.push((line, Token::Semicolon)),
            '=' => tokens.push((line, Token::Equals)),
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                loop {
                    let Some(c) = chars.next() else { return Err((line, "an unterminated /* comment".into())) };
                    line += usize::from(c == '\n');
                    if previous == '*' && c == '/' {
                        break;
                    }
                    previous = c;
                }
            }
            '"' => {
                let start = line;
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => value.extend(chars.next()),
                        Some(c) => {
                            line += usize::from(c == '\n');
                            value.push(c);
                        }
                        None => return Err((start, "an unterminated quoted value".into())),
                    }
                }
                tokens.push((start, Token::Quoted(value)));
            }
            c => {
                let mut word = String::from(c);
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "{};=\"".contains(c) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push((line, Token::Word(word)));
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
// As ZooKeeper's documentation and the Kafka guides write it.
Server {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_super="adminsecret"
       user_bob="bob secret";
};
/* a client section, which the server does not read */
Client {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       username=bob
       password="bobsecret";
};
"#;

    fn digest_users(path: &Path, section: &str) -> Result<DigestUsers, JaasError> {
        match server_login(path, section)? {
            ServerLogin::Digest(users) => Ok(users),
            ServerLogin::Kerberos(login) => panic!("Kerberos: {login:?}"),
        }
    }

    #[test]
    fn digest_users_of_the_server_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jaas.conf");
        std::fs::write(&path, FILE).unwrap();
        let users = digest_users(&path, "Server").unwrap();
        assert_eq!(users.password("bob"), Some("bob secret"));
        assert_eq!(users.names().collect::<Vec<_>>(), ["bob", "super"]);
        assert!(!format!("{users:?}").contains("secret"), "passwords stay out of logs");
        assert!(matches!(server_login(&path, "Other"), Err(JaasError::NoSection { .. })));
        assert!(matches!(server_login(&path, "Client"), Err(JaasError::NoUsers { .. })));
        let client = client_login(&path, "Client").unwrap();
        assert_eq!(client, ClientLogin::Digest { user: "bob".into(), password: "bobsecret".into() });
        assert!(!format!("{client:?}").contains("secret"), "passwords stay out of logs");
    }

    #[test]
    fn kerberos_sections_name_a_principal_and_where_its_key_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jaas.conf");
        let text = "Server {\n com.sun.security.auth.module.Krb5LoginModule required\n useKeyTab=true\n \
                    keyTab=\"/etc/zk.keytab\"\n storeKey=true\n principal=\"zookeeper/host@REALM\";\n};\n\
                    Client {\n com.sun.security.auth.module.Krb5LoginModule required useTicketCache=true;\n};\n\
                    Prompt {\n com.sun.security.auth.module.Krb5LoginModule required principal=\"a@R\";\n};\n";
        std::fs::write(&path, text).unwrap();
        let server = KerberosLogin {
            principal: Some("zookeeper/host@REALM".into()),
            source: KeySource::Keytab(Some("/etc/zk.keytab".into())),
        };
        assert_eq!(server_login(&path, "Server").unwrap(), ServerLogin::Kerberos(server));
        let client = KerberosLogin { principal: None, source: KeySource::TicketCache(None) };
        assert_eq!(client_login(&path, "Client").unwrap(), ClientLogin::Kerberos(client));
        let refused = client_login(&path, "Prompt").unwrap_err().to_string();
        assert!(refused.contains("useKeyTab=true") && refused.contains("\"Prompt\""), "{refused}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        for (text, line) in [
            ("Server {\n m required\n a=\"unterminated;\n};", 3),
            ("Server {\n m required a b;\n};", 2),
            ("Server {\n m required a=1\n", 2),
            ("Server\n m required;\n", 2),
        ] {
            let (at, reason) = parse(text).unwrap_err();
            assert_eq!(at, line, "{text:?}: {reason}");
        }
    }
}
