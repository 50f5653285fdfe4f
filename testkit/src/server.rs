//! Starting, probing, faulting and stopping a memcached process.

use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::error::TestkitError;
use crate::tempdir::{write_auth_file, TempDir};

/// The environment variable that, when set to a non-empty value, names the memcached binary to
/// run instead of `memcached` from `PATH`. [`MemcachedBuilder::binary`] takes precedence over it.
pub const BINARY_ENV_VAR: &str = "MCACHE_MEMCACHED_BIN";

/// How many fresh ports a TCP start tries when memcached exits early (for example because
/// another process took the port between our probe and memcached's bind).
const START_ATTEMPTS: u32 = 5;
/// How long [`Memcached::restart`] keeps retrying while memcached exits early (port still busy).
const RESTART_RETRY_FOR: Duration = Duration::from_secs(5);
/// Default time allowed for memcached to become ready.
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connect timeout of one readiness probe.
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Read/write timeout of one readiness probe.
const PROBE_IO_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest pause between two readiness probes.
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Timeouts of [`Memcached::raw_roundtrip`].
const RAW_IO_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this much of memcached's stderr is kept.
const STDERR_CAP: usize = 64 * 1024;

/// How the testkit decides that a freshly started memcached is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Readiness {
    /// Connect, authenticate first if [`MemcachedBuilder::auth`] was used, send `version\r\n`
    /// and expect a line starting with `VERSION `, then send `stats\r\n` and check that the
    /// `STAT pid` is the one of the process just started (so a server that raced us for the
    /// port is never mistaken for ours). If the server answers `CLIENT_ERROR unauthenticated`
    /// (`-Y` passed as a raw argument, credentials unknown), that answer counts as ready.
    ///
    /// This is the default unless TLS is enabled.
    Protocol,
    /// Only check that a connection is accepted. This is the default when the extra arguments
    /// contain `-Z` / `--enable-ssl`, since a plain-text probe cannot talk to a TLS listener.
    Connect,
}

/// Options for starting a memcached server; made by [`Memcached::builder`].
///
/// The command line is, in order: `-l 127.0.0.1 -p <free port> -U 0` (or `-s <temp dir>/mc.sock`
/// in unix socket mode), `-m <memory_mb> -t <threads>`, `-u memcache` (or `-u nobody` when there
/// is no `memcache` user) when running as root, `-Y <auth file>` when [`auth`](Self::auth) was
/// used, then the extra arguments. Extra arguments come last, so for options memcached lets a
/// later occurrence override (such as `-t` or `-u`) they win.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct MemcachedBuilder {
    binary: Option<PathBuf>,
    extra_args: Vec<OsString>,
    unix_socket: bool,
    memory_mb: u32,
    threads: u32,
    auth: Option<(String, String)>,
    ready_timeout: Duration,
    readiness: Option<Readiness>,
}

impl Default for MemcachedBuilder {
    fn default() -> Self {
        MemcachedBuilder {
            binary: None,
            extra_args: Vec::new(),
            unix_socket: false,
            memory_mb: 64,
            threads: 1,
            auth: None,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            readiness: None,
        }
    }
}

impl MemcachedBuilder {
    /// Runs this binary instead of `MCACHE_MEMCACHED_BIN` or `memcached` from `PATH`.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Appends one extra command-line argument (for example `-I`, then `2m`).
    ///
    /// Listening options (`-l`, `-p`, `-U`, `-s` and their long forms) are refused by
    /// [`start`](Self::start): the testkit only ever listens on a free `127.0.0.1` port or on a
    /// unix socket it chose (see [`unix_socket`](Self::unix_socket)).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Appends extra command-line arguments, e.g. `["-I", "2m"]`, `["-vv"]`, or `-Z` with
    /// `-o ssl_chain_cert=...,ssl_key=...` for TLS. See [`arg`](Self::arg).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Listens on a unix socket (`-s`) in a fresh temporary directory instead of TCP; the
    /// socket's path is [`Memcached::socket_path`]. Default: `false` (TCP).
    pub fn unix_socket(mut self, enabled: bool) -> Self {
        self.unix_socket = enabled;
        self
    }

