//! fkcli against a real ferrokeeper: one-shot commands (output and exit status), and the same script
//! run through fkcli and Apache ZooKeeper's zkCli.sh (where installed) giving the same lines once zxids,
//! times, session ids and ports are normalised.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use fk_tests::TestServer;

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

fn fkcli(server: &TestServer, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fkcli"));
    command.args(["-server", &server.address()]).args(args);
    command.output().expect("run fkcli").into()
}

/// Runs `program` with `-server` and `script` on stdin.
fn piped(program: &str, server: &TestServer, script: &str) -> Run {
    let mut child = Command::new(program)
        .args(["-server", &server.address()])
        .env("FKCLI_HISTORY", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the shell");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    child.wait_with_output().expect("shell output").into()
}

fn zkcli_installed() -> bool {
    let installed = Path::new(ZKCLI).exists();
    if !installed {
        eprintln!("SKIPPED: {ZKCLI} not found (install Debian's zookeeper package to run this test)");
    }
    installed
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.is_empty()).collect()
}

#[test]
fn one_shot_commands_print_and_exit_like_zkcli() {
    let server = TestServer::with_config("extendedTypesEnabled=true");
    // (arguments, exit status, a stdout line, a stderr line); "" = nothing to look for.
    let cases: &[(&[&str], i32, &str, &str)] = &[
        (&["create", "/a", "hello"], 0, "", "Created /a"),
        (&["create", "/a", "again"], 1, "", "Node already exists: /a"),
        (
            &["create", "-e", "-c", "/x"],
            1,
            "",
            "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
        ),
        (&["create", "-t", "0", "/x"], 1, "", "ttl must be positive"),
        (&["ls", "/"], 0, "[a, zookeeper]", ""),
        (&["get", "/a"], 0, "hello", ""),
        (&["get", "/nope"], 1, "", "Node does not exist: /nope"),
        (&["set", "-v", "3", "/a", "x"], 1, "", "version No is not valid : /a"),
        (&["stat", "/a"], 0, "dataVersion = 0", ""),
        (&["stat", "/nope"], 1, "", "Node does not exist: /nope"),
        (&["getAcl", "/a"], 0, ": cdrwa", ""),
        (&["delete", "/nope"], 1, "", "Node does not exist: /nope"),
        (&["ls"], 1, "", "ls [-s] [-w] [-R] path"),
        (&["ls", "-x", "/"], 1, "", "Unrecognized option: -x"),
        (&["create", "/bad/"], 1, "", "Path must not end with / character"),
        (&["removewatches", "/a"], 1, "", "KeeperErrorCode = No such watcher for /a"),
        (&["sync", "/a"], 0, "Sync is OK", ""),
        (&["whoami"], 0, "Auth scheme: User", ""),
        (&["getAllChildrenNumber", "/"], 0, "4", ""),
        (&["bogus"], 127, "", "Command not found: Command not found bogus"),
        (&["reconfig", "-remove", "3"], 1, "", "KeeperErrorCode = "),
        (&["delete", "/a"], 0, "", ""),
    ];
    for (args, status, stdout, stderr) in cases {
        let run = fkcli(&server, args);
        let what = format!("fkcli {args:?}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
        assert_eq!(run.status, *status, "{what}");
        assert!(stdout.is_empty() || lines(&run.stdout).iter().any(|l| l.starts_with(stdout)), "{what}");
        assert!(stderr.is_empty() || lines(&run.stderr).iter().any(|l| l.starts_with(stderr)), "{what}");
    }
}

#[test]
fn exit_statuses_match_zkcli() {
    if !zkcli_installed() {
        return;
    }
    let server = TestServer::start();
    for args in [&["ls", "/"][..], &["get", "/nope"], &["bogus"], &["ls"], &["create", "/bad/"]] {
        let ours = fkcli(&server, args);
        let mut command = Command::new(ZKCLI);
        command.args(["-server", &server.address()]).args(args);
        let theirs: Run = command.output().expect("run zkCli.sh").into();
        assert_eq!(ours.status, theirs.status, "{args:?}: zkCli.sh said {}", theirs.stderr);
        let last_error = |run: &Run| run.stderr.lines().rfind(|l| !l.starts_with("SLF4J")).map(str::to_owned);
        assert_eq!(last_error(&ours), last_error(&theirs), "{args:?}");
    }
}

/// The owner of `path` as a one-shot `stat` prints it (`ephemeralOwner = 0x...`).
fn ephemeral_owner(run: &Run) -> String {
    let line = run.stdout.lines().find(|l| l.starts_with("ephemeralOwner = ")).unwrap_or_default();
    line.trim_start_matches("ephemeralOwner = ").to_owned()
}

/// A one-shot command, and a piped script ending without `quit`, exit with the session open, as zkCli
/// does: the ephemeral it made is still there for the next command (until the session times out).
/// `quit` closes the session first, so its ephemerals go at once.
#[test]
fn one_shot_commands_leave_their_session_to_time_out_like_zkcli() {
    let server = TestServer::with_config("maxSessionTimeout=60000");
    let programs: Vec<&str> =
        [env!("CARGO_BIN_EXE_fkcli"), ZKCLI].into_iter().filter(|p| *p != ZKCLI || zkcli_installed()).collect();
    for (i, program) in programs.iter().enumerate() {
        let one_shot = |args: &[&str]| -> Run {
            let mut command = Command::new(program);
            command.args(["-server", &server.address()]).args(args);
            command.output().expect("run the shell").into()
        };
        let path = format!("/one-shot-{i}");
        assert_eq!(one_shot(&["create", "-e", &path, "v"]).status, 0, "{program}");
        let owner = ephemeral_owner(&one_shot(&["stat", &path]));
        assert!(owner.starts_with("0x") && owner != "0x0", "{program}: the ephemeral outlives the command: {owner:?}");
    }
    for program in programs {
        let at_eof = piped(program, &server, "create -e /piped v\n");
        assert_eq!(at_eof.status, 0, "{program}: {}", at_eof.stderr);
        assert!(ephemeral_owner(&fkcli(&server, &["stat", "/piped"])) != "0x0", "{program}: open after EOF");
        fkcli(&server, &["delete", "/piped"]);
        piped(program, &server, "create -e /quit v\nquit\n");
        let after_quit = fkcli(&server, &["stat", "/quit"]);
        assert!(
            after_quit.stderr.contains("Node does not exist: /quit"),
            "{program}: quit closed: {}",
            after_quit.stdout
        );
    }
}

/// Every command zkCli has, in one session, with its errors and watch events along the way. (printwatches
/// is toggled before any watch is set: zkCli prints an event from another thread, and with the toggle
/// right after a watched change it may find printing off by then.)
const SCRIPT: &str = "\
create /app hello
create -s /app/seq- a
create -e /app/eph b
create -c /cont
create -t 60000 /ttl t
create /app x
ls /app
ls -s /app
ls -R /app
get -s /app
get /nope
set -v 0 /app world
set -v 0 /app again
set -s /app third
get /app
stat /app
stat /nope
getAllChildrenNumber /app
getEphemerals /app
getAcl /app
setAcl /app world:anyone:cdrwa
setAcl -s -v 1 /app world:anyone:cdrwa
setAcl -R /app world:anyone:cdrwa
addauth digest alice:secret
create /secret s auth::cdrwa
getAcl -s /secret
whoami
printwatches
printwatches off
printwatches
printwatches on
delete /app
delete -v 7 /cont
sync /app
setquota -n 5 /app
listquota /app
delquota /app
listquota /app
removewatches /app
get -w /app
set /app changed
ls -w /app
create /app/child x
addWatch /cont
create /cont/x y
history
redo 5
bogus
ls
config
reconfig -remove 3
deleteall /app
ls /
close
ls /
quit
";

/// Makes two runs comparable: zxids, session ids, times and ports differ between servers and runs.
fn normalise(line: &str) -> String {
    if let Some((name, _)) = line.split_once(" = ").filter(|(n, _)| *n == "ctime" || *n == "mtime") {
        return format!("{name} = <time>");
    }
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("0x") {
        out.push_str(&rest[..at]);
        out.push_str("0x<hex>");
        rest = rest[at + 2..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
    }
    out.push_str(rest);
    // Ports in prompts and connect lines.
    match out.find("127.0.0.1:") {
        Some(at) => {
            let tail = out[at + 10..].trim_start_matches(|c: char| c.is_ascii_digit()).to_owned();
            format!("{}127.0.0.1:<port>{tail}", &out[..at])
        }
        None => out,
    }
}

/// The command output in order, and the watch events apart (they print from another thread in zkCli,
/// so where they land between command outputs is not fixed).
fn split_events(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut output, mut events) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let line = normalise(line);
        // zkCli's own start-up noise: slf4j, and the line saying jline is missing from Debian's classpath.
        if line.is_empty() || line == "WATCHER::" || line.starts_with("SLF4J") || line == "JLine support is disabled" {
            continue;
        }
        if line.starts_with("WatchedEvent ") { events.push(line) } else { output.push(line) }
    }
    events.sort();
    (output, events)
}

