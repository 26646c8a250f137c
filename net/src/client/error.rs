//! `KeeperException.Code` (reference/client-wire.md §9).

use super::opcode::wire_enum;

wire_enum! {
    /// A ZooKeeper result code as sent in `ReplyHeader.err` and in multi results.
    pub enum ErrorCode {
        Ok = 0 => "OK",
        SystemError = -1 => "SystemError",
        RuntimeInconsistency = -2 => "RuntimeInconsistency",
        DataInconsistency = -3 => "DataInconsistency",
        ConnectionLoss = -4 => "ConnectionLoss",
        MarshallingError = -5 => "MarshallingError",
        Unimplemented = -6 => "Unimplemented",
        OperationTimeout = -7 => "OperationTimeout",
        BadArguments = -8 => "BadArguments",
        UnknownSession = -12 => "UnknownSession",
        NewConfigNoQuorum = -13 => "NewConfigNoQuorum",
        ReconfigInProgress = -14 => "ReconfigInProgress",
        ApiError = -100 => "APIError",
        NoNode = -101 => "NoNode",
        NoAuth = -102 => "NoAuth",
        BadVersion = -103 => "BadVersion",
        NoChildrenForEphemerals = -108 => "NoChildrenForEphemerals",
        NodeExists = -110 => "NodeExists",
        NotEmpty = -111 => "NotEmpty",
        SessionExpired = -112 => "SessionExpired",
        InvalidCallback = -113 => "InvalidCallback",
        InvalidAcl = -114 => "InvalidACL",
        AuthFailed = -115 => "AuthFailed",
        SessionMoved = -118 => "SessionMoved",
        NotReadOnly = -119 => "NotReadOnly",
        EphemeralOnLocalSession = -120 => "EphemeralOnLocalSession",
        NoWatcher = -121 => "NoWatcher",
        RequestTimeout = -122 => "RequestTimeout",
        ReconfigDisabled = -123 => "ReconfigDisabled",
        SessionClosedRequireSaslAuth = -124 => "SessionClosedRequireSaslAuth",
        QuotaExceeded = -125 => "QuotaExceeded",
        Throttled = -127 => "Throttled",
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.as_i32())
    }
}

impl std::error::Error for ErrorCode {}
