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
//! or not), ending with `;`; `//` and `/* */` comments. Only what the server needs is interpreted: the
//! users (`user_<name>="<password>"`) of a `DigestLoginModule` entry in its section (`Server`, or
//! `zookeeper.sasl.serverconfig`). A section that asks for Kerberos is refused by name: GSSAPI is not
//! provided yet.

use std::collections::BTreeMap;
use std::path::Path;

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
        "{path}: section {section:?} uses {module}: SASL with Kerberos (GSSAPI) is not supported yet; \
         ferrokeeper refuses to start rather than serve clients unauthenticated. Use {DIGEST_LOGIN_MODULE} \
         (DIGEST-MD5), or run without SASL"
    )]
    Kerberos { path: String, section: String, module: String },
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

/// A client's DIGEST-MD5 credentials (`username=…`, `password=…` of a `DigestLoginModule` entry) in
/// `section` (`Client`, or `zookeeper.sasl.clientconfig`) of the JAAS file at `path`.
pub fn client_credentials(path: &Path, section: &str) -> Result<(String, String), JaasError> {
    let (shown, entries) = digest_section(path, section)?;
    entries
        .iter()
        .filter(|e| e.module == DIGEST_LOGIN_MODULE)
        .find_map(|e| Some((e.options.get("username")?.clone(), e.options.get("password")?.clone())))
        .ok_or(JaasError::NoUsers { path: shown, section: section.into() })
}

/// The DIGEST-MD5 users of `section` in the JAAS file at `path`.
pub fn digest_users(path: &Path, section: &str) -> Result<DigestUsers, JaasError> {
    let (shown, entries) = digest_section(path, section)?;
    let users: BTreeMap<String, String> = entries
        .iter()
        .filter(|e| e.module == DIGEST_LOGIN_MODULE)
        .flat_map(|e| e.options.iter())
        .filter_map(|(key, value)| Some((key.strip_prefix("user_")?.to_owned(), value.clone())))
        .collect();
    if users.is_empty() {
        return Err(JaasError::NoUsers { path: shown, section: section.into() });
    }
    Ok(DigestUsers(users))
}

/// The entries of `section` in the JAAS file at `path` (and the path as messages show it); a section that
/// asks for Kerberos is refused.
fn digest_section(path: &Path, section: &str) -> Result<(String, Vec<Entry>), JaasError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| JaasError::Io { path: shown.clone(), source })?;
    let mut sections =
        parse(&text).map_err(|(line, reason)| JaasError::Syntax { path: shown.clone(), line, reason })?;
    let entries = sections
        .remove(section)
        .ok_or_else(|| JaasError::NoSection { path: shown.clone(), section: section.into() })?;
    if let Some(kerberos) = entries.iter().find(|e| KERBEROS_MODULES.contains(&e.module.as_str())) {
        return Err(JaasError::Kerberos { path: shown, section: section.into(), module: kerberos.module.clone() });
    }
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

    #[test]
    fn digest_users_of_the_server_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jaas.conf");
        std::fs::write(&path, FILE).unwrap();
        let users = digest_users(&path, "Server").unwrap();
        assert_eq!(users.password("bob"), Some("bob secret"));
        assert_eq!(users.names().collect::<Vec<_>>(), ["bob", "super"]);
        assert!(!format!("{users:?}").contains("secret"), "passwords stay out of logs");
        assert!(matches!(digest_users(&path, "Other"), Err(JaasError::NoSection { .. })));
        assert!(matches!(digest_users(&path, "Client"), Err(JaasError::NoUsers { .. })));
        assert_eq!(client_credentials(&path, "Client").unwrap(), ("bob".to_owned(), "bobsecret".to_owned()));
        let kerberos = "Server {\n com.sun.security.auth.module.Krb5LoginModule required\n useKeyTab=true\n \
                        keyTab=\"/etc/zk.keytab\"\n principal=\"zookeeper/host@REALM\";\n};\n";
        std::fs::write(&path, kerberos).unwrap();
        let refused = digest_users(&path, "Server").unwrap_err().to_string();
        assert!(refused.contains("Krb5LoginModule") && refused.contains("not supported yet"), "{refused}");
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
