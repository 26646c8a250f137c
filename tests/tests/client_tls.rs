//! TLS for clients, beside ZooKeeper 3.8 (its Netty connection factory) on the same configuration:
//! `secureClientPort` with PEM stores, `ssl.clientAuth` at its default (need) and x509 authentication.
//! kazoo over TLS with a client certificate creates a znode with the `auth` scheme (which becomes the
//! certificate's `x509:` subject, a name with an email address, a multi-valued part and a comma), a
//! plaintext client on the client port is refused it, and raw connections with no, an untrusted or an
//! expired certificate, plaintext and garbage on the TLS port are all refused while the server keeps
//! serving. ZooKeeper's own shell over its Netty TLS socket sees the same ACL and `whoami`. Then the
//! rest of ZooKeeper's key family: PKCS12 stores with a password file, port unification, clientAuth
//! want, a stalled handshake, certificate reload, and the start-up refusals.
//!
//! Certificates come from `openssl` at test time; skips with a printed reason where openssl, kazoo,
//! Java or Debian's package is missing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fk_tests::TestServer;
use fk_tests::java::{JavaStandalone, free_port};
use fk_tests::pki::{ALICE, Pki};
use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/kazoo/client_tls.py");
use fk_tests::pki::X509_PROVIDER;

fn kazoo(pki: &Pki, plain: u16, secure: u16) -> Option<Value> {
    if !fk_tests::kazoo::available("kazoo", "python3-kazoo") {
        return None;
    }
    let mut command = Command::new(fk_tests::kazoo::PYTHON);
    command.arg(SCRIPT).arg(pki.dir.path()).args([plain.to_string(), secure.to_string()]);
    Some(fk_tests::kazoo::report(&mut command))
}

fn port_of(address: &str) -> u16 {
    address.rsplit(':').next().unwrap().parse().unwrap()
}

/// ZooKeeper's shell over its Netty client socket with TLS and alice's certificate: what it printed,
/// less log lines.
fn zkcli_tls(pki: &Pki, secure_port: u16, script: &str) -> Option<String> {
    fk_tests::ensemble::zookeeper_or_skip()?;
    let options = [
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty".to_owned(),
        "-Dzookeeper.client.secure=true".to_owned(),
        format!("-Dzookeeper.ssl.keyStore.location={}", pki.path("alice.pem").display()),
        format!("-Dzookeeper.ssl.trustStore.location={}", pki.path("ca.pem").display()),
    ];
    Some(fk_tests::java::shell_script(&options, &format!("127.0.0.1:{secure_port}"), script))
}

#[test]
fn tls_clients_and_x509_acls_as_in_zookeeper() {
    let Some(pki) = Pki::make() else { return };
    let secure = free_port();
    let server = TestServer::with_config(&pki.server_config(secure));
    let Some(ours) = kazoo(&pki, port_of(&server.address()), secure) else { return };
    assert_eq!(ours["alice_creates"], "/x509", "{ours}");
    assert_eq!(ours["acl"], format!("x509:{ALICE}:31"), "{ours}");
    assert_eq!(ours["alice_reads"], "for alice", "{ours}");
    assert_eq!(ours["plaintext_reads"], "NoAuthError", "{ours}");
    for refused in ["no_certificate", "untrusted_certificate", "expired_certificate", "plaintext_on_tls_port"] {
        assert_eq!(ours[refused], "refused", "{refused}: {ours}");
    }
    assert_eq!(ours["still_serving"], "for alice", "{ours}");
    let log = server.log_text();
    assert!(log.contains(&format!("Authenticated Id '{ALICE}' for Scheme 'x509'")), "{log}");
    let shell = "create /tls v auth::cdrwa\ngetAcl /tls\nwhoami\ndelete /tls\nquit\n";
    let our_shell = zkcli_tls(&pki, secure, shell);
    if let Some(shell_out) = &our_shell {
        assert!(shell_out.contains("Created /tls"), "{shell_out}");
    }

    let java_secure = free_port();
    let Some(java) = JavaStandalone::start(None, &pki.server_config(java_secure)) else { return };
    let theirs = kazoo(&pki, port_of(&java.address()), java_secure).expect("kazoo ran above");
    eprintln!("ferrokeeper: {ours}\nZooKeeper 3.8: {theirs}");
    assert_eq!(ours, theirs, "ferrokeeper (left) and ZooKeeper 3.8 (right)");
    assert_eq!(our_shell, zkcli_tls(&pki, java_secure, shell), "zkCli over TLS: ferrokeeper (left), ZooKeeper (right)");
}

