//! The client protocol: opcodes, result codes, records, requests and replies.

pub mod error;
pub mod opcode;
pub mod records;
pub mod request;
pub mod response;
pub mod watch;

pub use error::ErrorCode;
pub use opcode::OpCode;
pub use records::*;
pub use request::{ReadOp, Request, RequestError, WriteOp};
pub use response::{MultiResult, Response};

/// Reserved xids (reference §4).
pub mod xid {
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// The protocol version in ConnectRequest/Response; always 0.
pub const PROTOCOL_VERSION: i32 = 0;

/// The 16-byte session password length.
pub const PASSWORD_LEN: usize = 16;
