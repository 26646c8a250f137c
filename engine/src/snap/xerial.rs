//! snappy-java's stream framing, which ZooKeeper writes for `snapshot.<zxid>.snappy` files
//! (`org.xerial.snappy.SnappyOutputStream`; it is not Google's Snappy framing format, which the `snap`
//! crate's frame encoder writes).
//!
//! # Layout
//! ```text
//! header   magic 0x82 "SNAPPY" 0x00 (8 bytes) | version (int, 1) | compatible version (int, 1)
//! chunks   compressed length (int) | one raw Snappy block of at most 32 KiB of input
//! ```
//! Integers are big-endian. A reader must also accept a second header where a chunk length would be
//! (snappy-java reads concatenated streams), which a chunk cannot be mistaken for: its first byte,
//! 0x82, would make the length negative.

use std::io::{self, Write};

use thiserror::Error;

const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const HEADER_BYTES: usize = 16;
/// The version written, and the oldest a reader must understand to read what we write.
const VERSION: i32 = 1;
const COMPATIBLE_VERSION: i32 = 1;
/// snappy-java's default block size: input bytes per chunk.
const BLOCK_BYTES: usize = 32 * 1024;

/// Whether `head` (a file's first bytes) starts with snappy-java's magic, ZooKeeper's validity check for
/// a `.snappy` snapshot.
pub fn has_magic(head: &[u8]) -> bool {
    head.starts_with(&MAGIC)
}

#[derive(Debug, Error)]
pub enum FrameError {
    #[error("at offset {offset}: {reason}")]
    Invalid { offset: usize, reason: String },
}

fn invalid(offset: usize, reason: impl Into<String>) -> FrameError {
    FrameError::Invalid { offset, reason: reason.into() }
}

/// The uncompressed content of a whole stream. Offsets in errors count bytes of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(2));
    let mut decoder = snap::raw::Decoder::new();
    let mut at = header(bytes, 0)?;
    while at < bytes.len() {
        if bytes[at] == MAGIC[0] {
            at = header(bytes, at)?;
            continue;
        }
        let Some(length) = bytes.get(at..at + 4) else {
            return Err(invalid(at, format!("a chunk length cut short ({} of 4 bytes)", bytes.len() - at)));
        };
        let length = i32::from_be_bytes(length.try_into().expect("4 bytes")) as usize;
        let start = at + 4;
        let Some(chunk) = bytes.get(start..start + length) else {
            return Err(invalid(at, format!("a chunk of {length} bytes, but only {} remain", bytes.len() - start)));
        };
        let size = snap::raw::decompress_len(chunk).map_err(|e| invalid(start, format!("chunk: {e}")))?;
        let filled = out.len();
        out.resize(filled + size, 0);
        decoder.decompress(chunk, &mut out[filled..]).map_err(|e| invalid(start, format!("chunk: {e}")))?;
        at = start + length;
    }
    Ok(out)
}

/// Checks the header at `at`; the offset after it.
fn header(bytes: &[u8], at: usize) -> Result<usize, FrameError> {
    let Some(head) = bytes.get(at..at + HEADER_BYTES) else {
        return Err(invalid(at, "the snappy-java header is cut short"));
    };
    if !has_magic(head) {
        return Err(invalid(at, format!("no snappy-java magic (found {:02x?})", &head[..MAGIC.len()])));
    }
    let compatible = i32::from_be_bytes(head[12..16].try_into().expect("4 bytes"));
    if compatible > VERSION {
        return Err(invalid(at, format!("stream needs snappy-java format version {compatible}; we read {VERSION}")));
    }
    Ok(at + HEADER_BYTES)
}

/// Compresses what is written through it into snappy-java's framing; [`finish`](Self::finish) writes
/// the last chunk and hands the inner writer back.
pub struct SnappyJavaWriter<W: Write> {
    inner: W,
    block: Vec<u8>,
    compressed: Vec<u8>,
    encoder: snap::raw::Encoder,
}

impl<W: Write> SnappyJavaWriter<W> {
    pub fn new(mut inner: W) -> io::Result<SnappyJavaWriter<W>> {
        let mut head = Vec::with_capacity(HEADER_BYTES);
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&VERSION.to_be_bytes());
        head.extend_from_slice(&COMPATIBLE_VERSION.to_be_bytes());
        inner.write_all(&head)?;
        Ok(SnappyJavaWriter {
            inner,
            block: Vec::with_capacity(BLOCK_BYTES),
            compressed: vec![0; snap::raw::max_compress_len(BLOCK_BYTES)],
            encoder: snap::raw::Encoder::new(),
        })
    }

    fn write_chunk(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let n = self.encoder.compress(&self.block, &mut self.compressed).map_err(io::Error::other)?;
        self.inner.write_all(&(n as i32).to_be_bytes())?;
        self.inner.write_all(&self.compressed[..n])?;
        self.block.clear();
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.write_chunk()?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SnappyJavaWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK_BYTES - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK_BYTES {
            self.write_chunk()?;
        }
        Ok(n)
    }

    /// Writes nothing short of a full block: a chunk per flush would compress worse, and nothing reads
    /// a snapshot before it is finished.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(content: &[u8]) -> Vec<u8> {
        let mut w = SnappyJavaWriter::new(Vec::new()).unwrap();
        w.write_all(content).unwrap();
        w.finish().unwrap()
    }

    /// What snappy-java 1.1.8 writes for "hello" (`SnappyOutputStream`), taken from a run of it.
    const HELLO_FROM_SNAPPY_JAVA: [u8; 27] = [
        0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7, 5, 0x10, b'h', b'e', b'l',
        b'l', b'o',
    ];

    #[test]
    fn writes_what_snappy_java_writes_and_reads_it() {
        assert_eq!(encode(b"hello"), HELLO_FROM_SNAPPY_JAVA);
        assert_eq!(decode(&HELLO_FROM_SNAPPY_JAVA).unwrap(), b"hello");
    }

    #[test]
    fn round_trips_across_blocks_and_concatenated_streams() {
        let content: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let stream = encode(&content);
        assert!(stream.len() < content.len() / 2, "compresses: {} of {}", stream.len(), content.len());
        assert_eq!(decode(&stream).unwrap(), content);
        let mut two = encode(b"first ");
        two.extend_from_slice(&encode(b"second"));
        assert_eq!(decode(&two).unwrap(), b"first second");
        assert_eq!(decode(&encode(b"")).unwrap(), b"");
    }

    #[test]
    fn damage_is_named_with_its_offset() {
        let stream = encode(&[7u8; 70_000]);
        let err = |bytes: &[u8]| decode(bytes).unwrap_err().to_string();
        assert!(err(&stream[..stream.len() - 1]).contains("only"), "{}", err(&stream[..stream.len() - 1]));
        assert!(err(&stream[..10]).starts_with("at offset 0: the snappy-java header is cut short"));
        let mut no_magic = stream.clone();
        no_magic[1] = b's';
        assert!(err(&no_magic).contains("no snappy-java magic"));
        let mut bad_chunk = stream.clone();
        bad_chunk[HEADER_BYTES + 4] = 0xff;
        assert!(err(&bad_chunk).starts_with("at offset 20: chunk:"), "{}", err(&bad_chunk));
    }
}
