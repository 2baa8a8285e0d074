//! The error type connector methods return.

use std::fmt;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error returned by a connector to the host.
///
/// Only its message crosses the boundary (copied by the host), so any error converts into
/// it: `?` works on `std::io::Error`, `serde_json::Error` and any other `std::error::Error`,
/// keeping the whole chain of sources in the message. (Like `anyhow::Error`, it does not
/// implement `std::error::Error` itself, which is what makes that blanket conversion possible.)
///
/// An error is *transient* by default: the host retries what failed (a `connect` with
/// backoff, a delivery by failing the event back to its source). An error made with
/// [`Error::permanent`] says that retrying cannot help (a missing input file, a wrong
/// password, a setting that cannot work): the host stops the connector for good, reports it
/// and ends the run with a non-zero exit status.
pub struct Error {
    message: String,
    permanent: bool,
}

impl Error {
    /// A transient error with this message: the host may retry.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    /// A permanent error with this message: retrying cannot help, the host stops the
    /// connector for good.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }

    /// The same error, marked permanent (see [`Error::permanent`]).
    #[must_use]
    pub fn into_permanent(self) -> Self {
        Self {
            permanent: true,
            ..self
        }
    }

    /// The message the host will see.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying cannot help (see [`Error::permanent`]).
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("message", &self.message)
            .field("permanent", &self.permanent)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self {
            message,
            permanent: false,
        }
    }
}
