//! The shell: one command line at a time (history, redo, connect, close, printwatches, quit and the
//! command table), the session it runs on, and how watch events are printed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use fk_client::{Client, Options, WatchedEvent};

use crate::commands::{self, Reply};
use crate::error::{CliError, EXIT_ERROR, EXIT_OK};
use crate::words::split_line;

/// How many earlier lines `history` shows (zkCli: the last ten and the current one).
const HISTORY_SHOWN: usize = 10;

/// Where event lines go: stdout, or above the prompt while a line is being edited.
pub type EventSink = Arc<dyn Fn(String) + Send + Sync>;

/// The session the shell (and its completer) use; replaced by `connect`.
pub type CurrentClient = Arc<Mutex<Option<Arc<Client>>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

pub struct Shell {
    pub host: String,
    pub options: Options,
    pub json: bool,
    pub client: CurrentClient,
    history: Vec<String>,
    print_watches: Arc<AtomicBool>,
    /// The status of the last command; the process exits with it (zkCli's `exitCode`).
    pub exit_code: i32,
    sink: Option<EventSink>,
    /// The current session's event printer; joined after the session closes so its last events
    /// (zkCli prints `state:Closed` on quit) are out before the shell goes on or exits.
    printer: Option<JoinHandle<()>>,
}

impl Shell {
    pub fn new(host: String, options: Options, json: bool) -> Shell {
        Shell {
            host,
            options,
            json,
            client: Arc::new(Mutex::new(None)),
            history: Vec::new(),
            print_watches: Arc::new(AtomicBool::new(true)),
            exit_code: EXIT_OK,
            sink: None,
            printer: None,
        }
    }

    /// Starts a printer thread per session that prints its events through `sink` (interactive mode).
    pub fn print_events_with(&mut self, sink: EventSink) {
        self.sink = Some(sink);
    }

    pub fn current(&self) -> Option<Arc<Client>> {
        self.client.lock().expect("client slot").clone()
    }

    /// Opens a session to `host` in the background (zkCli's `connectToZK`), closing the previous one.
    pub fn connect(&mut self, host: &str) -> Result<(), CliError> {
        self.close_current();
        self.host = host.to_owned();
        let client = Arc::new(Client::start(host, self.options.clone()).map_err(CliError::from)?);
        if let Some(sink) = &self.sink {
            self.printer = Some(spawn_printer(&client, Arc::clone(sink), Arc::clone(&self.print_watches), self.json));
        }
        *self.client.lock().expect("client slot") = Some(client);
        Ok(())
    }

    /// Closes the current session (the last reference to it closes it) and waits for its printer.
    pub fn close_current(&mut self) {
        let client = self.client.lock().expect("client slot").take();
        drop(client);
        if let Some(printer) = self.printer.take() {
            let _ = printer.join();
        }
    }

    /// zkCli's prompt: `[zk: host(STATE) n] `.
    pub fn prompt(&self) -> String {
        let state = match self.current() {
            Some(c) if c.is_connected() => "CONNECTED",
            Some(c) if c.is_alive() => "CONNECTING",
            _ => "CLOSED",
        };
        format!("[zk: {}({state}) {}] ", self.host, self.history.len())
    }

    /// Runs one line typed or piped in; blank lines are not commands and leave no history.
    pub fn execute_line(&mut self, line: &str) -> Flow {
        let words = split_line(line);
        if words.is_empty() {
            return Flow::Continue;
        }
        self.history.push(line.to_owned());
        self.process(&words)
    }

    /// Runs one command given as words (the one-shot mode's command line), printing what it printed
    /// and recording its exit status.
    pub fn process(&mut self, words: &[String]) -> Flow {
        match self.dispatch(words) {
            Ok((flow, reply)) => {
                self.print(reply);
                self.exit_code = EXIT_OK;
                flow
            }
            Err(error) => {
                if self.json {
                    eprintln!("{}", error.to_json());
                } else {
                    eprintln!("{}", error.message);
                }
                self.exit_code = error.exit_code;
                Flow::Continue
            }
        }
    }

