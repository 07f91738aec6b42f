//! The host-local registry, the default: one JSON file per node in a directory that the
//! processes of one user on the machine share.
//!
//! Layout: `<dir>/<service name>/<node id>.json`, each file a record: go-micro's service
//! JSON holding that one node, its expiry and the pid (and, on Linux, the pid namespace) of
//! the process that wrote it. Files are written whole and renamed into place, so readers
//! never see half a record. A record is dead when its TTL has passed or, on Linux, as soon as
//! its process has exited (a `kill -9` leaves no stale node behind); readers skip dead
//! records and remove them. The pid is only looked at by readers in the writer's pid
//! namespace: a container sharing the directory has pids of its own, and its records live
//! by their TTL. A service directory left empty is removed.
//!
//! # What is trusted
//! Only regular files of at most [`MAX_RECORD_SIZE`] bytes are read as records, opened
//! without following symbolic links and without blocking: a symbolic link (to `/dev/zero`,
//! say), a FIFO, a device or a huge file is skipped with one warning naming it, as is a
//! record that can't be read or parsed; the lookup goes on with the others.
//!
//! The directory is `--registry_address` when given, else [`LocalRegistry::default_path`]:
//! `$XDG_RUNTIME_DIR/micro-registry`, or `micro-registry-<uid>` in the system's temporary
//! directory. It is made private (mode 0700); a default directory owned by another user, or
//! that others may write to, is refused: whoever could write there could plant nodes.
//!
//! # Watching
//! A watch looks every 250 ms at the directory's and each service directory's modification
//! time, and reads a service directory again only when it changed (or changed within the last
//! two seconds, for file systems whose clocks are coarse); expiries and exited processes are
//! checked on the records it holds. An idle watch costs a few `stat` calls per service.

use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Action, Change, Record, RegisterOptions, Registry, Watcher};
use crate::error::{Code, Error, Result};

/// The largest record read: a node with its endpoints' descriptions is a few kilobytes.
pub const MAX_RECORD_SIZE: u64 = 1 << 20;

/// How often a watch looks at the directory.
const WATCH_PERIOD: Duration = Duration::from_millis(250);

/// A directory changed this recently is read again at the next look: two changes within one
/// tick of a coarse file system clock leave one modification time.
const SETTLE: Duration = Duration::from_secs(2);

/// How many paths are remembered as warned about (then warnings start again).
const MAX_WARNED: usize = 4096;

/// A registry in a directory shared by the processes of one host.
#[derive(Clone, Debug)]
pub struct LocalRegistry {
    dir: PathBuf,
    /// Paths skipped with a warning, so that a watch looking every 250 ms warns once.
    warned: Arc<Mutex<HashSet<PathBuf>>>,
}

/// One node's file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct NodeFile {
    /// Unix time in milliseconds after which the record is dead; 0 for never.
    expires: u64,
    /// The process that registered the node.
    pid: u32,
    /// Its pid namespace (`pid:[4026531836]`): `pid` means something only to readers in the
    /// same one. Absent where it can't be known (and in records of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pid_ns: Option<String>,
    /// go-micro's service record, holding this one node.
    service: Record,
}

