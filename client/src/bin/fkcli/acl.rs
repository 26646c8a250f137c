//! zkCli's `AclParser`: `scheme:id:perms[,scheme:id:perms…]`, splitting each entry at its first and last
//! colon (so digest ids, which contain a colon, pass through). Malformed entries and unknown permission
//! letters are reported and skipped, not refused, as zkCli does.

use fk_client::{Acl, perms};

/// The parsed entries and the warnings zkCli prints on stderr for what it skipped.
pub fn parse_acl(text: &str) -> (Vec<Acl>, Vec<String>) {
    let mut acl = Vec::new();
    let mut warnings = Vec::new();
    for entry in text.split(',') {
        let (Some(first), Some(last)) = (entry.find(':'), entry.rfind(':')) else {
            warnings.push(format!("{entry} does not have the form scheme:id:perm"));
            continue;
        };
        if first == last {
            warnings.push(format!("{entry} does not have the form scheme:id:perm"));
            continue;
        }
        let mut bits = 0;
        for letter in entry[last + 1..].chars() {
            match perm_bit(letter) {
                Some(bit) => bits |= bit,
                None => warnings.push(format!("Unknown perm type: {letter}")),
            }
        }
        acl.push(Acl::new(bits, &entry[..first], &entry[first + 1..last]));
    }
    (acl, warnings)
}

fn perm_bit(letter: char) -> Option<i32> {
    Some(match letter {
        'r' => perms::READ,
        'w' => perms::WRITE,
        'c' => perms::CREATE,
        'd' => perms::DELETE,
        'a' => perms::ADMIN,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_acl_parser() {
        let (acl, warnings) = parse_acl("world:anyone:cdrwa,digest:alice:h4sh=:ra,bad,ip:10.0.0.1:rz");
        assert_eq!(
            acl,
            [
                Acl::new(perms::ALL, "world", "anyone"),
                Acl::new(perms::READ | perms::ADMIN, "digest", "alice:h4sh="),
                Acl::new(perms::READ, "ip", "10.0.0.1"),
            ]
        );
        assert_eq!(warnings, ["bad does not have the form scheme:id:perm", "Unknown perm type: z"]);
        let (acl, _) = parse_acl("auth::cdrwa");
        assert_eq!(acl, [Acl::new(perms::ALL, "auth", "")]);
    }
}
