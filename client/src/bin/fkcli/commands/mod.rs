//! The commands: one table of names, usage strings and handlers (zkCli's `CommandFactory`), and what a
//! handler returns.

mod acl;
mod config;
mod extras;
mod nodes;
mod quota;
mod session;
mod watch;

use fk_client::Client;
use serde_json::Value;

use crate::error::CliError;
use crate::words::{Opt, Parsed, parse};

/// What a command printed: zkCli's stdout and stderr lines, and the `--json` form of its result.
#[derive(Debug, Default)]
pub struct Reply {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    pub json: Option<Value>,
}

impl Reply {
    pub fn out(lines: Vec<String>, json: Value) -> Reply {
        Reply { stdout: lines, stderr: Vec::new(), json: Some(json) }
    }

    pub fn empty() -> Reply {
        Reply::default()
    }
}

/// What a handler gets: the session and the parsed words.
pub struct Ctx<'a> {
    pub client: &'a Client,
    pub parsed: Parsed,
    /// The usage line, for argument errors.
    pub usage: String,
    /// `--json`: handlers that stream (watch-tail) print JSON lines themselves.
    pub json: bool,
}

impl Ctx<'_> {
    /// Argument `index` (the command word is 0) or the usage error zkCli's parse throws.
    pub fn arg(&self, index: usize) -> Result<&str, CliError> {
        self.parsed.arg(index).ok_or_else(|| CliError::usage(self.usage.clone()))
    }

    /// An integer option (`-v version`, `-b batch`), with zkCli's message when it is not one.
    pub fn int_option<T: std::str::FromStr>(&self, name: &str, default: T, what: &str) -> Result<T, CliError> {
        match self.parsed.value(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| CliError::usage(format!("-{name} argument must be {what}"))),
        }
    }
}

pub type Handler = fn(&Ctx<'_>) -> Result<Reply, CliError>;

pub struct Command {
    pub name: &'static str,
    /// The option string zkCli prints after the name.
    pub usage: &'static str,
    pub options: &'static [Opt],
    /// `None` for the shell's own commands (connect, history, …), run by the shell.
    pub handler: Option<Handler>,
}

/// Every command, sorted as zkCli's usage lists them (Java's String order: upper case first).
pub const COMMANDS: &[Command] = &[
    watch::ADD_WATCH,
    acl::ADD_AUTH,
    shell_command("close", ""),
    config::CONFIG,
    shell_command("connect", "host:port"),
    nodes::CREATE,
    nodes::DELETE,
    nodes::DELETE_ALL,
    quota::DEL_QUOTA,
    nodes::GET,
    acl::GET_ACL,
    session::GET_ALL_CHILDREN_NUMBER,
    session::GET_EPHEMERALS,
    shell_command("history", ""),
    quota::LIST_QUOTA,
    nodes::LS,
    shell_command("printwatches", "on|off"),
    shell_command("quit", ""),
    config::RECONFIG,
    shell_command("redo", "cmdno"),
    watch::REMOVE_WATCHES,
    nodes::SET,
    acl::SET_ACL,
    quota::SET_QUOTA,
    nodes::STAT,
    session::SYNC,
    extras::TREE,
    session::VERSION,
    watch::WATCH_TAIL,
    session::WHO_AM_I,
];

const fn shell_command(name: &'static str, usage: &'static str) -> Command {
    Command { name, usage, options: &[], handler: None }
}

pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// `ZooKeeperMain.usage()`: printed on stderr for an unknown command.
pub fn usage_lines() -> Vec<String> {
    let mut lines = vec!["ZooKeeper -server host:port -client-configuration properties-file cmd args".to_owned()];
    lines.extend(COMMANDS.iter().map(|c| format!("\t{} {}", c.name, c.usage)));
    lines
}

/// Parses `words` for `command` and runs its handler.
pub fn run(
    command: &Command,
    handler: Handler,
    client: &Client,
    words: &[String],
    json: bool,
) -> Result<Reply, CliError> {
    let parsed = parse(words, command.options)?;
    let usage = format!("{} {}", command.name, command.usage);
    handler(&Ctx { client, parsed, usage, json })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_like_zkcli_usage() {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(
            usage_lines()[1],
            "\taddWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE"
        );
    }
}