    /// Item memory in megabytes (`-m`). Default: 64.
    pub fn memory_mb(mut self, megabytes: u32) -> Self {
        self.memory_mb = megabytes;
        self
    }

    /// Worker threads (`-t`). Default: 1.
    pub fn threads(mut self, threads: u32) -> Self {
        self.threads = threads;
        self
    }

    /// Enables memcached's ASCII authentication: writes an auth file holding `user:pass` into
    /// the server's temporary directory and passes `-Y <file>`. Readiness probes authenticate
    /// with these credentials; clients must send `set <key> 0 0 <len>\r\nuser pass\r\n` first.
    /// The credentials are available as [`Memcached::credentials`].
    ///
    /// `user` must not contain `:` or whitespace and `pass` must not contain whitespace.
    pub fn auth(mut self, user: impl Into<String>, pass: impl Into<String>) -> Self {
        self.auth = Some((user.into(), pass.into()));
        self
    }

    /// How long to wait for the server to become ready. Default: 10 s.
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// How to decide that the server is ready. Default: [`Readiness::Connect`] when the extra
    /// arguments contain `-Z` or `--enable-ssl`, [`Readiness::Protocol`] otherwise.
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = Some(readiness);
        self
    }

    /// Starts memcached and waits until it is ready.
    ///
    /// In TCP mode a free port is picked by binding `127.0.0.1:0`; if memcached exits before it
    /// is ready (typically because another process took the port in between), up to 5 fresh
    /// ports are tried.
    ///
    /// # Errors
    ///
    /// [`TestkitError::NotFound`] when the binary does not exist, [`TestkitError::Exited`] or
    /// [`TestkitError::NotReady`] (both with memcached's stderr) when it does not come up,
    /// [`TestkitError::InvalidArgument`] for refused arguments or credentials, and
    /// [`TestkitError::Spawn`] / [`TestkitError::Io`] for other failures.
    pub fn start(self) -> Result<Memcached, TestkitError> {
        check_extra_args(&self.extra_args)?;
        let (binary, explicit) = resolve_binary(self.binary);

        let run_as = if nix::unistd::geteuid().is_root() {
            Some(service_user())
        } else {
            None
        };

        let needs_dir = self.unix_socket || self.auth.is_some();
        let dir = if needs_dir {
            let dir = TempDir::new("mcache-tk")?;
            if run_as.is_some() {
                // memcached drops root privileges before it creates its unix socket.
                dir.set_mode(0o777)?;
            }
            Some(dir)
        } else {
            None
        };

        let mut common: Vec<OsString> = vec![
            "-m".into(),
            self.memory_mb.to_string().into(),
            "-t".into(),
            self.threads.to_string().into(),
        ];
        if let Some(user) = run_as {
            common.push("-u".into());
            common.push(user.into());
        }
        if let (Some((user, pass)), Some(dir)) = (&self.auth, &dir) {
            let file = write_auth_file(dir.path(), user, pass).map_err(|e| {
                if e.kind() == io::ErrorKind::InvalidInput {
                    TestkitError::InvalidArgument(e.to_string())
                } else {
                    TestkitError::Io(e)
                }
            })?;
            common.push("-Y".into());
            common.push(file.into());
        }
        common.extend(self.extra_args.iter().cloned());

        let readiness = self.readiness.unwrap_or_else(|| {
            if common.iter().any(|a| a == "-Z" || a == "--enable-ssl") {
                Readiness::Connect
            } else {
                Readiness::Protocol
            }
        });

        let make_config = |endpoint: Endpoint, mut args: Vec<OsString>| {
            args.extend(common.iter().cloned());
            Config {
                binary: binary.clone(),
                explicit,
                args,
                endpoint,
                auth: self.auth.clone(),
                readiness,
                ready_timeout: self.ready_timeout,
            }
        };

        let socket = match (&dir, self.unix_socket) {
            (Some(dir), true) => Some(dir.path().join("mc.sock")),
            _ => None,
        };
        if let Some(socket) = socket {
            let config = make_config(
                Endpoint::Unix(socket.clone()),
                vec!["-s".into(), socket.into()],
            );
            let process = start_once(&config)?;
            return Ok(Memcached::new(config, process, dir));
        }

        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let config = make_config(
                Endpoint::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
                vec![
                    "-l".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string().into(),
                    "-U".into(),
                    "0".into(),
                ],
            );
            match start_once(&config) {
                Ok(process) => return Ok(Memcached::new(config, process, dir)),
                Err(e @ TestkitError::Exited { .. }) if attempt < START_ATTEMPTS => {
                    tracing::debug!(port, attempt, error = %e, "memcached exited early, retrying on a new port");
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A running memcached server, killed and reaped when dropped.
///
/// All methods take `&self`, so a server can be shared (for example in an `Arc`) between the
/// code under test and the test that injects faults. The handle is `Send + Sync`.
#[derive(Debug)]
pub struct Memcached {
    config: Config,
    state: Mutex<State>,
    /// Holds the unix socket and auth file; dropped (removed) after the process is killed.
    _dir: Option<TempDir>,
}

impl Memcached {
    /// Starts a memcached with the default options on a free `127.0.0.1` port and waits until
    /// it answers. Same as `Memcached::builder().start()`.
    ///
    /// # Errors
    ///
    /// See [`MemcachedBuilder::start`].
    pub fn start() -> Result<Memcached, TestkitError> {
        MemcachedBuilder::default().start()
    }

    /// A builder for a server with options (unix socket, memory, threads, auth, extra args).
    pub fn builder() -> MemcachedBuilder {
        MemcachedBuilder::default()
    }

    fn new(config: Config, process: Process, dir: Option<TempDir>) -> Memcached {
        tracing::debug!(pid = process.pid, endpoint = ?config.endpoint, "memcached started");
        Memcached {
            config,
            state: Mutex::new(State {
                last_pid: process.pid,
                process: Some(process),
            }),
            _dir: dir,
        }
    }

    /// The TCP address the server listens on (always on `127.0.0.1`).
    ///
    /// # Panics
    ///
    /// In unix socket mode; use [`socket_path`](Self::socket_path) there.
    pub fn addr(&self) -> SocketAddr {
        match &self.config.endpoint {
            Endpoint::Tcp(addr) => *addr,
            Endpoint::Unix(path) => panic!(
                "memcached listens on the unix socket {}, not on TCP",
                path.display()
            ),
        }
    }

    /// The TCP port the server listens on. It stays the same across [`restart`](Self::restart).
    ///
    /// # Panics
    ///
    /// In unix socket mode.
    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// `"127.0.0.1:PORT"`, the form most client constructors accept.
    ///
    /// # Panics
    ///
    /// In unix socket mode.
    pub fn host_port_string(&self) -> String {
        self.addr().to_string()
    }

    /// The unix socket's path in unix socket mode, `None` for TCP.
    pub fn socket_path(&self) -> Option<&Path> {
        match &self.config.endpoint {
            Endpoint::Tcp(_) => None,
            Endpoint::Unix(path) => Some(path),
        }
    }

    /// The credentials given to [`MemcachedBuilder::auth`], as `(user, pass)`.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.config
            .auth
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The process id of the current (or, after [`kill`](Self::kill), the last) memcached
    /// process. It changes on [`restart`](Self::restart).
    pub fn pid(&self) -> u32 {
        self.lock().last_pid
    }

    /// The command-line arguments memcached was started with (without the binary).
    pub fn args(&self) -> &[OsString] {
        &self.config.args
    }

    /// What the current memcached process has written on stderr so far (at most 64 KiB),
    /// lossily decoded as UTF-8. Empty after [`kill`](Self::kill).
    pub fn stderr(&self) -> String {
        self.lock()
            .process
            .as_ref()
            .map(Process::stderr)
            .unwrap_or_default()
    }

    /// Whether the process is alive (a stopped process, see [`stop`](Self::stop), counts as
    /// alive). An exited process is reaped here.
    pub fn is_running(&self) -> bool {
        let mut state = self.lock();
        running(&mut state).is_ok()
    }

    /// Kills the process with SIGKILL and reaps it. Does nothing if it is not running.
    ///
    /// # Errors
    ///
    /// [`TestkitError::Io`] if the signal cannot be sent or the process cannot be reaped.
    pub fn kill(&self) -> Result<(), TestkitError> {
        let mut state = self.lock();
        if let Some(process) = state.process.as_mut() {
            process.kill_and_reap()?;
            state.process = None;
            tracing::debug!(pid = state.last_pid, "memcached killed");
        }
        Ok(())
    }

    /// Freezes the process with SIGSTOP. The kernel still completes TCP handshakes for it, so
    /// connecting succeeds, but nothing is answered until [`cont`](Self::cont). Returns once
    /// every thread of the process is stopped (on Linux; up to 2 s).
    ///
    /// # Errors
    ///
    /// [`TestkitError::NotRunning`] if the process is not running, [`TestkitError::Io`] if the
    /// signal cannot be sent.
    pub fn stop(&self) -> Result<(), TestkitError> {
        self.signal(Signal::SIGSTOP)
    }

    /// Resumes a process frozen by [`stop`](Self::stop) with SIGCONT.
    ///
    /// # Errors
    ///
    /// As for [`stop`](Self::stop).
    pub fn cont(&self) -> Result<(), TestkitError> {
        self.signal(Signal::SIGCONT)
    }

    fn signal(&self, sig: Signal) -> Result<(), TestkitError> {
        let mut state = self.lock();
        let process = running(&mut state)?;
        let pid = i32::try_from(process.pid)
            .map_err(|_| TestkitError::InvalidArgument(format!("pid {}", process.pid)))?;
        // The child has not been reaped (it is running), so its pid cannot have been reused.
        signal::kill(Pid::from_raw(pid), sig)?;
        if sig == Signal::SIGSTOP {
            // kill(2) returns before every thread has stopped: a worker thread can still
            // answer a request for a moment. Wait until all of them are stopped.
            wait_all_threads_stopped(process.pid);
        }
        tracing::debug!(pid, signal = ?sig, "signalled memcached");
        Ok(())
    }

    /// Kills the process if it is running, then starts memcached again with the same
    /// arguments on the same port (or unix socket) and waits until it is ready. The new server
    /// is empty. If memcached exits early (the port is briefly unavailable), it is retried for
    /// about 5 seconds.
    ///
    /// # Errors
    ///
    /// As for [`MemcachedBuilder::start`]; [`TestkitError::Exited`] when the port stays busy.
    pub fn restart(&self) -> Result<(), TestkitError> {
        let mut state = self.lock();
        if let Some(process) = state.process.as_mut() {
            process.kill_and_reap()?;
            state.process = None;
        }
        if let Endpoint::Unix(path) = &self.config.endpoint {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        let deadline = Instant::now() + RESTART_RETRY_FOR;
        loop {
            match start_once(&self.config) {
                Ok(process) => {
                    tracing::debug!(pid = process.pid, "memcached restarted");
                    state.last_pid = process.pid;
                    state.process = Some(process);
                    return Ok(());
                }
                Err(e @ TestkitError::Exited { .. }) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "memcached exited early on restart, retrying");
                    thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Opens a fresh connection (TCP, or the unix socket in unix socket mode), writes
    /// `request`, and reads until the accumulated reply ends with `expect_terminator`; returns
    /// the whole reply. Connect, write and each read time out after 5 s. Nothing is read when
    /// `expect_terminator` is empty. Authentication, if enabled, is up to the request.
    ///
    /// ```
    /// let server = mcache_testkit::Memcached::start()?;
    /// let stats = server.raw_roundtrip(b"stats\r\n", b"END\r\n")?;
    /// assert!(stats.starts_with(b"STAT pid "));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Any I/O error, including a timeout (`WouldBlock` or `TimedOut`, depending on the
    /// platform), and `UnexpectedEof` when the server closes the connection first.
    pub fn raw_roundtrip(&self, request: &[u8], expect_terminator: &[u8]) -> io::Result<Vec<u8>> {
        self.raw_roundtrip_with_timeout(request, expect_terminator, RAW_IO_TIMEOUT)
    }

    /// [`raw_roundtrip`](Self::raw_roundtrip) with another timeout for connect, write and each
    /// read (for example a short one to observe that a stopped server does not answer).
    ///
    /// # Errors
    ///
    /// As for [`raw_roundtrip`](Self::raw_roundtrip).
    pub fn raw_roundtrip_with_timeout(
        &self,
        request: &[u8],
        expect_terminator: &[u8],
        timeout: Duration,
    ) -> io::Result<Vec<u8>> {
        let mut conn = Conn::connect(&self.config.endpoint, timeout)?;
        conn.set_timeouts(timeout)?;
        conn.write_all(request)?;
        conn.flush()?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 8192];
        while !reply.ends_with(expect_terminator) {
            match conn.read(&mut buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "connection closed before the reply ended with {:?}; got {:?}",
                            String::from_utf8_lossy(expect_terminator),
                            String::from_utf8_lossy(&reply)
                        ),
                    ))
                }
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(reply)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(process) = state.process.as_mut() {
            if let Err(e) = process.kill_and_reap() {
                tracing::warn!(pid = process.pid, error = %e, "could not kill memcached");
            }
        }
        state.process = None;
    }
}

/// Everything needed to (re)start the same server.
#[derive(Debug)]
struct Config {
    binary: PathBuf,
    explicit: bool,
    args: Vec<OsString>,
    endpoint: Endpoint,
    auth: Option<(String, String)>,
    readiness: Readiness,
    ready_timeout: Duration,
}

impl Config {
    fn command_line(&self) -> String {
        let mut line = self.binary.display().to_string();
        for arg in &self.args {
            line.push(' ');
            line.push_str(&arg.to_string_lossy());
        }
        line
    }
}

#[derive(Debug, Clone)]
enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

#[derive(Debug)]
struct State {
    process: Option<Process>,
    last_pid: u32,
}

/// One spawned memcached process and the buffer its stderr is collected into.
#[derive(Debug)]
struct Process {
    child: Child,
    pid: u32,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Process {
    fn stderr(&self) -> String {
        let buf = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// SIGKILL (harmless if it already exited) and reap.
    fn kill_and_reap(&mut self) -> io::Result<()> {
        match self.child.kill() {
            Ok(()) => {}
            // Older std versions report an already reaped child this way.
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {}
            Err(e) => return Err(e),
        }
        self.child.wait().map(drop)
    }
}

/// How long [`Memcached::stop`] waits for every thread of the process to be stopped.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// Waits (up to [`STOP_WAIT`]) until every thread of `pid` is in the stopped state, as
/// `/proc/<pid>/task/*/stat` shows it. Returns at once where `/proc` is not available.
fn wait_all_threads_stopped(pid: u32) {
    let tasks = PathBuf::from(format!("/proc/{pid}/task"));
    let deadline = Instant::now() + STOP_WAIT;
    loop {
        let Ok(entries) = fs::read_dir(&tasks) else {
            return;
        };
        let all_stopped = entries.flatten().all(|task| {
            fs::read_to_string(task.path().join("stat"))
                .ok()
                // The state follows the command name, which is in parentheses.
                .and_then(|stat| {
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().next().map(|s| s == "T" || s == "t")
                })
                .unwrap_or(true)
        });
        if all_stopped || Instant::now() >= deadline {
            return;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// The running process, or `NotRunning` (reaping it if it exited).
fn running(state: &mut State) -> Result<&mut Process, TestkitError> {
    let exited = match state.process.as_mut() {
        None => return Err(TestkitError::NotRunning),
        Some(process) => process.child.try_wait()?.is_some(),
    };
    if exited {
        state.process = None;
    }
    state.process.as_mut().ok_or(TestkitError::NotRunning)
}

/// Spawns memcached and waits until it is ready; never leaves a process behind on error.
fn start_once(config: &Config) -> Result<Process, TestkitError> {
    let mut process = spawn(config)?;
    match wait_ready(config, &mut process) {
        Ok(()) => Ok(process),
        Err(e) => {
            if let Err(kill_err) = process.kill_and_reap() {
                tracing::warn!(pid = process.pid, error = %kill_err, "could not kill memcached");
            }
            Err(e)
        }
    }
}

fn spawn(config: &Config) -> Result<Process, TestkitError> {
    tracing::debug!(command = %config.command_line(), "starting memcached");
    let mut child = Command::new(&config.binary)
        .args(&config.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                TestkitError::NotFound {
                    binary: config.binary.clone(),
                    explicit: config.explicit,
                }
            } else {
                TestkitError::Spawn {
                    binary: config.binary.clone(),
                    source,
                }
            }
        })?;
    let stderr = Arc::new(Mutex::new(Vec::new()));
    if let Some(mut pipe) = child.stderr.take() {
        let sink = Arc::clone(&stderr);
        let spawned = thread::Builder::new()
            .name("memcached-stderr".into())
            .spawn(move || {
                let mut chunk = [0u8; 4096];
                loop {
                    match pipe.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => {
                            let mut buf = sink.lock().unwrap_or_else(PoisonError::into_inner);
                            let room = STDERR_CAP.saturating_sub(buf.len());
                            buf.extend_from_slice(&chunk[..n.min(room)]);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            });
        if let Err(e) = spawned {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e.into());
        }
    }
    let pid = child.id();
    Ok(Process { child, pid, stderr })
}

fn wait_ready(config: &Config, process: &mut Process) -> Result<(), TestkitError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = process.child.try_wait()? {
            // Give the stderr thread a moment to collect the last words.
            thread::sleep(Duration::from_millis(20));
            return Err(TestkitError::Exited {
                command: config.command_line(),
                status,
                stderr: process.stderr(),
            });
        }
        let last_error = match probe(config, process.pid) {
            Ok(Some(pid)) if pid == process.pid => return Ok(()),
            Ok(Some(pid)) => format!("the endpoint is served by another memcached (pid {pid})"),
            // No pid to compare: ready if our process is still the one alive.
            Ok(None) => {
                if process.child.try_wait()?.is_none() {
                    return Ok(());
                }
                continue;
            }
            Err(e) => e.to_string(),
        };
        let waited = started.elapsed();
        if waited >= config.ready_timeout {
            return Err(TestkitError::NotReady {
                command: config.command_line(),
                waited,
                last_error,
                stderr: process.stderr(),
            });
        }
        thread::sleep(pause);
        pause = (pause * 2).min(MAX_POLL_INTERVAL);
    }
}

/// One readiness probe: `Ok(Some(pid))` when the server answered with its pid, `Ok(None)` when
/// it is up but the pid cannot be learnt (connect-only readiness, unknown credentials).
///
/// With connect-only readiness over TCP the listener must belong to `pid` (checked in
/// `/proc` on Linux): a connection accepted by another process that holds the port (say a
/// server started by a parallel test that was handed the same free port) is not readiness.
fn probe(config: &Config, pid: u32) -> io::Result<Option<u32>> {
    let conn = Conn::connect(&config.endpoint, PROBE_CONNECT_TIMEOUT)?;
    if config.readiness == Readiness::Connect {
        return match &config.endpoint {
            Endpoint::Tcp(addr) => match crate::listener_owner::is_owned_by(addr.port(), pid) {
                Some(true) => Ok(Some(pid)),
                Some(false) => Err(io::Error::other(format!(
                    "port {} is not (yet) served by memcached (pid {pid})",
                    addr.port()
                ))),
                None => Ok(None),
            },
            Endpoint::Unix(_) => Ok(None),
        };
    }
    conn.set_timeouts(PROBE_IO_TIMEOUT)?;
    let mut conn = BufReader::new(conn);
    if let Some((user, pass)) = &config.auth {
        let payload = format!("{user} {pass}");
        let request = format!("set auth 0 0 {}\r\n{payload}\r\n", payload.len());
        conn.get_mut().write_all(request.as_bytes())?;
        let line = read_line(&mut conn)?;
        if line != "STORED" {
            return Err(io::Error::other(format!(
                "authentication was refused: {line:?}"
            )));
        }
    }
    conn.get_mut().write_all(b"version\r\n")?;
    let line = read_line(&mut conn)?;
    if line.starts_with("CLIENT_ERROR unauthenticated") {
        return Ok(None);
    }
    if !line.starts_with("VERSION ") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected reply to `version`: {line:?}"),
        ));
    }
    conn.get_mut().write_all(b"stats\r\n")?;
    let mut pid = None;
    loop {
        let line = read_line(&mut conn)?;
        if line == "END" {
            break;
        }
        if let Some(value) = line.strip_prefix("STAT pid ") {
            pid = value.trim().parse().ok();
        }
    }
    pid.map(Some).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "`stats` did not report the server's pid",
        )
    })
}

