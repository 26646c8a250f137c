//! Length-prefixed framing: every packet is an `int32` length followed by that many bytes.

use thiserror::Error;

/// A frame header that must close the connection (ZooKeeper: "Len error").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("negative frame length {0}")]
    Negative(i32),
    #[error("frame length {len} exceeds jute.maxbuffer {max}")]
    TooLarge { len: usize, max: usize },
}

pub const LENGTH_PREFIX: usize = 4;

/// If `buf` starts with a complete frame, returns its payload length (the frame occupies
/// `LENGTH_PREFIX + len` bytes). `Ok(None)` means more bytes are needed.
pub fn complete_frame(buf: &[u8], max_len: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..LENGTH_PREFIX) else { return Ok(None) };
    let len = i32::from_be_bytes(prefix.try_into().expect("4 bytes"));
    if len < 0 {
        return Err(FrameError::Negative(len));
    }
    let len = len as usize;
    if len > max_len {
        return Err(FrameError::TooLarge { len, max: max_len });
    }
    Ok((buf.len() >= LENGTH_PREFIX + len).then_some(len))
}

/// Starts a frame in `out`: reserves the length prefix and returns where it is.
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; LENGTH_PREFIX]);
    start
}

/// Patches the length prefix written by [`begin_frame`] now that the payload is complete.
pub fn end_frame(out: &mut [u8], start: usize) {
    let len = out.len() - start - LENGTH_PREFIX;
    let len = i32::try_from(len).expect("frame longer than i32::MAX");
    out[start..start + LENGTH_PREFIX].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_delimited_and_bounded() {
        let mut out = Vec::new();
        let start = begin_frame(&mut out);
        out.extend_from_slice(b"hello");
        end_frame(&mut out, start);
        assert_eq!(complete_frame(&out, 100), Ok(Some(5)));
        assert_eq!(complete_frame(&out[..6], 100), Ok(None));
        assert_eq!(complete_frame(&out, 4), Err(FrameError::TooLarge { len: 5, max: 4 }));
        assert_eq!(complete_frame(&(-1i32).to_be_bytes(), 4), Err(FrameError::Negative(-1)));
    }
}