    fn dispatch(&mut self, words: &[String]) -> Result<(Flow, Reply), CliError> {
        let name = words[0].as_str();
        let Some(command) = commands::find(name) else {
            for line in commands::usage_lines() {
                eprintln!("{line}");
            }
            return Err(CliError::not_found(name));
        };
        let mut reply = Reply::empty();
        match name {
            "quit" => return Ok((Flow::Quit, reply)),
            "redo" if words.len() >= 2 => return self.redo(&words[1]),
            "history" => reply.stdout = self.history_lines(),
            "printwatches" => match words.get(1) {
                None => {
                    let state = if self.print_watches.load(Ordering::Relaxed) { "on" } else { "off" };
                    reply.stdout.push(format!("printwatches is {state}"));
                }
                Some(arg) => self.print_watches.store(arg == "on", Ordering::Relaxed),
            },
            "connect" => {
                let host = words.get(1).cloned().unwrap_or_else(|| self.host.clone());
                self.connect(&host)?;
            }
            _ => {}
        }
        // As zkCli: every command, the shell's own included, then needs a live session.
        let Some(client) = self.current().filter(|c| c.is_alive()) else {
            reply.stdout.push("Not connected".into());
            return Ok((Flow::Continue, reply));
        };
        if name == "close" {
            drop(client);
            self.close_current();
            return Ok((Flow::Continue, reply));
        }
        // The interactive shell's printer thread already takes every event of the session; a tail would
        // get only some of them. There, addWatch prints the same events as WATCHER:: lines.
        if name == "watch-tail" && self.sink.is_some() {
            return Err(CliError::usage(
                "watch-tail runs as a one-shot command (fkcli -server … watch-tail path); here, use addWatch",
            ));
        }
        if let Some(handler) = command.handler {
            reply = commands::run(command, handler, &client, words, self.json)?;
        }
        Ok((Flow::Continue, reply))
    }

    /// `redo n`: runs history line n again, which takes this line's place in the history.
    fn redo(&mut self, index: &str) -> Result<(Flow, Reply), CliError> {
        let current = self.history.len() - 1;
        let index = parse_java_int(index).ok_or_else(|| CliError::usage(format!("For input string: \"{index}\"")))?;
        let Some(line) = usize::try_from(index).ok().filter(|i| *i < current).map(|i| self.history[i].clone()) else {
            return Err(CliError::usage("Command index out of range"));
        };
        let words = split_line(&line);
        if words[0] == "redo" {
            return Err(CliError::usage("No redoing redos"));
        }
        self.history[current] = line;
        match self.dispatch(&words) {
            Ok(done) => Ok(done),
            Err(e) => Err(e),
        }
    }

    fn history_lines(&self) -> Vec<String> {
        let current = self.history.len() - 1;
        (current.saturating_sub(HISTORY_SHOWN)..=current).map(|i| format!("{i} - {}", self.history[i])).collect()
    }

    fn print(&self, reply: Reply) {
        for line in &reply.stderr {
            eprintln!("{line}");
        }
        match (&reply.json, self.json) {
            (Some(json), true) => println!("{json}"),
            _ => {
                for line in &reply.stdout {
                    println!("{line}");
                }
            }
        }
    }

    /// Waits for the first session (or `limit`), printing the events so far as zkCli's watcher does.
    pub fn wait_for_session(&self, limit: Duration) {
        let Some(client) = self.current() else { return };
        if client.wait_connected_once(limit).is_err() {
            return;
        }
        // The SyncConnected event follows the connection at once; print up to it, so one-shot output
        // always has it in the same place (zkCli's watcher thread prints it around the same time).
        while let Ok(event) = client.events().recv_timeout(limit) {
            if self.print_watches.load(Ordering::Relaxed) && !self.json {
                print!("{}", event_text(&event, false));
            }
            if event.state == fk_client::KeeperState::SyncConnected && event.path.is_none() {
                break;
            }
        }
    }

    pub fn exit_status(&self) -> i32 {
        if self.exit_code == EXIT_OK { EXIT_OK } else { self.exit_code.max(EXIT_ERROR) }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        self.close_current();
    }
}

/// `Integer.decode`: decimal, `0x`/`#` hex or leading-zero octal.
fn parse_java_int(text: &str) -> Option<i32> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix('#')) {
        i32::from_str_radix(hex, 16).ok()
    } else if text.len() > 1 && text.starts_with('0') {
        i32::from_str_radix(&text[1..], 8).ok()
    } else {
        text.parse().ok()
    }
}

/// zkCli's `printMessage("WATCHER::")` then `printMessage(event)`: each preceded by an empty line.
pub fn event_text(event: &WatchedEvent, json: bool) -> String {
    if json {
        let value = serde_json::json!({
            "event": event.event_type.name(), "state": event.state.name(), "path": event.path,
        });
        return format!("{value}\n");
    }
    format!("\nWATCHER::\n\n{event}\n")
}

/// Prints one session's events while printwatches is on; ends when the session's channel closes.
fn spawn_printer(client: &Client, sink: EventSink, on: Arc<AtomicBool>, json: bool) -> JoinHandle<()> {
    let events = client.events().clone();
    std::thread::Builder::new()
        .name("fkcli-events".into())
        .spawn(move || {
            for event in events.iter() {
                if on.load(Ordering::Relaxed) {
                    sink(event_text(&event, json));
                }
            }
        })
        .expect("spawn the event printer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redo_numbers_decode_like_java() {
        let cases = [("3", Some(3)), ("0x1f", Some(31)), ("010", Some(8)), ("0", Some(0)), ("x", None)];
        for (text, value) in cases {
            assert_eq!(parse_java_int(text), value, "{text}");
        }
    }
}