impl LocalRegistry {
    /// A registry in `dir`, created (private to this user) when missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<LocalRegistry> {
        let dir = dir.into();
        make_private_dir(&dir)?;
        let meta = std::fs::metadata(&dir).map_err(|e| io_error(&dir, e))?;
        if !meta.is_dir() {
            return Err(Error::new(
                Code::InvalidArgument,
                format!("local registry {}: not a directory", dir.display()),
            ));
        }
        Ok(LocalRegistry {
            dir,
            warned: Arc::default(),
        })
    }

    /// The registry in [`LocalRegistry::default_path`], shared by this user's processes on
    /// this host. Refused when that directory belongs to another user or others may write to
    /// it.
    pub fn default_dir() -> Result<LocalRegistry> {
        let dir = LocalRegistry::default_path();
        let registry = LocalRegistry::new(&dir)?;
        check_private(&dir)?;
        Ok(registry)
    }

    /// The default directory: `$XDG_RUNTIME_DIR/micro-registry` when the variable names a
    /// directory (it is the user's own, by its specification), else
    /// `micro-registry-<uid>` in the system's temporary directory.
    pub fn default_path() -> PathBuf {
        if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
            && runtime.is_absolute()
            && runtime.is_dir()
        {
            return runtime.join("micro-registry");
        }
        std::env::temp_dir().join(format!("micro-registry-{}", uid()))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn node_path(&self, service: &str, node: &str) -> PathBuf {
        self.dir
            .join(escape(service))
            .join(format!("{}.json", escape(node)))
    }

    /// Warns about `path` (skipped for `why`) unless it was warned about already.
    fn warn_once(&self, path: &Path, why: &str) {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.len() >= MAX_WARNED {
            warned.clear();
        }
        if warned.insert(path.to_owned()) {
            tracing::warn!(path = %path.display(), "skipping registry record: {why}");
        }
    }

    /// Live records of the service `name`. Names that escape alike (`a/b`, `a-b`) share a
    /// directory: only this one's records.
    async fn read_service(&self, name: &str) -> Result<Vec<Record>> {
        let mut scan = Scan::new(self.clone(), Some(name.to_owned()));
        Ok(scan.run().await?.into_values().collect())
    }

    async fn read_all(&self) -> Result<Vec<Record>> {
        let mut scan = Scan::new(self.clone(), None);
        Ok(scan.run().await?.into_values().collect())
    }
}

#[async_trait::async_trait]
impl Registry for LocalRegistry {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn register(&self, service: &Record, options: RegisterOptions) -> Result<()> {
        let expires = if options.ttl.is_zero() {
            0
        } else {
            let ttl = u64::try_from(options.ttl.as_millis()).unwrap_or(u64::MAX);
            now_ms().saturating_add(ttl)
        };
        for node in &service.nodes {
            let path = self.node_path(&service.name, &node.id);
            let record = NodeFile {
                expires,
                pid: std::process::id(),
                pid_ns: pid_namespace().map(str::to_owned),
                service: Record {
                    nodes: vec![node.clone()],
                    ..service.clone()
                },
            };
            let json = serde_json::to_vec(&record)
                .map_err(|e| Error::new(Code::Internal, format!("encode registry record: {e}")))?;
            let dir = self.dir.clone();
            tokio::task::spawn_blocking(move || write_record(&dir, &path, &json))
                .await
                .map_err(|e| Error::new(Code::Internal, format!("local registry: {e}")))??;
        }
        Ok(())
    }

    async fn deregister(&self, service: &Record) -> Result<()> {
        for node in &service.nodes {
            let path = self.node_path(&service.name, &node.id);
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path, e)),
            }
            // The last node of the service takes its directory along (a directory that
            // still holds a record stays).
            if let Some(dir) = path.parent() {
                let _ = tokio::fs::remove_dir(dir).await;
            }
        }
        Ok(())
    }

    async fn get_service(&self, name: &str) -> Result<Vec<Record>> {
        let found = super::merge(self.read_service(name).await?);
        if found.is_empty() {
            return Err(super::not_found(name));
        }
        Ok(found)
    }

    async fn list_services(&self) -> Result<Vec<Record>> {
        Ok(super::merge(self.read_all().await?))
    }

    async fn watch(&self, service: Option<&str>) -> Result<Watcher> {
        let (tx, watcher) = Watcher::channel();
        let mut scan = Scan::new(self.clone(), service.map(str::to_owned));
        let mut known = scan.run().await?;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_PERIOD);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = tx.closed() => return,
                }
                let now = match scan.run().await {
                    Ok(now) => now,
                    // Unreadable this time: no events (the nodes did not go away), and the
                    // error for the watcher's owner to see.
                    Err(e) => {
                        if tx.send(Err(e)).await.is_err() {
                            return;
                        }
                        continue;
                    }
                };
                for event in diff(&known, &now) {
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                known = now;
            }
        });
        Ok(watcher)
    }
}

/// Live records by (service, node id).
type Snapshot = HashMap<(String, String), Record>;

/// What a look at the directory remembers for the next one: the modification times seen and
/// the records read, so that only what changed is read again.
struct Scan {
    registry: LocalRegistry,
    /// Only this service's records.
    service: Option<String>,
    /// The registry directory's modification time at its last listing.
    root: Option<SystemTime>,
    /// Each service directory's state, by name.
    dirs: HashMap<String, DirState>,
}

