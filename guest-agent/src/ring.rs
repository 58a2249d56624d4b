//! A bounded byte ring addressed by absolute stream offsets: the terminal scrollback.

use std::collections::VecDeque;

/// The last `capacity` bytes of a stream, with the offset of the oldest one.
#[derive(Debug)]
pub struct Ring {
    bytes: VecDeque<u8>,
    capacity: usize,
    start: u64,
}

/// What a read at an offset found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// Bytes starting at the requested offset.
    Bytes(Vec<u8>),
    /// The offset is older than the ring holds; the oldest byte held is at `to`.
    Missed {
        /// Where the ring's data starts now.
        to: u64,
    },
    /// Nothing new at this offset yet.
    Nothing,
}

impl Ring {
    /// An empty ring of `capacity` bytes.
    pub fn new(capacity: usize) -> Ring {
        Ring { bytes: VecDeque::with_capacity(capacity), capacity: capacity.max(1), start: 0 }
    }

    /// Bytes held at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Offset of the oldest byte held.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Offset one past the newest byte.
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// Appends, dropping the oldest bytes beyond the capacity.
    pub fn push(&mut self, data: &[u8]) {
        let data = if data.len() > self.capacity {
            let skip = data.len() - self.capacity;
            self.start += (self.bytes.len() + skip) as u64;
            self.bytes.clear();
            &data[skip..]
        } else {
            data
        };
        let overflow = (self.bytes.len() + data.len()).saturating_sub(self.capacity);
        self.bytes.drain(..overflow);
        self.start += overflow as u64;
        self.bytes.extend(data);
    }

    /// Up to `max` bytes from `offset` on. An offset past the end reads as nothing.
    pub fn read(&self, offset: u64, max: usize) -> Read {
        if offset < self.start {
            return Read::Missed { to: self.start };
        }
        let Ok(from) = usize::try_from(offset - self.start) else {
            return Read::Nothing;
        };
        if from >= self.bytes.len() {
            return Read::Nothing;
        }
        let to = self.bytes.len().min(from.saturating_add(max));
        let (a, b) = self.bytes.as_slices();
        let mut out = Vec::with_capacity(to - from);
        if from < a.len() {
            out.extend_from_slice(&a[from..to.min(a.len())]);
        }
        if to > a.len() {
            out.extend_from_slice(&b[from.saturating_sub(a.len())..to - a.len()]);
        }
        Read::Bytes(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes_at_their_offsets() {
        let mut ring = Ring::new(8);
        ring.push(b"abcdef");
        ring.push(b"ghij");
        assert_eq!((ring.start(), ring.end()), (2, 10));
        assert_eq!(ring.read(2, 100), Read::Bytes(b"cdefghij".to_vec()));
        assert_eq!(ring.read(7, 2), Read::Bytes(b"hi".to_vec()));
        assert_eq!(ring.read(1, 100), Read::Missed { to: 2 });
        assert_eq!(ring.read(10, 100), Read::Nothing);
        assert_eq!(ring.read(99, 100), Read::Nothing);
    }

    #[test]
    fn a_push_larger_than_the_ring_keeps_its_tail() {
        let mut ring = Ring::new(4);
        ring.push(b"xy");
        ring.push(b"0123456789");
        assert_eq!((ring.start(), ring.end()), (8, 12));
        assert_eq!(ring.read(8, 100), Read::Bytes(b"6789".to_vec()));
    }

    #[test]
    fn reads_across_the_wrap_point_are_contiguous() {
        let mut ring = Ring::new(5);
        for chunk in [&b"abc"[..], b"de", b"fg", b"h"] {
            ring.push(chunk);
        }
        assert_eq!(ring.read(3, 100), Read::Bytes(b"defgh".to_vec()));
        assert_eq!(ring.read(4, 3), Read::Bytes(b"efg".to_vec()));
    }
}
