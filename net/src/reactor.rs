//! A non-blocking connection's buffers: bytes read but not yet framed, bytes queued but not yet written.
//!
//! The event loop that owns connections lives in the server (one per shard); this is the part of it that
//! knows nothing about sessions: fill from the socket until it would block, hand out complete frames,
//! flush as much as the socket takes.

use std::io::{self, Read, Write};

use crate::frame::{FrameError, LENGTH_PREFIX, complete_frame};

/// How much to ask the socket for per read call, and the size of a pooled input buffer.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Input buffers a pool keeps for reuse; beyond this, returned buffers are freed. An event loop that
/// reads at most this many idle connections before framing what it read never allocates a new one.
pub const POOL_BUFFERS_MAX: usize = 64;
/// Output capacity kept after everything queued was written; a larger buffer is freed, so that an idle
/// connection holds at most this much.
const OUTPUT_KEEP_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    /// The socket would block: everything it held was read, and readiness will be signalled again when
    /// more arrives.
    Drained,
    /// The limit was reached. The socket may hold more, and (edge-triggered) will not say so again: the
    /// caller must come back once frames are consumed.
    Full,
    /// The peer closed its side.
    Closed,
}

/// Input buffers lent to connections only while they hold bytes not yet framed, so that idle
/// connections cost no input memory. One per event loop (not shared between threads).
#[derive(Default)]
pub struct BufferPool {
    free: Vec<Vec<u8>>,
}

impl BufferPool {
    /// A buffer of `READ_CHUNK_BYTES` initialised bytes (zeroed once when new; reused ones keep stale
    /// bytes, which are never framed: only `input_start..input_end` is).
    fn take(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_else(|| vec![0; READ_CHUNK_BYTES])
    }

    fn give(&mut self, mut buffer: Vec<u8>) {
        // Buffers grown for a large frame are freed rather than kept.
        if buffer.len() >= READ_CHUNK_BYTES
            && buffer.capacity() <= 2 * READ_CHUNK_BYTES
            && self.free.len() < POOL_BUFFERS_MAX
        {
            buffer.truncate(READ_CHUNK_BYTES);
            self.free.push(buffer);
        }
    }
}

