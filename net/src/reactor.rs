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
    input: Vec<u8>,
    input_start: usize,
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
        Buffers { input: Vec::new(), input_start: 0, output: Vec::new(), output_start: 0 }
    }

    /// Reads until the socket would block, the peer closes, or `limit_bytes` are buffered (back-pressure:
    /// the caller stops polling for readability until frames are consumed).
    pub fn fill(&mut self, stream: &mut impl Read, limit_bytes: usize) -> io::Result<ReadStatus> {
        self.compact_input();
        while self.buffered_input() < limit_bytes {
            let len = self.input.len();
            self.input.resize(len + READ_CHUNK_BYTES, 0);
            match stream.read(&mut self.input[len..]) {
                Ok(0) => {
                    self.input.truncate(len);
                    return Ok(ReadStatus::Closed);
                }
                Ok(n) => self.input.truncate(len + n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.input.truncate(len);
                    return Ok(ReadStatus::Open);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.input.truncate(len),
                Err(e) => {
                    self.input.truncate(len);
                    return Err(e);
                }
            }
        }
        Ok(ReadStatus::Open)
    }

    pub fn buffered_input(&self) -> usize {
        self.input.len() - self.input_start
    }

    /// The first `n` unconsumed bytes, if that many are buffered.
    pub fn peek(&self, n: usize) -> Option<&[u8]> {
        self.input.get(self.input_start..self.input_start + n)
    }

    /// Consumes `n` buffered bytes.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.buffered_input(), "consume {n} of {} bytes", self.buffered_input());
        self.input_start += n;
    }

    /// The payload of the next complete frame, consumed from the buffer.
    pub fn next_frame(&mut self, max_len: usize) -> Result<Option<&[u8]>, FrameError> {
        let start = self.input_start;
        match complete_frame(&self.input[start..], max_len)? {
            None => Ok(None),
            Some(len) => {
                self.input_start += LENGTH_PREFIX + len;
                Ok(Some(&self.input[start + LENGTH_PREFIX..start + LENGTH_PREFIX + len]))
            }
        }
    }

    fn compact_input(&mut self) {
        if self.input_start == self.input.len() {
            self.input.clear();
            self.input_start = 0;
        } else if self.input_start > 0 {
            self.input.drain(..self.input_start);
            self.input_start = 0;
        }
        // A burst can leave a large buffer behind; give it back once idle.
        if self.input.is_empty() && self.input.capacity() > 4 * READ_CHUNK_BYTES {
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
}