#[derive(Default)]
struct DirState {
    /// Its modification time when last read; `None` until read.
    seen: Option<SystemTime>,
    /// Its live records, with their paths.
    records: Vec<(PathBuf, NodeFile)>,
}

impl Scan {
    fn new(registry: LocalRegistry, service: Option<String>) -> Scan {
        Scan {
            registry,
            service,
            root: None,
            dirs: HashMap::new(),
        }
    }

    /// Looks at the directory (on a blocking thread) and returns the live records.
    async fn run(&mut self) -> Result<Snapshot> {
        let mut this =
            std::mem::replace(self, Scan::new(self.registry.clone(), self.service.clone()));
        let (this, result) = tokio::task::spawn_blocking(move || {
            let result = this.look();
            (this, result)
        })
        .await
        .map_err(|e| Error::new(Code::Internal, format!("local registry: {e}")))?;
        *self = this;
        result
    }

    fn look(&mut self) -> Result<Snapshot> {
        let now = SystemTime::now();
        match &self.service {
            Some(name) => {
                let dir = escape(name);
                self.dirs.retain(|d, _| *d == dir);
                self.dirs.entry(dir).or_default();
            }
            None => self.list_root(now)?,
        }
        let names: Vec<String> = self.dirs.keys().cloned().collect();
        for name in names {
            let path = self.registry.dir.join(&name);
            let mtime = match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => meta.modified().ok(),
                Ok(_) => {
                    self.dirs.remove(&name);
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Gone (its last node left): nothing to read.
                    if let Some(state) = self.dirs.get_mut(&name) {
                        state.records.clear();
                        state.seen = None;
                    }
                    continue;
                }
                Err(e) => return Err(io_error(&path, e)),
            };
            let Some(state) = self.dirs.get_mut(&name) else {
                continue;
            };
            if changed(state.seen, mtime, now) {
                state.records = self.registry.read_dir_records(&path)?;
                state.seen = mtime;
            }
        }
        // Records that died since they were read: expired, or their process exited.
        let now_ms = now_ms();
        for state in self.dirs.values_mut() {
            state.records.retain(|(path, record)| {
                let dead = is_dead(record, now_ms);
                if dead {
                    let _ = std::fs::remove_file(path);
                }
                !dead
            });
        }
        let mut out = Snapshot::new();
        for state in self.dirs.values() {
            for (_, record) in &state.records {
                let service = &record.service;
                if self.service.as_ref().is_some_and(|s| *s != service.name) {
                    continue;
                }
                if let Some(node) = service.nodes.first() {
                    out.insert((service.name.clone(), node.id.clone()), service.clone());
                }
            }
        }
        Ok(out)
    }

    /// Lists the service directories when the registry directory changed.
    fn list_root(&mut self, now: SystemTime) -> Result<()> {
        let root = &self.registry.dir;
        let mtime = std::fs::metadata(root)
            .map_err(|e| io_error(root, e))?
            .modified()
            .ok();
        if !changed(self.root, mtime, now) {
            return Ok(());
        }
        let mut present = HashSet::new();
        for entry in std::fs::read_dir(root).map_err(|e| io_error(root, e))? {
            let entry = entry.map_err(|e| io_error(root, e))?;
            // `file_type` does not follow symbolic links: a link to a directory elsewhere
            // is not a service.
            if entry.file_type().is_ok_and(|t| t.is_dir())
                && let Some(name) = entry.file_name().to_str()
            {
                present.insert(name.to_owned());
            }
        }
        self.dirs.retain(|name, _| present.contains(name));
        for name in present {
            self.dirs.entry(name).or_default();
        }
        self.root = mtime;
        Ok(())
    }
}

/// Whether a directory whose modification time is `now_mtime` must be read again, having
/// been read at `seen`.
fn changed(seen: Option<SystemTime>, now_mtime: Option<SystemTime>, now: SystemTime) -> bool {
    let (Some(seen), Some(mtime)) = (seen, now_mtime) else {
        return true;
    };
    mtime != seen || now.duration_since(mtime).is_ok_and(|age| age < SETTLE)
}

