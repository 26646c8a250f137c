//! Real network partitions for ensemble tests: a `Lab` of Linux network namespaces, one per member, each
//! plugged by a veth pair into a bridge in the root namespace, where the test process runs and its
//! clients connect from.
//!
//! Layout of lab `k` (k is the lab's subnet number, unique on the machine while the lab lives):
//! - bridge `fkbr<k>` in the root namespace, address 10.77.k.254/24, its link alias names the owner
//!   (`fk-<pid>-<counter>`) so a later run can tell a leftover from a live lab;
//! - member i: namespace `fk-<pid>-<counter>-<i>` with `lo` and `eth0` = 10.77.k.(i+1)/24, whose peer
//!   `fk<k>v<i>` is a port of the bridge;
//! - faults: one nftables table `bridge fklab<k>` in the root namespace, rewritten whole (atomically) from
//!   the lab's fault state on every change. Rules match bridge ports, so every frame of a cut path is
//!   dropped silently on the wire, ARP included — no process gets an error, exactly like a pulled cable or
//!   a dead switch port: peers only notice through their own timeouts (ZooKeeper's syncLimit, connect
//!   timeouts). Dropping inside the members' own OUTPUT hooks would instead fail their sends at once with
//!   EPERM, which no real network does.
//!
//! Creating namespaces needs root, `ip` (iproute2) and `nft` (nftables); where any is missing,
//! [`Lab::new`] says so and the test skips.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Subnet numbers a lab may take: 10.77.k.0/24 for k in this range.
const SUBNETS: std::ops::RangeInclusive<u8> = 1..=250;
/// Members per lab: host addresses .1 ..= .253 (.254 is the bridge).
const MEMBERS_MAX: usize = 253;
/// Serializes subnet allocation and the sweep of leftovers between test processes (an flock, so a
/// killed holder releases it).
const LOCK_FILE: &str = "fk-netns.lock";

/// Why a lab could not be built (the test prints it and skips).
#[derive(Debug)]
pub enum LabError {
    /// Network namespaces need root.
    NotRoot,
    /// A needed program is not installed.
    ToolMissing { tool: &'static str, error: std::io::Error },
    /// A command failed; `stderr` says why (e.g. no permission inside a container).
    Command { command: String, stderr: String },
    /// Every subnet 10.77.1-250.0/24 is taken by live labs or the host.
    NoFreeSubnet,
    /// The lock file could not be opened or locked.
    Lock(std::io::Error),
    /// More members than a /24 holds.
    TooManyMembers(usize),
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::NotRoot => write!(f, "network namespaces need root"),
            LabError::ToolMissing { tool, error } => write!(f, "`{tool}` cannot run: {error}"),
            LabError::Command { command, stderr } => write!(f, "`{command}` failed: {}", stderr.trim()),
            LabError::NoFreeSubnet => write!(f, "no free lab subnet in 10.77.{SUBNETS:?}.0/24"),
            LabError::Lock(error) => write!(f, "cannot lock {LOCK_FILE}: {error}"),
            LabError::TooManyMembers(n) => write!(f, "{n} members do not fit a lab (at most {MEMBERS_MAX})"),
        }
    }
}

impl std::error::Error for LabError {}

/// Which paths are cut. The rules are a pure function of this state ([`ruleset`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Faults {
    /// Members cut from everything (other members and the root namespace), both directions.
    pub isolated: BTreeSet<usize>,
    /// `(from, to)`: frames from member `from` to member `to` are dropped.
    pub blocked: BTreeSet<(usize, usize)>,
    /// Percent of every other frame through the bridge (between members, and between a member and the
    /// root namespace) dropped at random: a lossy network, which TCP retransmits through.
    pub loss_percent: u8,
    /// The loss applies between members only: clients in the root namespace keep a clean path.
    pub loss_between_members_only: bool,
}

/// A set of network namespaces joined by a bridge; everything is removed on drop.
pub struct Lab {
    subnet: u8,
    tag: String,
    members: usize,
    faults: Mutex<Faults>,
}

