//! A twemproxy (`nutcracker`, Debian's package of the same name) process on a free loopback
//! port, in front of servers the test started, with its own configuration, pid and log files
//! in a fresh temporary directory. Killed and reaped when dropped.

use crate::error::TestkitError;
use crate::tempdir::TempDir;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// The environment variable that names the nutcracker binary to run instead of `nutcracker`
/// from `PATH` (or `/usr/sbin/nutcracker`, where Debian installs it).
pub const NUTCRACKER_ENV_VAR: &str = "MCACHE_NUTCRACKER_BIN";

const INSTALL_HINT: &str = "install it with `apt-get install -y nutcracker` (Debian/Ubuntu)";
const START_ATTEMPTS: u32 = 5;

/// Options for a nutcracker pool; made by [`Nutcracker::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct NutcrackerBuilder {
    binary: Option<PathBuf>,
    servers: Vec<(String, u32, Option<String>)>,
    hash: String,
    distribution: String,
    timeout_ms: u64,
    ready_timeout: Duration,
}

impl NutcrackerBuilder {
    /// A backend: `host:port`, its weight, and optionally its name (twemproxy's ketama
    /// places keys by the name when there is one).
    pub fn server(mut self, addr: impl Into<String>, weight: u32, name: Option<&str>) -> Self {
        self.servers
            .push((addr.into(), weight, name.map(str::to_string)));
        self
    }

    /// The key hash (`md5`, `fnv1a_64`, `one_at_a_time`, `crc32a`, ...; default `md5`).
    pub fn hash(mut self, hash: impl Into<String>) -> Self {
        self.hash = hash.into();
        self
    }

    /// The distribution (`ketama`, `modula`, `random`; default `ketama`).
    pub fn distribution(mut self, distribution: impl Into<String>) -> Self {
        self.distribution = distribution.into();
        self
    }

    /// twemproxy's backend timeout in milliseconds (default 5000).
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = ms;
        self
    }

    /// The binary to run (default: `MCACHE_NUTCRACKER_BIN`, else `nutcracker` on `PATH`, else
    /// `/usr/sbin/nutcracker`).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Starts nutcracker on a free `127.0.0.1` port (its stats port too) and waits until a
    /// `version` goes through it to a backend.
    ///
    /// # Errors
    ///
    /// [`TestkitError::InvalidArgument`] without servers; [`TestkitError::Io`] when the binary
    /// is missing (with the install hint), exits early (with its log) or does not answer.
    pub fn start(self) -> Result<Nutcracker, TestkitError> {
        if self.servers.is_empty() {
            return Err(TestkitError::InvalidArgument(
                "nutcracker needs at least one server".into(),
            ));
        }
        let binary = self.binary.clone().unwrap_or_else(default_binary);
        let dir = TempDir::new("mcache-nutcracker")?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let stats_port = free_port()?;
            let config = self.config(port);
            let conf_path = dir.path().join("nutcracker.yml");
            std::fs::write(&conf_path, &config)?;
            let log_path = dir.path().join("nutcracker.log");
            let mut command = Command::new(&binary);
            command
                .arg("-c")
                .arg(&conf_path)
                .arg("-p")
                .arg(dir.path().join("nutcracker.pid"))
                .arg("-o")
                .arg(&log_path)
                .arg("-s")
                .arg(stats_port.to_string())
                .arg("-a")
                .arg("127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = command.spawn().map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    TestkitError::Io(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "nutcracker not found at `{}`: {INSTALL_HINT}",
                            binary.display()
                        ),
                    ))
                } else {
                    TestkitError::Spawn {
                        binary: binary.clone(),
                        source: e,
                    }
                }
            })?;
            let mut nut = Nutcracker {
                child: Mutex::new(child),
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                config,
                log_path,
                _dir: None,
            };
            match nut.wait_ready(self.ready_timeout) {
                Ok(()) => {
                    nut._dir = Some(dir);
                    return Ok(nut);
                }
                Err(Early::Exited(msg)) if attempt < START_ATTEMPTS => {
                    tracing::debug!(attempt, %msg, "nutcracker exited early, retrying on new ports");
                }
                Err(Early::Exited(msg) | Early::NotReady(msg)) => {
                    return Err(TestkitError::Io(io::Error::other(msg)))
                }
            }
        }
    }

    fn config(&self, port: u16) -> String {
        let mut c = String::new();
        let _ = writeln!(c, "mcache:");
        let _ = writeln!(c, "  listen: 127.0.0.1:{port}");
        let _ = writeln!(c, "  hash: {}", self.hash);
        let _ = writeln!(c, "  distribution: {}", self.distribution);
        let _ = writeln!(c, "  timeout: {}", self.timeout_ms);
        let _ = writeln!(c, "  auto_eject_hosts: false");
        let _ = writeln!(c, "  server_retry_timeout: 2000");
        let _ = writeln!(c, "  server_failure_limit: 1");
        let _ = writeln!(c, "  servers:");
        for (addr, weight, name) in &self.servers {
            match name {
                Some(name) => {
                    let _ = writeln!(c, "   - {addr}:{weight} {name}");
                }
                None => {
                    let _ = writeln!(c, "   - {addr}:{weight}");
                }
            }
        }
        c
    }
}

enum Early {
    Exited(String),
    NotReady(String),
}

/// A running nutcracker, killed and reaped when dropped.
#[derive(Debug)]
pub struct Nutcracker {
    child: Mutex<Child>,
    addr: SocketAddr,
    config: String,
    log_path: PathBuf,
    /// Holds the configuration, pid and log files.
    _dir: Option<TempDir>,
}

impl Nutcracker {
    /// Options: backends, hash, distribution.
    pub fn builder() -> NutcrackerBuilder {
        NutcrackerBuilder {
            binary: None,
            servers: Vec::new(),
            hash: "md5".into(),
            distribution: "ketama".into(),
            timeout_ms: 5000,
            ready_timeout: Duration::from_secs(10),
        }
    }

    /// The address nutcracker listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:<port>`.
    pub fn host_port_string(&self) -> String {
        self.addr.to_string()
    }

    /// The configuration file it runs with.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&self) -> bool {
        let mut child = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        matches!(child.try_wait(), Ok(None))
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), Early> {
        let started = Instant::now();
        loop {
            {
                let mut child = self
                    .child
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Early::Exited(format!(
                        "nutcracker exited before it was ready ({status}); config:\n{}\nlog:\n{}",
                        self.config,
                        self.log()
                    )));
                }
            }
            let last = match self.probe() {
                Ok(()) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if started.elapsed() >= limit {
                self.kill();
                return Err(Early::NotReady(format!(
                    "nutcracker did not answer `version` within {limit:?} (last error: {last}); \
                     config:\n{}\nlog:\n{}",
                    self.config,
                    self.log()
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn probe(&self) -> io::Result<()> {
        let stream = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        (&stream).write_all(b"version\r\n")?;
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line)?;
        if line.starts_with("VERSION ") {
            Ok(())
        } else {
            Err(io::Error::other(format!("reply to version: {line:?}")))
        }
    }

    fn kill(&self) {
        let mut child = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn default_binary() -> PathBuf {
    if let Some(p) = std::env::var_os(NUTCRACKER_ENV_VAR).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join("nutcracker").is_file()))
        .unwrap_or(false);
    if on_path {
        PathBuf::from("nutcracker")
    } else {
        PathBuf::from("/usr/sbin/nutcracker")
    }
}

fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}
