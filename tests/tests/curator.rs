//! Apache Curator (Debian's libcurator-framework-java, on ZooKeeper 3.8's Java client) against
//! ferrokeeper and against ZooKeeper 3.8 on the same configuration, printing what each step got: once
//! authenticated with SASL DIGEST-MD5 through a JAAS `Client` section, once over TLS with a client
//! certificate (the Java client's Netty socket). Both servers must give Curator the same answers. The
//! probe (fixtures/curator/CuratorProbe.java) is compiled at test time; skips with a printed reason where
//! javac, Curator, Java or Debian's zookeeper package is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use fk_tests::TestServer;
use fk_tests::java::{JavaStandalone, free_port};
use fk_tests::pki::{Pki, X509_PROVIDER};

const PROBE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/curator/CuratorProbe.java");
const CURATOR_JARS: &[&str] = &["/usr/share/java/curator-framework.jar", "/usr/share/java/curator-client.jar"];
const SASL_PROVIDER: &str = "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

/// The probe compiled, with the classpath to run it; `None` after printing why.
fn compiled(dir: &Path) -> Option<String> {
    let zookeeper = fk_tests::ensemble::zookeeper_or_skip()?;
    if let Some(missing) = CURATOR_JARS.iter().find(|jar| !Path::new(jar).exists()) {
        eprintln!("SKIPPED: {missing} not found (install Debian's libcurator-framework-java)");
        return None;
    }
    let classpath = [&zookeeper, "/usr/share/java/guava.jar", "/usr/share/java/zookeeper-jute.jar"]
        .into_iter()
        .chain(CURATOR_JARS.iter().copied())
        .collect::<Vec<_>>()
        .join(":");
    let javac = Command::new("javac").args(["-d", &dir.display().to_string(), "-cp", &classpath, PROBE]).output();
    match javac {
        Ok(output) if output.status.success() => Some(format!("{}:{classpath}", dir.display())),
        Ok(output) => panic!("javac: {}", String::from_utf8_lossy(&output.stderr)),
        Err(e) => {
            eprintln!("SKIPPED: javac cannot run ({e})");
            None
        }
    }
}

/// Runs the probe against `connect` with JVM `flags`; its lines, less log output.
fn probe(classpath: &str, connect: &str, flags: &[String]) -> Vec<String> {
    let output = Command::new("java")
        .args(flags)
        .args(["-Dzookeeper.root.logger=ERROR,CONSOLE", "-cp", classpath, "CuratorProbe", connect])
        .output()
        .expect("run java");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "Curator: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout.lines().filter(|l| !l.contains(" ERROR ") && !l.contains(" WARN ")).map(str::to_owned).collect()
}

#[test]
fn curator_with_a_jaas_client_section_as_with_zookeeper() {
    let dir = tempfile::tempdir().unwrap();
    let Some(classpath) = compiled(dir.path()) else { return };
    let server_jaas = dir.path().join("server.conf");
    std::fs::write(
        &server_jaas,
        "Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_bob=\"bobsecret\";\n};\n",
    )
    .unwrap();
    let client_jaas = dir.path().join("client.conf");
    std::fs::write(
        &client_jaas,
        "Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"bob\"\n  \
         password=\"bobsecret\";\n};\n",
    )
    .unwrap();
    let server =
        TestServer::with_config(&format!("{SASL_PROVIDER}\njava.security.auth.login.config={}", server_jaas.display()));
    let flags = [format!("-Djava.security.auth.login.config={}", client_jaas.display())];
    let ours = probe(&classpath, &server.address(), &flags);
    eprintln!("Curator against ferrokeeper with SASL: {ours:?}");
    assert!(ours.iter().any(|l| l.contains("'sasl,'bob")), "{ours:?}");
    let java = JavaStandalone::start_with(
        None,
        SASL_PROVIDER,
        &[&format!("-Djava.security.auth.login.config={}", server_jaas.display())],
    )
    .expect("ZooKeeper ran for the classpath above");
    assert_eq!(ours, probe(&classpath, &java.address(), &flags), "ferrokeeper (left), ZooKeeper 3.8 (right)");
}

#[test]
fn curator_over_tls_as_with_zookeeper() {
    let dir = tempfile::tempdir().unwrap();
    let Some(classpath) = compiled(dir.path()) else { return };
    let Some(pki) = Pki::make() else { return };
    let flags = |pki: &Pki| {
        let path = |name: &str| -> PathBuf { pki.path(name) };
        vec![
            "-Dzookeeper.client.secure=true".to_owned(),
            "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty".to_owned(),
            format!("-Dzookeeper.ssl.keyStore.location={}", path("alice.pem").display()),
            format!("-Dzookeeper.ssl.trustStore.location={}", path("ca.pem").display()),
        ]
    };
    let secure = free_port();
    let _server = TestServer::with_config(&pki.server_config(secure));
    let ours = probe(&classpath, &format!("127.0.0.1:{secure}"), &flags(&pki));
    eprintln!("Curator against ferrokeeper over TLS: {ours:?}");
    assert!(ours.iter().any(|l| l.contains("'x509,'")), "{ours:?}");
    let java_secure = free_port();
    let java = JavaStandalone::start(None, &format!("{}\n{X509_PROVIDER}", pki.server_config(java_secure)));
    let Some(_java) = java else { return };
    let theirs = probe(&classpath, &format!("127.0.0.1:{java_secure}"), &flags(&pki));
    assert_eq!(ours, theirs, "ferrokeeper (left), ZooKeeper 3.8 (right)");
}