impl Lab {
    /// Builds a lab of `members` namespaces. Leftovers of killed earlier runs are removed first.
    pub fn new(members: usize) -> Result<Lab, LabError> {
        if members > MEMBERS_MAX {
            return Err(LabError::TooManyMembers(members));
        }
        preflight()?;
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let tag = format!("fk-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let subnet = {
            let _lock = lock()?;
            sweep_leftovers();
            claim_subnet(&tag)?
        };
        // From here on, Drop removes whatever was made if a later step fails.
        let lab = Lab { subnet, tag, members, faults: Mutex::new(Faults::default()) };
        for i in 0..members {
            lab.add_member(i)?;
        }
        lab.apply(&Faults::default())?;
        Ok(lab)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members
    }

    pub fn is_empty(&self) -> bool {
        self.members == 0
    }

    /// Member i's address (on its namespace's `eth0`).
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        assert!(i < self.members, "lab has {} members, no member {i}", self.members);
        Ipv4Addr::new(10, 77, self.subnet, i as u8 + 1)
    }

    /// The root namespace's address on the lab's bridge.
    pub fn gateway_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, 254)
    }

    /// Member i's namespace name.
    pub fn namespace(&self, i: usize) -> String {
        assert!(i < self.members, "lab has {} members, no member {i}", self.members);
        format!("{}-{i}", self.tag)
    }

    /// A command that runs `program` inside member i's namespace (`ip netns exec` execs it, so the
    /// child's pid is the program's own and signals reach it directly).
    pub fn command(&self, i: usize, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec"]).arg(self.namespace(i)).arg(program);
        command
    }

    /// Cuts all of member i's traffic, both directions, with the other members and the root namespace.
    pub fn isolate(&self, i: usize) {
        self.change(|f| {
            f.isolated.insert(self.check(i));
        });
    }

    /// Undoes [`Lab::isolate`] (pairwise cuts stay).
    pub fn rejoin(&self, i: usize) {
        self.change(|f| {
            f.isolated.remove(&self.check(i));
        });
    }

    /// Cuts the path between members i and j, both directions.
    pub fn cut(&self, i: usize, j: usize) {
        self.change(|f| {
            f.blocked.insert((self.check(i), self.check(j)));
            f.blocked.insert((j, i));
        });
    }

    /// Drops frames from `from` to `to` only; `to` can still send to `from` (a TCP connection between
    /// them still fails, as its handshake needs both directions).
    pub fn cut_one_way(&self, from: usize, to: usize) {
        self.change(|f| {
            f.blocked.insert((self.check(from), self.check(to)));
        });
    }

    /// Heals the path between i and j in both directions (also a one-way cut).
    pub fn heal(&self, i: usize, j: usize) {
        self.change(|f| {
            f.blocked.remove(&(self.check(i), self.check(j)));
            f.blocked.remove(&(j, i));
        });
    }

    /// Heals everything: no isolation, no cuts.
    /// Drops `percent` of every frame through the bridge at random (0: none).
    pub fn set_loss(&self, percent: u8) {
        self.change(|f| (f.loss_percent, f.loss_between_members_only) = (percent, false));
    }

    /// Drops `percent` of the frames between members only (0: none): the ensemble's own links are
    /// lossy, the clients' are not.
    pub fn set_loss_between_members(&self, percent: u8) {
        self.change(|f| (f.loss_percent, f.loss_between_members_only) = (percent, true));
    }

    pub fn heal_all(&self) {
        self.change(|f| *f = Faults::default());
    }

    /// The current fault state.
    pub fn faults(&self) -> Faults {
        self.faults.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// True if a TCP connection from inside member `from`'s namespace to `to` is established within
    /// `timeout` (bash's /dev/tcp under coreutils' `timeout`: no helper binary needed in the namespace).
    pub fn can_connect(&self, from: usize, to: SocketAddr, timeout: Duration) -> bool {
        self.bash_tcp(from, to, "exec 3<>\"$TO\"", "", timeout).is_some()
    }

    /// From inside member `from`'s namespace: connects to `to`, sends `request`, and returns everything
    /// read until the peer closes; `None` if that does not happen within `timeout`.
    pub fn exchange(&self, from: usize, to: SocketAddr, request: &str, timeout: Duration) -> Option<String> {
        self.bash_tcp(from, to, "exec 3<>\"$TO\" && printf '%s' \"$1\" >&3 && cat <&3", request, timeout)
    }

    fn bash_tcp(&self, from: usize, to: SocketAddr, script: &str, argument: &str, timeout: Duration) -> Option<String> {
        let output = self
            .command(from, "timeout")
            .arg(format!("{}", timeout.as_secs_f64()))
            .args(["bash", "-c", script, "bash", argument])
            .env("TO", format!("/dev/tcp/{}/{}", to.ip(), to.port()))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .expect("run timeout bash in the namespace");
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn check(&self, i: usize) -> usize {
        assert!(i < self.members, "lab has {} members, no member {i}", self.members);
        i
    }

    fn change(&self, edit: impl FnOnce(&mut Faults)) {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        edit(&mut faults);
        if let Err(e) = self.apply(&faults) {
            panic!("lab {}: cannot apply {faults:?}: {e}", self.tag);
        }
    }

    fn apply(&self, faults: &Faults) -> Result<(), LabError> {
        let rules = ruleset(&table_name(self.subnet), faults, |i| port_name(self.subnet, i));
        run_with_input("nft", &["-f", "-"], &rules)
    }

    fn add_member(&self, i: usize) -> Result<(), LabError> {
        let ns = self.namespace(i);
        let port = port_name(self.subnet, i);
        let address = format!("{}/24", self.ip(i));
        run("ip", &["netns", "add", &ns])?;
        run("ip", &["link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
        run("ip", &["link", "set", &port, "master", &bridge_name(self.subnet), "up"])?;
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        run("ip", &["-n", &ns, "addr", "add", &address, "dev", "eth0"])?;
        run("ip", &["-n", &ns, "link", "set", "eth0", "up"])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = run("nft", &["delete", "table", "bridge", &table_name(self.subnet)]);
        for i in 0..self.members {
            remove_namespace(&self.namespace(i));
            let _ = run("ip", &["link", "del", &port_name(self.subnet, i)]);
        }
        let _ = run("ip", &["link", "del", &bridge_name(self.subnet)]);
    }
}

/// The nftables script that replaces table `table` with rules dropping exactly the paths `faults` cuts.
/// `port(i)` names member i's bridge port. The leading `table`/`delete` pair makes the replacement one
/// atomic transaction whether or not the table exists yet.
pub fn ruleset(table: &str, faults: &Faults, port: impl Fn(usize) -> String) -> String {
    let mut forward = String::new();
    let mut input = String::new();
    let mut output = String::new();
    for &i in &faults.isolated {
        forward += &format!("    iifname \"{0}\" drop\n    oifname \"{0}\" drop\n", port(i));
        input += &format!("    iifname \"{}\" drop\n", port(i));
        output += &format!("    oifname \"{}\" drop\n", port(i));
    }
    for &(from, to) in &faults.blocked {
        forward += &format!("    iifname \"{}\" oifname \"{}\" drop\n", port(from), port(to));
    }
    if faults.loss_percent > 0 {
        let lose = format!("    numgen random mod 100 < {} drop\n", faults.loss_percent.min(100));
        forward.push_str(&lose);
        if !faults.loss_between_members_only {
            input.push_str(&lose);
            output.push_str(&lose);
        }
    }
    let chain = |name: &str, hook: &str, rules: &str| {
        format!("  chain {name} {{\n    type filter hook {hook} priority 0; policy accept;\n{rules}  }}\n")
    };
    format!(
        "table bridge {table} {{}}\ndelete table bridge {table}\ntable bridge {table} {{\n{}{}{}}}\n",
        chain("forward", "forward", &forward),
        chain("input", "input", &input),
        chain("output", "output", &output)
    )
}

fn bridge_name(subnet: u8) -> String {
    format!("fkbr{subnet}")
}

fn port_name(subnet: u8, i: usize) -> String {
    format!("fk{subnet}v{i}")
}

fn table_name(subnet: u8) -> String {
    format!("fklab{subnet}")
}

/// Fails early, with the reason a test prints, where labs cannot work.
fn preflight() -> Result<(), LabError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    if uid != Some("0") {
        return Err(LabError::NotRoot);
    }
    for (tool, flag) in [("ip", "-V"), ("nft", "--version")] {
        let output = Command::new(tool).arg(flag).output();
        match output {
            Ok(o) if o.status.success() => {}
            Ok(o) => return Err(LabError::ToolMissing { tool, error: std::io::Error::other(format!("{}", o.status)) }),
            Err(error) => return Err(LabError::ToolMissing { tool, error }),
        }
    }
    Ok(())
}

fn lock() -> Result<std::fs::File, LabError> {
    let path = std::env::temp_dir().join(LOCK_FILE);
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path);
    let file = file.map_err(LabError::Lock)?;
    file.lock().map_err(LabError::Lock)?;
    Ok(file)
}

/// Takes the lowest subnet number that no bridge of ours holds and no host address or route uses, by
/// creating its bridge (the caller holds the lock, so nobody races for it).
fn claim_subnet(tag: &str) -> Result<u8, LabError> {
    let host = format!("{}\n{}", capture("ip", &["-4", "-o", "addr"])?, capture("ip", &["-4", "route"])?);
    let taken =
        |k: u8| Path::new("/sys/class/net").join(bridge_name(k)).exists() || host.contains(&format!("10.77.{k}."));
    let subnet = SUBNETS.into_iter().find(|&k| !taken(k)).ok_or(LabError::NoFreeSubnet)?;
    let bridge = bridge_name(subnet);
    // forward_delay 0: ports forward at once instead of listening/learning for 15 s first.
    run("ip", &["link", "add", &bridge, "type", "bridge", "forward_delay", "0"])?;
    let address = format!("10.77.{subnet}.254/24");
    let setup = [
        vec!["link", "set", &bridge, "alias", tag],
        vec!["addr", "add", &address, "dev", &bridge],
        vec!["link", "set", &bridge, "up"],
    ];
    for args in setup {
        if let Err(e) = run("ip", &args) {
            let _ = run("ip", &["link", "del", &bridge]);
            return Err(e);
        }
    }
    Ok(subnet)
}

/// The pid in a lab tag `fk-<pid>-<counter>` (namespace names carry `-<member>` after it).
fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix("fk-")?.split('-').next()?.parse().ok()
}

