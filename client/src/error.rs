//! The client's errors: ZooKeeper's result codes and the client-side failures around them.

use fk_net::client::ErrorCode;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The server answered with a non-zero result code (`KeeperException`); `path` is the client path
    /// the request named, as Java's exception carries it.
    #[error("{code} for {path}")]
    Server { code: ErrorCode, path: String },
    /// The server answered a code this client does not know.
    #[error("unknown result code {code} for {path}")]
    UnknownCode { code: i32, path: String },
    /// The connection broke with this request in flight, or no server answered the connection attempt
    /// the request waited for; the session may still be alive and the request may or may not have been
    /// applied. `path` is the request's (empty until the request is known).
    #[error("connection lost for {path:?}")]
    ConnectionLoss { path: String },
    /// The session expired; the client is unusable.
    #[error("session expired for {path:?}")]
    SessionExpired { path: String },
    /// The client was closed by its owner.
    #[error("client closed")]
    Closed,
    #[error("invalid connect string {text:?}: {why}")]
    InvalidConnectString { text: String, why: String },
    /// A path refused before sending, with ZooKeeper's reason text (`PathUtils.validatePath`).
    #[error("Path {path} is invalid: {reason}")]
    InvalidPath { path: String, reason: String },
    /// A reply whose body did not decode: a protocol bug on one side.
    #[error("undecodable {op} reply: {source}")]
    Decode { op: &'static str, source: fk_net::jute::DecodeError },
}

impl Error {
    /// ZooKeeper's result code for this error, as Java's `KeeperException.code()`.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => Some(*code),
            Error::ConnectionLoss { .. } => Some(ErrorCode::ConnectionLoss),
            Error::SessionExpired { .. } => Some(ErrorCode::SessionExpired),
            Error::InvalidPath { .. } => Some(ErrorCode::BadArguments),
            Error::Decode { .. } => Some(ErrorCode::MarshallingError),
            _ => None,
        }
    }

    pub(crate) fn from_code(code: i32, path: &str) -> Error {
        match ErrorCode::from_i32(code) {
            Some(ErrorCode::ConnectionLoss) => Error::ConnectionLoss { path: path.to_owned() },
            Some(ErrorCode::SessionExpired) => Error::SessionExpired { path: path.to_owned() },
            Some(code) => Error::Server { code, path: path.to_owned() },
            None => Error::UnknownCode { code, path: path.to_owned() },
        }
    }
}

impl Error {
    pub(crate) fn connection_loss() -> Error {
        Error::ConnectionLoss { path: String::new() }
    }

    pub(crate) fn auth_failed() -> Error {
        Error::Server { code: ErrorCode::AuthFailed, path: String::new() }
    }

    pub(crate) fn session_expired() -> Error {
        Error::SessionExpired { path: String::new() }
    }

    /// Names the request's path in a connection-level error raised before the path was known.
    pub(crate) fn at(self, request_path: &str) -> Error {
        match self {
            Error::ConnectionLoss { path } if path.is_empty() => Error::ConnectionLoss { path: request_path.into() },
            Error::SessionExpired { path } if path.is_empty() => Error::SessionExpired { path: request_path.into() },
            other => other,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