impl LocalRegistry {
    /// The live records of one service directory, with their paths; dead ones are removed,
    /// things that are no record are skipped with a warning, and a directory left empty is
    /// removed. A directory or record that can't be read for want of resources (out of file
    /// descriptors, say) is an `UNAVAILABLE` error, not an empty service: callers then keep
    /// what they knew.
    fn read_dir_records(&self, dir: &Path) -> Result<Vec<(PathBuf, NodeFile)>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(dir, e)),
        };
        let now = now_ms();
        let mut out = Vec::new();
        let mut entries_seen = 0;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(dir, e))?;
            entries_seen += 1;
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = match read_record(&path) {
                Ok(Found::Bytes(bytes)) => bytes,
                // Deregistered (or expired and removed) since the listing.
                Ok(Found::Gone) => continue,
                Ok(Found::Skip(why)) => {
                    self.warn_once(&path, &why);
                    continue;
                }
                Err(e) => return Err(io_error(&path, e)),
            };
            match serde_json::from_slice::<NodeFile>(&bytes) {
                Ok(rec) if rec.service.name.is_empty() || rec.service.nodes.is_empty() => {
                    self.warn_once(&path, "no service name or no node");
                }
                Ok(rec) if is_dead(&rec, now) => {
                    let _ = std::fs::remove_file(&path);
                }
                Ok(rec) => out.push((path, rec)),
                Err(e) => self.warn_once(&path, &format!("not a record: {e}")),
            }
        }
        if entries_seen == 0 {
            // Left behind by its last node. A registration that made it again a moment ago
            // writes again (see `write_record`).
            let _ = std::fs::remove_dir(dir);
        }
        Ok(out)
    }
}

/// What opening a record found.
enum Found {
    Bytes(Vec<u8>),
    /// It is not there (any more).
    Gone,
    /// It is not a record to read, for this reason.
    Skip(String),
}

/// Reads the record at `path`: a regular file of at most [`MAX_RECORD_SIZE`] bytes, opened
/// without following a symbolic link and without blocking (a FIFO would hang the read).
/// Errors are those a later look may not meet (out of file descriptors, say).
fn read_record(path: &Path) -> std::io::Result<Found> {
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
fn write_record(root: &Path, path: &Path, json: &[u8]) -> Result<()> {
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

/// Makes `dir` and its missing parents, private to this user (mode 0700).
fn make_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| io_error(dir, e))
}

