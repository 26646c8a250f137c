//! What fkbench can ask a server to do: request generators for the pipelined engine, and drivers for the
//! workloads that wait on events (watch fan-out, lock contention, connect storms).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use fk_net::client::*;
use fk_net::jute::{Jute, JuteReader};
use hdrhistogram::Histogram;

use crate::conn::{Session, create, ensure_path};
use crate::engine::{RequestGen, add_series, count_in_second};

/// Where fkbench keeps its nodes.
pub const ROOT: &str = "/fkbench";

/// A small, fast, seedable generator (xorshift64*), so that runs are reproducible from `--seed`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.below(1_000_000) as f64) < p * 1_000_000.0
    }
}

pub fn key_path(i: usize) -> String {
    format!("{ROOT}/data/k{i:08}")
}

/// Creates `paths` with `data`, pipelined in windows; existing nodes are left as they are.
pub fn bulk_create(session: &mut Session, paths: &[String], data: &[u8]) -> anyhow::Result<()> {
    for window in paths.chunks(256) {
        for path in window {
            session.send(&create(path, data, 0))?;
        }
        for _ in window {
            let reply = session.recv()?;
            let err = reply.header.err;
            if err != 0 && err != ErrorCode::NodeExists.as_i32() {
                anyhow::bail!(
                    "create failed during setup: {}",
                    ErrorCode::from_i32(err).map_or(err.to_string(), |c| c.to_string())
                );
            }
        }
    }
    Ok(())
}

/// The key space: `keys` nodes of `value_size` bytes under /fkbench/data.
pub fn setup_keys(server: &str, keys: usize, value_size: usize) -> anyhow::Result<Vec<String>> {
    let mut s = Session::connect(server)?;
    ensure_path(&mut s, &format!("{ROOT}/data"))?;
    let paths: Vec<String> = (0..keys).map(key_path).collect();
    bulk_create(&mut s, &paths, &vec![b'x'; value_size]).context("creating the key space")?;
    s.close()?;
    Ok(paths)
}

/// A node with `children` children, for getChildren.
pub fn setup_wide(server: &str, children: usize) -> anyhow::Result<String> {
    let mut s = Session::connect(server)?;
    let wide = format!("{ROOT}/wide-{children}");
    ensure_path(&mut s, &wide)?;
    let paths: Vec<String> = (0..children).map(|i| format!("{wide}/c{i:08}")).collect();
    bulk_create(&mut s, &paths, b"")?;
    s.close()?;
    Ok(wide)
}

fn get(path: &str) -> Request {
    Request::GetData(PathWatchRequest { path: path.into(), watch: false })
}

fn set(path: &str, data: &[u8]) -> Request {
    Request::Write(WriteOp::SetData(SetDataRequest { path: path.into(), data: Some(data.to_vec()), version: -1 }))
}

/// Reads and writes over the key space; `read_ratio` 1.0 = getData only, 0.0 = setData only.
pub struct Mixed {
    pub keys: Arc<Vec<String>>,
    pub value: Vec<u8>,
    pub read_ratio: f64,
    pub rng: Rng,
}

impl RequestGen for Mixed {
    fn next(&mut self) -> Request {
        let path = &self.keys[self.rng.below(self.keys.len())];
        if self.rng.chance(self.read_ratio) { get(path) } else { set(path, &self.value) }
    }
}

pub struct Exists {
    pub keys: Arc<Vec<String>>,
    pub rng: Rng,
}

impl RequestGen for Exists {
    fn next(&mut self) -> Request {
        Request::Exists(PathWatchRequest { path: self.keys[self.rng.below(self.keys.len())].clone(), watch: false })
    }
}

pub struct Children {
    pub path: String,
}

impl RequestGen for Children {
    fn next(&mut self) -> Request {
        Request::GetChildren(PathWatchRequest { path: self.path.clone(), watch: false })
    }
}

/// Creates a node, then deletes it, on its own path per connection (one op each).
pub struct CreateDelete {
    pub path: String,
    pub value: Vec<u8>,
    pub created: bool,
}

