//! The membership as ZooKeeper passes it between members (with NEWLEADER, and in election
//! notifications): `server.N=…` lines, then `version=<hex>`.

/// The `version=` line's value (hex), if the text has one.
pub fn version_of(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let line = text.lines().rev().find_map(|l| l.trim().strip_prefix("version="))?;
    i64::from_str_radix(line.trim(), 16).ok()
}

/// The same membership with `version` as its version.
pub fn with_version(text: &[u8], version: i64) -> Vec<u8> {
    let mut out: Vec<String> = members_of(text).into_iter().map(str::to_owned).collect();
    out.push(format!("version={version:x}"));
    out.join("\n").into_bytes()
}

/// The membership's lines, without the version.
pub fn members_of(text: &[u8]) -> Vec<&str> {
    std::str::from_utf8(text)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim().starts_with("version="))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_in_and_out() {
        let text = b"server.1=a:1:2:participant;c:3\nserver.2=b:1:2:participant;c:4\nversion=0";
        assert_eq!(version_of(text), Some(0));
        let bumped = with_version(text, 0x1_0000_0000);
        assert_eq!(
            String::from_utf8(bumped.clone()).unwrap(),
            "server.1=a:1:2:participant;c:3\nserver.2=b:1:2:participant;c:4\nversion=100000000"
        );
        assert_eq!(version_of(&bumped), Some(0x1_0000_0000));
        assert_eq!(members_of(&bumped), members_of(text));
        assert_eq!(version_of(b"server.1=a:1:2"), None);
    }
}
