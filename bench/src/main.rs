//! `fkbench`: load for any ZooKeeper-protocol server — pipelined closed-loop or open-loop at a target
//! rate, HdrHistogram latencies, JSON and SVG output.
//!
//! # Layout
//! - `conn`: handshake and a blocking session.
//! - `engine`: the pipelined multi-connection load engine.
//! - `workloads`: request generators and event-driven workloads.
//! - `report`: table, JSON, chart.

mod conn;
mod engine;
mod report;
mod workloads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use engine::{LoadConfig, Progress, RequestGen};
use report::{Cpu, Latency, Params, Report};
use workloads::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// getData on random keys.
    Get,
    /// setData on random keys.
    Set,
    /// create then delete, alternating, one path per connection.
    CreateDelete,
    /// exists on random keys.
    Exists,
    /// getChildren on a node with --children children.
    Children,
    /// getData/setData at --read-ratio.
    Mixed,
    /// multi of --multi-ops setData.
    Multi,
    /// --watchers sessions watch one node, one writer changes it.
    WatchFanout,
    /// --connections clients contend for a lock (ephemeral-sequential + predecessor watch).
    Lock,
    /// connect + closeSession in a loop on --connections threads.
    ConnectStorm,
    /// create --count znodes as fast as possible.
    Load,
}

