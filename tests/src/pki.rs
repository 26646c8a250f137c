//! Test certificates made with openssl: a CA, a server certificate for 127.0.0.1, client certificates
//! (alice, whose subject exercises Java's name formatting; mallory from another CA; an expired one), and
//! PKCS12 copies.

use std::path::PathBuf;
use std::process::Command;

/// The zoo.cfg line that turns x509 authentication on.
pub const X509_PROVIDER: &str = "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider";
/// alice's subject, as ZooKeeper 3.8 writes it (Java's X500Principal.getName()).
pub const ALICE: &str = "1.2.840.113549.1.9.1=#1611616c696365406578616d706c652e636f6d,CN=alice+UID=a1,OU=Test,\
                         O=Example\\, Inc.,C=US";

/// The certificates, in a temporary directory: `ca.pem`, `server.pem` (key and certificate), `server.p12`
/// (password `changeit`, also in `keystore.pw`), `trust.p12` (password `trustpw`), and for each client
/// `NAME.key`, `NAME.crt` and `NAME.pem`.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    /// `None`, after printing why, where openssl cannot run.
    pub fn make() -> Option<Pki> {
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!("SKIPPED: openssl cannot run (install Debian's openssl)");
            return None;
        }
        let pki = Pki { dir: tempfile::tempdir().unwrap() };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        for (ca, subject) in [("ca", "/CN=Test CA"), ("other-ca", "/CN=Another CA")] {
            pki.openssl(
                &["req", "-x509"],
                &ec,
                &["-keyout", &format!("{ca}.key"), "-out", &format!("{ca}.pem")],
                subject,
            );
        }
        std::fs::write(pki.path("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
        std::fs::write(pki.path("client.ext"), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").unwrap();
        std::fs::write(pki.path("elsewhere.ext"), "subjectAltName=DNS:elsewhere.example\n").unwrap();
        // The expired one first: valid for the second it is made in (openssl 3.0 cannot date one in the
        // past), so make() returns only once that second is over.
        let expired_made = std::time::Instant::now();
        let clients = [
            ("expired", "/CN=expired", "ca", "0"),
            ("server", "/CN=localhost", "ca", "3650"),
            ("alice", "/C=US/O=Example, Inc./OU=Test/CN=alice+UID=a1/emailAddress=alice@example.com", "ca", "3650"),
            ("mallory", "/CN=mallory", "other-ca", "3650"),
            // A server certificate for another host: a client checking names refuses it at 127.0.0.1.
            ("elsewhere", "/CN=elsewhere.example", "ca", "3650"),
        ];
        for (name, subject, ca, days) in clients {
            pki.openssl(&["req"], &ec, &["-keyout", &format!("{name}.key"), "-out", &format!("{name}.csr")], subject);
            let ext = match name {
                "server" => "server.ext",
                "elsewhere" => "elsewhere.ext",
                _ => "client.ext",
            };
            pki.run(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-days",
                days,
                "-extfile",
                ext,
                "-out",
                &format!("{name}.crt"),
            ]);
            let pem = std::fs::read_to_string(pki.path(&format!("{name}.key"))).unwrap()
                + &std::fs::read_to_string(pki.path(&format!("{name}.crt"))).unwrap();
            std::fs::write(pki.path(&format!("{name}.pem")), pem).unwrap();
        }
        pki.run(&[
            "pkcs12",
            "-export",
            "-inkey",
            "server.key",
            "-in",
            "server.crt",
            "-certfile",
            "ca.pem",
            "-out",
            "server.p12",
            "-passout",
            "pass:changeit",
        ]);
        pki.run(&["pkcs12", "-export", "-nokeys", "-in", "ca.pem", "-out", "trust.p12", "-passout", "pass:trustpw"]);
        std::fs::write(pki.path("keystore.pw"), "changeit\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100).saturating_sub(expired_made.elapsed()));
        Some(pki)
    }

    fn openssl(&self, command: &[&str], key: &[&str], files: &[&str], subject: &str) {
        let args: Vec<&str> = command.iter().chain(key).chain(files).copied().chain(["-subj", subject]).collect();
        self.run(&[&args[..], &["-days", "3650"]].concat());
    }

    fn run(&self, args: &[&str]) {
        let output = Command::new("openssl").args(args).current_dir(self.dir.path()).output().expect("run openssl");
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The zoo.cfg lines both servers get: the secure port, PEM stores, x509 authentication.
    pub fn server_config(&self, secure_port: u16) -> String {
        format!(
            "secureClientPort={secure_port}\nserverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             ssl.keyStore.location={}\nssl.trustStore.location={}\n{X509_PROVIDER}\n",
            self.path("server.pem").display(),
            self.path("ca.pem").display()
        )
    }
}
