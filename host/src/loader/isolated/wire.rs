//! The wire between a host and its child: frames `[u32 length][u8 tag][payload]`,
//! little-endian, their tags, and the readers and writers of their payloads, which check
//! every length against what is left (nothing a child sends is trusted).

use std::io::{Read, Write};

use weir_sdk::abi::EventId;

use super::MAX_FRAME;
use crate::error::CallError;
use crate::field_path::FieldPath;
use crate::loader::Notice;
use crate::loader::instance::side_of;

/// Frame tags.
pub(crate) mod tag {
    pub(crate) const CREATE: u8 = 1;
    pub(crate) const CONNECT: u8 = 2;
    pub(crate) const NOTIFY: u8 = 3;
    pub(crate) const PULL: u8 = 4;
    pub(crate) const FEEDBACK: u8 = 5;
    pub(crate) const SINK_BATCH: u8 = 6;
    pub(crate) const CLOSE: u8 = 7;
    /// The request succeeded; its results follow.
    pub(crate) const OK: u8 = 0x80;
    /// The request failed; a [`CallError`](crate::CallError) follows.
    pub(crate) const ERR: u8 = 0x81;
    /// Added to `OK` or `ERR`: the connector asked for the run to shut down during the call.
    pub(crate) const SHUTDOWN_REQUESTED: u8 = 0x02;
    /// A log record (any time).
    pub(crate) const LOG: u8 = 0x90;
    /// The source's waker was woken (any time).
    pub(crate) const WAKE: u8 = 0x91;
    /// The connector asked for the run to shut down (any time).
    pub(crate) const SHUTDOWN: u8 = 0x92;
}

/// Builds one frame's payload.
#[derive(Default)]
pub(super) struct Out(pub(super) Vec<u8>);

impl Out {
    pub(super) fn u8(&mut self, value: u8) -> &mut Self {
        self.0.push(value);
        self
    }

    pub(super) fn u32(&mut self, value: u32) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub(super) fn u64(&mut self, value: u64) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub(super) fn len(&mut self, len: usize) -> &mut Self {
        // Frames are at most `MAX_FRAME` long, so every length fits.
        self.u32(u32::try_from(len).unwrap_or(u32::MAX))
    }

    pub(super) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.len(bytes.len());
        self.0.extend_from_slice(bytes);
        self
    }

    pub(super) fn str(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }
}

/// What is wrong with a frame the other side sent.
#[derive(Debug)]
pub(super) struct Garbage(pub(super) String);

/// Reads one frame's payload, checking every length against what is left.
pub(super) struct In<'a>(pub(super) &'a [u8]);

impl<'a> In<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], Garbage> {
        if self.0.len() < n {
            return Err(Garbage(format!(
                "a frame ends {} bytes short",
                n - self.0.len()
            )));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(super) fn u8(&mut self) -> Result<u8, Garbage> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u32(&mut self) -> Result<u32, Garbage> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    }

    pub(super) fn u64(&mut self) -> Result<u64, Garbage> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    /// A count of items each at least `min_size` bytes long: one the frame cannot hold is
    /// garbage (so no allocation is sized by a lie).
    pub(super) fn count(&mut self, min_size: usize) -> Result<usize, Garbage> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.0.len() {
            return Err(Garbage(format!(
                "a frame claims {n} items but holds {} bytes",
                self.0.len()
            )));
        }
        Ok(n)
    }

    pub(super) fn event_id(&mut self) -> Result<EventId, Garbage> {
        Ok(EventId {
            stream: self.u64()?,
            pull: self.u64()?,
        })
    }

    pub(super) fn bytes(&mut self) -> Result<&'a [u8], Garbage> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    pub(super) fn str(&mut self) -> Result<&'a str, Garbage> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Garbage("a string is not UTF-8".into()))
    }

    pub(super) fn end(&self) -> Result<(), Garbage> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Garbage(format!(
                "{} bytes past the end of a frame",
                self.0.len()
            )))
        }
    }
}

/// Writes one frame with one `write_all` (so frames from several threads, each under the
/// writer's lock, never interleave).
pub(super) fn write_frame(stream: &mut impl Write, tag: u8, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len() + 1)
        .ok()
        .filter(|len| *len as usize <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("a frame over the size limit"))?;
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.push(tag);
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}

/// Reads one frame: `None` at a clean end of the stream (between frames).
pub(super) fn read_frame(
    stream: &mut impl Read,
    max: usize,
) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    // The length and the tag: the payload is then read into a buffer of its own size (no
    // move of it to take the tag off its front).
    let mut header = [0u8; 5];
    match stream.read_exact(&mut header) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len == 0 || len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes (the limit is {max})"),
        ));
    }
    let mut payload = vec![0u8; len - 1];
    stream.read_exact(&mut payload)?;
    Ok(Some((header[4], payload)))
}

