//! Property tests for the codecs: every record round-trips, and no byte sequence panics a decoder.

use fk_net::client::*;
use fk_net::frame::complete_frame;
use fk_net::jute::{Jute, JuteReader};
use fk_net::txn::{Txn, TxnBody};
use proptest::prelude::*;

fn path() -> impl Strategy<Value = String> + Clone {
    prop::collection::vec("[a-z0-9é☃]{1,8}", 1..4).prop_map(|parts| format!("/{}", parts.join("/")))
}

fn data() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..64))
}

fn acl() -> impl Strategy<Value = Vec<Acl>> {
    prop::collection::vec(
        (0..32i32, prop::sample::select(vec!["world", "digest", "ip"]), "[a-z:0-9./]{0,12}")
            .prop_map(|(perms, scheme, id)| Acl::new(perms, scheme, &id)),
        0..3,
    )
}

fn write_op() -> impl Strategy<Value = WriteOp> {
    prop_oneof![
        (
            path(),
            data(),
            acl(),
            0..7i32,
            prop::sample::select(vec![OpCode::Create, OpCode::Create2, OpCode::CreateContainer])
        )
            .prop_map(|(path, data, acl, flags, op)| WriteOp::Create {
                op,
                request: CreateRequest { path, data, acl, flags }
            }),
        (path(), data(), acl(), any::<i64>()).prop_map(|(path, data, acl, ttl)| WriteOp::CreateTtl(CreateTtlRequest {
            path,
            data,
            acl,
            flags: 5,
            ttl
        })),
        (path(), any::<i32>()).prop_map(|(path, version)| WriteOp::Delete(DeleteRequest { path, version })),
        (path(), data(), any::<i32>()).prop_map(|(path, data, version)| WriteOp::SetData(SetDataRequest {
            path,
            data,
            version
        })),
        (path(), any::<i32>()).prop_map(|(path, version)| WriteOp::Check(CheckVersionRequest { path, version })),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    let watch = || (path(), any::<bool>()).prop_map(|(path, watch)| PathWatchRequest { path, watch });
    prop_oneof![
        write_op().prop_map(Request::Write),
        prop::collection::vec(write_op(), 0..5).prop_map(Request::Multi),
        watch().prop_map(Request::GetData),
        watch().prop_map(Request::Exists),
        watch().prop_map(Request::GetChildren2),
        path().prop_map(|path| Request::Sync(PathRequest { path })),
        (path(), 0..2i32).prop_map(|(path, mode)| Request::AddWatch(AddWatchRequest { path, mode })),
        (any::<i64>(), prop::collection::vec(path(), 0..3), prop::collection::vec(path(), 0..3)).prop_map(
            |(relative_zxid, data_watches, persistent_watches)| Request::SetWatches(SetWatches2 {
                relative_zxid,
                data_watches,
                persistent_watches,
                ..Default::default()
            })
        ),
        Just(Request::Ping),
        Just(Request::WhoAmI),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(request in request()) {
        let mut body = Vec::new();
        request.encode_body(&mut body);
        prop_assert_eq!(Request::decode(request.op_code().as_i32(), &body).unwrap(), request);
    }

    #[test]
    fn stats_and_connect_records_round_trip(stat in any::<[i64; 6]>(), ints in any::<[i32; 5]>(), ro in any::<Option<bool>>()) {
        let stat = Stat {
            czxid: stat[0], mzxid: stat[1], ctime: stat[2], mtime: stat[3], ephemeral_owner: stat[4], pzxid: stat[5],
            version: ints[0], cversion: ints[1], aversion: ints[2], data_length: ints[3], num_children: ints[4],
        };
        prop_assert_eq!(Stat::decode_exact(&stat.to_bytes()).unwrap(), stat.clone());
        let connect = ConnectRequest { last_zxid_seen: stat.czxid, timeout_ms: ints[0], session_id: stat.mzxid, passwd: vec![7; 16], read_only: ro, protocol_version: 0 };
        prop_assert_eq!(ConnectRequest::decode_exact(&connect.to_bytes()).unwrap(), connect);
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_decoder(op in -20..120i32, bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Request::decode(op, &bytes);
        let _ = ConnectRequest::decode(&mut JuteReader::new(&bytes));
        let _ = Txn::decode(&bytes);
        let _ = TxnBody::decode(op, &mut JuteReader::new(&bytes));
        let _ = Response::decode(OpCode::from_i32(op).unwrap_or(OpCode::Multi), &bytes);
        let _ = complete_frame(&bytes, 1 << 20);
    }

    #[test]
    fn multi_bodies_with_garbage_inside_never_panic(ops in prop::collection::vec(write_op(), 0..4), cut in 0usize..512, flip in any::<u8>()) {
        let mut body = Vec::new();
        Request::Multi(ops).encode_body(&mut body);
        if !body.is_empty() {
            let at = cut % body.len();
            body[at] ^= flip;
            body.truncate(body.len() - (cut % 3));
        }
        let _ = Request::decode(OpCode::Multi.as_i32(), &body);
    }
}
