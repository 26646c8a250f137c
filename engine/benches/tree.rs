//! DataTree operations on a tree of 100k nodes: the applier's writes, the shards' reads, and loading
//! the tree from a snapshot (recovery). `cargo bench -p fk-engine --bench tree`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fk_engine::snap::{Compression, TreeAccess, load_snapshot, write_snapshot};
use fk_engine::tree::DataTree;
use fk_net::client::{Acl, perms};

const NODES: usize = 100_000;

/// `NODES` nodes with 32-byte values under `parents` parents.
fn populated_under(parents: usize) -> DataTree {
    let mut tree = DataTree::new(fk_engine::tree::TreeOptions::fixed_seed(false));
    let acl = [Acl::new(perms::ALL, "world", "anyone")];
    for d in 0..parents {
        tree.create_node(&format!("/d{d}"), None, &acl, 0, -1, 1, 0).unwrap();
        for n in 0..NODES / parents {
            tree.create_node(&format!("/d{d}/n{n:06}"), Some(&[5; 32]), &acl, 0, -1, 2, 0).unwrap();
        }
    }
    tree
}

fn populated() -> DataTree {
    populated_under(100)
}

struct Locked(std::sync::Mutex<DataTree>);

impl TreeAccess for Locked {
    fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
        f(&self.0.lock().unwrap())
    }
}

fn snapshot_load(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("snapshot_load_100k");
    group.sample_size(10).throughput(Throughput::Elements(NODES as u64));
    for (name, parents) in [("100 parents", 100), ("one parent", 1)] {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).unwrap();
        let tree = Locked(std::sync::Mutex::new(populated_under(parents)));
        let stats = write_snapshot(&tree, &sub, false, Compression::None).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| load_snapshot(&stats.path, 2, fk_engine::tree::TreeOptions::fixed_seed(false)).unwrap())
        });
    }
    group.finish();
}

fn tree_ops(c: &mut Criterion) {
    let mut tree = populated();
    let acl = [Acl::new(perms::ALL, "world", "anyone")];
    let mut group = c.benchmark_group("tree_100k");
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    group.bench_function("get", |b| {
        b.iter(|| {
            i = (i + 7919) % NODES;
            let path = format!("/d{}/n{:06}", i % 100, i / 100);
            tree.get(&path).map(|n| tree.client_stat(n))
        })
    });
    let mut version = 0;
    group.bench_function("set_data 32B", |b| {
        b.iter(|| {
            i = (i + 7919) % NODES;
            version += 1;
            let path = format!("/d{}/n{:06}", i % 100, i / 100);
            tree.set_data(&path, Some(&[6; 32]), version, 3, 0).unwrap()
        })
    });
    let mut n = 0u64;
    group.bench_function("create + delete", |b| {
        b.iter(|| {
            n += 1;
            let path = format!("/d{}/x{n}", n % 100);
            tree.create_node(&path, Some(&[1; 32]), &acl, 0, -1, 4, 0).unwrap();
            tree.delete_node(&path, 5).unwrap();
        })
    });
    group.bench_function("children of a 1000-child node", |b| {
        b.iter(|| {
            let node = tree.get("/d42").unwrap();
            tree.children(node).count()
        })
    });
    group.finish();
}

criterion_group!(benches, tree_ops, snapshot_load);
criterion_main!(benches);