#[test]
fn a_whole_session_prints_what_zkcli_prints() {
    if !zkcli_installed() {
        return;
    }
    // The same kind of server, fresh, for each shell: the same zxids in the same places.
    let config = "extendedTypesEnabled=true";
    let (ours_server, theirs_server) = (TestServer::with_config(config), TestServer::with_config(config));
    let ours = piped(env!("CARGO_BIN_EXE_fkcli"), &ours_server, SCRIPT);
    let theirs = piped(ZKCLI, &theirs_server, SCRIPT);
    assert_eq!(ours.status, theirs.status, "exit status after the script");
    let (ours_out, ours_events) = split_events(&ours.stdout);
    let (theirs_out, theirs_events) = split_events(&theirs.stdout);
    assert_eq!(ours_out, theirs_out, "stdout\n--- fkcli:\n{}\n--- zkCli.sh:\n{}", ours.stdout, theirs.stdout);
    assert_eq!(ours_events, theirs_events, "watch events");
    // The one difference allowed: the usage list names fkcli's extra commands too.
    let extras = ["\ttree ", "\twatch-tail "];
    let (mut ours_err, _) = split_events(&ours.stderr);
    ours_err.retain(|line| !extras.iter().any(|extra| line.starts_with(extra)));
    let (theirs_err, _) = split_events(&theirs.stderr);
    assert_eq!(ours_err, theirs_err, "stderr\n--- fkcli:\n{}\n--- zkCli.sh:\n{}", ours.stderr, theirs.stderr);
}

