//! `ferrokeeper [zoo.cfg]`: starts a server on a ZooKeeper configuration file, or on built-in defaults
//! (client port 2181, data under ./data) when none is given.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ferrokeeper::config::{Config, TxnLogDevice};
use ferrokeeper::pipeline::{Server, Storage, exit_on_fatal};
use tracing::{error, info, warn};

/// mimalloc: size classes without per-chunk headers (the tree is millions of small allocations) and
/// memory returned to the OS after transient peaks such as snapshots.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match args.as_slice() {
        [] => Config::default_standalone(),
        [flag] if flag == "--help" || flag == "-h" => {
            println!(
                "usage: ferrokeeper [path/to/zoo.cfg]\n\nWithout a file, runs standalone on port 2181 with data under ./data."
            );
            return Ok(());
        }
        [flag] if flag == "--version" || flag == "-V" => {
            println!("ferrokeeper {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        [path] => Config::from_file(&PathBuf::from(path))?,
        _ => anyhow::bail!("usage: ferrokeeper [path/to/zoo.cfg]"),
    };
    let mut config = config;
    security_settings_from_environment(&mut config)?;
    use_kerberos_configuration(&config)?;
    config.load_sasl()?;
    config.load_tls()?;
    for warning in &config.warnings {
        warn!("{warning}");
    }
    let ferrokeeper::storage::Opened { dirs, recovered, damaged } = ferrokeeper::storage::open(&config)?;
    stop_huge_pages();
    let device: Box<dyn fk_engine::log::LogDevice> = match config.txn_log_device {
        TxnLogDevice::Pwrite => Box::new(fk_engine::log::PwriteDevice),
        TxnLogDevice::Auto => {
            let (device, fallback) = fk_engine::log::best_available();
            if let Some(reason) = fallback {
                warn!("{reason}; writing the txn log with pwrite + fdatasync");
            }
            device
        }
    };
    let storage = Storage { dirs, recovered, damaged, device, on_fatal: exit_on_fatal() };
    let server = Server::start(config, storage).context("cannot start the server")?;
    match server.shared.config.my_id {
        Some(id) if !server.shared.config.is_standalone() => {
            info!(address = %server.client_addr, "ferrokeeper {} member {id} started; serving clients once in a quorum", env!("CARGO_PKG_VERSION"))
        }
        _ => {
            info!(address = %server.client_addr, "ferrokeeper {} serving clients (standalone)", env!("CARGO_PKG_VERSION"))
        }
    }
    // Returning ends the process, whatever the other threads are doing.
    anyhow::bail!("{}", server.wait())
}

/// ZooKeeper's scripts pass `-D` flags from these variables to its JVM, and its JAAS file path may also
/// come from the environment; a service definition written for ZooKeeper may secure it that way. A flag
/// asking for what is not provided is refused like the same key in zoo.cfg, naming the variable; the SASL
/// settings that are provided are taken where zoo.cfg does not set them.
fn security_settings_from_environment(config: &mut Config) -> anyhow::Result<()> {
    use ferrokeeper::config::security::{JVM_FLAG_VARIABLES, jvm_properties, refusal};
    const JAAS: &str = "java.security.auth.login.config";
    let mut properties = Vec::new();
    for variable in JVM_FLAG_VARIABLES {
        for (key, value) in jvm_properties(&std::env::var(variable).unwrap_or_default()) {
            properties.push((format!("environment variable {variable}: -D{key}"), key, value));
        }
    }
    if let Some(value) = std::env::var_os(JAAS) {
        properties.push((format!("environment variable {JAAS}"), JAAS.to_owned(), value.to_string_lossy().into()));
    }
    for (source, key, value) in properties {
        let bare = key.strip_prefix("zookeeper.").unwrap_or(&key);
        if let Some(why) = refusal(bare, &value) {
            anyhow::bail!("{source}: {why}");
        }
        if !config.has_key(bare) && config.set_security_property(bare, &value, &source) {
            let secret = bare.ends_with("Password") || bare.ends_with(".password");
            info!("{source}: taken as {bare}={}", if secret { "…" } else { &value });
        }
    }
    Ok(())
}

/// `java.security.krb5.conf` (Java's name for the Kerberos configuration file, in zoo.cfg or a JVM
/// flag) becomes `KRB5_CONFIG`, where MIT's library looks; before any Kerberos login is made.
fn use_kerberos_configuration(config: &Config) -> anyhow::Result<()> {
    let Some(path) = &config.sasl.krb5_conf else { return Ok(()) };
    std::fs::File::open(path).with_context(|| {
        format!("java.security.krb5.conf: cannot read the Kerberos configuration {}", path.display())
    })?;
    // SAFETY: the server has started no thread yet, so nothing reads the environment concurrently.
    unsafe { std::env::set_var("KRB5_CONFIG", path) };
    info!("Kerberos configuration: {} (java.security.krb5.conf)", path.display());
    Ok(())
}

/// Transparent huge pages make recovery's bulk allocation of the tree cheaper to fault in (a 1M-znode
/// restart takes 0.29 s instead of 0.36 s here), but from then on the write path's short-lived
/// allocations would each keep a whole 2 MiB page resident: 119 MB instead of 55 MB after 200k creates.
/// So they stay where recovery put them and no new ones are made.
fn stop_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process.
    if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0 {
        warn!("cannot turn transparent huge pages off: {}", std::io::Error::last_os_error());
    }
}
