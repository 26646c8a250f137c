//! Codec throughput: decoding the requests and encoding the replies a server handles most.
//! `cargo bench -p fk-net --bench codec`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fk_net::client::*;
use fk_net::jute::Jute;
use fk_net::txn::{SetDataTxn, Txn, TxnBody, TxnHeader};

fn body(request: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    request.encode_body(&mut out);
    out
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    let get = body(&Request::GetData(PathWatchRequest { path: "/app/config/db/replica-0001".into(), watch: true }));
    group.bench_function("decode getData", |b| b.iter(|| Request::decode(OpCode::GetData.as_i32(), &get).unwrap()));
    let set = body(&Request::Write(WriteOp::SetData(SetDataRequest {
        path: "/app/config/db/replica-0001".into(),
        data: Some(vec![7; 100]),
        version: -1,
    })));
    group
        .bench_function("decode setData 100B", |b| b.iter(|| Request::decode(OpCode::SetData.as_i32(), &set).unwrap()));
    let ops: Vec<WriteOp> = (0..10)
        .map(|i| WriteOp::SetData(SetDataRequest { path: format!("/k{i}"), data: Some(vec![1; 100]), version: -1 }))
        .collect();
    let multi = body(&Request::Multi(ops));
    group.bench_function("decode multi of 10", |b| b.iter(|| Request::decode(OpCode::Multi.as_i32(), &multi).unwrap()));
    let reply = Response::GetData(GetDataResponse { data: Some(vec![9; 100]), stat: Stat::default() });
    let mut out = Vec::with_capacity(256);
    group.bench_function("encode getData reply 100B", |b| {
        b.iter(|| {
            out.clear();
            ReplyHeader { xid: 1, zxid: 2, err: 0 }.encode(&mut out);
            reply.encode(&mut out);
        })
    });
    let txn = Txn {
        header: TxnHeader { client_id: 1, cxid: 2, zxid: 3, time: 4, txn_type: OpCode::SetData.as_i32() },
        body: TxnBody::SetData(SetDataTxn { path: "/app/config".into(), data: Some(vec![3; 100]), version: 7 }),
        digest: None,
    };
    group.bench_function("encode setData txn", |b| {
        b.iter(|| {
            out.clear();
            txn.encode(&mut out);
        })
    });
    let bytes = {
        let mut v = Vec::new();
        txn.encode(&mut v);
        v
    };
    group.bench_function("decode setData txn", |b| b.iter(|| Txn::decode(&bytes).unwrap()));
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
