//! The Debian package: `cargo deb` packs this build's binaries (server/Cargo.toml's
//! `[package.metadata.deb]`), `dpkg -i` installs it on this machine (its postinst makes the
//! `ferrokeeper` system user and /var/lib/ferrokeeper), the installed unit passes
//! `systemd-analyze verify`, the installed server starts on the packaged /etc/ferrokeeper/zoo.cfg as the
//! service user (in a network namespace, so its fixed ports 2181 and 8080 meet no other test) and
//! serves the installed fkcli, and `dpkg --purge` takes everything away again.
//!
//! Needs root, dpkg, cargo-deb (`.ci/run` installs it) and network namespaces; skips with a printed
//! reason otherwise. It changes this machine while it runs (a package, a user), and purges on the way
//! out, even when it fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fk_tests::netns::Lab;

const PACKAGE: &str = "ferrokeeper";
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Why this test cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| text(&o).trim() == "0");
    if !is_root {
        return Some("dpkg -i needs root".into());
    }
    if Command::new("dpkg").arg("--version").output().is_err() {
        return Some("dpkg is not installed".into());
    }
    let cargo_deb = Command::new(cargo()).args(["deb", "--version"]).output();
    if !cargo_deb.is_ok_and(|o| o.status.success()) {
        return Some("cargo-deb is not installed (cargo install cargo-deb --version 3.8.0 --locked)".into());
    }
    None
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace holds tests/").to_owned()
}

/// Purges the package when dropped, however the test ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", PACKAGE]).output();
    }
}

/// The installed server, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_package_installs_starts_on_its_config_and_purges() {
    if let Some(reason) = unavailable() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let lab = match Lab::new(1) {
        Ok(lab) => lab,
        Err(reason) => {
            eprintln!("SKIPPED: cannot build a network namespace for the installed server: {reason}");
            return;
        }
    };
    let out = tempfile::tempdir().unwrap();
    let deb = out.path().join("ferrokeeper.deb");
    // This build's binaries (cargo-deb calls them development ones and warns; a release build would
    // double the suite's build time for the same files).
    run(Command::new(cargo())
        .current_dir(workspace_root())
        .args(["deb", "-p", PACKAGE, "--no-build", "--profile", "dev", "--output"])
        .arg(&deb));
    let contents = text(&run(Command::new("dpkg-deb").arg("--contents").arg(&deb)));
    for path in [
        "./usr/bin/ferrokeeper",
        "./usr/bin/fkcli",
        "./usr/bin/fktool",
        "./usr/bin/fkbench",
        "./etc/ferrokeeper/zoo.cfg",
        "./usr/lib/systemd/system/ferrokeeper.service",
        "./usr/share/doc/ferrokeeper/README.md",
    ] {
        assert!(contents.lines().any(|l| l.ends_with(path)), "{path} is not in the package:\n{contents}");
    }
    let conffiles = text(&run(Command::new("dpkg-deb").arg("--info").arg(&deb).arg("conffiles")));
    assert_eq!(conffiles.trim(), "/etc/ferrokeeper/zoo.cfg");

    // A leftover of a killed earlier run would make this an upgrade.
    let _ = Command::new("dpkg").args(["--purge", PACKAGE]).output();
    let installed = Installed;
    run(Command::new("dpkg").arg("-i").arg(&deb));
    let user = text(&run(Command::new("getent").args(["passwd", PACKAGE])));
    assert!(user.contains(":/var/lib/ferrokeeper:"), "the service user's home: {user}");
    let owner = text(&run(Command::new("stat").args(["-c", "%U %a", "/var/lib/ferrokeeper"])));
    assert_eq!(owner.trim(), "ferrokeeper 750");
    let version = text(&run(Command::new("/usr/bin/ferrokeeper").arg("--version")));
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    if Command::new("systemd-analyze").arg("--version").output().is_ok() {
        let verify = Command::new("systemd-analyze")
            .args(["verify", "/usr/lib/systemd/system/ferrokeeper.service"])
            .output()
            .expect("run systemd-analyze");
        let said = String::from_utf8_lossy(&verify.stderr).into_owned() + &text(&verify);
        assert!(verify.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
    } else {
        eprintln!("systemd-analyze is not installed: the installed unit is not verified");
    }

    // As the unit runs it: the service user, the packaged configuration.
    let server = lab
        .command(0, "setpriv")
        .args(["--reuid", PACKAGE, "--regid", PACKAGE, "--clear-groups", "/usr/bin/ferrokeeper"])
        .arg("/etc/ferrokeeper/zoo.cfg")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the installed server");
    let server = Running(server);
    let client_port = SocketAddr::from((lab.ip(0), 2181));
    let deadline = Instant::now() + START_TIMEOUT;
    while !lab.exchange(0, client_port, "srvr", Duration::from_secs(2)).is_some_and(|a| a.contains("Mode: standalone"))
    {
        assert!(Instant::now() < deadline, "the installed server did not serve within {START_TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let fkcli = |args: &[&str]| {
        let address = client_port.to_string();
        text(&run(Command::new("/usr/bin/fkcli").args(["-server", &address]).args(args)))
    };
    fkcli(&["create", "/packaged", "installed"]);
    assert!(fkcli(&["get", "/packaged"]).contains("installed"));
    let admin =
        lab.exchange(0, SocketAddr::from((lab.ip(0), 8080)), "GET /commands/ruok HTTP/1.0\r\n\r\n", START_TIMEOUT);
    assert!(admin.as_deref().is_some_and(|a| a.contains("\"error\" : null")), "AdminServer ruok: {admin:?}");
    drop(server);
    let data = text(&run(Command::new("stat").args(["-c", "%U", "/var/lib/ferrokeeper/version-2"])));
    assert_eq!(data.trim(), "ferrokeeper", "the data directory belongs to the service user");

    drop(installed);
    assert!(!Path::new("/usr/bin/ferrokeeper").exists(), "purged");
    assert!(!Path::new("/var/lib/ferrokeeper").exists(), "purge removes the data directory");
    assert!(
        !Command::new("getent").args(["passwd", PACKAGE]).status().is_ok_and(|s| s.success()),
        "purge removes the user"
    );
}