/// SASL DIGEST-MD5 from the shell, configured as zkCli.sh is: `CLIENT_JVMFLAGS` names a JAAS file
/// whose `Client` section holds the credentials. Against a ferrokeeper with SASL on, fkcli and zkCli.sh
/// (the Java client's own DIGEST-MD5) each authenticate as bob: a znode only `sasl:bob` may read is read
/// with the credentials and refused without them; fkcli with a wrong password gets no session.
#[test]
fn sasl_digest_from_the_shell_as_from_zkcli() {
    let dir = tempfile::tempdir().unwrap();
    let server_jaas = dir.path().join("server.conf");
    std::fs::write(
        &server_jaas,
        "Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_bob=\"bobsecret\";\n};\n",
    )
    .unwrap();
    let client_jaas = |name: &str, password: &str| {
        let path = dir.path().join(name);
        let text = format!(
            "Client {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"bob\"\n  \
             password=\"{password}\";\n}};\n"
        );
        std::fs::write(&path, text).unwrap();
        format!("-Djava.security.auth.login.config={}", path.display())
    };
    let (good, wrong) = (client_jaas("client.conf", "bobsecret"), client_jaas("wrong.conf", "nope"));
    let server = TestServer::with_config(&format!(
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
         java.security.auth.login.config={}",
        server_jaas.display()
    ));
    let shell = |program: &str, flags: &str, args: &[&str]| -> Run {
        let mut command = Command::new(program);
        command.args(["-server", &server.address()]).args(args).env("CLIENT_JVMFLAGS", flags);
        command.output().expect("run the shell").into()
    };
    let fkcli = env!("CARGO_BIN_EXE_fkcli");
    let made = shell(fkcli, &good, &["create", "/bob", "secret", "sasl:bob:cdrwa"]);
    assert_eq!(made.status, 0, "{}{}", made.stdout, made.stderr);
    assert!(shell(fkcli, &good, &["get", "/bob"]).stdout.contains("secret"));
    let anonymous = shell(fkcli, "", &["get", "/bob"]);
    assert!(anonymous.stderr.contains("Insufficient permission"), "{}{}", anonymous.stdout, anonymous.stderr);
    // The server refuses the credentials and closes the connection; the session never serves this shell
    // (zkCli.sh then reports ConnectionLoss).
    let refused = shell(fkcli, &wrong, &["get", "/bob"]);
    let said = refused.stdout + &refused.stderr;
    assert!(!said.contains("secret") && said.contains("Not connected"), "{said}");
    if zkcli_installed() {
        let java = shell(ZKCLI, &good, &["get", "/bob"]);
        assert!(java.stdout.contains("secret"), "zkCli.sh with SASL: {}{}", java.stdout, java.stderr);
        let java_anonymous = shell(ZKCLI, "", &["get", "/bob"]);
        let said = java_anonymous.stdout + &java_anonymous.stderr;
        assert!(said.contains("Insufficient permission"), "zkCli.sh without SASL: {said}");
    }
}