#[derive(Parser, Debug)]
#[command(name = "fkbench", version, about = "Load generator for ZooKeeper-protocol servers")]
struct Cli {
    /// host:port of the server, or a connect string (host:port,host:port,...) to spread the connections
    /// over an ensemble's members in turn.
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: String,
    #[arg(long, value_enum, default_value = "get")]
    workload: Workload,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Client threads driving the connections.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Requests in flight per connection (the cap, in open loop).
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// Open loop: total requests per second (latency counted from the intended send time).
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    #[arg(long, default_value_t = 0.9)]
    read_ratio: f64,
    #[arg(long, default_value_t = 1000)]
    children: usize,
    #[arg(long, default_value_t = 10)]
    multi_ops: usize,
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Znodes to create (load).
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the result as JSON on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Write an SVG chart of throughput over time and latency percentiles.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Authenticate every session with SASL DIGEST-MD5 as `user:password` (a server with ZooKeeper's
    /// SASLAuthenticationProvider and a JAAS file naming the user).
    #[arg(long, value_name = "USER:PASSWORD")]
    sasl_digest: Option<String>,
    /// Connect over TLS, trusting the CAs in this PEM (or PKCS12) file; the server's certificate must
    /// name the host connected to.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// With --tls-ca: present this client certificate (a PEM file with the private key and the
    /// certificate chain, as ZooKeeper's PEM key stores; or PKCS12).
    #[arg(long, value_name = "FILE", requires = "tls_ca")]
    tls_cert: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fkbench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    if let Some(credentials) = &cli.sasl_digest {
        let (user, password) =
            credentials.split_once(':').ok_or_else(|| anyhow::anyhow!("--sasl-digest takes user:password"))?;
        conn::use_sasl_digest(user, password);
    }
    if let Some(ca) = &cli.tls_ca {
        let store =
            |location: &PathBuf| fk_tls::StoreSpec { location: location.clone(), password: None, store_type: None };
        let settings = fk_tls::TlsSettings {
            trust_store: Some(store(ca)),
            key_store: cli.tls_cert.as_ref().map(store),
            // Both versions: the server picks (ZooKeeper 3.8 speaks TLSv1.2 unless told otherwise).
            protocols: fk_tls::Protocols::from_java_names(&["TLSv1.3".into(), "TLSv1.2".into()])
                .map_err(anyhow::Error::msg)?,
            verify_hostname: true,
            ..fk_tls::TlsSettings::default()
        };
        conn::use_tls(fk_tls::client_config(&settings)?.config);
    }
    let cpu_before = report::cpu_time();
    let progress = Arc::new(Progress::default());
    let bar = (!cli.quiet).then(|| spawn_progress(progress.clone()));
    let outcome = measure(cli, progress);
    if let Some((bar, stop)) = bar {
        stop.store(1, Ordering::Relaxed);
        let _ = bar.join();
    }
    let (histogram, ops, errors, elapsed, series, extra) = outcome?;
    let cpu_after = report::cpu_time();
    let (user_s, system_s) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    let report = Report {
        schema: report::SCHEMA_VERSION,
        fkbench_version: env!("CARGO_PKG_VERSION").into(),
        server: cli.server.clone(),
        workload: format!("{:?}", cli.workload).to_lowercase(),
        params: Params {
            connections: cli.connections,
            threads: cli.threads,
            depth: cli.depth,
            rate: cli.rate,
            value_size: cli.value_size,
            keys: cli.keys,
            read_ratio: cli.read_ratio,
            warmup_s: cli.warmup,
            duration_s: cli.duration,
        },
        ops,
        errors,
        elapsed_s: elapsed.as_secs_f64(),
        throughput_ops_s: ops as f64 / elapsed.as_secs_f64().max(1e-9),
        latency_us: Latency::of(&histogram),
        series_ops_per_s: series,
        client_cpu: Cpu { user_s, system_s, per_op_us: (user_s + system_s) * 1e6 / (ops as f64).max(1.0) },
        extra: extra.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<BTreeMap<_, _>>(),
    };
    if let Some(path) = &cli.chart {
        report::chart(&report, &histogram, path)?;
    }
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

type Measured = (hdrhistogram::Histogram<u64>, u64, u64, Duration, Vec<u64>, Vec<(&'static str, f64)>);

fn measure(cli: &Cli, progress: Arc<Progress>) -> anyhow::Result<Measured> {
    let duration = Duration::from_secs_f64(cli.duration);
    let event_run = |run: EventRun| Ok((run.histogram, run.ops, 0, run.elapsed, run.series, run.extra));
    match cli.workload {
        Workload::WatchFanout => return event_run(watch_fanout(&cli.server, cli.watchers, duration)?),
        Workload::Lock => return event_run(lock_contention(&cli.server, cli.connections, duration)?),
        Workload::ConnectStorm => return event_run(connect_storm(&cli.server, cli.connections, duration)?),
        _ => {}
    }
    let make = generators(cli)?;
    let mut config = LoadConfig {
        server: cli.server.clone(),
        connections: cli.connections,
        threads: cli.threads,
        depth: cli.depth.max(1),
        rate: cli.rate,
        warmup: Duration::from_secs_f64(cli.warmup),
        duration,
        total_ops: None,
    };
    if cli.workload == Workload::Load {
        config.total_ops = Some(cli.count);
        config.warmup = Duration::ZERO;
    }
    let result = engine::run(config, progress, make)?;
    Ok((result.histogram, result.ops, result.errors, result.elapsed, result.series, Vec::new()))
}

type Maker = Box<dyn Fn(usize) -> Box<dyn RequestGen>>;

/// Sets up the nodes a workload needs and returns how to build each connection's generator.
fn generators(cli: &Cli) -> anyhow::Result<Maker> {
    let value = vec![b'v'; cli.value_size];
    let seed = cli.seed;
    Ok(match cli.workload {
        Workload::Get | Workload::Set | Workload::Mixed => {
            let keys = Arc::new(setup_keys(&cli.server, cli.keys, cli.value_size)?);
            let read_ratio = match cli.workload {
                Workload::Get => 1.0,
                Workload::Set => 0.0,
                _ => cli.read_ratio,
            };
            Box::new(move |i| {
                Box::new(Mixed { keys: keys.clone(), value: value.clone(), read_ratio, rng: Rng::new(seed + i as u64) })
            })
        }
        Workload::Exists => {
            let keys = Arc::new(setup_keys(&cli.server, cli.keys, cli.value_size)?);
            Box::new(move |i| Box::new(Exists { keys: keys.clone(), rng: Rng::new(seed + i as u64) }))
        }
        Workload::Children => {
            let path = setup_wide(&cli.server, cli.children)?;
            Box::new(move |_| Box::new(Children { path: path.clone() }))
        }
        Workload::CreateDelete => {
            let mut s = conn::Session::connect(&cli.server)?;
            conn::ensure_path(&mut s, &format!("{ROOT}/cd"))?;
            let run = s.session_id;
            Box::new(move |i| {
                Box::new(CreateDelete { path: format!("{ROOT}/cd/{run:x}-{i}"), value: value.clone(), created: false })
            })
        }
        Workload::Multi => {
            let keys = Arc::new(setup_keys(&cli.server, cli.keys, cli.value_size)?);
            let ops = cli.multi_ops;
            Box::new(move |i| {
                Box::new(Multi { keys: keys.clone(), value: value.clone(), ops, rng: Rng::new(seed + i as u64) })
            })
        }
        Workload::Load => {
            let mut s = conn::Session::connect(&cli.server)?;
            let base = format!("{ROOT}/load-{:x}", s.session_id);
            conn::ensure_path(&mut s, &base)?;
            let counter = Arc::new(AtomicU64::new(0));
            Box::new(move |_| Box::new(Load { base: base.clone(), counter: counter.clone(), value: value.clone() }))
        }
        Workload::WatchFanout | Workload::Lock | Workload::ConnectStorm => unreachable!("event workloads"),
    })
}

/// A progress line on stderr (hidden when stderr is not a terminal).
fn spawn_progress(progress: Arc<Progress>) -> (std::thread::JoinHandle<()>, Arc<AtomicU64>) {
    let stop = Arc::new(AtomicU64::new(0));
    let stop_flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        let start = Instant::now();
        let mut last = (Instant::now(), 0u64);
        while stop_flag.load(Ordering::Relaxed) == 0 {
            std::thread::sleep(Duration::from_millis(250));
            let done = progress.completed.load(Ordering::Relaxed);
            let rate = (done - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
            last = (Instant::now(), done);
            bar.set_message(format!(
                "{:>5.1}s  {done} ops  {rate:.0} ops/s  {} errors",
                start.elapsed().as_secs_f64(),
                progress.errors.load(Ordering::Relaxed)
            ));
            bar.tick();
        }
        bar.finish_and_clear();
    });
    (handle, stop)
}
