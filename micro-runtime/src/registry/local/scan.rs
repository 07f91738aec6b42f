//! Looking at the directory: the live records of one service or of all, read again only
//! where a directory changed since the last look; things that are no record are skipped with
//! one warning each.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::dir::io_error;
use super::files::{Found, NodeFile, escape, read_record};
use super::liveness::{is_dead, now_ms};
use crate::error::{Code, Error, Result};
use crate::registry::Record;

/// A directory changed this recently is read again at the next look: two changes within one
/// tick of a coarse file system clock leave one modification time.
const SETTLE: Duration = Duration::from_secs(2);

/// How many paths are remembered as warned about (then warnings start again).
const MAX_WARNED: usize = 4096;

/// Live records by (service, node id).
pub(super) type Snapshot = HashMap<(String, String), Record>;

/// What a look at the directory remembers for the next one: the modification times seen and
/// the records read, so that only what changed is read again.
pub(super) struct Scan {
    /// The registry directory.
    dir: PathBuf,
    /// The registry's paths skipped with a warning.
    warned: Arc<Mutex<HashSet<PathBuf>>>,
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
    pub(super) fn new(
        dir: PathBuf,
        warned: Arc<Mutex<HashSet<PathBuf>>>,
        service: Option<String>,
    ) -> Scan {
        Scan {
            dir,
            warned,
            service,
            root: None,
            dirs: HashMap::new(),
        }
    }

    /// Looks at the directory (on a blocking thread) and returns the live records.
    pub(super) async fn run(&mut self) -> Result<Snapshot> {
        let mut this = std::mem::replace(
            self,
            Scan::new(self.dir.clone(), self.warned.clone(), self.service.clone()),
        );
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
            let path = self.dir.join(&name);
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
                state.records = read_dir_records(&path, &self.warned)?;
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
        let root = &self.dir;
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

/// The live records of one service directory, with their paths; dead ones are removed,
/// things that are no record are skipped with a warning, and a directory left empty is
/// removed. A directory or record that can't be read for want of resources (out of file
/// descriptors, say) is an `UNAVAILABLE` error, not an empty service: callers then keep
/// what they knew.
fn read_dir_records(
    dir: &Path,
    warned: &Mutex<HashSet<PathBuf>>,
) -> Result<Vec<(PathBuf, NodeFile)>> {
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
                warn_once(warned, &path, &why);
                continue;
            }
            Err(e) => return Err(io_error(&path, e)),
        };
        match serde_json::from_slice::<NodeFile>(&bytes) {
            Ok(rec) if rec.service.name.is_empty() || rec.service.nodes.is_empty() => {
                warn_once(warned, &path, "no service name or no node");
            }
            Ok(rec) if is_dead(&rec, now) => {
                let _ = std::fs::remove_file(&path);
            }
            Ok(rec) => out.push((path, rec)),
            Err(e) => warn_once(warned, &path, &format!("not a record: {e}")),
        }
    }
    if entries_seen == 0 {
        // Left behind by its last node. A registration that made it again a moment ago
        // writes again (see `write_record`).
        let _ = std::fs::remove_dir(dir);
    }
    Ok(out)
}

/// Warns about `path` (skipped for `why`) unless it was warned about already.
fn warn_once(warned: &Mutex<HashSet<PathBuf>>, path: &Path, why: &str) {
    let mut warned = warned.lock().unwrap_or_else(|e| e.into_inner());
    if warned.len() >= MAX_WARNED {
        warned.clear();
    }
    if warned.insert(path.to_owned()) {
        tracing::warn!(path = %path.display(), "skipping registry record: {why}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::registry::RegisterOptions;
    use crate::registry::Registry as _;
    use crate::registry::local::LocalRegistry;
    use crate::registry::local::fixtures::svc;

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
}
