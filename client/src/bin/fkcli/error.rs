//! The shell's errors: a message printed on stderr and the exit status zkCli gives it.

use fk_client::{Error, ErrorCode};

/// zkCli's `CliException`: exit status 1 unless said otherwise (127 for an unknown command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub message: String,
    pub exit_code: i32,
    /// ZooKeeper's result code when the server (or the connection) caused the error; `--json` shows it.
    pub code: Option<ErrorCode>,
}

/// `ExitCode.EXECUTION_FINISHED` and `CliException`'s default status.
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
/// `CommandNotFoundException`.
pub const EXIT_NOT_FOUND: i32 = 127;

impl CliError {
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError { message: message.into(), exit_code: EXIT_ERROR, code: None }
    }

    pub fn not_found(command: &str) -> CliError {
        let message = format!("Command not found: Command not found {command}");
        CliError { message, exit_code: EXIT_NOT_FOUND, code: None }
    }
}

impl CliError {
    /// The `--json` form, printed on stderr: the message, the result code's name and the exit status.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.message,
            "code": self.code.map(ErrorCode::name),
            "exitCode": self.exit_code,
        })
    }
}

/// zkCli's `CliWrapperException` wording for the codes it names, `KeeperException.getMessage()`
/// otherwise; a path refused client-side prints only the reason (`MalformedPathException`).
impl From<Error> for CliError {
    fn from(error: Error) -> CliError {
        let message = match &error {
            Error::Server { code, path } => server_message(*code, path),
            Error::InvalidPath { reason, .. } => reason.clone(),
            Error::ConnectionLoss { path } => keeper_message(ErrorCode::ConnectionLoss, path),
            Error::SessionExpired { path } => keeper_message(ErrorCode::SessionExpired, path),
            other => other.to_string(),
        };
        CliError { code: error.code(), ..CliError::usage(message) }
    }
}

fn server_message(code: ErrorCode, path: &str) -> String {
    let named = match code {
        ErrorCode::NoNode => "Node does not exist: ",
        ErrorCode::NoChildrenForEphemerals => "Ephemerals cannot have children: ",
        ErrorCode::NodeExists => "Node already exists: ",
        ErrorCode::NotEmpty => "Node not empty: ",
        ErrorCode::NotReadOnly => "Not a read-only call: ",
        ErrorCode::InvalidAcl => "Acl is not valid : ",
        ErrorCode::NoAuth => "Insufficient permission : ",
        ErrorCode::BadArguments => "Arguments are not valid : ",
        ErrorCode::BadVersion => "version No is not valid : ",
        ErrorCode::QuotaExceeded => "Quota has exceeded : ",
        ErrorCode::ReconfigInProgress => {
            return "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)".into();
        }
        ErrorCode::NewConfigNoQuorum => {
            return "No quorum of new config is connected and up-to-date with the leader of last commmitted \
                    config - try invoking reconfiguration after new servers are connected and synced"
                .into();
        }
        _ => return keeper_message(code, path),
    };
    format!("{named}{path}")
}

/// `KeeperException.getMessage()`: "KeeperErrorCode = <text>[ for <path>]".
pub fn keeper_message(code: ErrorCode, path: &str) -> String {
    let text = match code {
        ErrorCode::Ok => "ok",
        ErrorCode::NotEmpty => "Directory not empty",
        ErrorCode::SessionExpired => "Session expired",
        ErrorCode::InvalidCallback => "Invalid callback",
        ErrorCode::SessionMoved => "Session moved",
        ErrorCode::NotReadOnly => "Not a read-only call",
        ErrorCode::EphemeralOnLocalSession => "Ephemeral node on local session",
        ErrorCode::NoWatcher => "No such watcher",
        ErrorCode::ReconfigDisabled => "Reconfig is disabled",
        ErrorCode::SessionClosedRequireSaslAuth => "Session closed because client failed to authenticate",
        ErrorCode::QuotaExceeded => "Quota has exceeded",
        ErrorCode::Throttled => "Op throttled due to high load",
        other => other.name(),
    };
    if path.is_empty() { format!("KeeperErrorCode = {text}") } else { format!("KeeperErrorCode = {text} for {path}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_zkcli() {
        let server = |code, path: &str| CliError::from(Error::Server { code, path: path.into() }).message;
        let cases = [
            (server(ErrorCode::NoNode, "/x"), "Node does not exist: /x"),
            (server(ErrorCode::NodeExists, "/a"), "Node already exists: /a"),
            (server(ErrorCode::BadVersion, "/a"), "version No is not valid : /a"),
            (server(ErrorCode::NoWatcher, "/a"), "KeeperErrorCode = No such watcher for /a"),
            (server(ErrorCode::ReconfigDisabled, ""), "KeeperErrorCode = Reconfig is disabled"),
            (server(ErrorCode::NotEmpty, "/a"), "Node not empty: /a"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        assert_eq!(CliError::not_found("bogus").exit_code, EXIT_NOT_FOUND);
    }
}
