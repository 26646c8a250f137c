//! A non-blocking connection's buffers: bytes read but not yet framed, bytes queued but not yet written.
//!
//! The event loop that owns connections lives in the server (one per shard); this is the part of it that
//! knows nothing about sessions: fill from the socket until it would block, hand out complete frames,
//! flush as much as the socket takes.

use std::io::{self, Read, Write};

use crate::frame::{FrameError, LENGTH_PREFIX, complete_frame};

/// How much to ask the socket for per read call.
const READ_CHUNK_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    /// The socket would block; the connection is still open.
    Open,
    /// The peer closed its side.
    Closed,
}

/// Buffers of one connection. Generic over the stream so it can be tested without sockets.
pub struct Buffers {
    /// Read bytes live in `input[input_start..input_end]`. The rest is room for the next read, kept
    /// initialised (zeroed once, then stale bytes) so that reads do not zero a 64 KiB chunk every time:
    /// that memset was a quarter of fkbench's CPU time.
    input: Vec<u8>,
    input_start: usize,
    input_end: usize,
    output: Vec<u8>,
    output_start: usize,
}

impl Default for Buffers {
    fn default() -> Self {
        Self::new()
    }
}

impl Buffers {
    pub fn new() -> Self {
        Buffers { input: Vec::new(), input_start: 0, input_end: 0, output: Vec::new(), output_start: 0 }
    }

    /// Reads until the socket would block, the peer closes, or `limit_bytes` are buffered (back-pressure:
    /// the caller stops polling for readability until frames are consumed).
    pub fn fill(&mut self, stream: &mut impl Read, limit_bytes: usize) -> io::Result<ReadStatus> {
        self.compact_input();
        while self.buffered_input() < limit_bytes {
            if self.input.len() - self.input_end < READ_CHUNK_BYTES {
                self.input.resize(self.input_end + READ_CHUNK_BYTES, 0);
            }
            match stream.read(&mut self.input[self.input_end..]) {
                Ok(0) => return Ok(ReadStatus::Closed),
                Ok(n) => self.input_end += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadStatus::Open),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ReadStatus::Open)
    }

    pub fn buffered_input(&self) -> usize {
        self.input_end - self.input_start
    }

    /// The first `n` unconsumed bytes, if that many are buffered.
    pub fn peek(&self, n: usize) -> Option<&[u8]> {
        self.input[..self.input_end].get(self.input_start..self.input_start + n)
    }

    /// Consumes `n` buffered bytes.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.buffered_input(), "consume {n} of {} bytes", self.buffered_input());
        self.input_start += n;
    }

    /// The payload of the next complete frame, consumed from the buffer.
    pub fn next_frame(&mut self, max_len: usize) -> Result<Option<&[u8]>, FrameError> {
        let start = self.input_start;
        match complete_frame(&self.input[start..self.input_end], max_len)? {
            None => Ok(None),
            Some(len) => {
                self.input_start += LENGTH_PREFIX + len;
                Ok(Some(&self.input[start + LENGTH_PREFIX..start + LENGTH_PREFIX + len]))
            }
        }
    }

    fn compact_input(&mut self) {
        if self.input_start > 0 {
            self.input.copy_within(self.input_start..self.input_end, 0);
            self.input_end -= self.input_start;
            self.input_start = 0;
        }
        // A burst can leave a large buffer behind; give it back once idle.
        if self.input_end == 0 && self.input.len() > 4 * READ_CHUNK_BYTES {
            self.input = Vec::new();
        }
    }

    /// Where replies are appended.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    pub fn pending_output(&self) -> usize {
        self.output.len() - self.output_start
    }

    /// Writes as much queued output as the socket takes. Returns true when everything was written.
    pub fn flush(&mut self, stream: &mut impl Write) -> io::Result<bool> {
        while self.output_start < self.output.len() {
            match stream.write(&self.output[self.output_start..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket accepted no bytes")),
                Ok(n) => self.output_start += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.output_start == self.output.len() {
            self.output.clear();
            self.output_start = 0;
            if self.output.capacity() > 4 * READ_CHUNK_BYTES {
                self.output = Vec::new();
            }
            Ok(true)
        } else {
            if self.output_start > self.output.len() / 2 {
                self.output.drain(..self.output_start);
                self.output_start = 0;
            }
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_are_reassembled() {
        let mut wire = Vec::new();
        for payload in [&b"abc"[..], b"", b"defgh"] {
            wire.extend_from_slice(&(payload.len() as i32).to_be_bytes());
            wire.extend_from_slice(payload);
        }
        let mut buffers = Buffers::new();
        let mut frames = Vec::new();
        for chunk in wire.chunks(3) {
            let mut reader = chunk;
            buffers.fill(&mut reader, 1 << 20).unwrap();
            while let Some(frame) = buffers.next_frame(100).unwrap() {
                frames.push(frame.to_vec());
            }
        }
        assert_eq!(frames, vec![b"abc".to_vec(), vec![], b"defgh".to_vec()]);
    }

    #[test]
    fn stale_bytes_of_an_earlier_read_are_never_framed() {
        let frame = |payload: &[u8]| [&(payload.len() as i32).to_be_bytes()[..], payload].concat();
        let mut buffers = Buffers::new();
        buffers.fill(&mut &frame(&[7; 100])[..], 1 << 20).unwrap();
        assert_eq!(buffers.next_frame(1000).unwrap(), Some(&[7; 100][..]));
        // Half a length prefix: the room after it still holds the first frame's bytes.
        let second = frame(b"new");
        buffers.fill(&mut &second[..2], 1 << 20).unwrap();
        assert_eq!(buffers.buffered_input(), 2);
        assert_eq!(buffers.peek(3), None);
        assert_eq!(buffers.next_frame(1000).unwrap(), None);
        buffers.fill(&mut &second[2..], 1 << 20).unwrap();
        assert_eq!(buffers.next_frame(1000).unwrap(), Some(&b"new"[..]));
        assert_eq!(buffers.next_frame(1000).unwrap(), None);
    }
}
