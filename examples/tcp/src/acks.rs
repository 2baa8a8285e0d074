//! Acknowledged delivery (`acks = true`): the server tells the client how many bytes of the
//! connection went through its pipeline; the client acks a batch only once they cover it.
//!
//! The protocol is one line per acknowledgement, server to client: `ack <offset>\n`, where
//! `offset` counts the bytes the client sent on this connection, every one of which was
//! delivered by the server's sinks (cumulative, so acknowledgements can be lost or merged).

use std::collections::VecDeque;
use std::io::{ErrorKind, Read as _};
use std::net::TcpStream;
use std::time::Instant;

/// Server side, one connection: what was pulled from it and awaits its verdict, in order.
#[derive(Debug, Default)]
pub(crate) struct Received {
    /// Bytes read from the connection so far.
    read: u64,
    /// Per pull that read from it: the pull id, the offset its bytes end at, and whether
    /// its verdict was an ack.
    pulls: VecDeque<(u64, u64, bool)>,
}

impl Received {
    /// `len` more bytes were read in pull `pull`.
    pub(crate) fn read(&mut self, pull: u64, len: usize) {
        self.read += len as u64;
        match self.pulls.back_mut() {
            Some((last, end, _)) if *last == pull => *end = self.read,
            _ => self.pulls.push_back((pull, self.read, false)),
        }
    }

    /// Pull `pull` was delivered; returns the offset to acknowledge, if it moved (every
    /// pull before it must be delivered too).
    pub(crate) fn acked(&mut self, pull: u64) -> Option<u64> {
        for (id, _, acked) in &mut self.pulls {
            if *id == pull {
                *acked = true;
            }
        }
        let mut offset = None;
        while let Some(&(_, end, true)) = self.pulls.front() {
            offset = Some(end);
            self.pulls.pop_front();
        }
        offset
    }
}

/// Client side, one connection: bytes written and bytes the server acknowledged.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    written: u64,
    acknowledged: u64,
    /// An unfinished acknowledgement line.
    line: Vec<u8>,
}

/// Longest acknowledgement line a server may send (`ack ` and 20 digits).
const MAX_LINE: usize = 32;

impl Sent {
    /// `len` more bytes were written.
    pub(crate) fn wrote(&mut self, len: usize) {
        self.written += len as u64;
    }

    /// Whether everything written was acknowledged.
    pub(crate) fn is_covered(&self) -> bool {
        self.acknowledged >= self.written
    }

    /// Reads acknowledgements from `stream` until everything written is covered or
    /// `deadline` passes. The stream is left non-blocking.
    ///
    /// # Errors
    /// The connection ended or failed, the deadline passed, or the server sent something
    /// that is not an acknowledgement: the caller drops the connection.
    pub(crate) fn wait(&mut self, stream: &mut TcpStream, deadline: Instant) -> Result<(), String> {
        let mut buffer = [0u8; 512];
        let result = loop {
            if self.is_covered() {
                break Ok(());
            }
            let Some(left) = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                break Err(format!(
                    "the server acknowledged only {} of {} bytes in time (does it have `acks = true`?)",
                    self.acknowledged, self.written
                ));
            };
            if let Err(e) = stream
                .set_nonblocking(false)
                .and_then(|()| stream.set_read_timeout(Some(left)))
            {
                break Err(e.to_string());
            }
            match stream.read(&mut buffer) {
                Ok(0) => break Err("the server closed the connection".to_owned()),
                Ok(n) => {
                    if let Err(e) = self.parse(&buffer[..n]) {
                        break Err(e);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(e.to_string()),
            }
        };
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        result
    }

    fn parse(&mut self, bytes: &[u8]) -> Result<(), String> {
        for &byte in bytes {
            if byte != b'\n' {
                if self.line.len() >= MAX_LINE {
                    return Err("the server sent something other than acknowledgements".into());
                }
                self.line.push(byte);
                continue;
            }
            let offset = std::str::from_utf8(&self.line)
                .ok()
                .and_then(|line| line.strip_prefix("ack "))
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|&n| n <= self.written)
                .ok_or_else(|| {
                    format!(
                        "the server sent {:?}, not an acknowledgement of at most {} bytes",
                        String::from_utf8_lossy(&self.line),
                        self.written
                    )
                })?;
            self.acknowledged = self.acknowledged.max(offset);
            self.line.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_acknowledges_the_delivered_prefix_only() {
        let mut received = Received::default();
        received.read(1, 10);
        received.read(1, 5);
        received.read(2, 7);
        received.read(3, 3);
        assert_eq!(received.acked(2), None, "pull 1 is not delivered yet");
        assert_eq!(received.acked(1), Some(22), "pulls 1 and 2 are");
        assert_eq!(received.acked(3), Some(25));
        assert_eq!(received.acked(3), None);
    }

    #[test]
    fn the_client_reads_cumulative_acknowledgements_in_any_chunks() {
        let mut sent = Sent::default();
        sent.wrote(30);
        sent.parse(b"ack 1").unwrap();
        sent.parse(b"0\nack 5\n").unwrap();
        assert_eq!(sent.acknowledged, 10, "never goes back");
        assert!(!sent.is_covered());
        sent.parse(b"ack 30\n").unwrap();
        assert!(sent.is_covered());
        assert!(sent.parse(b"ack 31\n").is_err(), "more than was sent");
        assert!(Sent::default().parse(b"hello\n").is_err());
        assert!(Sent::default().parse(&[b'1'; 64]).is_err(), "endless line");
    }
}
