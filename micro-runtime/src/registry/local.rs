//! The host-local registry, the default: one JSON file per node in a directory that every
//! process of the machine can read.
//!
//! Layout: `<dir>/<service name>/<node id>.json`, each file a record: go-micro's service
//! JSON holding that one node, its expiry and the pid (and, on Linux, the pid namespace) of
//! the process that wrote it. Files are written whole and renamed into place, so readers
//! never see half a record. A record is dead when its TTL has passed or, on Linux, as soon as
//! its process has exited (a `kill -9` leaves no stale node behind); readers skip dead
//! records and remove them. The pid is only looked at by readers in the writer's pid
//! namespace: a container sharing the directory has pids of its own, and its records live
//! by their TTL. Broken files are skipped with a warning.
//!
//! The directory is `--registry_address` when given, else `micro-registry` in the system's
//! temporary directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Action, Event, RegisterOptions, Registry, Service, Watcher};
use crate::error::{Code, Error, Result};

/// How often a watch looks at the directory.
const WATCH_PERIOD: Duration = Duration::from_millis(250);

/// A registry in a directory shared by the processes of one host.
#[derive(Clone, Debug)]
pub struct LocalRegistry {
    dir: PathBuf,
}

/// One node's file.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// Unix time in milliseconds after which the record is dead; 0 for never.
    expires: u64,
    /// The process that registered the node.
    pid: u32,
    /// Its pid namespace (`pid:[4026531836]`): `pid` means something only to readers in the
    /// same one. Absent where it can't be known (and in records of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pid_ns: Option<String>,
    /// go-micro's service record, holding this one node.
    service: Service,
}

