//! The error type of the testkit.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// The install hint shown when memcached cannot be found.
const INSTALL_HINT: &str =
    "install it with `apt-get install -y memcached` (Debian/Ubuntu) or your platform's package manager";

/// Why a memcached server could not be started or controlled.
#[derive(Debug)]
#[non_exhaustive]
pub enum TestkitError {
    /// The memcached binary does not exist.
    ///
    /// When the default `memcached` was looked up on `PATH`, the message is exactly:
    /// "memcached not found on PATH: install it with `apt-get install -y memcached`
    /// (Debian/Ubuntu) or your platform's package manager".
    NotFound {
        /// The binary that was tried.
        binary: PathBuf,
        /// `true` when the binary was named explicitly (by [`crate::MemcachedBuilder::binary`]
        /// or `MCACHE_MEMCACHED_BIN`) rather than looked up on `PATH` as `memcached`.
        explicit: bool,
    },
    /// The binary exists but could not be executed.
    Spawn {
        /// The binary that was tried.
        binary: PathBuf,
        /// The error from the operating system.
        source: io::Error,
    },
    /// memcached exited before it became ready (bad arguments, port already in use, ...).
    Exited {
        /// The command line that was run.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// What it wrote on stderr.
        stderr: String,
    },
    /// memcached kept running but did not answer in time.
    NotReady {
        /// The command line that was run.
        command: String,
        /// How long the testkit waited.
        waited: Duration,
        /// The last error seen while probing it.
        last_error: String,
        /// What it wrote on stderr so far.
        stderr: String,
    },
    /// An argument passed to the builder is not allowed or not valid.
    InvalidArgument(String),
    /// The operation needs a running memcached, and it is not running (killed or exited).
    NotRunning,
    /// Any other I/O error (temporary directory, auth file, signals, ...).
    Io(io::Error),
}

impl fmt::Display for TestkitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestkitError::NotFound {
                binary,
                explicit: false,
            } if binary.as_os_str() == "memcached" => {
                write!(f, "memcached not found on PATH: {INSTALL_HINT}")
            }
            TestkitError::NotFound { binary, .. } => write!(
                f,
                "memcached not found at `{}`: {INSTALL_HINT}, or point MCACHE_MEMCACHED_BIN at \
                 an existing memcached binary",
                binary.display()
            ),
            TestkitError::Spawn { binary, source } => {
                write!(f, "could not run `{}`: {source}", binary.display())
            }
            TestkitError::Exited {
                command,
                status,
                stderr,
            } => write!(
                f,
                "memcached exited before it was ready ({status}); command: {command}; stderr: {}",
                show_stderr(stderr)
            ),
            TestkitError::NotReady {
                command,
                waited,
                last_error,
                stderr,
            } => write!(
                f,
                "memcached did not become ready within {waited:?} (last error: {last_error}); \
                 command: {command}; stderr: {}",
                show_stderr(stderr)
            ),
            TestkitError::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            TestkitError::NotRunning => write!(f, "memcached is not running"),
            TestkitError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

fn show_stderr(stderr: &str) -> &str {
    let trimmed = stderr.trim();
    if trimmed.is_empty() {
        "(empty)"
    } else {
        trimmed
    }
}

impl std::error::Error for TestkitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TestkitError::Spawn { source, .. } => Some(source),
            TestkitError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for TestkitError {
    fn from(e: io::Error) -> Self {
        TestkitError::Io(e)
    }
}

impl From<nix::errno::Errno> for TestkitError {
    fn from(e: nix::errno::Errno) -> Self {
        TestkitError::Io(io::Error::from(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_on_path_message_is_exact() {
        let e = TestkitError::NotFound {
            binary: PathBuf::from("memcached"),
            explicit: false,
        };
        assert_eq!(
            e.to_string(),
            "memcached not found on PATH: install it with `apt-get install -y memcached` \
             (Debian/Ubuntu) or your platform's package manager"
        );
    }
}