fn is_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes labs whose owning process is gone (a test run killed before its Drop ran): their processes,
/// namespaces, ports, bridges and rule tables. Live labs of other test processes are left alone.
fn sweep_leftovers() {
    let namespaces = capture("ip", &["netns", "list"]).unwrap_or_default();
    for name in namespaces.lines().filter_map(|l| l.split_whitespace().next()) {
        if owner_pid(name).is_some_and(|pid| !is_alive(pid)) {
            remove_namespace(name);
        }
    }
    let links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    for link in &links {
        let Some(subnet) = link.strip_prefix("fkbr").and_then(|k| k.parse::<u8>().ok()) else { continue };
        let alias = std::fs::read_to_string(format!("/sys/class/net/{link}/ifalias")).unwrap_or_default();
        if owner_pid(alias.trim()).is_some_and(is_alive) {
            continue;
        }
        let prefix = format!("fk{subnet}v");
        for port in links.iter().filter(|l| l.strip_prefix(&prefix).is_some_and(|i| i.parse::<usize>().is_ok())) {
            let _ = run("ip", &["link", "del", port]);
        }
        let _ = run("nft", &["delete", "table", "bridge", &table_name(subnet)]);
        let _ = run("ip", &["link", "del", link]);
    }
}

/// Kills what still runs in a namespace (a namespace lives on while a process is in it, and keeps its
/// veth), then deletes it.
fn remove_namespace(name: &str) {
    for pid in capture("ip", &["netns", "pids", name]).unwrap_or_default().split_whitespace() {
        let _ = Command::new("kill").args(["-CONT", pid]).stderr(Stdio::null()).status();
        let _ = Command::new("kill").args(["-KILL", pid]).stderr(Stdio::null()).status();
    }
    let _ = run("ip", &["netns", "delete", name]);
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ")
}

