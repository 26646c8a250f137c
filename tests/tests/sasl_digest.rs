//! SASL DIGEST-MD5 for clients, beside ZooKeeper 3.8 doing the same: users from a JAAS file's `Server`
//! section (`DigestLoginModule`, `user_bob="bobsecret"`) and
//! `authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider`. kazoo (with Debian's
//! python3-pure-sasl) authenticates as bob and creates a znode only `sasl:bob` may read, and one with the
//! `auth` scheme; an anonymous client is refused it; a wrong password is refused. Both servers give the
//! same outcomes. ZooKeeper takes the JAAS path as a JVM flag, ferrokeeper as the zoo.cfg key
//! `java.security.auth.login.config` (and from `SERVER_JVMFLAGS`, checked here too). Skips with a printed
//! reason where kazoo, Java or Debian's package is missing.

use std::process::Command;

use fk_tests::TestServer;
use fk_tests::java::JavaStandalone;
use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/kazoo/sasl_digest.py");
const JAAS: &str = r#"Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"
    user_bob="bobsecret";
};
"#;
const PROVIDER: &str = "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

fn kazoo(hosts: &str) -> Option<Value> {
    if !fk_tests::kazoo::available("kazoo, puresasl", "python3-kazoo, python3-pure-sasl") {
        return None;
    }
    Some(fk_tests::kazoo::report(Command::new(fk_tests::kazoo::PYTHON).args([SCRIPT, hosts])))
}

#[test]
fn digest_md5_users_and_sasl_acls_as_in_zookeeper() {
    let dir = tempfile::tempdir().unwrap();
    let jaas = dir.path().join("jaas.conf");
    std::fs::write(&jaas, JAAS).unwrap();
    let server = TestServer::with_config(&format!("{PROVIDER}\njava.security.auth.login.config={}", jaas.display()));
    let Some(ours) = kazoo(&server.address()) else { return };
    assert_eq!(ours["create_sasl_acl"], "/secret", "{ours}");
    assert_eq!(ours["bob_reads"], "for bob", "{ours}");
    assert_eq!(ours["acl"], "sasl:bob:31", "{ours}");
    assert_eq!(ours["auth_acl_is"], "sasl:bob", "the auth scheme takes the SASL identity: {ours}");
    assert_eq!(ours["anonymous_reads"], "NoAuthError", "{ours}");
    assert_eq!(ours["wrong_password"], "CONNECTING,CONNECTED,AUTH_FAILED", "{ours}");
    if let Some(java) =
        JavaStandalone::start_with(None, PROVIDER, &[&format!("-Djava.security.auth.login.config={}", jaas.display())])
    {
        let theirs = kazoo(&java.address()).expect("kazoo ran above");
        eprintln!("ferrokeeper: {ours}\nZooKeeper 3.8: {theirs}");
        assert_eq!(ours, theirs, "ferrokeeper (left) and ZooKeeper 3.8 (right)");
    }
}

#[test]
fn the_jaas_file_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let kerberos = dir.path().join("kerberos.conf");
    std::fs::write(
        &kerberos,
        "Server {\n  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n  \
         keyTab=\"/etc/zk.keytab\"\n  principal=\"zookeeper/host@EXAMPLE.COM\";\n};\n",
    )
    .unwrap();
    let cases = [
        // Kerberos with a keytab that is not there: refused naming it (tests/tests/kerberos.rs has more).
        (format!("java.security.auth.login.config={}", kerberos.display()), "keytab /etc/zk.keytab"),
        (format!("java.security.auth.login.config={}", dir.path().join("missing.conf").display()), "cannot read"),
        (PROVIDER.to_owned(), "no JAAS file is given"),
    ];
    for (line, expected) in cases {
        let (code, log) = TestServer::expect_start_failure(|_| {}, &line);
        assert_ne!(code, Some(0), "{line}");
        assert!(log.contains(expected), "{line}: {log}");
    }
}

/// ZooKeeper's scripts take the JAAS path and the provider as JVM flags (`SERVER_JVMFLAGS`), as Kafka's
/// guides and container images set them: the same service definition configures ferrokeeper.
#[test]
fn the_jaas_file_from_zookeepers_jvm_flags() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let jaas = dir.path().join("jaas.conf");
    std::fs::write(&jaas, JAAS).unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=100\nclientPort=0\nclientPortAddress=127.0.0.1\ndataDir={}\nadmin.enableServer=false\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let flags = |jaas: &std::path::Path| {
        format!(
            "-Xmx512m -Djava.security.auth.login.config={} \
             -Dzookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
            jaas.display()
        )
    };
    let mut child = Command::new(fk_tests::server_binary())
        .arg(&cfg)
        .env("SERVER_JVMFLAGS", flags(&jaas))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferrokeeper");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok);
    let log: Vec<String> = lines.by_ref().take_while(|l| !l.contains("serving clients")).collect();
    let _ = child.kill();
    let _ = child.wait();
    let log = log.join("\n");
    assert!(log.contains("-Djava.security.auth.login.config: taken as java.security.auth.login.config="), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    let missing = dir.path().join("missing.conf");
    let output = Command::new(fk_tests::server_binary())
        .arg(&cfg)
        .env("SERVER_JVMFLAGS", flags(&missing))
        .stdin(Stdio::null())
        .output()
        .expect("run ferrokeeper");
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(log.contains("cannot read the JAAS file"), "{log}");
}

