//! Kerberos (SASL GSSAPI) against a real MIT KDC this test starts (tests/src/kdc.rs), beside ZooKeeper 3.8
//! doing the same with the same zoo.cfg, JAAS file and krb5.conf: clients — ZooKeeper's own shell with a
//! `Krb5LoginModule` Client section, kazoo with a `kinit` ticket — authenticate, get `sasl:` identities
//! mapped as ZooKeeper maps them (`kerberos.removeHostFromPrincipal`, `removeRealmFromPrincipal`), and
//! `sasl` ACLs hold; a garbage token is refused while the server serves on; logins that cannot work stop
//! start-up. Between members: a mixed Java/ferrokeeper ensemble authenticates every election and learner
//! connection with Kerberos, and a member whose principal names a host outside the ensemble is not
//! admitted while the others serve. Skips with a printed reason where the KDC packages, Java or kazoo are
//! missing.

use std::path::Path;

use fk_tests::TestServer;
use fk_tests::ensemble::{EnsembleSpec, Implementation, TestEnsemble};
use fk_tests::java::JavaStandalone;
use fk_tests::kdc::{Kdc, REALM};

const PROVIDER: &str = "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider";
const KAZOO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/kazoo/sasl_kerberos.py");

/// A realm with the server's principal `zookeeper/localhost` and clients `client` and `client/app1`, and a
/// JAAS file with their sections (`Server`, `Client`, `AppClient`).
struct Realm {
    kdc: Kdc,
    jaas: std::path::PathBuf,
}

impl Realm {
    fn start() -> Option<Realm> {
        let kdc = Kdc::start()?;
        let mut text = String::new();
        for (section, principal) in
            [("Server", "zookeeper/localhost"), ("Client", "client"), ("AppClient", "client/app1")]
        {
            text += &Kdc::jaas_section(section, principal, &kdc.principal(principal));
        }
        let jaas = kdc.path("jaas.conf");
        std::fs::write(&jaas, text).unwrap();
        Some(Realm { kdc, jaas })
    }

    /// zoo.cfg lines for ferrokeeper: the provider, the JAAS file and the Kerberos configuration.
    fn zoo_cfg(&self) -> String {
        format!(
            "{PROVIDER}\njava.security.auth.login.config={}\njava.security.krb5.conf={}\n",
            self.jaas.display(),
            self.kdc.krb5_conf().display()
        )
    }

    /// The same as JVM flags, for ZooKeeper.
    fn java_options(&self) -> Vec<String> {
        vec![
            format!("-Djava.security.auth.login.config={}", self.jaas.display()),
            format!("-Djava.security.krb5.conf={}", self.kdc.krb5_conf().display()),
        ]
    }

    /// ZooKeeper's shell on `localhost:<port>` (the server principal's host) logged in with the JAAS
    /// section `section` (none: anonymous): what it printed, less log lines.
    fn zkcli(&self, port: u16, section: Option<&str>, script: &str) -> Option<String> {
        fk_tests::ensemble::zookeeper_or_skip()?;
        let mut options = vec![format!("-Djava.security.krb5.conf={}", self.kdc.krb5_conf().display())];
        if let Some(section) = section {
            options.push(format!("-Djava.security.auth.login.config={}", self.jaas.display()));
            options.push(format!("-Dzookeeper.sasl.clientconfig={section}"));
        }
        Some(fk_tests::java::shell_script(&options, &format!("localhost:{port}"), script))
    }

    /// kazoo with a ticket `kinit` got for `client`: its JSON report.
    fn kazoo(&self, port: u16) -> Option<serde_json::Value> {
        let packages = "python3-kazoo, python3-pure-sasl, python3-kerberos";
        if !fk_tests::kazoo::available("kazoo, puresasl, kerberos", packages) {
            return None;
        }
        let cache = self.kdc.path("client.ccache");
        let kinit = self
            .kdc
            .command("kinit")
            .env("KRB5CCNAME", &cache)
            .args(["-k", "-t"])
            .arg(self.kdc.path("client.keytab"))
            .arg("client")
            .output()
            .expect("run kinit");
        assert!(kinit.status.success(), "kinit: {}", String::from_utf8_lossy(&kinit.stderr));
        let mut command = self.kdc.command(fk_tests::kazoo::PYTHON);
        command.env("KRB5CCNAME", &cache).args([KAZOO, &format!("localhost:{port}")]);
        Some(fk_tests::kazoo::report(&mut command))
    }
}

fn port_of(address: &str) -> u16 {
    address.rsplit(':').next().unwrap().parse().unwrap()
}

