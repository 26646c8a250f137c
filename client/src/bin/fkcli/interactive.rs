//! Interactive mode: rustyline line editing with a history file, completion of command names and znode
//! paths (as zkCli's `JLineZNodeCompleter`), and watch events printed above the prompt as they arrive.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, ExternalPrinter, Helper};

use crate::commands::COMMANDS;
use crate::shell::{CurrentClient, Flow, Shell};

/// Lines kept in the history file.
const HISTORY_LINES_MAX: usize = 1000;

/// Completion only: no hints, highlighting or multi-line validation (zkCli's jline setup has none).
struct ShellHelper {
    client: CurrentClient,
}

impl Helper for ShellHelper {}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Hinter for ShellHelper {
    type Hint = String;
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos].rfind(char::is_whitespace).map_or(0, |at| at + 1);
        let word = &line[start..pos];
        let candidates = if start == 0 {
            complete_command(word)
        } else if word.starts_with('/') {
            self.complete_path(word)
        } else {
            Vec::new()
        };
        let pairs = candidates.into_iter().map(|c| Pair { display: c.clone(), replacement: c }).collect();
        Ok((start, pairs))
    }
}

fn complete_command(prefix: &str) -> Vec<String> {
    COMMANDS.iter().map(|c| c.name).filter(|n| n.starts_with(prefix)).map(|n| format!("{n} ")).collect()
}

impl ShellHelper {
    /// The children of the word's directory that start with what follows its last `/`.
    fn complete_path(&self, word: &str) -> Vec<String> {
        let Some(client) = self.client.lock().expect("client slot").clone() else { return Vec::new() };
        let at = word.rfind('/').expect("word starts with /");
        let (dir, prefix) = (if at == 0 { "/" } else { &word[..at] }, &word[at + 1..]);
        let mut children = client.get_children(dir, false).unwrap_or_default();
        children.sort();
        children
            .into_iter()
            .filter(|c| c.starts_with(prefix))
            .map(|c| if dir == "/" { format!("/{c}") } else { format!("{dir}/{c}") })
            .collect()
    }
}

/// The history file: `$FKCLI_HISTORY`, else `~/.fkcli_history`.
fn history_file() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FKCLI_HISTORY") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".fkcli_history"))
}

/// Reads lines until EOF or `quit`; which of the two ended it.
pub fn run(shell: &mut Shell) -> anyhow::Result<Flow> {
    let config = rustyline::Config::builder().max_history_size(HISTORY_LINES_MAX)?.auto_add_history(true).build();
    let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(ShellHelper { client: Arc::clone(&shell.client) }));
    let history = history_file();
    if let Some(path) = &history {
        // A missing history file is the first run, not an error.
        let _ = editor.load_history(path);
    }
    // Events are printed above the line being edited where the terminal allows; otherwise straight out.
    match editor.create_external_printer() {
        Ok(printer) => {
            let printer = Arc::new(Mutex::new(printer));
            shell.print_events_with(Arc::new(move |text: String| {
                let _ = printer.lock().expect("printer").print(text);
            }));
        }
        Err(_) => shell.print_events_with(Arc::new(|text: String| print!("{text}"))),
    }
    let host = shell.host.clone();
    shell.connect(&host).map_err(|e| anyhow::anyhow!(e.message))?;
    println!("Welcome to ZooKeeper!");
    loop {
        match editor.readline(&shell.prompt()) {
            Ok(line) => {
                let flow = shell.execute_line(&line);
                if let Some(path) = &history {
                    let _ = editor.save_history(path);
                }
                if flow == Flow::Quit {
                    return Ok(Flow::Quit);
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => return Ok(Flow::Continue),
            Err(e) => return Err(e.into()),
        }
    }
}