/// What a raw client sees of `enforce.auth.enabled=true` with `enforce.auth.schemes=digest`: an
/// anonymous session's first request is answered SessionClosedRequireSaslAuth (-124) and the connection
/// closes; one that authenticated first is served.
fn enforced(address: &str) -> (i32, bool, i32) {
    use fk_net::client::{AuthPacket, PathWatchRequest, Request};
    use fk_tests::raw::RawClient;
    let exists = Request::Exists(PathWatchRequest { path: "/".into(), watch: false });
    let mut anonymous = RawClient::connect(address);
    let refused = anonymous.call(&exists).0.err();
    let closed = anonymous.recv().is_none();
    let mut alice = RawClient::connect(address);
    let auth =
        Request::Auth(AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Some(b"alice:secret".to_vec()) });
    assert_eq!(alice.call(&auth).0.err(), 0);
    (refused, closed, alice.call(&exists).0.err())
}

#[test]
fn required_authentication_as_in_zookeeper() {
    const ENFORCE: &str = "enforce.auth.enabled=true\nenforce.auth.schemes=digest";
    let server = TestServer::with_config(ENFORCE);
    let ours = enforced(&server.address());
    assert_eq!(ours, (-124, true, 0));
    if let Some(java) = JavaStandalone::start(None, ENFORCE) {
        assert_eq!(enforced(&java.address()), ours, "ZooKeeper 3.8");
    }
    for (line, expected) in [
        ("enforce.auth.enabled=true", "enforce.auth.schemes must be configured"),
        ("enforce.auth.enabled=true\nenforce.auth.schemes=sasl", "authentication scheme sasl is not available"),
        ("sessionRequireClientSASLAuth=true", "authentication scheme sasl is not available"),
    ] {
        let (code, log) = TestServer::expect_start_failure(|_| {}, line);
        assert_ne!(code, Some(0), "{line}");
        assert!(log.contains(expected), "{line}: {log}");
    }
}

/// Bad SASL input, each a clear refusal (AuthFailed, the connection closed) while the server keeps
/// serving: a token where the empty initial one belongs, garbage for the digest-response, a replayed
/// challenge answer on a new connection (its nonce is another), a token after the exchange completed.
#[test]
fn bad_sasl_tokens_are_refused_and_the_server_keeps_serving() {
    use fk_net::client::{PathWatchRequest, Request, SaslRequest};
    use fk_net::jute::{Jute, JuteReader};
    use fk_net::sasl::digest_md5::DigestMd5Client;
    use fk_tests::raw::RawClient;
    let dir = tempfile::tempdir().unwrap();
    let jaas = dir.path().join("jaas.conf");
    std::fs::write(&jaas, JAAS).unwrap();
    let server = TestServer::with_config(&format!("{PROVIDER}\njava.security.auth.login.config={}", jaas.display()));
    let sasl = |token: &[u8]| Request::Sasl(SaslRequest { token: Some(token.to_vec()) });
    let answer =
        |reply: &fk_tests::raw::Reply| SaslRequest::decode(&mut JuteReader::new(&reply.body)).unwrap().token.unwrap();
    let refused = |client: &mut RawClient, token: &[u8]| {
        let (reply, _) = client.call(&sasl(token));
        assert_eq!(reply.err(), -115, "AuthFailed");
        assert!(client.recv().is_none(), "the connection closes");
    };
    refused(&mut RawClient::connect(&server.address()), b"username=\"bob\"");
    let mut garbage = RawClient::connect(&server.address());
    assert_eq!(garbage.call(&sasl(b"")).0.err(), 0);
    refused(&mut garbage, &[0xff, 0x00, 0x17]);
    // A digest-response computed for one connection's nonce does not work on another.
    let mut first = RawClient::connect(&server.address());
    let challenge = answer(&first.call(&sasl(b"")).0);
    let (response, client) = DigestMd5Client::respond(&challenge, "bob", "bobsecret", "c1").unwrap();
    let done = first.call(&sasl(&response)).0;
    assert_eq!(done.err(), 0);
    assert_eq!(client.check_rspauth(&answer(&done)), Ok(()));
    refused(&mut first, b"");
    let mut replay = RawClient::connect(&server.address());
    assert_eq!(replay.call(&sasl(b"")).0.err(), 0);
    refused(&mut replay, &response);
    let mut other = RawClient::connect(&server.address());
    let exists = Request::Exists(PathWatchRequest { path: "/".into(), watch: false });
    assert_eq!(other.call(&exists).0.err(), 0, "the server serves on");
}
