//! Fail closed: the real binary refuses to start on a configuration that asks for a security property it
//! does not provide (revocation checks, Kerberos name-mapping rules, other authentication providers),
//! naming the file, line and key — or the
//! environment variable ZooKeeper's scripts would have passed to the JVM — and never starts serving.

use std::process::{Command, Stdio};

use fk_tests::{TestServer, server_binary};

/// The standalone zoo.cfg a new user would write to turn each property on, and what the refusal names.
#[test]
fn security_keys_stop_start_up_naming_file_line_and_key() {
    let cases = [
        ("ssl.crl=true", "ssl.crl: this TLS setting is not supported"),
        ("admin.forceHttps=true", "admin.forceHttps: this TLS setting is not supported"),
        ("sslQuorum=true", "sslQuorum: TLS between members needs ssl.quorum.keyStore.location"),
        ("ssl.quorum.crl=true", "ssl.quorum.crl: this setting of TLS between members"),
        (
            "authProvider.kerberos=com.example.KerberosNameProvider",
            "authProvider.kerberos: this authentication provider is not available",
        ),
        ("zookeeper.security.auth_to_local=RULE:[2:$1]", "security.auth_to_local: this part of SASL"),
    ];
    for (line, expected) in cases {
        TestServer::assert_start_refused(line, expected);
    }
}

/// Settings that turn a property off are accepted (a templated config often spells the defaults out).
#[test]
fn security_keys_that_ask_for_nothing_start() {
    let server = TestServer::with_config("sslQuorum=false\nquorum.auth.enableSasl=false\nportUnification=false\n");
    assert_eq!(server.four_letter("ruok"), "imok");
}

#[test]
fn jvm_flags_from_zookeepers_scripts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    let data = dir.path().join("data");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=100\nclientPort=0\nclientPortAddress=127.0.0.1\ndataDir={}\nadmin.enableServer=false\n",
            data.display()
        ),
    )
    .unwrap();
    let flags = "-Xmx512m -Djava.security.auth.login.config=/etc/zookeeper/jaas.conf \
                 -Dzookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider \
                 -Dzookeeper.security.auth_to_local=RULE:[2:$1]";
    let output = Command::new(server_binary())
        .arg(&cfg)
        .env("SERVER_JVMFLAGS", flags)
        .stdin(Stdio::null())
        .output()
        .expect("run ferrokeeper");
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(
        log.contains("environment variable SERVER_JVMFLAGS: -Dzookeeper.security.auth_to_local: this part"),
        "{log}"
    );
    assert!(!log.contains("serving clients"), "{log}");
}
