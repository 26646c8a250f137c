//! fkcli: a ZooKeeper shell with zkCli.sh's commands, flags, output and exit statuses, on fk-client.
//!
//! `fkcli -server host:port[,host:port…][/chroot] [-timeout ms] [--json] [cmd args…]`: with a command it
//! runs that one command and exits with its status; without, it reads commands interactively.
//!
//! # Layout
//! - `words`: splitting lines into words, options and arguments.
//! - `commands/`: the command table and one module per family.
//! - `shell`: history, redo, connect, close, printwatches, quit; exit statuses; event printing.
//! - `interactive`: rustyline editing, history file, completion.
//! - `format`, `acl`, `error`: zkCli's output shapes, ACL syntax and error texts.

mod acl;
mod commands;
mod error;
mod format;
mod interactive;
mod shell;
mod words;

use std::time::Duration;

use anyhow::{Context, bail};
use fk_client::Options;

use crate::shell::{Flow, Shell};

/// zkCli's defaults.
const DEFAULT_SERVER: &str = "localhost:2181";
const DEFAULT_TIMEOUT_MS: u64 = 30_000;

struct Invocation {
    server: String,
    timeout_ms: u64,
    json: bool,
    /// `-client-configuration`: a properties file of client settings (ZooKeeper's ZKClientConfig).
    client_configuration: Option<String>,
    command: Vec<String>,
}

/// zkCli's `parseOptions`: options until the first word that is not one; that word and everything
/// after it are the command.
fn parse_invocation(args: &[String]) -> anyhow::Result<Invocation> {
    let mut invocation = Invocation {
        server: DEFAULT_SERVER.into(),
        timeout_ms: DEFAULT_TIMEOUT_MS,
        json: false,
        client_configuration: None,
        command: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("Error: no argument found for option {arg}"));
        match arg.as_str() {
            "-server" => invocation.server = value()?.clone(),
            "-timeout" => invocation.timeout_ms = value()?.parse().context("-timeout takes milliseconds")?,
            "--json" => invocation.json = true,
            // Read-only sessions and waiting for the connection are zkCli options we accept and ignore.
            "-r" | "-waitforconnection" => {}
            "-client-configuration" => invocation.client_configuration = Some(value()?.clone()),
            other if other.starts_with('-') => bail!("unknown option {other}"),
            _ => {
                invocation.command.push(arg.clone());
                invocation.command.extend(args.by_ref().cloned());
            }
        }
    }
    Ok(invocation)
}

/// The client settings zkCli.sh would see: the JVM flags its script passes (`JVMFLAGS`, then
/// `CLIENT_JVMFLAGS`, later ones winning as in the JVM), then the `-client-configuration` file's keys
/// (ZKClientConfig adds the file over the system properties).
struct ClientProperties(Vec<(String, String)>);

