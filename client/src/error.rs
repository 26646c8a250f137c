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
    /// The connection broke with this request in flight, or no server could be reached in time; the
    /// session may still be alive and the request may or may not have been applied.
    #[error("connection lost")]
    ConnectionLoss,
    /// The session expired (or was closed); the client is unusable.
    #[error("session expired")]
    SessionExpired,
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
            Error::ConnectionLoss => Some(ErrorCode::ConnectionLoss),
            Error::SessionExpired => Some(ErrorCode::SessionExpired),
            Error::InvalidPath { .. } => Some(ErrorCode::BadArguments),
            Error::Decode { .. } => Some(ErrorCode::MarshallingError),
            _ => None,
        }
    }

    pub(crate) fn from_code(code: i32, path: &str) -> Error {
        match ErrorCode::from_i32(code) {
            Some(ErrorCode::ConnectionLoss) => Error::ConnectionLoss,
            Some(ErrorCode::SessionExpired) => Error::SessionExpired,
            Some(code) => Error::Server { code, path: path.to_owned() },
            None => Error::UnknownCode { code, path: path.to_owned() },
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
