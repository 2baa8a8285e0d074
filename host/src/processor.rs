//! Pre- and postprocessors: bytes to frames of bytes, one stream at a time.
//!
//! Source side, each stream's chunks go through the connector's preprocessor chain (for
//! example `lines` splits a stream into lines); sink side, each encoded event goes through
//! the postprocessor chain (for example `lines` appends a separator). Processors are
//! stateful per stream and see the end of their stream ([`Processor::finish`]), so framing
//! that spans chunks works. The interface is deliberately narrow (bytes in, frames out) so
//! processors can become a plugin kind later.

use std::io::Write as _;

use base64::Engine as _;

/// Frames produced by a processor: one contiguous buffer with frame boundaries, reused
/// across calls so that steady-state processing allocates nothing per frame.
#[derive(Debug, Default, Clone)]
pub struct Frames {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Frames {
    /// No frames.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one frame.
    pub fn push(&mut self, frame: &[u8]) {
        self.data.extend_from_slice(frame);
        self.ends.push(self.data.len());
    }

    /// Appends one frame written by `write` into the shared buffer.
    pub fn push_with<E>(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.data.len();
        match write(&mut self.data) {
            Ok(()) => {
                self.ends.push(self.data.len());
                Ok(())
            }
            Err(e) => {
                self.data.truncate(start);
                Err(e)
            }
        }
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Bytes of all its frames.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The frames, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.ends.iter().enumerate().map(|(i, &end)| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.data[start..end]
        })
    }

    /// Forgets the frames, keeping the memory.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// The whole buffer and frame end offsets, for moving frames out without copying.
    pub fn into_parts(self) -> (Vec<u8>, Vec<usize>) {
        (self.data, self.ends)
    }
}

/// Why a processor could not process its input. The input (or the rest of the stream
/// up to the next frame boundary) is dropped and the error reported on the `err` port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{processor}: {message}")]
pub struct ProcessorError {
    /// The processor's name.
    pub processor: &'static str,
    /// What went wrong.
    pub message: String,
}

/// One stage of a pre- or postprocessor chain, for one stream.
pub trait Processor: Send {
    /// The processor's name, as written in configuration.
    fn name(&self) -> &'static str;

    /// Processes one chunk of the stream, appending zero or more frames to `out`.
    ///
    /// # Errors
    /// When the input cannot be processed; the processor stays usable for the rest of the
    /// stream.
    fn process(&mut self, input: &[u8], out: &mut Frames) -> Result<(), ProcessorError>;

    /// The stream ended: emits whatever is buffered.
    ///
    /// # Errors
    /// When buffered input is incomplete (a truncated frame).
    fn finish(&mut self, out: &mut Frames) -> Result<(), ProcessorError> {
        let _ = out;
        Ok(())
    }

    /// Bytes of the stream it holds back, waiting for the rest of a frame (what a stream
    /// that never finishes its frame costs): counted against the source's byte budget.
    fn held(&self) -> usize {
        0
    }

    /// Drops what it holds, as for a frame too long to keep, and skips the rest of that
    /// frame (or of the stream, for a format that cannot resynchronise).
    fn discard(&mut self) {}
}

/// Which side of the codec a processor runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Source side: before decoding.
    Pre,
    /// Sink side: after encoding.
    Post,
}

/// A processor as configured: its name and options, validated, able to make one
/// [`Processor`] per stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorSpec {
    direction: Direction,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Lines {
        separator: Vec<u8>,
        max_length: usize,
    },
    Base64,
    Gzip {
        max_ratio: u64,
    },
    LengthPrefixed {
        max_length: usize,
    },
}

/// Names of the processors, for error messages.
pub const PROCESSOR_NAMES: &[&str] = &["lines", "base64", "gzip", "gunzip", "length-prefixed"];

/// Default longest frame `lines` and `length-prefixed` accept: 1 MiB.
pub const DEFAULT_MAX_LENGTH: usize = 1 << 20;