pub(super) fn notice_code(notice: Notice) -> u8 {
    match notice {
        Notice::Start => 0,
        Notice::Pause => 1,
        Notice::Resume => 2,
        Notice::Drain => 3,
        Notice::Stop => 4,
        Notice::CircuitClosed => 5,
        Notice::CircuitOpened => 6,
    }
}

pub(super) fn notice_of(code: u8) -> Result<Notice, Garbage> {
    Ok(match code {
        0 => Notice::Start,
        1 => Notice::Pause,
        2 => Notice::Resume,
        3 => Notice::Drain,
        4 => Notice::Stop,
        5 => Notice::CircuitClosed,
        6 => Notice::CircuitOpened,
        other => return Err(Garbage(format!("unknown notice {other}"))),
    })
}

/// A [`CallError`] as it crosses: its kind and text; the connector, plugin and method are
/// the host's own.
pub(super) fn put_error(out: &mut Out, error: &CallError) {
    match error {
        CallError::Failed { message, .. } => out.u8(0).str(message),
        CallError::Permanent { message, .. } => out.u8(1).str(message),
        CallError::Config {
            field_path,
            message,
            ..
        } => out.u8(2).str(message).str(&field_path.to_json()),
        CallError::Panicked {
            message, location, ..
        } => out.u8(3).str(message).str(location),
        CallError::Poisoned { .. } => out.u8(4),
        CallError::Closed { .. } => out.u8(5),
        CallError::Unsupported { side, .. } => out.u8(6).str(side),
        CallError::Protocol { message, .. } => out.u8(7).str(message),
        // A child runs its plugin in process: its own calls do not crash this way.
        CallError::Crashed { reason, .. } => out.u8(7).str(reason),
    };
}

pub(super) fn get_error(
    input: &mut In<'_>,
    connector: &str,
    plugin: &str,
    method: &'static str,
) -> Result<CallError, Garbage> {
    let (connector, plugin) = (connector.to_owned(), plugin.to_owned());
    Ok(match input.u8()? {
        0 => CallError::Failed {
            connector,
            plugin,
            method,
            message: input.str()?.to_owned(),
        },
        1 => CallError::Permanent {
            connector,
            plugin,
            method,
            message: input.str()?.to_owned(),
        },
        2 => CallError::Config {
            connector,
            plugin,
            message: input.str()?.to_owned(),
            field_path: FieldPath::from_json(input.str()?),
        },
        3 => CallError::Panicked {
            connector,
            plugin,
            method,
            message: input.str()?.to_owned(),
            location: input.str()?.to_owned(),
        },
        4 => CallError::Poisoned {
            connector,
            plugin,
            method,
        },
        5 => CallError::Closed {
            connector,
            plugin,
            method,
        },
        6 => {
            // The side the method needs, as in process; what the child says is not used.
            let _ = input.str()?;
            CallError::Unsupported {
                connector,
                plugin,
                method,
                side: side_of(method),
            }
        }
        7 => CallError::Protocol {
            connector,
            plugin,
            method,
            message: input.str()?.to_owned(),
        },
        other => return Err(Garbage(format!("unknown error kind {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_lies_about_lengths_are_garbage() {
        let mut out = Out::default();
        out.u8(7).u32(1).u64(2).str("three").bytes(b"four");
        let mut wire = Vec::new();
        write_frame(&mut wire, tag::PULL, &out.0).unwrap();
        let (tag, payload) = read_frame(&mut wire.as_slice(), MAX_FRAME)
            .unwrap()
            .unwrap();
        assert_eq!(tag, tag::PULL);
        let mut input = In(&payload);
        assert_eq!(input.u8().unwrap(), 7);
        assert_eq!(input.u32().unwrap(), 1);
        assert_eq!(input.u64().unwrap(), 2);
        assert_eq!(input.str().unwrap(), "three");
        assert_eq!(input.bytes().unwrap(), b"four");
        input.end().unwrap();

        // A length past the end, a count the frame cannot hold, trailing bytes.
        let mut lie = Out::default();
        lie.u32(1000).u8(1);
        assert!(In(&lie.0).bytes().is_err());
        assert!(In(&lie.0).count(16).is_err());
        assert!(In(&[1, 2]).end().is_err());
        // A frame longer than the limit is refused before anything is allocated for it.
        let huge = [0xff, 0xff, 0xff, 0xff, tag::OK];
        assert!(read_frame(&mut huge.as_slice(), MAX_FRAME).is_err());
        // A clean end between frames is the end, not an error.
        assert!(read_frame(&mut [].as_slice(), MAX_FRAME).unwrap().is_none());
    }
}