impl RequestGen for CreateDelete {
    fn next(&mut self) -> Request {
        self.created = !self.created;
        if self.created {
            create(&self.path, &self.value, 0)
        } else {
            Request::Write(WriteOp::Delete(DeleteRequest { path: self.path.clone(), version: -1 }))
        }
    }
}

/// A multi of `ops` setData on random keys.
pub struct Multi {
    pub keys: Arc<Vec<String>>,
    pub value: Vec<u8>,
    pub ops: usize,
    pub rng: Rng,
}

impl RequestGen for Multi {
    fn next(&mut self) -> Request {
        let ops = (0..self.ops)
            .map(|_| {
                let path = self.keys[self.rng.below(self.keys.len())].clone();
                WriteOp::SetData(SetDataRequest { path, data: Some(self.value.clone()), version: -1 })
            })
            .collect();
        Request::Multi(ops)
    }
}

/// Bulk load: creates `{base}/n{i}` for a global counter `i`.
pub struct Load {
    pub base: String,
    pub counter: Arc<AtomicU64>,
    pub value: Vec<u8>,
}

impl RequestGen for Load {
    fn next(&mut self) -> Request {
        let i = self.counter.fetch_add(1, Ordering::Relaxed);
        create(&format!("{}/n{i:010}", self.base), &self.value, 0)
    }

    fn tolerates(&self, err: i32) -> bool {
        err == ErrorCode::NodeExists.as_i32()
    }
}

/// The result of an event-driven workload.
pub struct EventRun {
    pub histogram: Histogram<u64>,
    pub ops: u64,
    pub elapsed: Duration,
    pub series: Vec<u64>,
    /// Workload-specific figures for the report.
    pub extra: Vec<(&'static str, f64)>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

fn tick(series: &mut Vec<u64>, start: Instant) {
    count_in_second(series, start.elapsed().as_secs() as usize);
}

/// `watchers` sessions watch one node; one writer changes it. A round ends when every watcher has its
/// event and has re-armed its watch; its latency is the time until the last event arrived.
pub fn watch_fanout(server: &str, watchers: usize, duration: Duration) -> anyhow::Result<EventRun> {
    let path = format!("{ROOT}/watched");
    let mut writer = Session::connect(server)?;
    ensure_path(&mut writer, &path)?;
    let arm = Request::GetData(PathWatchRequest { path: path.clone(), watch: true });
    let mut sessions = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        let mut s = Session::connect(server)?;
        s.expect(&arm, &[])?;
        sessions.push(s);
    }
    let (mut rounds, mut events, mut series, mut hist) = (0u64, 0u64, Vec::new(), histogram());
    let start = Instant::now();
    while start.elapsed() < duration {
        let sent = Instant::now();
        writer.expect(&set(&path, b"x"), &[])?;
        for s in &mut sessions {
            // The event comes first, then the reply to the re-arming getData.
            let event = s.recv()?;
            anyhow::ensure!(
                event.header.xid == xid::NOTIFICATION,
                "expected a watch event, got xid {}",
                event.header.xid
            );
            events += 1;
            s.send(&arm)?;
        }
        hist.saturating_record(sent.elapsed().as_micros().max(1) as u64);
        for s in &mut sessions {
            s.recv()?;
        }
        rounds += 1;
        tick(&mut series, start);
    }
    let extra = vec![("watchers", watchers as f64), ("events_per_s", events as f64 / start.elapsed().as_secs_f64())];
    Ok(EventRun { histogram: hist, ops: rounds, elapsed: start.elapsed(), series, extra })
}

/// `clients` compete for a lock with ZooKeeper's recipe: an ephemeral-sequential node each, and a watch
/// on the predecessor only (no herd). Each acquisition is one op; its latency is the wait for the lock.
pub fn lock_contention(server: &str, clients: usize, duration: Duration) -> anyhow::Result<EventRun> {
    let dir = format!("{ROOT}/lock");
    ensure_path(&mut Session::connect(server)?, &dir)?;
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (server, dir) = (server.to_owned(), dir.clone());
            std::thread::spawn(move || lock_loop(&server, &dir, start, duration))
        })
        .collect();
    let (mut hist, mut ops, mut wakeups, mut series) = (histogram(), 0, 0, Vec::new());
    for h in handles {
        let (h_hist, h_ops, h_wakeups, h_series) = h.join().map_err(|_| anyhow::anyhow!("lock client panicked"))??;
        hist.add(&h_hist)?;
        ops += h_ops;
        wakeups += h_wakeups;
        add_series(&mut series, &h_series);
    }
    let extra = vec![("clients", clients as f64), ("wakeups_per_acquisition", wakeups as f64 / (ops as f64).max(1.0))];
    Ok(EventRun { histogram: hist, ops, elapsed: start.elapsed(), series, extra })
}

