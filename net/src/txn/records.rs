//! Txn header and body records (reference/on-disk.md §2–3): the same bytes in a `log.<zxid>` file and in
//! a quorum PROPOSAL.

use crate::client::Acl;
use crate::jute_record;

jute_record! {
    /// 32 bytes in front of every txn.
    pub struct TxnHeader {
        /// The session that issued the request (for createSession: the new session).
        pub client_id: i64,
        /// The client's xid (0 for server-generated txns such as expiry).
        pub cxid: i32,
        pub zxid: i64,
        /// Leader wall-clock ms when the txn was prepared; becomes ctime/mtime.
        pub time: i64,
        /// The OpCode, or -1 for an error txn.
        pub txn_type: i32,
    }
}

jute_record! {
    /// create and create2. `parent_cversion` is the parent's cversion after this create.
    pub struct CreateTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub ephemeral: bool,
        pub parent_cversion: i32,
    }
}

jute_record! {
    pub struct CreateContainerTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub parent_cversion: i32,
    }
}

jute_record! {
    pub struct CreateTtlTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub parent_cversion: i32,
        pub ttl: i64,
    }
}

jute_record! {
    /// delete and deleteContainer.
    pub struct DeleteTxn {
        pub path: String,
    }
}

jute_record! {
    /// setData (version = the new version) and reconfig (path /zookeeper/config, version -1).
    pub struct SetDataTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub version: i32,
    }
}

jute_record! {
    /// version = the new aversion.
    pub struct SetAclTxn {
        pub path: String,
        pub acl: Vec<Acl>,
        pub version: i32,
    }
}

jute_record! {
    /// Only inside multi; version = the node's version + 1 (what ZooKeeper logs).
    pub struct CheckVersionTxn {
        pub path: String,
        pub version: i32,
    }
}

jute_record! {
    pub struct CreateSessionTxn {
        pub timeout_ms: i32,
    }
}

jute_record! {
    pub struct ErrorTxn {
        pub err: i32,
    }
}

jute_record! {
    /// One sub-txn of a multi: its type and its serialized body (no header).
    pub struct MultiTxnEntry {
        pub txn_type: i32,
        pub data: Option<Vec<u8>>,
    }
}

jute_record! {
    /// Appended after a txn body (3.6+): the whole-tree digest after this txn.
    pub struct TxnDigest {
        pub version: i32,
        pub tree_digest: i64,
    }
}