/// What the shell shows of one server: the client's identities, a znode only it may use, and what an
/// anonymous client and the other principal get of it.
fn shell_view(realm: &Realm, port: u16) -> Option<String> {
    let principal = format!("client@{REALM}");
    let owner = realm.zkcli(
        port,
        Some("Client"),
        &format!("whoami\ncreate /kerberos data sasl:{principal}:cdrwa\ngetAcl /kerberos\nget /kerberos\n"),
    )?;
    let anonymous = realm.zkcli(port, None, "get /kerberos\n")?;
    let app = realm.zkcli(port, Some("AppClient"), "whoami\nget /kerberos\n")?;
    realm.zkcli(port, Some("Client"), "delete /kerberos\n")?;
    Some(format!("-- client --\n{owner}\n-- anonymous --\n{anonymous}\n-- client/app1 --\n{app}"))
}

#[test]
fn kerberos_clients_and_sasl_acls_as_in_zookeeper() {
    let Some(realm) = Realm::start() else { return };
    let server = TestServer::with_config(&realm.zoo_cfg());
    let Some(ours) = shell_view(&realm, port_of(&server.address())) else { return };
    for expected in [
        "sasl: client@EXAMPLE.COM",
        "'sasl,'client@EXAMPLE.COM\n: cdrwa",
        "data",
        "Insufficient permission : /kerberos",
        "sasl: client/app1@EXAMPLE.COM",
    ] {
        assert!(ours.contains(expected), "{expected:?} missing:\n{ours}\n{}", server.log_text());
    }
    let log = server.log_text();
    assert!(log.contains("SASL (GSSAPI) authentication succeeded"), "{log}");
    let kazoo = realm.kazoo(port_of(&server.address()));
    if let Some(kazoo) = &kazoo {
        assert_eq!(kazoo["reads"], "for client", "{kazoo}");
        assert_eq!(kazoo["auth_acl_is"], "sasl:client@EXAMPLE.COM", "{kazoo}");
        assert_eq!(kazoo["anonymous_reads"], "NoAuthError", "{kazoo}");
    }
    let options = realm.java_options();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let Some(java) = JavaStandalone::start_with(None, PROVIDER, &options) else { return };
    let theirs = shell_view(&realm, port_of(&java.address())).expect("the shell ran above");
    eprintln!("ferrokeeper:\n{ours}\nZooKeeper 3.8:\n{theirs}");
    assert_eq!(ours, theirs, "ferrokeeper (left) and ZooKeeper 3.8 (right)");
    if let Some(kazoo) = kazoo {
        assert_eq!(Some(kazoo), realm.kazoo(port_of(&java.address())), "kazoo: ferrokeeper (left), ZooKeeper");
    }
}

/// `kerberos.removeHostFromPrincipal` and `removeRealmFromPrincipal` (zoo.cfg keys here, JVM flags for
/// ZooKeeper): client/app1@EXAMPLE.COM becomes `sasl:client`.
#[test]
fn principals_map_to_identities_as_in_zookeeper() {
    let Some(realm) = Realm::start() else { return };
    let rules = "kerberos.removeHostFromPrincipal=true\nkerberos.removeRealmFromPrincipal=true\n";
    let server = TestServer::with_config(&(realm.zoo_cfg() + rules));
    let Some(ours) = realm.zkcli(port_of(&server.address()), Some("AppClient"), "whoami\n") else { return };
    assert!(ours.contains("sasl: client\n") || ours.ends_with("sasl: client"), "{ours}");
    let mut options = realm.java_options();
    options.push("-Dzookeeper.kerberos.removeHostFromPrincipal=true".into());
    options.push("-Dzookeeper.kerberos.removeRealmFromPrincipal=true".into());
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let Some(java) = JavaStandalone::start_with(None, PROVIDER, &options) else { return };
    let theirs = realm.zkcli(port_of(&java.address()), Some("AppClient"), "whoami\n").unwrap();
    assert_eq!(ours, theirs, "ferrokeeper (left) and ZooKeeper 3.8 (right)");
}