impl ProcessorSpec {
    /// Validates a processor name and its options (`separator` and `max_length` for
    /// `lines`, `max_length` for `length-prefixed`).
    ///
    /// # Errors
    /// A message naming the unknown processor or the bad option.
    pub fn new(
        direction: Direction,
        name: &str,
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, String> {
        let allowed: &[&str] = match name {
            "lines" => &["separator", "max_length"],
            "length-prefixed" => &["max_length"],
            "gunzip" | "gzip" if direction == Direction::Pre => &["max_ratio"],
            _ => &[],
        };
        if let Some(unknown) = options.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(if allowed.is_empty() {
                format!("processor `{name}` takes no options, found `{unknown}`")
            } else {
                format!(
                    "unknown option `{unknown}` of processor `{name}`: expected {}{}",
                    allowed.join(" or "),
                    crate::suggest::did_you_mean(unknown, allowed.iter().copied())
                )
            });
        }
        let max_length = match options.get("max_length") {
            None => DEFAULT_MAX_LENGTH,
            Some(value) => value
                .as_u64()
                .filter(|n| *n > 0)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    format!("`max_length` of `{name}` must be a positive integer, found {value}")
                })?,
        };
        let kind = match name {
            "lines" => {
                let separator = match options.get("separator") {
                    None => b"\n".to_vec(),
                    Some(serde_json::Value::String(s)) if !s.is_empty() => s.as_bytes().to_vec(),
                    Some(other) => {
                        return Err(format!(
                            "`separator` of `lines` must be a non-empty string, found {other}"
                        ));
                    }
                };
                Kind::Lines {
                    separator,
                    max_length,
                }
            }
            "base64" => Kind::Base64,
            "gzip" | "gunzip" => Kind::Gzip {
                max_ratio: match options.get("max_ratio") {
                    None => DEFAULT_MAX_RATIO,
                    Some(value) => value.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                        format!("`max_ratio` of `{name}` must be a positive integer, found {value}")
                    })?,
                },
            },
            "length-prefixed" => Kind::LengthPrefixed { max_length },
            other => {
                return Err(format!(
                    "unknown processor `{other}`: expected one of {}{}",
                    PROCESSOR_NAMES.join(", "),
                    crate::suggest::did_you_mean(other, PROCESSOR_NAMES.iter().copied())
                ));
            }
        };
        Ok(Self { direction, kind })
    }

    /// Whether its output can be much larger than its input (a decompressor: up to ~1000x).
    pub fn expands(&self) -> bool {
        matches!(
            (&self.kind, self.direction),
            (Kind::Gzip { .. }, Direction::Pre)
        )
    }

    /// A fresh processor for one stream.
    pub fn instantiate(&self) -> Box<dyn Processor> {
        match (&self.kind, self.direction) {
            (
                Kind::Lines {
                    separator,
                    max_length,
                },
                Direction::Pre,
            ) => Box::new(SplitLines {
                separator: separator.clone(),
                max_length: *max_length,
                buffer: Vec::new(),
                discarding: false,
            }),
            (Kind::Lines { separator, .. }, Direction::Post) => Box::new(JoinLines {
                separator: separator.clone(),
            }),
            (Kind::Base64, Direction::Pre) => Box::new(Base64Decode),
            (Kind::Base64, Direction::Post) => Box::new(Base64Encode),
            (Kind::Gzip { max_ratio }, Direction::Pre) => Box::new(Gunzip {
                decoder: None,
                max_ratio: *max_ratio,
                read: 0,
                written: 0,
                dropping: false,
            }),
            (Kind::Gzip { .. }, Direction::Post) => Box::new(Gzip),
            (Kind::LengthPrefixed { max_length }, Direction::Pre) => {
                Box::new(SplitLengthPrefixed {
                    max_length: *max_length,
                    buffer: Vec::new(),
                    dropping: false,
                })
            }
            (Kind::LengthPrefixed { max_length }, Direction::Post) => Box::new(AddLengthPrefix {
                max_length: *max_length,
            }),
        }
    }
}

/// A chain of processors for one stream, reusing its buffers.
pub struct Chain {
    stages: Vec<Box<dyn Processor>>,
    /// `between[i]` holds the frames stage `i` produced for stage `i + 1`; kept across
    /// calls so that steady-state processing allocates nothing.
    between: Vec<Frames>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.stages.iter().map(|s| s.name()))
            .finish()
    }
}

impl Chain {
    /// A chain of fresh processors for one stream.
    pub fn new(specs: &[ProcessorSpec]) -> Self {
        let stages: Vec<_> = specs.iter().map(ProcessorSpec::instantiate).collect();
        let between = (1..stages.len()).map(|_| Frames::new()).collect();
        Self { stages, between }
    }

    /// Whether the chain has no stages (frames pass through unchanged).
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Bytes its stages hold back for frames not yet complete.
    pub fn held(&self) -> usize {
        self.stages.iter().map(|stage| stage.held()).sum()
    }

