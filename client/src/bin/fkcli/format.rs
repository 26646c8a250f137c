//! How results print: zkCli's shapes (`StatPrinter`, jute's CSV form of an `Id`, `ZKUtil.getPermString`,
//! Java's `Date.toString`), the human stat form and the JSON forms.

use fk_client::{Acl, Stat, perms};
use serde_json::{Value, json};

/// `StatPrinter.print`: eleven `name = value` lines.
pub fn stat_lines(stat: &Stat) -> Vec<String> {
    vec![
        format!("cZxid = 0x{:x}", stat.czxid),
        format!("ctime = {}", java_date(stat.ctime)),
        format!("mZxid = 0x{:x}", stat.mzxid),
        format!("mtime = {}", java_date(stat.mtime)),
        format!("pZxid = 0x{:x}", stat.pzxid),
        format!("cversion = {}", stat.cversion),
        format!("dataVersion = {}", stat.version),
        format!("aclVersion = {}", stat.aversion),
        format!("ephemeralOwner = 0x{:x}", stat.ephemeral_owner),
        format!("dataLength = {}", stat.data_length),
        format!("numChildren = {}", stat.num_children),
    ]
}

/// The same fields with zxids split into epoch and counter and times in UTC (`stat --human`).
pub fn human_stat_lines(stat: &Stat) -> Vec<String> {
    let owner = match stat.ephemeral_owner {
        0 => "none (persistent)".to_owned(),
        id if (id as u64) >> 56 == 0xff => format!("TTL node, ttl {} ms", id & 0x00ff_ffff_ffff_ffff),
        id if (id as u64) == 0x8000_0000_0000_0000 => "none (container)".to_owned(),
        id => format!("session 0x{id:x}"),
    };
    vec![
        format!("created   {} at {}", human_zxid(stat.czxid), iso_time(stat.ctime)),
        format!("modified  {} at {}", human_zxid(stat.mzxid), iso_time(stat.mtime)),
        format!("children  last changed at {}", human_zxid(stat.pzxid)),
        format!("versions  data {}, children {}, acl {}", stat.version, stat.cversion, stat.aversion),
        format!("owner     {owner}"),
        format!("size      {} bytes, {} children", stat.data_length, stat.num_children),
    ]
}

/// `0x<zxid> (epoch E, counter C)`: the high 32 bits are the leader epoch, the low ones its counter.
pub fn human_zxid(zxid: i64) -> String {
    format!("0x{zxid:x} (epoch {}, counter {})", (zxid as u64) >> 32, (zxid as u64) & 0xffff_ffff)
}

/// Java's `new Date(ms).toString()`: `EEE MMM dd HH:mm:ss zzz yyyy` in the local time zone.
pub fn java_date(epoch_ms: i64) -> String {
    let seconds = epoch_ms.div_euclid(1000) as libc::time_t;
    // SAFETY: localtime_r and strftime write only into the buffers given, sized as passed; the format is
    // a NUL-terminated literal. Rust never calls setlocale, so the names are the C locale's (English), as
    // Java's Date.toString always prints.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&seconds, &mut tm).is_null() {
            return iso_time(epoch_ms);
        }
        let mut buf = [0u8; 64];
        let format = c"%a %b %d %H:%M:%S %Z %Y";
        let len = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), format.as_ptr(), &tm);
        String::from_utf8_lossy(&buf[..len]).into_owned()
    }
}

/// ISO 8601 in UTC with milliseconds.
pub fn iso_time(epoch_ms: i64) -> String {
    let days = epoch_ms.div_euclid(86_400_000);
    let ms_of_day = epoch_ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, ms) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{ms:03}Z")
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `ZKUtil.getPermString`: the letters in the order c, d, r, w, a.
pub fn perm_string(bits: i32) -> String {
    [(perms::CREATE, 'c'), (perms::DELETE, 'd'), (perms::READ, 'r'), (perms::WRITE, 'w'), (perms::ADMIN, 'a')]
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, letter)| *letter)
        .collect()
}

/// getAcl's line for one entry: the `Id` as jute's CSV archive writes it (each string quoted with a
/// leading `'`, escaped, and the record ended by a newline), then `: perms`.
pub fn acl_line(acl: &Acl) -> String {
    format!("{},{}\n: {}", csv_string(&acl.id.scheme), csv_string(&acl.id.id), perm_string(acl.perms))
}

/// jute's `Utils.toCSVString`.
fn csv_string(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

pub fn stat_json(stat: &Stat) -> Value {
    json!({
        "czxid": stat.czxid, "mzxid": stat.mzxid, "pzxid": stat.pzxid,
        "ctime": stat.ctime, "mtime": stat.mtime,
        "version": stat.version, "cversion": stat.cversion, "aversion": stat.aversion,
        "ephemeralOwner": stat.ephemeral_owner, "dataLength": stat.data_length, "numChildren": stat.num_children,
    })
}

pub fn acl_json(acl: &Acl) -> Value {
    json!({ "scheme": acl.id.scheme, "id": acl.id.id, "perms": perm_string(acl.perms) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perms_and_acls_print_as_zookeeper() {
        let cases = [(perms::ALL, "cdrwa"), (perms::READ, "r"), (perms::READ | perms::ADMIN, "ra"), (0, "")];
        for (bits, text) in cases {
            assert_eq!(perm_string(bits), text);
        }
        assert_eq!(acl_line(&Acl::new(perms::ALL, "world", "anyone")), "'world,'anyone\n: cdrwa");
        assert_eq!(acl_line(&Acl::new(perms::READ, "ip", "10.0.0.1,x")), "'ip,'10.0.0.1%2Cx\n: r");
    }

    #[test]
    fn times_and_zxids() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(1_764_657_798_123), "2025-12-02T06:43:18.123Z");
        assert_eq!(iso_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(human_zxid(0x3_0000_0007), "0x300000007 (epoch 3, counter 7)");
        let stat = Stat { czxid: 2, ..Default::default() };
        assert_eq!(stat_lines(&stat)[0], "cZxid = 0x2");
        assert_eq!(stat_lines(&stat).len(), 11);
    }
}
