//! Talking to a running `weir` through its admin socket (what `weir status` and
//! `weir plugins load|unload|reload` do).

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::protocol::{Request, Response};

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens there.
    #[error("cannot reach a running weir at {}: {source} (is `weir run` running? its admin socket path is logged at start; use --admin-socket)", path.display())]
    Connect {
        /// The socket path.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The conversation broke off, or timed out.
    #[error("admin socket {}: {source}", path.display())]
    Io {
        /// The socket path.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The answer is not a response.
    #[error("admin socket {}: unreadable answer: {message}", path.display())]
    BadResponse {
        /// The socket path.
        path: std::path::PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// Sends `request` to the `weir` listening on `path` and waits for its answer, at most
/// `timeout` (an upgrade may take the drain timeout).
///
/// # Errors
/// No `weir` there, a broken connection, a timeout or an unreadable answer.
pub fn call(path: &Path, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
        path: path.to_owned(),
        source,
    })?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut line = serde_json::to_vec(request).expect("a request serializes");
    line.push(b'\n');
    match stream.write_all(&line) {
        // The server may answer before reading (a refusal) and close: the answer is there.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.map_err(io)?,
    }
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).map_err(io)?;
    serde_json::from_str(&answer).map_err(|e| ClientError::BadResponse {
        path: path.to_owned(),
        message: format!("{e}: {answer:?}"),
    })
}