    /// Drops what every stage holds (see [`Processor::discard`]).
    pub fn discard(&mut self) {
        for stage in &mut self.stages {
            stage.discard();
        }
    }

    /// Runs `input` through every stage, appending the resulting frames to `out`. Errors
    /// of any stage are collected in `errors`; the other frames still come out.
    pub fn process(&mut self, input: &[u8], out: &mut Frames, errors: &mut Vec<ProcessorError>) {
        self.run(Some(input), out, errors);
    }

    /// The stream ended: flushes every stage in order, appending to `out`.
    pub fn finish(&mut self, out: &mut Frames, errors: &mut Vec<ProcessorError>) {
        self.run(None, out, errors);
    }

    fn run(&mut self, input: Option<&[u8]>, out: &mut Frames, errors: &mut Vec<ProcessorError>) {
        let Some(last) = self.stages.len().checked_sub(1) else {
            if let Some(input) = input {
                out.push(input);
            }
            return;
        };
        for (index, stage) in self.stages.iter_mut().enumerate() {
            // Stage `index` reads `between[index - 1]` (or the input) and writes
            // `between[index]` (or `out`); at the end of the stream it also flushes.
            let (earlier, later) = self.between.split_at_mut(index);
            let target: &mut Frames = if index == last {
                &mut *out
            } else {
                let next = &mut later[0];
                next.clear();
                next
            };
            let mut feed = |frame: &[u8]| {
                if let Err(e) = stage.process(frame, target) {
                    errors.push(e);
                }
            };
            if index == 0 {
                if let Some(input) = input {
                    feed(input);
                }
            } else {
                for frame in earlier[index - 1].iter() {
                    feed(frame);
                }
            }
            if input.is_none()
                && let Err(e) = stage.finish(target)
            {
                errors.push(e);
            }
        }
    }
}

struct SplitLines {
    separator: Vec<u8>,
    max_length: usize,
    /// The unfinished line so far.
    buffer: Vec<u8>,
    /// After an over-long line: drop input until the next separator.
    discarding: bool,
}

impl SplitLines {
    fn too_long(&self) -> ProcessorError {
        ProcessorError {
            processor: "lines",
            message: format!(
                "line longer than max_length ({} bytes): dropped",
                self.max_length
            ),
        }
    }
}

impl Processor for SplitLines {
    fn name(&self) -> &'static str {
        "lines"
    }

    fn process(&mut self, input: &[u8], out: &mut Frames) -> Result<(), ProcessorError> {
        // A separator may straddle the previous chunk and this one: search from the last
        // `separator.len() - 1` buffered bytes.
        let overlap = self.separator.len() - 1;
        let mut search_from = self.buffer.len().saturating_sub(overlap);
        self.buffer.extend_from_slice(input);
        let mut error = None;
        let mut line_start = 0;
        while let Some(at) = find(&self.buffer[search_from..], &self.separator) {
            let line_end = search_from + at;
            if std::mem::take(&mut self.discarding) {
                // The tail of an over-long line: already reported.
            } else if line_end - line_start > self.max_length {
                error = Some(self.too_long());
            } else {
                out.push(&self.buffer[line_start..line_end]);
            }
            line_start = line_end + self.separator.len();
            search_from = line_start;
        }
        self.buffer.drain(..line_start);
        if self.buffer.len() > self.max_length && !self.discarding {
            error = Some(self.too_long());
            self.discarding = true;
        }
        if self.discarding {
            // Keep only what could be the start of a separator.
            let keep_from = self.buffer.len().saturating_sub(overlap);
            self.buffer.drain(..keep_from);
        }
        release_spare(&mut self.buffer);
        error.map_or(Ok(()), Err)
    }

    fn finish(&mut self, out: &mut Frames) -> Result<(), ProcessorError> {
        if !std::mem::take(&mut self.discarding) && !self.buffer.is_empty() {
            out.push(&self.buffer);
        }
        self.buffer.clear();
        Ok(())
    }

    fn held(&self) -> usize {
        self.buffer.len()
    }

    fn discard(&mut self) {
        // Keep what could be the start of a separator, as for an over-long line.
        let keep_from = self.buffer.len().saturating_sub(self.separator.len() - 1);
        self.buffer.drain(..keep_from);
        self.buffer.shrink_to_fit();
        self.discarding = true;
    }
}

