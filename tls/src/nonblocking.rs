//! TLS inside a non-blocking event loop (the server's shards, fkbench's engine): the plaintext side of a
//! rustls connection presented as `Read`/`Write`, so the same buffers that fill from and flush to a
//! plain socket work over TLS. `WouldBlock` means what it means on the socket (nothing more to read, no
//! room to write), which edge-triggered readiness relies on.

use std::io::{self, Read, Write};

/// The plaintext side of `tls` over `socket`.
pub struct Plaintext<'a, S> {
    pub tls: &'a mut rustls::Connection,
    pub socket: &'a mut S,
}

impl<S: Read + Write> Read for Plaintext<'_, S> {
    /// Plaintext rustls holds, else records from the socket until some plaintext comes of them (a
    /// handshake answers on the way). `Ok(0)` is the peer's close_notify or end of stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.tls.read_tls(self.socket)? == 0 {
                return Ok(0);
            }
            if let Err(e) = self.tls.process_new_packets() {
                // The alert rustls queued for the peer goes out before the connection closes.
                let _ = write_records(self.tls, self.socket);
                return Err(io::Error::new(io::ErrorKind::InvalidData, TlsFailure(e)));
            }
            // Handshake messages (and TLS 1.3 tickets or key updates) go out as soon as they are made.
            write_records(self.tls, self.socket)?;
        }
    }
}

impl<S: Read + Write> Write for Plaintext<'_, S> {
    /// Hands plaintext to rustls once the records it already made are in the socket, so what it holds
    /// stays bounded by its buffer limit.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !write_records(self.tls, self.socket)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let taken = self.tls.writer().write(buf)?;
        if taken == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        write_records(self.tls, self.socket)?;
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the TLS records rustls holds; true when none is left (false: the socket is full).
pub fn write_records(tls: &mut rustls::Connection, socket: &mut impl Write) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(socket) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// A TLS protocol failure (a bad record, a failed handshake, an untrusted certificate), told apart from
/// socket errors: `io::Error::get_ref` downcasts to it.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsFailure(pub rustls::Error);
