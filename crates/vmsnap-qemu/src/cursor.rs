//! A buffered forward reader over a layer: the stream scan reads small headers often and
//! skips page data without copying it.

use std::sync::Arc;

use vmsnap_core::{Error, Layer, Result};

const BUF: usize = 64 * 1024;

/// Sequential big-endian reader with a small read-ahead buffer.
#[derive(Debug)]
pub struct Cursor {
    lower: Arc<dyn Layer>,
    len: u64,
    pos: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl Cursor {
    /// A cursor at `pos` of `lower`.
    pub fn new(lower: Arc<dyn Layer>, pos: u64) -> Self {
        let len = lower.len();
        Cursor {
            lower,
            len,
            pos,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// Current position.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Length of the underlying layer.
    pub fn stream_len(&self) -> u64 {
        self.len
    }

    /// Bytes left.
    pub fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// Moves to `pos` (may be at most the end).
    pub fn seek(&mut self, pos: u64) -> Result<()> {
        if pos > self.len {
            return Err(Error::truncated(
                pos,
                format!("seek past the end of the stream ({} bytes)", self.len),
            ));
        }
        self.pos = pos;
        Ok(())
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: u64, what: &str) -> Result<()> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.len);
        match end {
            Some(e) => {
                self.pos = e;
                Ok(())
            }
            None => Err(Error::truncated(
                self.pos,
                format!(
                    "{what} of {n} bytes runs past the end of the stream ({} bytes)",
                    self.len
                ),
            )),
        }
    }

    fn fill(&mut self, need: usize, what: &str) -> Result<usize> {
        let in_buf = self.pos >= self.buf_start
            && self.pos - self.buf_start + need as u64 <= self.buf.len() as u64;
        if !in_buf {
            if self.remaining() < need as u64 {
                return Err(Error::truncated(
                    self.pos,
                    format!("{what} needs {need} bytes, the stream ends first"),
                ));
            }
            let n = (self.remaining().min(BUF.max(need) as u64)) as usize;
            self.buf.resize(n, 0);
            self.lower.read_at(self.pos, &mut self.buf)?;
            self.buf_start = self.pos;
        }
        Ok((self.pos - self.buf_start) as usize)
    }

    /// Reads `N` bytes.
    pub fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let at = self.fill(N, what)?;
        let mut out = [0u8; N];
        if let Some(s) = self.buf.get(at..at + N) {
            out.copy_from_slice(s);
        }
        self.pos += N as u64;
        Ok(out)
    }

    /// Peeks at the next byte without consuming it.
    pub fn peek_u8(&mut self, what: &str) -> Result<u8> {
        let at = self.fill(1, what)?;
        Ok(self.buf.get(at).copied().unwrap_or(0))
    }

    /// A byte.
    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    /// A be16.
    pub fn be16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    /// A be32.
    pub fn be32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    /// A be64.
    pub fn be64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// `n` bytes into a new vector (n ≤ 64 KiB callers only, or checked by the caller).
    pub fn bytes(&mut self, n: usize, what: &str) -> Result<Vec<u8>> {
        let at = self.fill(n, what)?;
        let v = self
            .buf
            .get(at..at + n)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        self.pos += n as u64;
        Ok(v)
    }

    /// A u8-length-prefixed string (idstr, block name).
    pub fn str8(&mut self, what: &str) -> Result<String> {
        let n = self.u8(what)? as usize;
        let b = self.bytes(n, what)?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }
}