/// Gives back the memory of a buffer that once held a long frame and now holds little, so
/// that a stream's cost follows what it holds, not the longest frame it ever had.
fn release_spare(buffer: &mut Vec<u8>) {
    const KEEP: usize = 256 * 1024;
    if buffer.capacity() > KEEP && buffer.len() < buffer.capacity() / 4 {
        buffer.shrink_to(buffer.len().max(KEEP / 4));
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return haystack.iter().position(|b| *b == needle[0]);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

struct JoinLines {
    separator: Vec<u8>,
}

impl Processor for JoinLines {
    fn name(&self) -> &'static str {
        "lines"
    }

    fn process(&mut self, input: &[u8], out: &mut Frames) -> Result<(), ProcessorError> {
        out.push_with(|buf| {
            buf.extend_from_slice(input);
            buf.extend_from_slice(&self.separator);
            Ok(())
        })
    }
}

struct Base64Decode;

impl Processor for Base64Decode {
    fn name(&self) -> &'static str {
        "base64"
    }

    fn process(&mut self, input: &[u8], out: &mut Frames) -> Result<(), ProcessorError> {
        out.push_with(|buf| {
            base64::engine::general_purpose::STANDARD
                .decode_vec(input.trim_ascii(), buf)
                .map_err(|e| ProcessorError {
                    processor: "base64",
                    message: format!("invalid base64: {e}"),
                })
        })
    }
}

struct Base64Encode;

impl Processor for Base64Encode {
    fn name(&self) -> &'static str {
        "base64"
    }

    fn process(&mut self, input: &[u8], out: &mut Frames) -> Result<(), ProcessorError> {
        out.push_with(|buf| {
            let start = buf.len();
            let len = base64::encoded_len(input.len(), true).ok_or_else(|| ProcessorError {
                processor: "base64",
                message: format!("frame of {} bytes is too large to encode", input.len()),
            })?;
            buf.resize(start + len, 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(input, &mut buf[start..])
                .map_err(|e| ProcessorError {
                    processor: "base64",
                    message: e.to_string(),
                })?;
            buf.truncate(start + written);
            Ok(())
        })
    }
}

/// Default of `gunzip`'s `max_ratio`: decompressed bytes per compressed byte of a stream
/// (text and JSON logs compress 5-20x; a zip bomb of zeros about 1000x).
pub const DEFAULT_MAX_RATIO: u64 = 100;

/// Output a `gunzip` stream may produce beyond `max_ratio` times its input (small inputs).
const RATIO_SLACK: u64 = 1 << 20;

/// Decompresses a stream of concatenated gzip members, however it is chunked, refusing to
/// expand past `max_ratio` times what it read (a decompression bomb is an error on the
/// `err` port, and the rest of that stream is dropped, not a host out of memory).
struct Gunzip {
    decoder: Option<flate2::write::MultiGzDecoder<Vec<u8>>>,
    max_ratio: u64,
    /// Compressed bytes read and decompressed bytes produced on this stream.
    read: u64,
    written: u64,
    /// After a bomb: drop input until the stream ends.
    dropping: bool,
}

