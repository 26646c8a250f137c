//! Log append throughput: one write + fdatasync per batch, for batch sizes 1..1024 and 100 B / 1 KiB
//! txns, on the device the server would pick here (io_uring, else pwrite). Run with
//! `cargo bench -p fk-engine --bench log_append`; the data dir is a temp dir on the target's disk
//! (set TMPDIR to measure another one).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fk_engine::log::{LogWriter, best_available};
use fk_net::client::OpCode;
use fk_net::txn::{SetDataTxn, Txn, TxnBody, TxnHeader};

fn txn(zxid: i64, size: usize) -> Txn {
    let body = TxnBody::SetData(SetDataTxn { path: "/bench/node".into(), data: Some(vec![7; size]), version: 1 });
    let header = TxnHeader { client_id: 1, cxid: 1, zxid, time: 0, txn_type: OpCode::SetData.as_i32() };
    Txn { header, body, digest: None }
}

fn log_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_append_fdatasync");
    group.sample_size(10).measurement_time(std::time::Duration::from_secs(3));
    for size in [100, 1024] {
        for batch in [1usize, 8, 64, 256, 1024] {
            let dir = tempfile::tempdir().unwrap();
            let (device, _) = best_available();
            let mut writer = LogWriter::new(dir.path(), device, 64 << 20, true, 0);
            let mut zxid = 0;
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(BenchmarkId::new(format!("{size}B"), batch), &batch, |b, &batch| {
                b.iter_batched(
                    || {
                        (0..batch)
                            .map(|_| {
                                zxid += 1;
                                txn(zxid, size)
                            })
                            .collect::<Vec<_>>()
                    },
                    |txns| writer.append(&txns).unwrap(),
                    criterion::BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, log_append);
criterion_main!(benches);
