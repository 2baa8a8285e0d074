//! The admin socket itself: a Unix domain socket only the user running `weir` can use.

use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::handler::Admin;
use super::protocol::{ErrorKind, MAX_REQUEST, Request, Response};

/// Why the admin socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Something else is at the socket's path.
    #[error("admin socket {}: {why}", path.display())]
    Refused {
        /// The socket path.
        path: PathBuf,
        /// Why it is not used.
        why: String,
    },
    /// Another `weir` answers on it.
    #[error("admin socket {}: another weir is listening on it (choose another with --admin-socket)", path.display())]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// The system refused.
    #[error("admin socket {}: {source}", path.display())]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// How long a connection may stay silent before it is closed.
const IDLE: Duration = Duration::from_secs(60);
/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 16;
/// First and longest pause in accepting after a failure (out of descriptors).
const ACCEPT_PAUSE_MIN: Duration = Duration::from_millis(100);
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(5);

/// The user running this process (the owner of `/proc/self`).
fn own_uid() -> std::io::Result<u32> {
    Ok(std::fs::metadata("/proc/self")?.uid())
}

/// The default socket path: `$XDG_RUNTIME_DIR/weir/admin.sock`, or
/// `<temporary directory>/weir-<uid>/admin.sock`.
pub fn default_socket_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("weir/admin.sock"),
        None => std::env::temp_dir()
            .join(format!("weir-{}", own_uid().unwrap_or(0)))
            .join("admin.sock"),
    }
}

/// A bound admin socket, not yet serving.
#[derive(Debug)]
pub struct AdminServer {
    listener: UnixListener,
    path: PathBuf,
    uid: u32,
}

impl AdminServer {
    /// Creates the socket at `path`, mode 0600. Its directory is created (mode 0700) if it
    /// does not exist; an existing one must be owned by this user and not writable by
    /// others. A stale socket of this user (nobody answers) is replaced.
    ///
    /// # Errors
    /// The path is a symbolic link, not a socket, another user's, in a directory others
    /// can write to, or another `weir` answers on it.
    pub fn bind(path: &Path) -> Result<Self, AdminError> {
        let refused = |why: String| AdminError::Refused {
            path: path.to_owned(),
            why,
        };
        let io = |source| AdminError::Io {
            path: path.to_owned(),
            source,
        };
        let uid = own_uid().map_err(io)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        let dir_meta = std::fs::metadata(dir).map_err(io)?;
        let sticky = dir_meta.mode() & 0o1000 != 0;
        if dir_meta.uid() != uid && dir_meta.uid() != 0 {
            return Err(refused(format!(
                "its directory {} belongs to uid {}, not to this user",
                dir.display(),
                dir_meta.uid()
            )));
        }
        if dir_meta.mode() & 0o022 != 0 && !sticky {
            return Err(refused(format!(
                "its directory {} can be written by others (mode {:o}): `chmod go-w {}`",
                dir.display(),
                dir_meta.mode() & 0o7777,
                dir.display()
            )));
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refused("is a symbolic link".to_owned()));
            }
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(refused("exists and is not a socket".to_owned()));
            }
            Ok(meta) if meta.uid() != uid => {
                return Err(refused(format!("belongs to uid {}", meta.uid())));
            }
            Ok(_) => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(AdminError::InUse {
                        path: path.to_owned(),
                    });
                }
                // Left by a weir that is gone.
                std::fs::remove_file(path).map_err(io)?;
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io(error)),
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        Ok(Self {
            listener,
            path: path.to_owned(),
            uid,
        })
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves requests until the task is dropped; each connection runs on its own task.
    pub async fn serve(self, admin: Arc<Admin>) {
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        // Out of descriptors, accepting fails at once again: pause, doubling, and warn once
        // per pause at most 10 s apart, with how many failed.
        let mut pause = ACCEPT_PAUSE_MIN;
        let mut failures = 0u64;
        let mut warned: Option<tokio::time::Instant> = None;
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => {
                    pause = ACCEPT_PAUSE_MIN;
                    stream
                }
                Err(error) => {
                    failures += 1;
                    if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                        tracing::warn!(%error, count = failures, pause_ms = pause.as_millis() as u64, "admin socket: accept failed (count: failures since the last warning)");
                        warned = Some(tokio::time::Instant::now());
                        failures = 0;
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(ACCEPT_PAUSE_MAX);
                    continue;
                }
            };
            let admin = admin.clone();
            let uid = self.uid;
            tokio::spawn(async move {
                if let Err(error) = serve_connection(stream, uid, &admin).await {
                    tracing::debug!(%error, "admin connection ended");
                }
                drop(permit);
            });
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn write(stream: &mut UnixStream, response: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(response).expect("a response serializes");
    line.push(b'\n');
    stream.write_all(&line).await
}

/// One connection: requests, one per line, each answered before the next is read.
async fn serve_connection(mut stream: UnixStream, uid: u32, admin: &Admin) -> std::io::Result<()> {
    let peer = stream.peer_cred()?.uid();
    if peer != uid {
        tracing::warn!(
            peer_uid = peer,
            "admin socket: refused a connection from another user"
        );
        let refusal = Response::error(
            ErrorKind::BadRequest,
            "refused: only the user running weir may use its admin socket",
        );
        return write(&mut stream, &refusal).await;
    }
    let (reader, mut writer) = stream.split();
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut reader).take(MAX_REQUEST as u64 + 1);
        let read = tokio::time::timeout(IDLE, limited.read_until(b'\n', &mut line)).await;
        let n = match read {
            Err(_) | Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => n,
            Ok(Err(error)) => return Err(error),
        };
        let too_long = n > MAX_REQUEST || (line.last() != Some(&b'\n') && n == MAX_REQUEST + 1);
        let response = if too_long {
            Response::error(
                ErrorKind::BadRequest,
                format!("request longer than {MAX_REQUEST} bytes"),
            )
        } else {
            match serde_json::from_slice::<Request>(line.trim_ascii()) {
                Ok(request) => admin.handle(request).await,
                Err(error) => Response::error(
                    ErrorKind::BadRequest,
                    format!(
                        "not a request: {error} (one JSON object per line, like {{\"command\":\"status\"}})"
                    ),
                ),
            }
        };
        let mut out = serde_json::to_vec(&response).expect("a response serializes");
        out.push(b'\n');
        writer.write_all(&out).await?;
        if too_long {
            return Ok(());
        }
    }
}