/// Refuses a directory of another user, or one that others may write to.
fn check_private(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::symlink_metadata(dir).map_err(|e| io_error(dir, e))?;
        let refuse = |why: String| {
            Error::new(
                Code::PermissionDenied,
                format!(
                    "local registry {}: {why}: whoever can write there can plant nodes that calls go to; remove it, or give a directory of your own with --registry_address",
                    dir.display()
                ),
            )
        };
        if !meta.is_dir() {
            return Err(refuse("not a directory".into()));
        }
        if meta.uid() != uid() {
            return Err(refuse(format!(
                "it belongs to uid {}, not to this user (uid {})",
                meta.uid(),
                uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(refuse(format!(
                "others may write to it (mode {:o})",
                meta.mode() & 0o777
            )));
        }
    }
    Ok(())
}

/// This process's effective user id (0 where there are none).
fn uid() -> u32 {
    #[cfg(unix)]
    return rustix::process::geteuid().as_raw();
    #[cfg(not(unix))]
    return 0;
}

/// The events that turn `old` into `new`.
fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut events = Vec::new();
    for (key, svc) in new {
        match old.get(key) {
            None => events.push(Change {
                action: Action::Create,
                service: svc.clone(),
            }),
            Some(prev) if prev != svc => events.push(Change {
                action: Action::Update,
                service: svc.clone(),
            }),
            Some(_) => {}
        }
    }
    for (key, svc) in old {
        if !new.contains_key(key) {
            events.push(Change {
                action: Action::Delete,
                service: svc.clone(),
            });
        }
    }
    events
}

fn is_dead(rec: &NodeFile, now: u64) -> bool {
    (rec.expires != 0 && rec.expires <= now) || !process_alive(rec)
}

/// Whether the process that wrote `rec` lives, as far as this process can tell: only on
/// Linux, and only for a writer in this pid namespace; otherwise the TTL decides.
fn process_alive(rec: &NodeFile) -> bool {
    let ours = pid_namespace();
    if rec.pid == 0 || ours.is_none() || rec.pid_ns.as_deref() != ours {
        return true;
    }
    Path::new("/proc").join(rec.pid.to_string()).exists()
}

/// This process's pid namespace, read once (`None` where there is no `/proc`).
fn pid_namespace() -> Option<&'static str> {
    static NS: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    NS.get_or_init(|| {
        let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
        link.to_str().map(str::to_owned)
    })
    .as_deref()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// File-name-safe form of a service name or node id (`/` and other separators become `-`,
/// as in go-micro's etcd keys).
fn escape(s: &str) -> String {
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

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::new(
        Code::Unavailable,
        format!("local registry {}: {e}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Node;

    fn svc(name: &str, id: &str) -> Record {
        Record {
            name: name.into(),
            version: "latest".into(),
            nodes: vec![Node {
                id: id.into(),
                address: "127.0.0.1:1".into(),
                ..Node::default()
            }],
            ..Record::default()
        }
    }

    #[tokio::test]
    async fn register_get_deregister() {
        let dir = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(dir.path()).unwrap();
        reg.register(&svc("a/b", "n1"), RegisterOptions::default())
            .await
            .unwrap();
        reg.register(&svc("a/b", "n2"), RegisterOptions::default())
            .await
            .unwrap();
        let got = reg.get_service("a/b").await.unwrap();
        assert_eq!(got[0].nodes.len(), 2);
        assert_eq!(reg.list_services().await.unwrap().len(), 1);
        reg.deregister(&svc("a/b", "n1")).await.unwrap();
        assert_eq!(reg.get_service("a/b").await.unwrap()[0].nodes.len(), 1);
        reg.deregister(&svc("a/b", "n2")).await.unwrap();
        assert_eq!(
            reg.get_service("a/b").await.unwrap_err().code(),
            Code::NotFound
        );
    }

    #[tokio::test]
    async fn expired_and_broken_records_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(dir.path()).unwrap();
        let ttl = RegisterOptions {
            ttl: Duration::from_millis(1),
        };
        reg.register(&svc("a", "old"), ttl).await.unwrap();
        std::fs::write(dir.path().join("a").join("junk.json"), b"{not json").unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        reg.register(&svc("a", "new"), RegisterOptions::default())
            .await
            .unwrap();
        let got = reg.get_service("a").await.unwrap();
        assert_eq!(got[0].nodes.len(), 1);
        assert_eq!(got[0].nodes[0].id, "new");
        assert!(!dir.path().join("a").join("old.json").exists());
    }

    /// Writes the record of node `id` of service `a` for a process `pid` of namespace `ns`.
    fn write_record(reg: &LocalRegistry, id: &str, pid: u32, ns: Option<&str>) {
        let rec = NodeFile {
            expires: 0,
            pid,
            pid_ns: ns.map(str::to_owned),
            service: svc("a", id),
        };
        std::fs::create_dir_all(reg.dir().join("a")).unwrap();
        std::fs::write(reg.node_path("a", id), serde_json::to_vec(&rec).unwrap()).unwrap();
    }

    #[tokio::test]
    async fn records_of_dead_processes_are_dead() {
        let dir = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(dir.path()).unwrap();
        write_record(&reg, "ghost", u32::MAX - 1, pid_namespace());
        assert_eq!(
            reg.get_service("a").await.unwrap_err().code(),
            Code::NotFound
        );
        assert!(!reg.node_path("a", "ghost").exists());
    }

    #[tokio::test]
    async fn pids_of_other_namespaces_are_not_checked_here() {
        // A container sharing the directory: its pid means nothing in this namespace, and
        // its node lives by its TTL (here none), not by whether this pid exists here.
        let dir = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(dir.path()).unwrap();
        write_record(&reg, "contained", u32::MAX - 1, Some("pid:[1]"));
        // Records of older versions, without a namespace, likewise.
        write_record(&reg, "older", u32::MAX - 1, None);
        let got = reg.get_service("a").await.unwrap();
        let mut ids: Vec<_> = got[0].nodes.iter().map(|n| n.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["contained", "older"]);
        assert!(reg.node_path("a", "contained").exists());
    }

    #[tokio::test]
    async fn watch_sees_changes() {
        let dir = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(dir.path()).unwrap();
        let mut w = reg.watch(Some("a")).await.unwrap();
        reg.register(&svc("a", "n1"), RegisterOptions::default())
            .await
            .unwrap();
        let ev = w.next().await.unwrap().unwrap();
        assert_eq!(ev.action, Action::Create);
        reg.deregister(&svc("a", "n1")).await.unwrap();
        let ev = w.next().await.unwrap().unwrap();
        assert_eq!(ev.action, Action::Delete);
    }

    #[tokio::test]
    async fn names_that_escape_alike_keep_their_own_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(dir.path()).unwrap();
        let forever = RegisterOptions { ttl: Duration::MAX };
        reg.register(&svc("a/b", "n1"), forever).await.unwrap();
        reg.register(&svc("a-b", "n2"), forever).await.unwrap();
        let got = reg.get_service("a/b").await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].nodes.len(), 1);
        assert_eq!(got[0].nodes[0].id, "n1");
        assert_eq!(reg.get_service("a-b").await.unwrap()[0].nodes[0].id, "n2");
    }

    #[tokio::test]
    async fn an_unreadable_directory_is_unavailable_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(dir.path().join("reg")).unwrap();
        reg.register(&svc("a", "n1"), RegisterOptions::default())
            .await
            .unwrap();
        let mut w = reg.watch(None).await.unwrap();
        // The registry's directory replaced by a file: nothing in it can be read.
        std::fs::rename(dir.path().join("reg"), dir.path().join("moved")).unwrap();
        std::fs::write(dir.path().join("reg"), b"").unwrap();
        let err = reg.get_service("a").await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
        assert_eq!(
            reg.list_services().await.unwrap_err().code(),
            Code::Unavailable
        );
        // The watch reports the failure, not the node's departure.
        let err = w.next().await.unwrap().unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
        // Readable again, unchanged: no event at all; then a real change is seen.
        std::fs::remove_file(dir.path().join("reg")).unwrap();
        std::fs::rename(dir.path().join("moved"), dir.path().join("reg")).unwrap();
        reg.register(&svc("a", "n2"), RegisterOptions::default())
            .await
            .unwrap();
        let ev = loop {
            match w.next().await.unwrap() {
                Ok(ev) => break ev,
                Err(_) => continue,
            }
        };
        assert_eq!(
            (ev.action, ev.service.nodes[0].id.as_str()),
            (Action::Create, "n2")
        );
    }

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

    #[tokio::test]
    async fn deregistering_the_last_node_removes_the_service_directory() {
        let dir = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(dir.path()).unwrap();
        for id in ["n1", "n2"] {
            reg.register(&svc("a", id), RegisterOptions::default())
                .await
                .unwrap();
        }
        reg.deregister(&svc("a", "n1")).await.unwrap();
        assert!(dir.path().join("a").is_dir());
        reg.deregister(&svc("a", "n2")).await.unwrap();
        assert!(!dir.path().join("a").exists());
        // Directories left empty (by an older version) are removed by readers.
        for i in 0..10 {
            std::fs::create_dir(dir.path().join(format!("left-{i}"))).unwrap();
        }
        assert!(reg.list_services().await.unwrap().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // And a registration still lands when its directory was taken away meanwhile.
        reg.register(&svc("b", "n1"), RegisterOptions::default())
            .await
            .unwrap();
        assert_eq!(reg.get_service("b").await.unwrap()[0].nodes.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_default_directory_of_another_user_or_open_to_others_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_private(&open).unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert!(
            err.detail().contains("others may write to it (mode 777)"),
            "{err}"
        );
        let private = dir.path().join("private");
        make_private_dir(&private).unwrap();
        check_private(&private).unwrap();
        if uid() == 0 {
            rustix::fs::chown(&private, Some(rustix::process::Uid::from_raw(65534)), None).unwrap();
            let err = check_private(&private).unwrap_err();
            assert!(err.detail().contains("belongs to uid 65534"), "{err}");
        }
    }

    #[test]
    fn escapes_separators() {
        assert_eq!(escape("go.micro/x"), "go.micro-x");
        assert_eq!(escape(".."), "_..");
    }
}