/// A SASL packet whose token is not a Kerberos ticket: AuthFailed and the connection closes, as ZooKeeper
/// does; other clients are served on. Then logins that cannot work stop start-up, naming the section.
#[test]
fn bad_tokens_are_refused_and_unusable_logins_stop_start_up() {
    use fk_net::client::{PathWatchRequest, Request, SaslRequest};
    use fk_tests::raw::RawClient;
    let Some(realm) = Realm::start() else { return };
    let server = TestServer::with_config(&realm.zoo_cfg());
    for token in [b"not a kerberos ticket".to_vec(), vec![0x60, 0x82, 0xff, 0xff, 0x06], Vec::new()] {
        let mut raw = RawClient::connect(&server.address());
        let (reply, _) = raw.call(&Request::Sasl(SaslRequest { token: Some(token.clone()) }));
        assert_eq!(reply.err(), -115, "AuthFailed for {token:?}");
        assert!(raw.recv().is_none(), "the connection closes after {token:?}");
    }
    let mut raw = RawClient::connect(&server.address());
    let exists = Request::Exists(PathWatchRequest { path: "/".into(), watch: false });
    assert_eq!(raw.call(&exists).0.err(), 0, "the server serves on");
    drop(server);

    let jaas = |name: &str, text: &str| {
        let path = realm.kdc.path(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let keytab = realm.kdc.path("zookeeper_localhost.keytab");
    let cases = [
        (
            jaas(
                "missing.conf",
                &Kdc::jaas_section("Server", "zookeeper/localhost", Path::new("/nonexistent/zk.keytab")),
            ),
            "nonexistent/zk.keytab",
        ),
        // A keytab without the principal's key.
        (jaas("other.conf", &Kdc::jaas_section("Server", "zookeeper/elsewhere", &keytab)), "zookeeper/elsewhere"),
        (jaas("nohost.conf", &Kdc::jaas_section("Server", "zookeeper", &keytab)), "<service>/<host>@<REALM>"),
        (
            jaas(
                "prompt.conf",
                "Server {\n com.sun.security.auth.module.Krb5LoginModule required principal=\"a/b@EXAMPLE.COM\";\n};\n",
            ),
            "useKeyTab=true",
        ),
    ];
    for (file, expected) in cases {
        let line = format!(
            "{PROVIDER}\njava.security.auth.login.config={}\njava.security.krb5.conf={}",
            file.display(),
            realm.kdc.krb5_conf().display()
        );
        let (code, log) = TestServer::expect_start_failure(|_| {}, &line);
        assert_ne!(code, Some(0), "{}", file.display());
        assert!(log.contains(expected) && log.contains("\"Server\""), "{}: {log}", file.display());
    }
    let line = format!("{}java.security.krb5.conf=/nonexistent/krb5.conf", realm.zoo_cfg());
    let (_, log) = TestServer::expect_start_failure(|_| {}, &line);
    assert!(log.contains("java.security.krb5.conf: cannot read the Kerberos configuration"), "{log}");
}

/// A JAAS file for members: `QuorumServer` and `QuorumLearner` log in as `principal` (each member of this
/// single-host ensemble is `zkquorum/127.0.0.1`, the host its server lines name).
fn quorum_jaas(realm: &Realm, name: &str, principal: &str) -> std::path::PathBuf {
    let keytab = realm.kdc.path(&format!("{}.keytab", principal.replace('/', "_")));
    if !keytab.exists() {
        realm.kdc.principal(principal);
    }
    let text =
        Kdc::jaas_section("QuorumServer", principal, &keytab) + &Kdc::jaas_section("QuorumLearner", principal, &keytab);
    let path = realm.kdc.path(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_ensemble_authenticates_its_members_with_kerberos() {
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return;
    }
    let Some(realm) = Realm::start() else { return };
    let good = quorum_jaas(&realm, "quorum.conf", "zkquorum/127.0.0.1");
    let stranger = quorum_jaas(&realm, "stranger.conf", "zkquorum/elsewhere.example");
    let krb5 = realm.kdc.krb5_conf();
    let members = vec![Implementation::ZooKeeper, Implementation::Ferrokeeper, Implementation::Ferrokeeper];
    let spec = EnsembleSpec::new(members)
        .with_ticks(500, 10, 5)
        .with_extra(&format!(
            "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n\
             quorum.auth.kerberos.servicePrincipal=zkquorum/_HOST\n\
             java.security.auth.login.config={}\njava.security.krb5.conf={}\n",
            good.display(),
            krb5.display()
        ))
        .with_java_option(&format!("-Djava.security.auth.login.config={}", good.display()))
        .with_java_option(&format!("-Djava.security.krb5.conf={}", krb5.display()));
    let Some(mut ensemble) = TestEnsemble::start_or_skip(spec) else { return };
    let (_, others) = fk_tests::quorum_auth::refused_then_admitted(&mut ensemble, &stranger, &good).await;
    assert!(ensemble.log_text(0).contains("GSSAPI"), "ZooKeeper used Kerberos");
    assert!(others.contains("zkquorum/elsewhere.example@EXAMPLE.COM"), "{others}");
}