/// Reads one `\n`-terminated line without its line ending.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line)? == 0 || line.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by memcached",
        ));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// A client connection over TCP or a unix socket.
#[derive(Debug)]
enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn connect(endpoint: &Endpoint, timeout: Duration) -> io::Result<Conn> {
        match endpoint {
            Endpoint::Tcp(addr) => {
                let stream = TcpStream::connect_timeout(addr, timeout)?;
                stream.set_nodelay(true)?;
                Ok(Conn::Tcp(stream))
            }
            Endpoint::Unix(path) => UnixStream::connect(path).map(Conn::Unix),
        }
    }

    fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))
            }
            Conn::Unix(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))
            }
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.flush(),
            Conn::Unix(s) => s.flush(),
        }
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// The binary to run and whether it was named explicitly.
fn resolve_binary(explicit: Option<PathBuf>) -> (PathBuf, bool) {
    if let Some(path) = explicit {
        return (path, true);
    }
    match std::env::var_os(BINARY_ENV_VAR) {
        Some(path) if !path.is_empty() => (PathBuf::from(path), true),
        _ => (PathBuf::from("memcached"), false),
    }
}

/// The user a root-run memcached drops privileges to: `memcache` if it exists, else `nobody`.
fn service_user() -> &'static str {
    let has_memcache = fs::read_to_string("/etc/passwd")
        .map(|passwd| passwd.lines().any(|l| l.starts_with("memcache:")))
        .unwrap_or(false);
    if has_memcache {
        "memcache"
    } else {
        "nobody"
    }
}

