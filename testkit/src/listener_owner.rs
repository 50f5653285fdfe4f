//! Which process listens on a loopback TCP port, read from Linux's `/proc`.
//!
//! A port found free by binding `127.0.0.1:0` can be handed to two servers started at the same
//! moment; the one that loses exits, but a readiness probe that only connects would be answered
//! by the winner. Where the protocol probe cannot tell (a TLS listener), the listening socket's
//! inode is matched against the process's open descriptors instead.

use std::fs;

/// `Some(true)` when `pid` holds a socket listening on IPv4 `port`, `Some(false)` when it does
/// not (yet), `None` when `/proc` cannot tell (not Linux, or not readable).
pub(crate) fn is_owned_by(port: u16, pid: u32) -> Option<bool> {
    let table = fs::read_to_string("/proc/net/tcp").ok()?;
    let inodes = listening_inodes(&table, port);
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let owned = fds.flatten().any(|fd| {
        fs::read_link(fd.path())
            .ok()
            .and_then(|target| socket_inode(&target.to_string_lossy()))
            .is_some_and(|inode| inodes.contains(&inode))
    });
    Some(owned)
}

/// The inodes of the sockets in `/proc/net/tcp` format `table` that listen on `port`.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let (_, local_port) = local.split_once(':')?;
            let listening = *fields.get(3)? == LISTEN;
            let matches = u16::from_str_radix(local_port, 16).ok()? == port;
            if listening && matches {
                fields.get(9)?.parse().ok()
            } else {
                None
            }
        })
        .collect()
}

/// The inode of a descriptor link such as `socket:[12345]`.
fn socket_inode(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2BCB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   104        0 51234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:2BCB 0100007F:9C40 01 00000000:00000000 00:00000000 00000000   104        0 51299 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:2BCC 00000000:0000 0A 00000000:00000000 00:00000000 00000000   104        0 51300 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn only_listening_sockets_on_the_port_count() {
        assert_eq!(listening_inodes(TABLE, 11211), vec![51234]);
        assert_eq!(listening_inodes(TABLE, 0x2BCC), vec![51300]);
        assert!(listening_inodes(TABLE, 11213).is_empty());
    }

    #[test]
    fn descriptor_links_name_socket_inodes() {
        assert_eq!(socket_inode("socket:[51234]"), Some(51234));
        assert_eq!(socket_inode("pipe:[51234]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn this_process_owns_its_own_listener() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let pid = std::process::id();
        let expected = |owned| cfg!(target_os = "linux").then_some(owned);
        assert_eq!(is_owned_by(port, pid), expected(true));
        drop(listener);
        assert_eq!(is_owned_by(port, pid), expected(false));
    }
}