impl Processor for Gunzip {
    fn name(&self) -> &'static str {
        "gunzip"
    }

    fn process(&mut self, input: &[u8], out: &mut Frames) -> Result<(), ProcessorError> {
        if self.dropping {
            return Ok(());
        }
        // Fed in small pieces, so that no piece can expand by more than ~1000x before the
        // ratio is checked.
        const PIECE: usize = 4096;
        for piece in input.chunks(PIECE) {
            let decoder = self
                .decoder
                .get_or_insert_with(|| flate2::write::MultiGzDecoder::new(Vec::new()));
            let result = decoder.write_all(piece).and_then(|()| decoder.flush());
            self.read += piece.len() as u64;
            let limit = self
                .read
                .saturating_mul(self.max_ratio)
                .saturating_add(RATIO_SLACK);
            let produced = decoder.get_mut();
            self.written += produced.len() as u64;
            if self.written > limit {
                let message = format!(
                    "decompressed data exceeds max_ratio ({}x its compressed size, a \
                     decompression bomb?): rest of stream dropped",
                    self.max_ratio
                );
                self.decoder = None;
                self.dropping = true;
                return Err(ProcessorError {
                    processor: "gunzip",
                    message,
                });
            }
            if !produced.is_empty() {
                out.push(produced);
                produced.clear();
            }
            if let Err(e) = result {
                // The stream is corrupt from here: start afresh with the next chunk.
                self.decoder = None;
                return Err(ProcessorError {
                    processor: "gunzip",
                    message: format!("invalid gzip data: {e}"),
                });
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Frames) -> Result<(), ProcessorError> {
        self.dropping = false;
        (self.read, self.written) = (0, 0);
        let Some(decoder) = self.decoder.take() else {
            return Ok(());
        };
        match decoder.finish() {
            Ok(rest) if rest.is_empty() => Ok(()),
            Ok(rest) => {
                out.push(&rest);
                Ok(())
            }
            Err(e) => Err(ProcessorError {
                processor: "gunzip",
                message: format!("truncated gzip data: {e}"),
            }),
        }
    }
}

struct Gzip;

impl Processor for Gzip {
    fn name(&self) -> &'static str {
        "gzip"
    }

    fn process(&mut self, input: &[u8], out: &mut Frames) -> Result<(), ProcessorError> {
        out.push_with(|buf| {
            let mut encoder = flate2::write::GzEncoder::new(buf, flate2::Compression::fast());
            encoder
                .write_all(input)
                .and_then(|()| encoder.try_finish())
                .map_err(|e| ProcessorError {
                    processor: "gzip",
                    message: e.to_string(),
                })
        })
    }
}

/// Splits a stream of `[u32 big-endian length][payload]` records.
struct SplitLengthPrefixed {
    max_length: usize,
    buffer: Vec<u8>,
    /// After an oversized header: the rest of the stream is dropped, until it ends.
    dropping: bool,
}

impl Processor for SplitLengthPrefixed {
    fn name(&self) -> &'static str {
        "length-prefixed"
    }

    fn process(&mut self, input: &[u8], out: &mut Frames) -> Result<(), ProcessorError> {
        if self.dropping {
            return Ok(());
        }
        self.buffer.extend_from_slice(input);
        let mut at = 0;
        let result = loop {
            let Some(header) = self.buffer.get(at..at + 4) else {
                break Ok(());
            };
            let len = u32::from_be_bytes(header.try_into().expect("4 bytes")) as usize;
            if len > self.max_length {
                // The stream is out of sync (or hostile): nothing after this can be trusted.
                let message = format!(
                    "record of {len} bytes exceeds max_length ({}): rest of stream dropped",
                    self.max_length
                );
                self.buffer.clear();
                self.dropping = true;
                return Err(ProcessorError {
                    processor: "length-prefixed",
                    message,
                });
            }
            let Some(payload) = self.buffer.get(at + 4..at + 4 + len) else {
                break Ok(());
            };
            out.push(payload);
            at += 4 + len;
        };
        self.buffer.drain(..at);
        release_spare(&mut self.buffer);
        result
    }

    fn held(&self) -> usize {
        self.buffer.len()
    }

    fn discard(&mut self) {
        self.buffer = Vec::new();
        self.dropping = true;
    }

    fn finish(&mut self, _out: &mut Frames) -> Result<(), ProcessorError> {
        self.dropping = false;
        if self.buffer.is_empty() {
            return Ok(());
        }
        let message = format!(
            "stream ended inside a record ({} bytes left over)",
            self.buffer.len()
        );
        self.buffer.clear();
        Err(ProcessorError {
            processor: "length-prefixed",
            message,
        })
    }
}

struct AddLengthPrefix {
    max_length: usize,
}

