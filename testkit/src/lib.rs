//! Test support for mcache: start real `memcached` processes on loopback.
//!
//! Every integration test, benchmark and example of the project uses this crate to get a
//! private memcached server on a free `127.0.0.1` port (or on a unix socket in a fresh temporary
//! directory), to inject faults into it (SIGKILL, SIGSTOP/SIGCONT, restart on the same port), and
//! to have it killed and reaped when the handle is dropped, even when a test panics.
//!
//! The `memcached` binary is looked up on `PATH` unless [`MemcachedBuilder::binary`] or the
//! environment variable `MCACHE_MEMCACHED_BIN` (see [`BINARY_ENV_VAR`]) names another one. When it
//! cannot be found, [`TestkitError::NotFound`] says how to install it.
//!
//! ```
//! use mcache_testkit::Memcached;
//!
//! let server = Memcached::start()?;
//! println!("memcached pid {} listening on {}", server.pid(), server.host_port_string());
//!
//! let reply = server.raw_roundtrip(b"set k 0 0 2\r\nhi\r\n", b"\r\n")?;
//! assert_eq!(reply, b"STORED\r\n");
//! let reply = server.raw_roundtrip(b"get k\r\n", b"END\r\n")?;
//! assert_eq!(reply, b"VALUE k 0 2\r\nhi\r\nEND\r\n");
//!
//! // Faults: kill it, then bring it back on the same port (the cache is empty again).
//! server.kill()?;
//! assert!(!server.is_running());
//! server.restart()?;
//! assert_eq!(server.raw_roundtrip(b"get k\r\n", b"END\r\n")?, b"END\r\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Options (unix socket, memory, threads, extra arguments such as `-I 2m`, `-Z` with TLS
//! settings, or ASCII authentication with `-Y`) go through [`Memcached::builder`]:
//!
//! ```
//! use mcache_testkit::Memcached;
//!
//! let server = Memcached::builder()
//!     .memory_mb(16)
//!     .args(["-I", "2m"])
//!     .auth("alice", "secret")
//!     .start()?;
//! // Authenticate (any key; the value is "user pass"), then use the same connection.
//! let reply = server.raw_roundtrip(b"set auth 0 0 12\r\nalice secret\r\nget k\r\n", b"END\r\n")?;
//! assert_eq!(reply, b"STORED\r\nEND\r\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod error;
mod listener_owner;
mod nutcracker;
mod server;
mod tempdir;

#[cfg(feature = "suite")]
pub mod faulty;
#[cfg(feature = "suite")]
pub mod suite;

pub use error::TestkitError;
pub use nutcracker::{Nutcracker, NutcrackerBuilder, NUTCRACKER_ENV_VAR};
pub use server::{Memcached, MemcachedBuilder, Readiness, BINARY_ENV_VAR};
pub use tempdir::{write_auth_file, TempDir};