impl LocalRegistry {
    /// A registry in `dir`, created when missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<LocalRegistry> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        Ok(LocalRegistry { dir })
    }

    /// The registry in the default directory, shared by every process of this host.
    pub fn default_dir() -> Result<LocalRegistry> {
        LocalRegistry::new(std::env::temp_dir().join("micro-registry"))
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

    /// Live single-node records of one service directory (none when it does not exist). A
    /// directory or record that can't be read (out of file descriptors, say) is an
    /// `UNAVAILABLE` error, not an empty service: callers then keep what they knew.
    async fn read_service_dir(&self, dir: &Path) -> Result<Vec<Service>> {
        let mut out = Vec::new();
        let mut entries = match tokio::fs::read_dir(dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_error(dir, e)),
        };
        let now = now_ms();
        while let Some(entry) = entries.next_entry().await.map_err(|e| io_error(dir, e))? {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = match tokio::fs::read(&path).await {
                Ok(bytes) => bytes,
                // Deregistered (or expired and removed) since the listing.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(&path, e)),
            };
            match serde_json::from_slice::<Record>(&bytes) {
                Ok(rec) if rec.service.name.is_empty() => {
                    tracing::warn!(path = %path.display(), "skipping registry record without a name");
                }
                Ok(rec) if is_dead(&rec, now) => {
                    let _ = tokio::fs::remove_file(&path).await;
                }
                Ok(rec) => out.push(rec.service),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping broken registry record");
                }
            }
        }
        Ok(out)
    }

    /// Live records of the service `name`. Names that escape alike (`a/b`, `a-b`) share a
    /// directory: only this one's records.
    async fn read_service(&self, name: &str) -> Result<Vec<Service>> {
        let mut records = self.read_service_dir(&self.dir.join(escape(name))).await?;
        records.retain(|s| s.name == name);
        Ok(records)
    }

    async fn read_all(&self) -> Result<Vec<Service>> {
        let mut out = Vec::new();
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_error(&self.dir, e)),
        };
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| io_error(&self.dir, e))?
        {
            if entry.file_type().await.is_ok_and(|t| t.is_dir()) {
                out.extend(self.read_service_dir(&entry.path()).await?);
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Registry for LocalRegistry {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn register(&self, service: &Service, options: RegisterOptions) -> Result<()> {
        let expires = if options.ttl.is_zero() {
            0
        } else {
            let ttl = u64::try_from(options.ttl.as_millis()).unwrap_or(u64::MAX);
            now_ms().saturating_add(ttl)
        };
        for node in &service.nodes {
            let path = self.node_path(&service.name, &node.id);
            let record = Record {
                expires,
                pid: std::process::id(),
                pid_ns: pid_namespace().map(str::to_owned),
                service: Service {
                    nodes: vec![node.clone()],
                    ..service.clone()
                },
            };
            let json = serde_json::to_vec(&record)
                .map_err(|e| Error::new(Code::Internal, format!("encode registry record: {e}")))?;
            let dir = path.parent().unwrap_or(&self.dir);
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io_error(dir, e))?;
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            tokio::fs::write(&tmp, json)
                .await
                .map_err(|e| io_error(&tmp, e))?;
            tokio::fs::rename(&tmp, &path)
                .await
                .map_err(|e| io_error(&path, e))?;
        }
        Ok(())
    }

    async fn deregister(&self, service: &Service) -> Result<()> {
        for node in &service.nodes {
            let path = self.node_path(&service.name, &node.id);
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path, e)),
            }
        }
        Ok(())
    }

    async fn get_service(&self, name: &str) -> Result<Vec<Service>> {
        let found = super::merge(self.read_service(name).await?);
        if found.is_empty() {
            return Err(super::not_found(name));
        }
        Ok(found)
    }

    async fn list_services(&self) -> Result<Vec<Service>> {
        Ok(super::merge(self.read_all().await?))
    }

    async fn watch(&self, service: Option<&str>) -> Result<Watcher> {
        let (tx, watcher) = Watcher::channel();
        let this = self.clone();
        let filter = service.map(str::to_owned);
        let mut known = this.snapshot(filter.as_deref()).await?;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_PERIOD);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = tx.closed() => return,
                }
                let now = match this.snapshot(filter.as_deref()).await {
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

impl LocalRegistry {
    /// Live records by (service, node id).
    async fn snapshot(&self, service: Option<&str>) -> Result<HashMap<(String, String), Service>> {
        let records = match service {
            Some(name) => self.read_service(name).await?,
            None => self.read_all().await?,
        };
        Ok(records
            .into_iter()
            .filter_map(|s| Some(((s.name.clone(), s.nodes.first()?.id.clone()), s)))
            .collect())
    }
}

/// The events that turn `old` into `new`.
fn diff(
    old: &HashMap<(String, String), Service>,
    new: &HashMap<(String, String), Service>,
) -> Vec<Event> {
    let mut events = Vec::new();
    for (key, svc) in new {
        match old.get(key) {
            None => events.push(Event {
                action: Action::Create,
                service: svc.clone(),
            }),
            Some(prev) if prev != svc => events.push(Event {
                action: Action::Update,
                service: svc.clone(),
            }),
            Some(_) => {}
        }
    }
    for (key, svc) in old {
        if !new.contains_key(key) {
            events.push(Event {
                action: Action::Delete,
                service: svc.clone(),
            });
        }
    }
    events
}

fn is_dead(rec: &Record, now: u64) -> bool {
    (rec.expires != 0 && rec.expires <= now) || !process_alive(rec)
}

/// Whether the process that wrote `rec` lives, as far as this process can tell: only on
/// Linux, and only for a writer in this pid namespace; otherwise the TTL decides.
fn process_alive(rec: &Record) -> bool {
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

    fn svc(name: &str, id: &str) -> Service {
        Service {
            name: name.into(),
            version: "latest".into(),
            nodes: vec![Node {
                id: id.into(),
                address: "127.0.0.1:1".into(),
                ..Node::default()
            }],
            ..Service::default()
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
        let rec = Record {
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

    #[test]
    fn escapes_separators() {
        assert_eq!(escape("go.micro/x"), "go.micro-x");
        assert_eq!(escape(".."), "_..");
    }
}