/// TLS from the shell as the Java client takes it: `zookeeper.client.secure=true` and the
/// `zookeeper.ssl.*` stores, as JVM flags (CLIENT_JVMFLAGS) or in a `-client-configuration` file. With
/// alice's certificate, `whoami` lists the same x509 id ZooKeeper's own shell gets over its Netty TLS
/// socket; a plaintext fkcli gets no session on the TLS port, and one that does not trust the server's
/// CA neither.
#[test]
fn tls_from_the_shell_as_from_zkcli() {
    let Some(pki) = fk_tests::pki::Pki::make() else { return };
    let secure = fk_tests::java::free_port();
    let server = TestServer::with_config(&pki.server_config(secure));
    let tls_server = format!("127.0.0.1:{secure}");
    let flags = |key_store: &str, trust_store: &str| {
        format!(
            "-Dzookeeper.client.secure=true -Dzookeeper.ssl.keyStore.location={} \
             -Dzookeeper.ssl.trustStore.location={}",
            pki.path(key_store).display(),
            pki.path(trust_store).display()
        )
    };
    let shell = |flags: &str, args: &[&str]| -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fkcli"));
        command.args(["-server", &tls_server, "-timeout", "3000"]).args(args).env("CLIENT_JVMFLAGS", flags);
        command.output().expect("run fkcli").into()
    };
    let whoami = shell(&flags("alice.pem", "ca.pem"), &["whoami"]);
    assert_eq!(whoami.status, 0, "{}{}", whoami.stdout, whoami.stderr);
    let expected = format!("Auth scheme: User\nx509: {}\nip: 127.0.0.1\n", fk_tests::pki::ALICE);
    assert!(whoami.stdout.contains(&expected), "{}", whoami.stdout);
    let properties = pki.path("client.properties");
    std::fs::write(
        &properties,
        format!(
            "zookeeper.client.secure=true\nzookeeper.ssl.keyStore.location={}\nzookeeper.ssl.trustStore.location={}\n",
            pki.path("alice.pem").display(),
            pki.path("ca.pem").display()
        ),
    )
    .unwrap();
    let from_file = shell("", &["-client-configuration", &properties.display().to_string(), "whoami"]);
    assert!(from_file.stdout.contains(&expected), "{}{}", from_file.stdout, from_file.stderr);
    for (what, flags) in [("plaintext", String::new()), ("an untrusted server", flags("alice.pem", "other-ca.pem"))] {
        let refused = shell(&flags, &["whoami"]);
        let said = refused.stdout + &refused.stderr;
        let no_session = said.contains("Not connected") || said.contains("ConnectionLoss");
        assert!(!said.contains("x509:") && no_session, "{what}: {said}");
    }
    assert_eq!(server.four_letter("ruok"), "imok");

    // A server whose certificate is for another name: refused, unless hostname verification is off
    // (zookeeper.ssl.hostnameVerification=false, as the Java client takes it).
    let elsewhere_port = fk_tests::java::free_port();
    let elsewhere = TestServer::with_config(&format!(
        "secureClientPort={elsewhere_port}\nssl.keyStore.location={}\nssl.trustStore.location={}\nssl.clientAuth=none\n",
        pki.path("elsewhere.pem").display(),
        pki.path("ca.pem").display()
    ));
    let run = |flags: &str| -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fkcli"));
        command.args(["-server", &format!("127.0.0.1:{elsewhere_port}"), "-timeout", "3000", "whoami"]);
        command.env("CLIENT_JVMFLAGS", flags).output().expect("run fkcli").into()
    };
    let checked = run(&flags("alice.pem", "ca.pem"));
    assert!(!checked.stdout.contains("Auth scheme"), "a certificate for another name was taken: {}", checked.stdout);
    let unchecked = run(&format!("{} -Dzookeeper.ssl.hostnameVerification=false", flags("alice.pem", "ca.pem")));
    assert!(unchecked.stdout.contains("ip: 127.0.0.1"), "{}{}", unchecked.stdout, unchecked.stderr);
    drop(elsewhere);
}