fn capture(program: &str, args: &[&str]) -> Result<String, LabError> {
    let output = Command::new(program).args(args).stdin(Stdio::null()).output();
    let output =
        output.map_err(|e| LabError::Command { command: command_line(program, args), stderr: e.to_string() })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        return Err(LabError::Command { command: command_line(program, args), stderr });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn run(program: &str, args: &[&str]) -> Result<(), LabError> {
    capture(program, args).map(drop)
}

fn run_with_input(program: &str, args: &[&str], input: &str) -> Result<(), LabError> {
    let failed = |stderr: String| LabError::Command { command: command_line(program, args), stderr };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    child.stdin.take().expect("piped stdin").write_all(input.as_bytes()).map_err(|e| failed(e.to_string()))?;
    let output = child.wait_with_output().map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(format!("{}\n{input}", String::from_utf8_lossy(&output.stderr))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(i: usize) -> String {
        format!("p{i}")
    }

    fn rules_of(script: &str, chain: &str) -> Vec<String> {
        let body = script.split(&format!("chain {chain} {{")).nth(1).expect("chain").split('}').next().unwrap();
        body.lines().map(str::trim).filter(|l| l.ends_with("drop")).map(str::to_owned).collect()
    }

    #[test]
    fn rules_follow_the_fault_state() {
        type Case = (&'static [usize], &'static [(usize, usize)], &'static [&'static str], &'static [&'static str]);
        // (isolated, blocked) -> (forward rules, input rules); output mirrors input with oifname.
        let cases: &[Case] = &[
            (&[], &[], &[], &[]),
            (&[1], &[], &["iifname \"p1\" drop", "oifname \"p1\" drop"], &["iifname \"p1\" drop"]),
            (&[], &[(0, 2)], &["iifname \"p0\" oifname \"p2\" drop"], &[]),
            (
                &[2],
                &[(0, 1), (1, 0)],
                &[
                    "iifname \"p2\" drop",
                    "oifname \"p2\" drop",
                    "iifname \"p0\" oifname \"p1\" drop",
                    "iifname \"p1\" oifname \"p0\" drop",
                ],
                &["iifname \"p2\" drop"],
            ),
        ];
        for (isolated, blocked, forward, input) in cases {
            let faults = Faults {
                isolated: isolated.iter().copied().collect(),
                blocked: blocked.iter().copied().collect(),
                loss_percent: 0,
                loss_between_members_only: false,
            };
            let script = ruleset("t", &faults, port);
            assert!(script.starts_with("table bridge t {}\ndelete table bridge t\n"), "{script}");
            assert_eq!(rules_of(&script, "forward"), *forward, "{faults:?}");
            assert_eq!(rules_of(&script, "input"), *input, "{faults:?}");
            let output: Vec<String> = input.iter().map(|r| r.replace("iifname", "oifname")).collect();
            assert_eq!(rules_of(&script, "output"), output, "{faults:?}");
        }
        let lossy = Faults { loss_percent: 10, ..Faults::default() };
        let script = ruleset("t", &lossy, port);
        for chain in ["forward", "input", "output"] {
            assert_eq!(rules_of(&script, chain), ["numgen random mod 100 < 10 drop"], "{script}");
        }
        let between_members = Faults { loss_between_members_only: true, ..lossy };
        let script = ruleset("t", &between_members, port);
        assert_eq!(rules_of(&script, "forward"), ["numgen random mod 100 < 10 drop"], "{script}");
        assert!(rules_of(&script, "input").is_empty() && rules_of(&script, "output").is_empty(), "{script}");
    }

    #[test]
    fn owners_are_read_from_names_and_aliases() {
        let cases = [
            ("fk-123-0", Some(123)),
            ("fk-123-4-2", Some(123)),
            ("fk-x-1", None),
            ("fkbr3", None),
            ("other", None),
            ("", None),
        ];
        for (name, pid) in cases {
            assert_eq!(owner_pid(name), pid, "{name}");
        }
    }
}