/// PKCS12 stores (the key store's password from a file), a client port that takes TLS and plaintext
/// (`client.portUnification`), and `ssl.clientAuth=want`: a client without a certificate gets a session
/// and no x509 id; TLS 1.3 only.
#[test]
fn pkcs12_stores_port_unification_and_client_auth_want() {
    let Some(pki) = Pki::make() else { return };
    let config = format!(
        "client.portUnification=true\nssl.keyStore.location={}\nssl.keyStore.passwordPath={}\n\
         ssl.trustStore.location={}\nssl.trustStore.password=trustpw\nssl.clientAuth=want\n\
         ssl.enabledProtocols=TLSv1.3\n{X509_PROVIDER}\n",
        pki.path("server.p12").display(),
        pki.path("keystore.pw").display(),
        pki.path("trust.p12").display()
    );
    let server = TestServer::with_config(&config);
    let port = port_of(&server.address());
    let Some(seen) = kazoo(&pki, port, port) else { return };
    assert_eq!(seen["acl"], format!("x509:{ALICE}:31"), "{seen}");
    assert_eq!(seen["plaintext_reads"], "NoAuthError", "plaintext on the same port: {seen}");
    assert_eq!(seen["plaintext_on_plain_port"], "session", "{seen}");
    assert_eq!(seen["no_certificate"], "session", "clientAuth=want: {seen}");
    assert_eq!(seen["untrusted_certificate"], "refused", "{seen}");
    assert_eq!(seen["still_serving"], "for alice", "{seen}");
    // 4-letter words work over either.
    assert_eq!(server.four_letter("ruok"), "imok");
}

/// A TLS client that starts a handshake and stalls is closed after ssl.handshakeDetectionTimeoutMillis,
/// and costs the others nothing meanwhile.
#[test]
fn a_stalled_handshake_is_closed_in_time() {
    let Some(pki) = Pki::make() else { return };
    let secure = free_port();
    let server =
        TestServer::with_config(&format!("{}ssl.handshakeDetectionTimeoutMillis=300\n", pki.server_config(secure)));
    let mut stalled = TcpStream::connect(("127.0.0.1", secure)).unwrap();
    // The first bytes of a ClientHello record, and no more.
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
    assert_eq!(server.four_letter("ruok"), "imok");
    stalled.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(4), "closed only after {:?}", started.elapsed());
    let log = server.log_text();
    assert!(log.contains("its TLS handshake did not complete in time (ssl.handshakeDetectionTimeoutMillis)"), "{log}");
}

/// client.certReload: a new key store file in place is used by the next connections.
#[test]
fn certificates_are_reloaded_when_their_files_change() {
    let Some(pki) = Pki::make() else { return };
    let secure = free_port();
    let store = pki.path("live.pem");
    std::fs::copy(pki.path("alice.pem"), &store).unwrap();
    let config = format!(
        "secureClientPort={secure}\nclient.certReload=true\nssl.keyStore.location={}\nssl.trustStore.location={}\n\
         ssl.clientAuth=none\n",
        store.display(),
        pki.path("ca.pem").display()
    );
    let server = TestServer::with_config(&config);
    // alice's certificate is not for 127.0.0.1: a client checking host names refuses it.
    assert!(!server_name_accepted(&pki, secure), "alice's certificate passed for 127.0.0.1");
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::copy(pki.path("server.pem"), &store).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server_name_accepted(&pki, secure) {
        assert!(Instant::now() < deadline, "the new key store was not taken up:\n{}", server.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(server.log_text().contains("client.certReload: the key and trust stores were read again"));
}

/// Whether a TLS client that checks the server's name (127.0.0.1) against the test CA accepts it.
fn server_name_accepted(pki: &Pki, port: u16) -> bool {
    let script = "import socket, ssl, sys\nctx = ssl.create_default_context(cafile=sys.argv[1])\n\
                  s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[2])), timeout=5), \
                  server_hostname='127.0.0.1')\n";
    Command::new("/usr/bin/python3")
        .args(["-c", script, &pki.path("ca.pem").display().to_string(), &port.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Stores that cannot serve stop start-up with the key and what to do.
#[test]
fn unusable_stores_stop_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let jks = dir.path().join("keystore.jks");
    std::fs::write(&jks, b"\xfe\xed\xfe\xed\0\0\0\x02").unwrap();
    let cases = [
        (
            format!("secureClientPort={}\n", free_port()),
            "ssl.keyStore.location: TLS for clients needs the server's key store",
        ),
        (
            format!("secureClientPort={}\nssl.keyStore.location={}\n", free_port(), jks.display()),
            "keytool -importkeystore",
        ),
        (
            format!("secureClientPort={}\nssl.keyStore.location={}\nssl.clientAuth=need\n", free_port(), jks.display()),
            "keytool -importkeystore",
        ),
        (
            "client.portUnification=true\nssl.clientAuth=sometimes\n".to_owned(),
            "ssl.clientAuth: 'sometimes' is not none",
        ),
    ];
    for (config, expected) in cases {
        let (code, log) = TestServer::expect_start_failure(|_| {}, &config);
        assert_ne!(code, Some(0), "{config}: {log}");
        assert!(log.contains(expected), "{config}: {log}");
        assert!(!log.contains("serving clients"), "{config}: it served\n{log}");
    }
}
