//! The admin socket's protocol: one JSON request per line, one JSON response per line.
//!
//! ```text
//! → {"command":"status"}
//! ← {"ok":true,"result":{"connectors":[{"id":"in","plugin":"counter","version":"0.1.0",...}]}}
//! → {"command":"reload","plugin":"counter"}
//! ← {"ok":false,"error":{"kind":"upgrade_failed","message":"..."}}
//! ```

use serde::{Deserialize, Serialize};

/// The longest request line accepted, in bytes; a longer one is answered with an error
/// and the connection is closed.
pub const MAX_REQUEST: usize = 64 * 1024;

/// A request to a running `weir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Every connector: its plugin file and version, state and counters.
    Status {},
    /// Load a plugin file (from a private copy) and make it available.
    Load {
        /// The plugin file.
        file: String,
    },
    /// Forget a plugin version no connector runs.
    Unload {
        /// `NAME@VERSION`.
        plugin: String,
    },
    /// Scan the plugin path again and upgrade every connector running the plugin to the
    /// version its `plugin = "..."` now resolves to (a new build of the same version too).
    Reload {
        /// The plugin's name.
        plugin: String,
    },
    /// Make the running pipeline the one in a pipeline file: new connectors start, removed
    /// ones drain and stop, changed ones are replaced, the others keep running.
    Apply {
        /// The pipeline file (absolute: the server's working directory is not the
        /// client's).
        file: String,
    },
}

/// What went wrong with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Not a request: not JSON, an unknown command, a missing field, too long.
    BadRequest,
    /// The plugin file could not be loaded.
    LoadFailed,
    /// No such plugin (or version).
    UnknownPlugin,
    /// The plugin is in use by a connector.
    InUse,
    /// An upgrade did not happen (the old version keeps running).
    UpgradeFailed,
    /// The pipeline is not running any more.
    NotRunning,
    /// The pipeline file has errors (listed in the message): nothing was changed.
    InvalidPipeline,
    /// The pipeline cannot be changed that way while it runs: nothing was changed.
    ApplyRefused,
    /// Some changes of an apply did not happen (the result says which, and why); the
    /// others did.
    ApplyIncomplete,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// Which kind.
    pub kind: ErrorKind,
    /// What happened, for a person.
    pub message: String,
}

/// One response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The answer, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// The error, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReply>,
}

impl Response {
    /// A success with `result`.
    pub fn ok(result: serde_json::Value) -> Self {
        Self {
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    /// A failure.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            ok: false,
            result: None,
            error: Some(ErrorReply {
                kind,
                message: message.into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_strangers_are_refused() {
        let request: Request =
            serde_json::from_str(r#"{"command":"reload","plugin":"counter"}"#).unwrap();
        assert_eq!(
            request,
            Request::Reload {
                plugin: "counter".into()
            }
        );
        assert_eq!(
            serde_json::to_string(&Request::Status {}).unwrap(),
            r#"{"command":"status"}"#
        );
        for bad in [
            r#"{"command":"explode"}"#,
            r#"{"command":"load"}"#,
            r#"{"command":"apply"}"#,
            r#"{"command":"status","extra":1}"#,
            "[]",
            "",
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }
}
