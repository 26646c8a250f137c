//! A real MIT Kerberos KDC for the Kerberos tests (Debian's `krb5-kdc` and `krb5-admin-server`): realm
//! `EXAMPLE.COM` on a free loopback port, its database, `krb5.conf` and keytabs in a temporary directory,
//! killed when dropped. Principals are made with `kadmin.local` and their keys written to one keytab
//! each; both Java (`-Djava.security.krb5.conf`) and MIT's library (`KRB5_CONFIG`) read the same
//! `krb5.conf`.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REALM: &str = "EXAMPLE.COM";
const TOOLS: &[&str] = &["/usr/sbin/krb5kdc", "/usr/sbin/kdb5_util", "/usr/sbin/kadmin.local"];
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running KDC.
pub struct Kdc {
    child: Child,
    dir: tempfile::TempDir,
}

impl Kdc {
    /// A new realm with its KDC serving; `None`, after printing why, where the packages are missing.
    pub fn start() -> Option<Kdc> {
        if let Some(missing) = TOOLS.iter().find(|tool| !Path::new(tool).exists()) {
            eprintln!("SKIPPED: {missing} not found (install Debian's krb5-kdc and krb5-admin-server)");
            return None;
        }
        if !Path::new("/usr/lib/x86_64-linux-gnu/libgssapi_krb5.so.2").exists()
            && !Path::new("/usr/lib/aarch64-linux-gnu/libgssapi_krb5.so.2").exists()
        {
            eprintln!("SKIPPED: libgssapi_krb5.so.2 not found (install Debian's libgssapi-krb5-2)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = crate::java::free_port();
        let d = dir.path().display();
        // No DNS: names are taken as written (`localhost` stays `localhost`), and TCP only, which Java and
        // MIT both speak.
        let krb5_conf = format!(
            "[libdefaults]\n default_realm = {REALM}\n dns_lookup_realm = false\n dns_lookup_kdc = false\n \
             dns_canonicalize_hostname = false\n rdns = false\n udp_preference_limit = 1\n \
             ticket_lifetime = 1h\n\n[realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{port}\n }}\n"
        );
        let kdc_conf = format!(
            "[kdcdefaults]\n kdc_ports = {port}\n kdc_tcp_ports = {port}\n\n[realms]\n {REALM} = {{\n  \
             database_name = {d}/principal\n  key_stash_file = {d}/stash\n  acl_file = {d}/kadm5.acl\n  \
             supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n }}\n\n\
             [logging]\n kdc = FILE:{d}/kdc.log\n"
        );
        std::fs::write(dir.path().join("krb5.conf"), krb5_conf).unwrap();
        std::fs::write(dir.path().join("kdc.conf"), kdc_conf).unwrap();
        let mut kdc = Kdc { child: Command::new("true").spawn().unwrap(), dir };
        kdc.tool("/usr/sbin/kdb5_util", &["create", "-s", "-r", REALM, "-P", "masterkey"]);
        kdc.child = kdc
            .command("/usr/sbin/krb5kdc")
            .args(["-n", "-r", REALM])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start krb5kdc");
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_err() {
            assert!(Instant::now() < deadline, "the KDC did not listen within {START_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(kdc)
    }

    /// A new principal (`name` without the realm) with a random key, written to `<name>.keytab` (slashes
    /// as underscores); the keytab's path.
    pub fn principal(&self, name: &str) -> PathBuf {
        let keytab = self.path(&format!("{}.keytab", name.replace('/', "_")));
        self.tool("/usr/sbin/kadmin.local", &["-r", REALM, "-q", &format!("addprinc -randkey {name}")]);
        self.tool("/usr/sbin/kadmin.local", &["-r", REALM, "-q", &format!("ktadd -k {} {name}", keytab.display())]);
        keytab
    }

    /// `krb5.conf`, for `KRB5_CONFIG` and `-Djava.security.krb5.conf`.
    pub fn krb5_conf(&self) -> PathBuf {
        self.path("krb5.conf")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A JAAS section of `Krb5LoginModule` logging `principal` in (realm added) from `keytab`.
    pub fn jaas_section(section: &str, principal: &str, keytab: &Path) -> String {
        format!(
            "{section} {{\n  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n  \
             keyTab=\"{}\"\n  storeKey=true\n  useTicketCache=false\n  principal=\"{principal}@{REALM}\";\n}};\n",
            keytab.display()
        )
    }

    /// A command with this realm's configuration in its environment.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("KRB5_CONFIG", self.krb5_conf()).env("KRB5_KDC_PROFILE", self.path("kdc.conf"));
        command
    }

    fn tool(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !stderr.contains("while "), "{program} {args:?}: {stderr}");
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.path("kdc.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("---- KDC log tail ----\n{}", lines[lines.len().saturating_sub(40)..].join("\n"));
        }
    }
}
