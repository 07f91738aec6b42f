//! A node's file: its format, its name, and reading and writing it (only small regular files
//! are read, written whole and renamed into place).

use std::io::Read as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::dir::{io_error, make_private_dir};
use crate::error::Result;
use crate::registry::Record;

/// The largest record read: a node with its endpoints' descriptions is a few kilobytes.
pub const MAX_RECORD_SIZE: u64 = 1 << 20;

/// One node's file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct NodeFile {
    /// Unix time in milliseconds after which the record is dead; 0 for never.
    pub(super) expires: u64,
    /// The process that registered the node.
    pub(super) pid: u32,
    /// Its pid namespace (`pid:[4026531836]`): `pid` means something only to readers in the
    /// same one. Absent where it can't be known (and in records of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) pid_ns: Option<String>,
    /// go-micro's service record, holding this one node.
    pub(super) service: Record,
}

/// What opening a record found.
pub(super) enum Found {
    Bytes(Vec<u8>),
    /// It is not there (any more).
    Gone,
    /// It is not a record to read, for this reason.
    Skip(String),
}

/// Reads the record at `path`: a regular file of at most [`MAX_RECORD_SIZE`] bytes, opened
/// without following a symbolic link and without blocking (a FIFO would hang the read).
/// Errors are those a later look may not meet (out of file descriptors, say).
pub(super) fn read_record(path: &Path) -> std::io::Result<Found> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        options.custom_flags(flags.bits() as i32);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Gone),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Ok(Found::Skip(format!("can't be read: {e}")));
        }
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Ok(Found::Skip("a symbolic link".into()));
        }
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
            return Ok(Found::Skip("not a regular file".into()));
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Found::Skip("not a regular file".into()));
    }
    if meta.len() > MAX_RECORD_SIZE {
        return Ok(Found::Skip(format!(
            "{} bytes, more than the {MAX_RECORD_SIZE} a record may have",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // It may grow while read: no more than the cap is taken.
    file.take(MAX_RECORD_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_RECORD_SIZE {
        return Ok(Found::Skip(format!(
            "more than the {MAX_RECORD_SIZE} bytes a record may have"
        )));
    }
    Ok(Found::Bytes(bytes))
}

/// Writes a record whole and renames it into place, making its service directory. A reader
/// that found that directory empty may remove it between the two: then again.
pub(super) fn write_record(root: &Path, path: &Path, json: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(root);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut tries = 0;
    loop {
        tries += 1;
        make_private_dir(dir)?;
        let written = std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, path));
        match written {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => continue,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(io_error(path, e));
            }
        }
    }
}

/// File-name-safe form of a service name or node id (`/` and other separators become `-`,
/// as in go-micro's etcd keys).
pub(super) fn escape(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c == '\0' {
                '-'
            } else {
                c
            }
        })
        .collect();
    match s.as_str() {
        "" | "." | ".." => format!("_{s}"),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::registry::RegisterOptions;
    use crate::registry::Registry as _;
    use crate::registry::local::LocalRegistry;
    use crate::registry::local::fixtures::svc;

    /// Things planted among the records (a link to /dev/zero, a FIFO, a huge sparse file, a
    /// directory) are skipped: lookups answer with the real nodes, at once.
    #[cfg(unix)]
    #[tokio::test]
    async fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(dir.path()).unwrap();
        reg.register(&svc("a", "real"), RegisterOptions::default())
            .await
            .unwrap();
        let service_dir = dir.path().join("a");
        std::os::unix::fs::symlink("/dev/zero", service_dir.join("zero.json")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            service_dir.join("fifo.json"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let huge = std::fs::File::create(service_dir.join("huge.json")).unwrap();
        huge.set_len(1 << 30).unwrap();
        std::fs::create_dir(service_dir.join("dir.json")).unwrap();
        let lookup = tokio::time::timeout(Duration::from_secs(5), reg.get_service("a"));
        let got = lookup.await.expect("the lookup hung").unwrap();
        assert_eq!(got[0].nodes.len(), 1);
        assert_eq!(got[0].nodes[0].id, "real");
        let listed = tokio::time::timeout(Duration::from_secs(5), reg.list_services());
        assert_eq!(listed.await.expect("the listing hung").unwrap().len(), 1);
        // Each is warned about once, however often it is met.
        assert_eq!(reg.warned.lock().unwrap().len(), 4);
        reg.get_service("a").await.unwrap();
        assert_eq!(reg.warned.lock().unwrap().len(), 4);
    }

    #[test]
    fn escapes_separators() {
        assert_eq!(escape("go.micro/x"), "go.micro-x");
        assert_eq!(escape(".."), "_..");
    }
}