type LockTally = (Histogram<u64>, u64, u64, Vec<u64>);

fn lock_loop(server: &str, dir: &str, start: Instant, duration: Duration) -> anyhow::Result<LockTally> {
    let mut s = Session::connect(server)?;
    let (mut hist, mut ops, mut wakeups, mut series) = (histogram(), 0, 0, Vec::new());
    while start.elapsed() < duration {
        let asked = Instant::now();
        let reply = s.expect(&create(&format!("{dir}/n-"), b"", 3), &[])?;
        let mine = CreateResponse::decode(&mut JuteReader::new(&reply.body))?.path;
        let name = mine.rsplit('/').next().unwrap_or_default().to_owned();
        loop {
            let reply = s.expect(&Request::GetChildren(PathWatchRequest { path: dir.into(), watch: false }), &[])?;
            let mut children = GetChildrenResponse::decode(&mut JuteReader::new(&reply.body))?.children;
            children.sort();
            let position = children.iter().position(|c| *c == name).context("our lock node vanished")?;
            if position == 0 {
                break;
            }
            let predecessor = format!("{dir}/{}", children[position - 1]);
            let watch = Request::Exists(PathWatchRequest { path: predecessor, watch: true });
            let (reply, early) = s.call(&watch)?;
            if reply.header.err == 0 && early.is_empty() {
                // Wait for the predecessor's deletion.
                loop {
                    let event = s.recv()?;
                    if event.header.xid == xid::NOTIFICATION {
                        break;
                    }
                }
            }
            wakeups += 1;
        }
        hist.saturating_record(asked.elapsed().as_micros().max(1) as u64);
        ops += 1;
        tick(&mut series, start);
        s.expect(&Request::Write(WriteOp::Delete(DeleteRequest { path: mine, version: -1 })), &[])?;
    }
    s.close()?;
    Ok((hist, ops, wakeups, series))
}

/// `threads` loops of connect + handshake + closeSession: sessions per second.
pub fn connect_storm(server: &str, threads: usize, duration: Duration) -> anyhow::Result<EventRun> {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let server = server.to_owned();
            std::thread::spawn(move || -> anyhow::Result<(Histogram<u64>, u64, Vec<u64>)> {
                let (mut hist, mut ops, mut series) = (histogram(), 0, Vec::new());
                while start.elapsed() < duration {
                    let began = Instant::now();
                    Session::connect(&server)?.close()?;
                    hist.saturating_record(began.elapsed().as_micros().max(1) as u64);
                    ops += 1;
                    tick(&mut series, start);
                }
                Ok((hist, ops, series))
            })
        })
        .collect();
    let (mut hist, mut ops, mut series) = (histogram(), 0, Vec::new());
    for h in handles {
        let (h_hist, h_ops, h_series) = h.join().map_err(|_| anyhow::anyhow!("connect thread panicked"))??;
        hist.add(&h_hist)?;
        ops += h_ops;
        add_series(&mut series, &h_series);
    }
    Ok(EventRun { histogram: hist, ops, elapsed: start.elapsed(), series, extra: vec![("threads", threads as f64)] })
}
