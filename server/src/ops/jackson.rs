//! JSON as ZooKeeper's AdminServer writes it: Jackson's `DefaultPrettyPrinter` — two-space indented
//! objects with `"key" : value`, arrays on one line (`[ 1, 2 ]`), `{ }` and `[ ]` when empty, no final
//! newline. Probes and runbooks grep these answers (`"error" : null`), so the spacing is kept.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};

/// `value` in Jackson's pretty layout.
pub fn to_string(value: &impl Serialize) -> String {
    let mut out = Vec::new();
    let mut serializer = Serializer::with_formatter(&mut out, JacksonPretty::default());
    value.serialize(&mut serializer).expect("serializing to memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

#[derive(Default)]
struct JacksonPretty {
    /// Objects open (arrays stay on their line and do not indent).
    depth: usize,
    /// For each open object or array: whether it has an entry yet.
    has_entries: Vec<bool>,
}

impl JacksonPretty {
    fn new_line<W: ?Sized + Write>(&self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b"\n")?;
        (0..self.depth).try_for_each(|_| writer.write_all(b"  "))
    }
}

impl Formatter for JacksonPretty {
    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_entries.push(false);
        writer.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.depth -= 1;
        if self.has_entries.pop().unwrap_or(false) {
            self.new_line(writer)?
        } else {
            writer.write_all(b" ")?
        }
        writer.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if !first {
            writer.write_all(b",")?;
        }
        if let Some(has) = self.has_entries.last_mut() {
            *has = true;
        }
        self.new_line(writer)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b" : ")
    }

    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b" ]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        writer.write_all(if first { b" " } else { b", " })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// Layouts ZooKeeper 3.8's AdminServer answered with (`stat`, `connections`, ...).
    #[test]
    fn matches_jackson() {
        let value = json!({
            "command": "ruok",
            "error": null,
            "empty": {},
            "none": [],
            "numbers": [1, 2.5, -1],
            "nested": { "inner": { "x": 0.0 } },
            "objects": [{ "a": 1 }, {}],
        });
        let expected = r#"{
  "command" : "ruok",
  "empty" : { },
  "error" : null,
  "nested" : {
    "inner" : {
      "x" : 0.0
    }
  },
  "none" : [ ],
  "numbers" : [ 1, 2.5, -1 ],
  "objects" : [ {
    "a" : 1
  }, { } ]
}"#;
        assert_eq!(super::to_string(&value), expected);
    }
}
