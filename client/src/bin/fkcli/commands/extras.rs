//! tree: the subtree under a path, indented, each node with its child and descendant counts.

use fk_client::{Client, Error, ErrorCode};
use serde_json::{Value, json};

use super::nodes::join;
use super::{Command, Ctx, Reply};
use crate::error::CliError;
use crate::words::valued;

pub const TREE: Command =
    Command { name: "tree", usage: "[-d depth] [path]", options: &[valued("d")], handler: Some(tree) };

/// One node of the printed tree.
struct Node {
    name: String,
    path: String,
    children: Vec<Node>,
    /// Direct children, loaded or not.
    child_count: usize,
    /// Every node below, including those past the depth limit (counted by getAllChildrenNumber).
    descendants: i64,
}

fn tree(ctx: &Ctx<'_>) -> Result<Reply, CliError> {
    let path = ctx.parsed.arg(1).unwrap_or("/");
    let depth = ctx.int_option::<usize>("d", usize::MAX, "a non-negative int value")?;
    fk_net::path::validate_path(path).map_err(CliError::usage)?;
    let root = load(ctx.client, path, path.to_owned(), depth)?
        .ok_or_else(|| CliError::from(Error::Server { code: ErrorCode::NoNode, path: path.into() }))?;
    let mut lines = Vec::new();
    render(&root, 0, &mut lines);
    Ok(Reply::out(lines, to_json(&root)))
}

/// Loads `path` and (down to `depth` levels) its children, sorted; `None` if it vanished meanwhile.
fn load(client: &Client, path: &str, name: String, depth: usize) -> Result<Option<Node>, CliError> {
    let mut children = match client.get_children(path, false) {
        Ok(children) => children,
        Err(Error::Server { code: ErrorCode::NoNode, .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    children.sort();
    let descendants = if children.is_empty() { 0 } else { i64::from(client.get_all_children_number(path)?) };
    let child_count = children.len();
    let mut nodes = Vec::new();
    if depth > 0 {
        for child in children {
            if let Some(node) = load(client, &join(path, &child), child, depth - 1)? {
                nodes.push(node);
            }
        }
    }
    Ok(Some(Node { name, path: path.to_owned(), children: nodes, child_count, descendants }))
}

fn render(node: &Node, level: usize, lines: &mut Vec<String>) {
    let indent = "  ".repeat(level);
    let counts = match node.descendants {
        0 => String::new(),
        n => format!(" ({} children, {n} descendants)", node.child_count),
    };
    lines.push(format!("{indent}{}{counts}", node.name));
    for child in &node.children {
        render(child, level + 1, lines);
    }
}

fn to_json(node: &Node) -> Value {
    json!({
        "path": node.path,
        "descendants": node.descendants,
        "children": node.children.iter().map(to_json).collect::<Vec<_>>(),
    })
}