/// Refuses arguments that would make memcached listen anywhere but where the testkit chose.
fn check_extra_args(args: &[OsString]) -> Result<(), TestkitError> {
    const SHORT: [&str; 4] = ["-l", "-p", "-U", "-s"];
    const LONG: [&str; 4] = ["--listen", "--port", "--udp-port", "--unix-socket"];
    for arg in args.iter().map(|a| a.to_string_lossy()) {
        let refused = if arg.starts_with("--") {
            LONG.iter().any(|l| {
                arg.strip_prefix(l)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
            })
        } else {
            SHORT.iter().any(|s| arg.starts_with(s))
        };
        if refused {
            return Err(TestkitError::InvalidArgument(format!(
                "`{arg}`: the testkit picks the listening address itself (a free 127.0.0.1 \
                 port, or a unix socket with `.unix_socket(true)`)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_args_are_refused() {
        for bad in [
            "-l",
            "-l0.0.0.0",
            "-p",
            "-p11211",
            "-U",
            "-s",
            "--listen=0.0.0.0",
            "--port",
        ] {
            assert!(
                check_extra_args(&[OsString::from(bad)]).is_err(),
                "{bad} should be refused"
            );
        }
        for ok in [
            "-t",
            "-I",
            "2m",
            "-vv",
            "-Z",
            "--enable-ssl",
            "--portable-thing",
        ] {
            assert!(
                check_extra_args(&[OsString::from(ok)]).is_ok(),
                "{ok} should be accepted"
            );
        }
    }

    #[test]
    fn explicit_binary_wins() {
        let (bin, explicit) = resolve_binary(Some(PathBuf::from("/x/memcached")));
        assert_eq!(bin, Path::new("/x/memcached"));
        assert!(explicit);
    }

    #[test]
    fn memcached_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Memcached>();
    }
}
