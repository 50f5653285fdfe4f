//! Temporary directories and memcached auth files, without an extra crate.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under [`std::env::temp_dir`], removed with its contents on drop.
///
/// Its name is `{prefix}-{pid}-{counter}-{nanos}`, so directories made by parallel tests and
/// parallel test processes never collide. Keep the prefix short when the directory will hold a
/// unix socket: socket paths are limited to about 100 bytes.
///
/// ```
/// let dir = mcache_testkit::TempDir::new("doc")?;
/// let path = dir.path().to_path_buf();
/// assert!(path.is_dir());
/// drop(dir);
/// assert!(!path.exists());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a new, empty directory (mode `0777` less the umask, as [`std::fs::create_dir`]
    /// makes it).
    pub fn new(prefix: &str) -> io::Result<TempDir> {
        let base = std::env::temp_dir();
        let pid = std::process::id();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = base.join(format!("{prefix}-{pid}-{n}-{nanos}"));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets the directory's permission bits (for example `0o777` so that a memcached that
    /// dropped root privileges can create its unix socket in it).
    pub fn set_mode(&self, mode: u32) -> io::Result<()> {
        fs::set_permissions(&self.path, fs::Permissions::from_mode(mode))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), error = %e, "could not remove temp dir");
            }
        }
    }
}

/// Writes a memcached ASCII authentication file (for `-Y`) named `memcached.auth` into `dir`,
/// holding the single line `user:pass`, and returns its path.
///
/// The file is world-readable (`0644`) so that a memcached which dropped root privileges can
/// still read it. A client authenticates by sending `set <any key> 0 0 <len>\r\nuser pass\r\n`.
///
/// # Errors
///
/// [`io::ErrorKind::InvalidInput`] when `user` is empty or contains `:` or whitespace, or
/// `pass` is empty or contains whitespace; otherwise any error from writing the file.
pub fn write_auth_file(dir: &Path, user: &str, pass: &str) -> io::Result<PathBuf> {
    if user.is_empty() || user.contains(':') || user.chars().any(char::is_whitespace) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "auth user must be non-empty, without ':' or whitespace",
        ));
    }
    if pass.is_empty() || pass.chars().any(char::is_whitespace) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "auth password must be non-empty, without whitespace",
        ));
    }
    let path = dir.join("memcached.auth");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&path)?;
    writeln!(file, "{user}:{pass}")?;
    file.sync_all()?;
    // The umask may have removed bits from the mode given at creation.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_are_distinct_and_removed() -> io::Result<()> {
        let a = TempDir::new("mct-unit")?;
        let b = TempDir::new("mct-unit")?;
        assert_ne!(a.path(), b.path());
        let file = write_auth_file(a.path(), "u", "p")?;
        assert_eq!(fs::read_to_string(&file)?, "u:p\n");
        let pa = a.path().to_path_buf();
        drop(a);
        assert!(!pa.exists());
        assert!(b.path().is_dir());
        Ok(())
    }

    #[test]
    fn auth_file_rejects_bad_credentials() -> io::Result<()> {
        let dir = TempDir::new("mct-unit")?;
        for (u, p) in [
            ("a:b", "p"),
            ("a b", "p"),
            ("", "p"),
            ("u", ""),
            ("u", "p q"),
        ] {
            let err = write_auth_file(dir.path(), u, p).err();
            assert_eq!(
                err.map(|e| e.kind()),
                Some(io::ErrorKind::InvalidInput),
                "{u:?}/{p:?}"
            );
        }
        Ok(())
    }
}