/// Kerberos from the shell against a real MIT KDC (tests/src/kdc.rs), configured as zkCli.sh is:
/// `CLIENT_JVMFLAGS` names a JAAS file whose `Client` section is a `Krb5LoginModule` keytab login and the
/// realm's krb5.conf. fkcli authenticates as client@EXAMPLE.COM (whoami, a znode only that principal may
/// use); `zookeeper.server.principal` naming a principal the server does not hold gets no session.
#[test]
fn kerberos_from_the_shell_as_from_zkcli() {
    use fk_tests::kdc::Kdc;
    let Some(kdc) = Kdc::start() else { return };
    let jaas = kdc.path("jaas.conf");
    let text = Kdc::jaas_section("Server", "zookeeper/localhost", &kdc.principal("zookeeper/localhost"))
        + &Kdc::jaas_section("Client", "client", &kdc.principal("client"));
    std::fs::write(&jaas, text).unwrap();
    kdc.principal("zookeeper/elsewhere");
    let server = TestServer::with_config(&format!(
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
         java.security.auth.login.config={}\njava.security.krb5.conf={}",
        jaas.display(),
        kdc.krb5_conf().display()
    ));
    let port = server.address().rsplit(':').next().unwrap().to_owned();
    let flags = format!(
        "-Djava.security.auth.login.config={} -Djava.security.krb5.conf={}",
        jaas.display(),
        kdc.krb5_conf().display()
    );
    let shell = |flags: &str, args: &[&str]| -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fkcli"));
        command.args(["-server", &format!("localhost:{port}")]).args(args).env("CLIENT_JVMFLAGS", flags);
        command.output().expect("run the shell").into()
    };
    let whoami = shell(&flags, &["whoami"]);
    assert!(whoami.stdout.contains("sasl: client@EXAMPLE.COM"), "{}{}", whoami.stdout, whoami.stderr);
    let made = shell(&flags, &["create", "/k", "secret", "sasl:client@EXAMPLE.COM:cdrwa"]);
    assert_eq!(made.status, 0, "{}{}", made.stdout, made.stderr);
    assert!(shell(&flags, &["get", "/k"]).stdout.contains("secret"));
    let anonymous = shell("", &["get", "/k"]);
    assert!(anonymous.stderr.contains("Insufficient permission"), "{}{}", anonymous.stdout, anonymous.stderr);
    let elsewhere = format!("{flags} -Dzookeeper.server.principal=zookeeper/elsewhere@EXAMPLE.COM");
    let refused = shell(&elsewhere, &["get", "/k"]);
    let said = refused.stdout + &refused.stderr;
    assert!(!said.contains("secret") && said.contains("Not connected"), "{said}");
}

/// `reconfig` and `config` from the shell against a ferrokeeper ensemble with `reconfigEnabled`: fkcli
/// removes a follower and adds it back, printing what zkCli.sh prints for the same commands, and
/// `config` shows each membership as zkCli.sh shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_and_config_from_the_shell_as_from_zkcli() {
    use fk_tests::ensemble::{EnsembleSpec, Implementation, TestEnsemble};
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return;
    }
    let spec = EnsembleSpec::uniform(Implementation::Ferrokeeper, 3, 0)
        .with_ticks(500, 10, 5)
        .with_extra("reconfigEnabled=true\nskipACL=yes\n");
    let Some(mut ensemble) = TestEnsemble::start_or_skip(spec) else { return };
    let leader = ensemble.wait_for_leader(std::time::Duration::from_secs(60));
    let follower = (leader + 1) % 3;
    let address = ensemble.client_address(leader);
    let fkcli = |args: &[&str]| -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_fkcli")).args(["-server", &address.to_string()]).args(args).output();
        let out = out.expect("run fkcli");
        fk_tests::java::said(
            &(String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)),
        )
    };
    let removed = fkcli(&["reconfig", "-remove", &(follower + 1).to_string()]);
    assert!(removed.contains("Committed new configuration:"), "{removed}");
    let ours = fkcli(&["config"]);
    let theirs = fk_tests::java::shell(address, "config");
    assert_eq!(ours.trim(), theirs.trim(), "fkcli (left) and zkCli (right)");
    assert!(!ours.contains(&format!("server.{}=", follower + 1)), "{ours}");
    // A stale version, then the member back.
    let stale = fkcli(&["reconfig", "-add", &ensemble.server_line(follower), "-v", "1"]);
    let stale_java = fk_tests::java::shell(address, &format!("reconfig -add {} -v 1", ensemble.server_line(follower)));
    assert_eq!(stale.trim(), stale_java.trim(), "fkcli (left) and zkCli (right)");
    let added = fkcli(&["reconfig", "-add", &ensemble.server_line(follower)]);
    assert!(added.contains("Committed new configuration:"), "{added}");
    assert_eq!(fkcli(&["config"]).trim(), fk_tests::java::shell(address, "config").trim());
    ensemble.config_node_once_as(follower, leader).await;
}
