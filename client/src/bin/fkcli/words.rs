//! Splitting a command line into words and words into options and arguments, as zkCli does
//! (`MyCommandOptions.parseCommand`'s quoting, then commons-cli's `DefaultParser`).

use std::collections::HashMap;

use crate::error::CliError;

/// Splits a line into words: whitespace separates; a word starting with `"` or `'` runs to the matching
/// quote, which is stripped (zkCli's `ARGS_PATTERN` and `QUOTED_PATTERN`).
pub fn split_line(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'');
        let end = match quote {
            Some(q) => rest[1..].find(q).map(|at| at + 2),
            None => None,
        };
        let end = end.unwrap_or_else(|| rest.find(char::is_whitespace).unwrap_or(rest.len()));
        let word = &rest[..end];
        let stripped = match quote {
            Some(q) if word.len() >= 2 && word.ends_with(q) => &word[1..word.len() - 1],
            _ => word,
        };
        words.push(stripped.to_owned());
        rest = rest[end..].trim_start();
    }
    words
}

/// One option a command accepts: `-x` (one letter) or `--name`, with or without a value.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    pub name: &'static str,
    pub takes_value: bool,
}

pub const fn flag(name: &'static str) -> Opt {
    Opt { name, takes_value: false }
}

pub const fn valued(name: &'static str) -> Opt {
    Opt { name, takes_value: true }
}

/// A parsed command: its options and its plain arguments (the command word first, as commons-cli's
/// `getArgs` gives them to zkCli's commands).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub options: HashMap<&'static str, Option<String>>,
    pub args: Vec<String>,
}

impl Parsed {
    pub fn has(&self, name: &str) -> bool {
        self.options.contains_key(name)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.options.get(name).and_then(|v| v.as_deref())
    }

    pub fn arg(&self, index: usize) -> Option<&str> {
        self.args.get(index).map(String::as_str)
    }
}

/// Options may come anywhere among the arguments; a negative number is an argument; an unknown option
/// is refused with commons-cli's message.
pub fn parse(words: &[String], spec: &[Opt]) -> Result<Parsed, CliError> {
    let mut parsed = Parsed::default();
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let Some(opt) = option_of(word, spec)? else {
            parsed.args.push(word.clone());
            continue;
        };
        let value = if opt.takes_value {
            let value =
                words.next().ok_or_else(|| CliError::usage(format!("Missing argument for option: {}", opt.name)))?;
            Some(value.clone())
        } else {
            None
        };
        parsed.options.insert(opt.name, value);
    }
    Ok(parsed)
}

fn option_of(word: &str, spec: &[Opt]) -> Result<Option<Opt>, CliError> {
    let name = match word.strip_prefix("--").or_else(|| word.strip_prefix('-')) {
        Some(name) if !name.is_empty() && word.parse::<f64>().is_err() => name,
        _ => return Ok(None),
    };
    match spec.iter().find(|o| o.name == name) {
        Some(opt) => Ok(Some(*opt)),
        None => Err(CliError::usage(format!("Unrecognized option: {word}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_like_zkcli() {
        let cases: &[(&str, &[&str])] = &[
            ("ls /", &["ls", "/"]),
            ("  create   /a  hello ", &["create", "/a", "hello"]),
            ("create /a \"hello world\"", &["create", "/a", "hello world"]),
            ("create /a 'x y' z", &["create", "/a", "x y", "z"]),
            ("set /a \"unterminated", &["set", "/a", "\"unterminated"]),
            ("", &[]),
        ];
        for (line, words) in cases {
            assert_eq!(split_line(line), *words, "{line:?}");
        }
    }

    #[test]
    fn options_anywhere_values_and_errors() {
        let spec = [flag("s"), valued("v"), flag("human")];
        let words = |s: &str| split_line(s);
        let p = parse(&words("set /a x -v 3 -s"), &spec).unwrap();
        assert_eq!(p.args, ["set", "/a", "x"]);
        assert_eq!((p.value("v"), p.has("s")), (Some("3"), true));
        let p = parse(&words("set -v -1 /a -5"), &spec).unwrap();
        assert_eq!((p.value("v"), p.args.as_slice()), (Some("-1"), &["set".to_owned(), "/a".into(), "-5".into()][..]));
        assert!(parse(&words("stat --human /a"), &spec).unwrap().has("human"));
        assert_eq!(parse(&words("ls -x /"), &spec).unwrap_err().message, "Unrecognized option: -x");
        assert_eq!(parse(&words("set /a -v"), &spec).unwrap_err().message, "Missing argument for option: v");
    }
}