impl ClientProperties {
    fn read(client_configuration: Option<&str>) -> anyhow::Result<ClientProperties> {
        let mut properties = Vec::new();
        for variable in ["JVMFLAGS", "CLIENT_JVMFLAGS"] {
            let flags = std::env::var(variable).unwrap_or_default();
            for flag in flags.split_whitespace().filter_map(|f| f.strip_prefix("-D")) {
                let (key, value) = flag.split_once('=').unwrap_or((flag, ""));
                properties.push((key.to_owned(), value.to_owned()));
            }
        }
        if let Some(path) = client_configuration {
            let text = std::fs::read_to_string(path).with_context(|| format!("-client-configuration {path}"))?;
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with(['#', '!'])) {
                let (key, value) = line.split_once(['=', ':']).unwrap_or((line, ""));
                properties.push((key.trim().to_owned(), value.trim().to_owned()));
            }
        }
        Ok(ClientProperties(properties))
    }

    fn get(&self, name: &str) -> Option<String> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// SASL: a JAAS file (`-Djava.security.auth.login.config=…`, or that environment variable) whose
    /// `Client` section (`zookeeper.sasl.clientconfig`) holds a DIGEST-MD5 username and password or a
    /// Kerberos login (with the Java client's `zookeeper.server.principal`, `zookeeper.sasl.client.username`,
    /// `zookeeper.server.realm` and `zookeeper.sasl.client.canonicalize.hostname`, and
    /// `java.security.krb5.conf`); none with `zookeeper.sasl.client=false`, or without a JAAS file.
    fn sasl(&self) -> anyhow::Result<Option<fk_client::sasl::Sasl>> {
        const JAAS: &str = "java.security.auth.login.config";
        let Some(jaas) = self.get(JAAS).or_else(|| std::env::var(JAAS).ok()) else { return Ok(None) };
        if self.get("zookeeper.sasl.client").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
            return Ok(None);
        }
        let section = self.get("zookeeper.sasl.clientconfig").unwrap_or_else(|| "Client".into());
        let login = fk_net::sasl::jaas::client_login(std::path::Path::new(&jaas), &section)
            .with_context(|| format!("SASL for this client ({JAAS}={jaas})"))?;
        if let Some(krb5) = self.get("java.security.krb5.conf") {
            // SAFETY: the shell has started no thread yet; MIT's library reads this when it first runs.
            unsafe { std::env::set_var("KRB5_CONFIG", krb5) };
        }
        let settings = fk_client::sasl::KerberosSettings {
            server_principal: self.get("zookeeper.server.principal"),
            service: self.get("zookeeper.sasl.client.username"),
            server_realm: self.get("zookeeper.server.realm"),
            canonicalize: !self
                .get("zookeeper.sasl.client.canonicalize.hostname")
                .is_some_and(|v| v.eq_ignore_ascii_case("false")),
        };
        let sasl = fk_client::sasl::Sasl::from_login(login, settings)
            .map_err(|e| anyhow::anyhow!("SASL for this client ({JAAS}={jaas}, section {section}): {e}"))?;
        Ok(Some(sasl))
    }

    /// TLS as the Java client takes it: `zookeeper.client.secure=true` and the `zookeeper.ssl.*` stores
    /// (PEM or PKCS12), protocols, suites and `zookeeper.ssl.hostnameVerification`.
    fn tls(&self) -> anyhow::Result<Option<std::sync::Arc<rustls::ClientConfig>>> {
        if !self.get("zookeeper.client.secure").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let get = |key: &str| self.get(&format!("zookeeper.{key}"));
        let settings = fk_tls::TlsSettings::from_keys("ssl", &get)
            .map_err(|bad| anyhow::anyhow!("zookeeper.{}: {}", bad.key, bad.reason))?;
        let built = fk_tls::client_config(&settings).context("TLS for this client (zookeeper.client.secure=true)")?;
        for note in built.notes {
            eprintln!("{note}");
        }
        Ok(Some(built.config))
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let invocation = parse_invocation(&args)?;
    let timeout = Duration::from_millis(invocation.timeout_ms);
    let properties = ClientProperties::read(invocation.client_configuration.as_deref())?;
    let options =
        Options { session_timeout: timeout, connect_wait: timeout, sasl: properties.sasl()?, tls: properties.tls()? };
    let mut shell = Shell::new(invocation.server.clone(), options, invocation.json);
    if !invocation.json {
        println!("Connecting to {}", invocation.server);
    }
    let flow = if invocation.command.is_empty() {
        interactive::run(&mut shell)?
    } else {
        shell.connect(&invocation.server).map_err(|e| anyhow::anyhow!(e.message))?;
        shell.wait_for_session(timeout);
        shell.process(&invocation.command)
    };
    let status = shell.exit_status();
    if flow == Flow::Quit {
        // `quit` closes the session first, so its ephemerals go at once, as zkCli's quit does.
        drop(shell);
    }
    // Otherwise the process ends with the session open, as zkCli ends after a one-shot command or at
    // the end of its input: the server expires it after its timeout, and until then an ephemeral made
    // by `fkcli -server H create -e /x v` is there for the next command to see. (Exiting runs no
    // destructor, so nothing sends closeSession.)
    std::process::exit(status);
}