impl Processor for AddLengthPrefix {
    fn name(&self) -> &'static str {
        "length-prefixed"
    }

    fn process(&mut self, input: &[u8], out: &mut Frames) -> Result<(), ProcessorError> {
        let len = u32::try_from(input.len())
            .ok()
            .filter(|n| *n as usize <= self.max_length)
            .ok_or_else(|| ProcessorError {
                processor: "length-prefixed",
                message: format!(
                    "frame of {} bytes exceeds max_length ({})",
                    input.len(),
                    self.max_length
                ),
            })?;
        out.push_with(|buf| {
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(input);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(direction: Direction, name: &str, options: serde_json::Value) -> ProcessorSpec {
        ProcessorSpec::new(direction, name, options.as_object().unwrap()).unwrap()
    }

    fn run(chain: &mut Chain, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<ProcessorError>) {
        let (mut out, mut errors) = (Frames::new(), Vec::new());
        for chunk in chunks {
            chain.process(chunk, &mut out, &mut errors);
        }
        chain.finish(&mut out, &mut errors);
        (out.iter().map(<[u8]>::to_vec).collect(), errors)
    }

    #[test]
    fn lines_split_across_chunks_and_flush_the_last_line() {
        let specs = [spec(Direction::Pre, "lines", serde_json::json!({}))];
        let (frames, errors) = run(&mut Chain::new(&specs), &[b"one\ntw", b"o\n\nthr", b"ee"]);
        assert!(errors.is_empty());
        assert_eq!(frames, [&b"one"[..], b"two", b"", b"three"]);
    }

    #[test]
    fn held_bytes_are_counted_and_a_discarded_line_resyncs_at_the_next_separator() {
        let specs = [
            spec(Direction::Pre, "gunzip", serde_json::json!({})),
            spec(
                Direction::Pre,
                "lines",
                serde_json::json!({ "separator": "\r\n" }),
            ),
        ];
        let mut chain = Chain::new(&specs);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"whole\r\nhalf a li").unwrap();
        let (mut out, mut errors) = (Frames::new(), Vec::new());
        chain.process(&gz.finish().unwrap(), &mut out, &mut errors);
        assert_eq!(chain.held(), b"half a li".len());
        chain.discard();
        assert!(
            chain.held() <= 1,
            "at most a separator's first byte is kept"
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"ne\r\nnext\r\n").unwrap();
        chain.process(&gz.finish().unwrap(), &mut out, &mut errors);
        chain.finish(&mut out, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let frames: Vec<&[u8]> = out.iter().collect();
        assert_eq!(frames, [&b"whole"[..], b"next"]);
        assert_eq!(chain.held(), 0);
    }

    #[test]
    fn a_discarded_length_prefixed_stream_drops_the_rest() {
        let specs = [spec(
            Direction::Pre,
            "length-prefixed",
            serde_json::json!({}),
        )];
        let mut chain = Chain::new(&specs);
        let (mut out, mut errors) = (Frames::new(), Vec::new());
        chain.process(&[0, 0, 0, 9, b'a', b'b'], &mut out, &mut errors);
        assert_eq!(chain.held(), 6);
        chain.discard();
        assert_eq!(chain.held(), 0);
        chain.process(&[0, 0, 0, 1, b'x'], &mut out, &mut errors);
        chain.finish(&mut out, &mut errors);
        assert!(out.is_empty() && errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn multi_byte_separator_straddling_chunks() {
        let specs = [spec(
            Direction::Pre,
            "lines",
            serde_json::json!({ "separator": "\r\n" }),
        )];
        let (frames, _) = run(&mut Chain::new(&specs), &[b"a\r", b"\nb\r\nc"]);
        assert_eq!(frames, [&b"a"[..], b"b", b"c"]);
    }

    #[test]
    fn over_long_lines_are_dropped_with_an_error_and_the_stream_resyncs() {
        let specs = [spec(
            Direction::Pre,
            "lines",
            serde_json::json!({ "max_length": 4 }),
        )];
        let (frames, errors) = run(
            &mut Chain::new(&specs),
            &[b"ok\ntoo lo", b"ng line\nfine\n"],
        );
        assert_eq!(frames, [&b"ok"[..], b"fine"]);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .to_string()
                .contains("longer than max_length (4 bytes)"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn post_lines_base64_gzip_round_trip_through_pre_chain() {
        let post = [
            spec(Direction::Post, "base64", serde_json::json!({})),
            spec(Direction::Post, "lines", serde_json::json!({})),
            spec(Direction::Post, "gzip", serde_json::json!({})),
        ];
        let pre = [
            spec(Direction::Pre, "gunzip", serde_json::json!({})),
            spec(Direction::Pre, "lines", serde_json::json!({})),
            spec(Direction::Pre, "base64", serde_json::json!({})),
        ];
        let events: [&[u8]; 3] = [b"first \x00 binary", b"", b"third\nwith newline"];
        let (encoded, errors) = run(&mut Chain::new(&post), &events);
        assert!(errors.is_empty(), "{errors:?}");
        let stream: Vec<u8> = encoded.concat();
        // Feed the compressed stream back in awkward chunks.
        let chunks: Vec<&[u8]> = stream.chunks(7).collect();
        let (decoded, errors) = run(&mut Chain::new(&pre), &chunks);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(decoded, events);
    }

    #[test]
    fn an_oversized_length_prefix_drops_the_rest_of_the_stream() {
        let pre = [spec(
            Direction::Pre,
            "length-prefixed",
            serde_json::json!({ "max_length": 8 }),
        )];
        let mut stream = vec![0, 0, 0, 100];
        // What follows the bad header would parse as a valid record: it must not.
        stream.extend_from_slice(&[0, 0, 0, 2, b'o', b'k']);
        let mut chain = Chain::new(&pre);
        let (decoded, errors) = run(&mut chain, &[&stream[..4], &stream[4..]]);
        assert!(decoded.is_empty(), "{decoded:?}");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("rest of stream dropped"));
    }

    #[test]
    fn a_gzip_bomb_is_an_error_not_an_allocation() {
        use std::io::Write as _;
        let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        member.write_all(&vec![0u8; 8 << 20]).unwrap();
        let member = member.finish().unwrap();
        // 64 members: 512 MiB of zeros from well under 1 MiB.
        let bomb: Vec<u8> = member
            .iter()
            .copied()
            .cycle()
            .take(member.len() * 64)
            .collect();
        let pre = [spec(Direction::Pre, "gunzip", serde_json::json!({}))];
        let mut chain = Chain::new(&pre);
        let (decoded, errors) = run(&mut chain, &bomb.chunks(65536).collect::<Vec<_>>());
        let produced: usize = decoded.iter().map(Vec::len).sum();
        assert!(
            produced as u64 <= (bomb.len() as u64) * DEFAULT_MAX_RATIO + RATIO_SLACK,
            "{produced} bytes out of {}",
            bomb.len()
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("max_ratio"), "{errors:?}");
        // A generous ratio lets ordinary data through.
        let pre = [spec(
            Direction::Pre,
            "gunzip",
            serde_json::json!({ "max_ratio": 2000 }),
        )];
        let (_, errors) = run(&mut Chain::new(&pre), &[&member]);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn length_prefixed_round_trip_and_truncation() {
        let post = [spec(
            Direction::Post,
            "length-prefixed",
            serde_json::json!({}),
        )];
        let pre = [spec(
            Direction::Pre,
            "length-prefixed",
            serde_json::json!({}),
        )];
        let (encoded, _) = run(&mut Chain::new(&post), &[b"abc", b"", b"defgh"]);
        let stream = encoded.concat();
        let (decoded, errors) = run(&mut Chain::new(&pre), &stream.chunks(2).collect::<Vec<_>>());
        assert!(errors.is_empty());
        assert_eq!(decoded, [&b"abc"[..], b"", b"defgh"]);
        let (decoded, errors) = run(&mut Chain::new(&pre), &[&stream[..stream.len() - 1]]);
        assert_eq!(decoded, [&b"abc"[..], b""]);
        assert!(
            errors[0].message.contains("stream ended inside a record"),
            "{:?}",
            errors
        );
    }

    #[test]
    fn invalid_input_is_an_error_not_a_panic() {
        let pre = [spec(Direction::Pre, "base64", serde_json::json!({}))];
        let (frames, errors) = run(&mut Chain::new(&pre), &[b"!!not base64!!", b"aGk="]);
        assert_eq!(frames, [b"hi"]);
        assert_eq!(errors[0].processor, "base64");
        let pre = [spec(Direction::Pre, "gunzip", serde_json::json!({}))];
        let (_, errors) = run(&mut Chain::new(&pre), &[b"definitely not gzip"]);
        assert_eq!(errors[0].processor, "gunzip");
    }

    #[test]
    fn bad_names_and_options_are_explained() {
        let none = serde_json::Map::new();
        let error = ProcessorSpec::new(Direction::Pre, "zstd", &none).unwrap_err();
        assert_eq!(
            error,
            "unknown processor `zstd`: expected one of lines, base64, gzip, gunzip, length-prefixed"
        );
        let options = serde_json::json!({ "level": 9 });
        let error =
            ProcessorSpec::new(Direction::Post, "gzip", options.as_object().unwrap()).unwrap_err();
        assert_eq!(error, "processor `gzip` takes no options, found `level`");
        let options = serde_json::json!({ "max_length": -1 });
        let error =
            ProcessorSpec::new(Direction::Pre, "lines", options.as_object().unwrap()).unwrap_err();
        assert_eq!(
            error,
            "`max_length` of `lines` must be a positive integer, found -1"
        );
    }
}