/// Buffers of one connection. Generic over the stream so it can be tested without sockets.
pub struct Buffers {
    /// Read bytes live in `input[input_start..input_end]`. The rest is room for the next read, kept
    /// initialised so that reads need not zero it: that memset was a quarter of fkbench's CPU time.
    /// Empty (no allocation) while nothing is buffered; borrowed from a [`BufferPool`] otherwise.
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
    /// [`ReadStatus::Full`] tells the caller to come back once frames are consumed).
    pub fn fill(
        &mut self,
        stream: &mut impl Read,
        limit_bytes: usize,
        pool: &mut BufferPool,
    ) -> io::Result<ReadStatus> {
        self.compact_input();
        if self.input.is_empty() {
            self.input = pool.take();
        }
        let status = loop {
            if self.buffered_input() >= limit_bytes {
                break Ok(ReadStatus::Full);
            }
            if self.input.len() - self.input_end < READ_CHUNK_BYTES / 4 {
                self.input.resize(self.input_end + READ_CHUNK_BYTES, 0);
            }
            match stream.read(&mut self.input[self.input_end..]) {
                Ok(0) => break Ok(ReadStatus::Closed),
                Ok(n) => self.input_end += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(ReadStatus::Drained),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.release_input(pool);
        status
    }

    /// Returns the input buffer to `pool` if nothing is left in it.
    pub fn release_input(&mut self, pool: &mut BufferPool) {
        if self.buffered_input() == 0 && !self.input.is_empty() {
            self.input_start = 0;
            self.input_end = 0;
            pool.give(std::mem::take(&mut self.input));
        }
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

    /// Whether [`Buffers::next_frame`] would return something (a frame or an error) without more bytes.
    pub fn frame_ready(&self, max_len: usize) -> bool {
        !matches!(complete_frame(&self.input[self.input_start..self.input_end], max_len), Ok(None))
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
    }

    /// Where replies are appended.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    pub fn pending_output(&self) -> usize {
        self.output.len() - self.output_start
    }

    /// Drops everything queued and not yet written (the connection is being closed).
    pub fn discard_output(&mut self) {
        self.output = Vec::new();
        self.output_start = 0;
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
            if self.output.capacity() > OUTPUT_KEEP_BYTES {
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

    /// Bytes this connection holds allocated (for tests and accounting).
    pub fn allocated_bytes(&self) -> usize {
        self.input.capacity() + self.output.capacity()
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
        let mut pool = BufferPool::default();
        let mut frames = Vec::new();
        for chunk in wire.chunks(3) {
            let mut reader = chunk;
            buffers.fill(&mut reader, 1 << 20, &mut pool).unwrap();
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
        let mut pool = BufferPool::default();
        buffers.fill(&mut &frame(&[7; 100])[..], 1 << 20, &mut pool).unwrap();
        // Stale bytes only matter in a reused buffer: keep this one by leaving a byte unframed.
        buffers.fill(&mut &[0u8][..], 1 << 20, &mut pool).unwrap();
        assert_eq!(buffers.next_frame(1000).unwrap(), Some(&[7; 100][..]));
        buffers.consume(1);
        // Half a length prefix: the room after it still holds the first frame's bytes.
        let second = frame(b"new");
        buffers.fill(&mut &second[..2], 1 << 20, &mut pool).unwrap();
        assert_eq!(buffers.buffered_input(), 2);
        assert_eq!(buffers.peek(3), None);
        assert_eq!(buffers.next_frame(1000).unwrap(), None);
        buffers.fill(&mut &second[2..], 1 << 20, &mut pool).unwrap();
        assert_eq!(buffers.next_frame(1000).unwrap(), Some(&b"new"[..]));
        assert_eq!(buffers.next_frame(1000).unwrap(), None);
    }

    /// A socket that hands out its chunks, then would block.
    struct Script(std::collections::VecDeque<Vec<u8>>);

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some(mut chunk) = self.0.pop_front() else { return Err(io::ErrorKind::WouldBlock.into()) };
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            if n < chunk.len() {
                self.0.push_front(chunk.split_off(n));
            }
            Ok(n)
        }
    }

    #[test]
    fn input_memory_is_lent_only_while_bytes_wait_to_be_framed() {
        let mut pool = BufferPool::default();
        let mut buffers = Buffers::new();
        let mut socket = Script([vec![0, 0, 0, 2, b'h'], vec![b'i']].into());
        assert_eq!(buffers.fill(&mut socket, 1 << 20, &mut pool).unwrap(), ReadStatus::Drained);
        assert_eq!(buffers.next_frame(100).unwrap(), Some(&b"hi"[..]));
        buffers.release_input(&mut pool);
        assert_eq!(buffers.allocated_bytes(), 0, "idle: nothing held");
        assert_eq!(pool.free.len(), 1, "the buffer went back to the pool");
        // A read that finds nothing borrows and returns the buffer at once.
        assert_eq!(buffers.fill(&mut socket, 1 << 20, &mut pool).unwrap(), ReadStatus::Drained);
        assert_eq!((buffers.allocated_bytes(), pool.free.len()), (0, 1));
    }

    #[test]
    fn reading_stops_at_the_limit_and_says_so() {
        let mut pool = BufferPool::default();
        let mut buffers = Buffers::new();
        let mut socket = Script(std::iter::repeat_n(vec![1u8; 1000], 300).collect());
        assert_eq!(buffers.fill(&mut socket, 100_000, &mut pool).unwrap(), ReadStatus::Full);
        assert!((100_000..101_000).contains(&buffers.buffered_input()));
        buffers.consume(buffers.buffered_input());
        assert_eq!(buffers.fill(&mut socket, 1 << 20, &mut pool).unwrap(), ReadStatus::Drained);
        assert!((199_000..=200_000).contains(&buffers.buffered_input()));
    }
}
