//! The txn log file layout (reference/on-disk.md §2), byte-compatible with ZooKeeper 3.8:
//!
//! ```text
//! FileHeader  magic "ZKLG" (int) | version 2 (int) | dbid 0 (long)            16 bytes
//! record*     checksum (long: Adler32 of the entry, upper 32 bits zero)
//!             length (int) | entry (TxnHeader, body, optional TxnDigest) | 'B'
//! padding     zeros to the preallocated size; a length of 0 marks the end
//! ```
//! A reader stops at a zero length, at end of file inside a record, or at an end-of-record byte that is
//! not 'B' (a write that did not complete). A checksum that does not match is corruption.

use fk_net::jute::JuteWriter;

pub const LOG_MAGIC: i32 = 0x5A4B_4C47; // "ZKLG"
pub const FORMAT_VERSION: i32 = 2;
pub const HEADER_LEN: usize = 16;
/// Bytes around each entry: checksum (8), length (4), end-of-record (1).
pub const RECORD_OVERHEAD: usize = 13;
pub const END_OF_RECORD: u8 = b'B';

/// ZooKeeper grows a log when fewer than this many bytes are left before its end.
const PREALLOC_MARGIN: u64 = 4096;

pub fn encode_header(out: &mut Vec<u8>) {
    out.put_i32(LOG_MAGIC);
    out.put_i32(FORMAT_VERSION);
    out.put_i64(0);
}

/// Appends one record around `entry` (the serialized txn).
pub fn encode_record(out: &mut Vec<u8>, entry: &[u8]) {
    out.put_i64(adler32(entry) as i64);
    out.put_i32(i32::try_from(entry.len()).expect("txn larger than 2 GiB"));
    out.extend_from_slice(entry);
    out.push(END_OF_RECORD);
}

pub fn adler32(bytes: &[u8]) -> u32 {
    let mut adler = simd_adler32::Adler32::new();
    adler.write(bytes);
    adler.finish()
}

/// ZooKeeper's `FilePadding.calculateFileSizeWithPadding`: the size a log must have before bytes up to
/// `position` are written, so that our files grow exactly as ZooKeeper's do.
pub fn padded_size(position: u64, current_size: u64, prealloc: u64) -> u64 {
    if prealloc == 0 || position + PREALLOC_MARGIN < current_size {
        return current_size;
    }
    if position > current_size { (position + prealloc) / prealloc * prealloc } else { current_size + prealloc }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_matches_zookeeper() {
        let p = 64 * 1024;
        // A fresh log: header written, then the first growth adds a whole prealloc after it.
        assert_eq!(padded_size(16, 16, p), 16 + p);
        assert_eq!(padded_size(100, 16 + p, p), 16 + p);
        assert_eq!(padded_size(16 + p - 4096, 16 + p, p), 16 + 2 * p);
        assert_eq!(padded_size(5 * p + 7, 16 + p, p), 6 * p);
    }

    #[test]
    fn adler_of_empty_is_one() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }
}
