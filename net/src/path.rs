//! ZooKeeper path rules (`PathUtils.validatePath`, reference/client-wire.md §13).

/// Checks `path` as ZooKeeper does; the error is ZooKeeper's reason text.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return Err("Path must start with / character".into());
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("Path must not end with / character".into());
    }
    // The structural rules only involve ASCII ('/', '.', NUL), so they can be checked on bytes.
    let bytes = path.as_bytes();
    for i in 1..bytes.len() {
        let (c, last) = (bytes[i], bytes[i - 1]);
        let component_ends_here = i + 1 == bytes.len() || bytes[i + 1] == b'/';
        if c == 0 {
            return Err(format!("null character not allowed @{i}"));
        } else if c == b'/' && last == b'/' {
            return Err(format!("empty node name specified @{i}"));
        } else if c == b'.' && component_ends_here && (last == b'/' || (last == b'.' && i >= 2 && bytes[i - 2] == b'/'))
        {
            // A component that is exactly "." or "..".
            return Err(format!("relative paths not allowed @{i}"));
        }
    }
    match path.char_indices().find(|(_, c)| is_forbidden_char(*c)) {
        Some((i, _)) => Err(format!("invalid character @{i}")),
        None => Ok(()),
    }
}

/// Control characters, the surrogate and private-use block (Java sees every character outside the BMP as
/// a surrogate pair), and the specials block U+FFF0–U+FFFF.
fn is_forbidden_char(c: char) -> bool {
    matches!(c as u32,
        0x01..=0x1f | 0x7f..=0x9f | 0xd800..=0xf8ff | 0xfff0..=0xffff | 0x10000..)
}

/// The parent of a valid path ("/" for a top-level node). Must not be called on "/".
pub fn parent(path: &str) -> &str {
    debug_assert!(path.len() > 1 && path.starts_with('/'), "parent of {path:?}");
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of a valid path ("" for "/").
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, name: &str) -> String {
    let mut path = String::with_capacity(parent.len() + 1 + name.len());
    path.push_str(parent);
    if parent != "/" {
        path.push('/');
    }
    path.push_str(name);
    path
}

/// Ancestors of a path from the nearest up to and including "/" (e.g. "/a/b" → "/a", "/").
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut current = (path != "/").then_some(path);
    std::iter::from_fn(move || {
        let next = parent(current?);
        current = (next != "/").then_some(next);
        Some(next)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_table() {
        let cases: &[(&str, bool)] = &[
            ("/", true),
            ("/a", true),
            ("/a/b-c_d.e", true),
            ("/...", true),
            ("/a/..b", true),
            ("/zoé/☃/雪", true),
            ("", false),
            ("a", false),
            ("/a/", false),
            ("//a", false),
            ("/a//b", false),
            ("/a/.", false),
            ("/a/./b", false),
            ("/a/..", false),
            ("/../a", false),
            ("/a\0b", false),
            ("/a\u{1}", false),
            ("/a\u{7f}", false),
            ("/a\u{9f}", false),
            ("/a\u{e000}", false),
            ("/a\u{fff0}", false),
            ("/a\u{fffd}", false),
            ("/a\u{1f600}", false),
        ];
        for (path, ok) in cases {
            assert_eq!(validate_path(path).is_ok(), *ok, "{path:?}: {:?}", validate_path(path));
        }
    }

    #[test]
    fn parents_names_and_ancestors() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(name("/"), "");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), vec!["/a/b", "/a", "/"]);
        assert_eq!(ancestors("/").count(), 0);
    }
}
