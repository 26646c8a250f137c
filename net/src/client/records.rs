//! The client protocol's jute records (reference/client-wire.md §3, §6), field order = wire order.

use crate::jute::{DecodeResult, Jute, JuteReader, JuteWriter};
use crate::jute_record;

jute_record! {
    /// An identity: `scheme:id`, e.g. `world:anyone`, `digest:alice:<base64 sha1>`, `ip:10.0.0.0/8`.
    pub struct Id {
        pub scheme: String,
        pub id: String,
    }
}

jute_record! {
    /// One ACL entry: permission bits for an identity.
    pub struct Acl {
        pub perms: i32,
        pub id: Id,
    }
}

impl Id {
    pub fn new(scheme: &str, id: &str) -> Self {
        Id { scheme: scheme.to_owned(), id: id.to_owned() }
    }
}

impl Acl {
    pub fn new(perms: i32, scheme: &str, id: &str) -> Self {
        Acl { perms, id: Id::new(scheme, id) }
    }
}

/// Permission bits (`ZooDefs.Perms`).
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

jute_record! {
    /// The full `Stat` sent to clients (68 bytes).
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }
}

jute_record! {
    /// `StatPersisted`: the part of a Stat kept on disk (snapshots); no dataLength/numChildren.
    pub struct StatPersisted {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub pzxid: i64,
    }
}

jute_record! {
    pub struct RequestHeader {
        pub xid: i32,
        pub op: i32,
    }
}

jute_record! {
    pub struct ReplyHeader {
        pub xid: i32,
        pub zxid: i64,
        pub err: i32,
    }
}

jute_record! {
    /// create, create2 and createContainer share this request.
    pub struct CreateRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub flags: i32,
    }
}

jute_record! {
    pub struct CreateTtlRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub flags: i32,
        pub ttl: i64,
    }
}

jute_record! {
    pub struct CreateResponse {
        pub path: String,
    }
}

jute_record! {
    pub struct Create2Response {
        pub path: String,
        pub stat: Stat,
    }
}

jute_record! {
    pub struct DeleteRequest {
        pub path: String,
        pub version: i32,
    }
}

jute_record! {
    /// exists, getData, getChildren and getChildren2 all send a path and a watch flag.
    pub struct PathWatchRequest {
        pub path: String,
        pub watch: bool,
    }
}

jute_record! {
    /// getACL, sync, getEphemerals and getAllChildrenNumber send just a path.
    pub struct PathRequest {
        pub path: String,
    }
}

jute_record! {
    pub struct GetDataResponse {
        pub data: Option<Vec<u8>>,
        pub stat: Stat,
    }
}

jute_record! {
    pub struct SetDataRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub version: i32,
    }
}

jute_record! {
    pub struct GetAclResponse {
        pub acl: Vec<Acl>,
        pub stat: Stat,
    }
}

jute_record! {
    pub struct SetAclRequest {
        pub path: String,
        pub acl: Vec<Acl>,
        pub version: i32,
    }
}

jute_record! {
    pub struct GetChildrenResponse {
        pub children: Vec<String>,
    }
}

jute_record! {
    pub struct GetChildren2Response {
        pub children: Vec<String>,
        pub stat: Stat,
    }
}

jute_record! {
    pub struct CheckVersionRequest {
        pub path: String,
        pub version: i32,
    }
}

jute_record! {
    pub struct ReconfigRequest {
        pub joining_servers: String,
        pub leaving_servers: String,
        pub new_members: String,
        pub cur_config_id: i64,
    }
}

jute_record! {
    /// checkWatches and removeWatches: a path and a `WatcherType`.
    pub struct WatchTypeRequest {
        pub path: String,
        pub watcher_type: i32,
    }
}

jute_record! {
    pub struct AddWatchRequest {
        pub path: String,
        pub mode: i32,
    }
}

jute_record! {
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}

jute_record! {
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}

jute_record! {
    pub struct AuthPacket {
        pub auth_type: i32,
        pub scheme: String,
        pub auth: Option<Vec<u8>>,
    }
}

jute_record! {
    pub struct GetEphemeralsResponse {
        pub ephemerals: Vec<String>,
    }
}

jute_record! {
    pub struct GetAllChildrenNumberResponse {
        pub total_number: i32,
    }
}

jute_record! {
    pub struct ClientInfo {
        pub auth_scheme: String,
        pub user: String,
    }
}

jute_record! {
    pub struct WhoAmIResponse {
        pub client_info: Vec<ClientInfo>,
    }
}

jute_record! {
    pub struct ErrorResponse {
        pub err: i32,
    }
}

jute_record! {
    /// A watch notification's body (reply xid -1).
    pub struct WatcherEvent {
        pub event_type: i32,
        pub state: i32,
        pub path: String,
    }
}

jute_record! {
    pub struct SaslRequest {
        pub token: Option<Vec<u8>>,
    }
}

/// The first frame of a session. `readOnly` is a separate trailing byte that old clients omit; the
/// server remembers whether it was present and answers in kind (reference §3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// `None` when the client sent no readOnly byte.
    pub read_only: Option<bool>,
}

impl Jute for ConnectRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i32(self.protocol_version);
        out.put_i64(self.last_zxid_seen);
        out.put_i32(self.timeout_ms);
        out.put_i64(self.session_id);
        out.put_buffer(Some(&self.passwd));
        if let Some(read_only) = self.read_only {
            out.put_bool(read_only);
        }
    }

    fn decode(r: &mut JuteReader<'_>) -> DecodeResult<Self> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            timeout_ms: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?.unwrap_or_default().to_vec(),
            read_only: if r.is_empty() { None } else { Some(r.read_bool()?) },
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    /// Omitted when the client's request had no readOnly byte.
    pub read_only: Option<bool>,
}

impl Jute for ConnectResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i32(self.protocol_version);
        out.put_i32(self.timeout_ms);
        out.put_i64(self.session_id);
        out.put_buffer(Some(&self.passwd));
        if let Some(read_only) = self.read_only {
            out.put_bool(read_only);
        }
    }

    fn decode(r: &mut JuteReader<'_>) -> DecodeResult<Self> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            timeout_ms: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?.unwrap_or_default().to_vec(),
            read_only: if r.is_empty() { None } else { Some(r.read_bool()?) },
        })
    }
}

impl Stat {
    pub fn from_persisted(p: &StatPersisted, data_length: i32, num_children: i32) -> Stat {
        Stat {
            czxid: p.czxid,
            mzxid: p.mzxid,
            ctime: p.ctime,
            mtime: p.mtime,
            version: p.version,
            cversion: p.cversion,
            aversion: p.aversion,
            ephemeral_owner: p.ephemeral_owner,
            data_length,
            num_children,
            pzxid: p.pzxid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_68_bytes() {
        assert_eq!(Stat::default().to_bytes().len(), 68);
        assert_eq!(StatPersisted::default().to_bytes().len(), 60);
    }

    #[test]
    fn connect_request_with_and_without_read_only() {
        let with =
            ConnectRequest { timeout_ms: 30000, passwd: vec![0; 16], read_only: Some(false), ..Default::default() };
        let bytes = with.to_bytes();
        assert_eq!(bytes.len(), 45);
        assert_eq!(ConnectRequest::decode_exact(&bytes).unwrap(), with);
        let without = ConnectRequest { read_only: None, ..with };
        let bytes = without.to_bytes();
        assert_eq!(bytes.len(), 44);
        assert_eq!(ConnectRequest::decode_exact(&bytes).unwrap(), without);
    }
}
