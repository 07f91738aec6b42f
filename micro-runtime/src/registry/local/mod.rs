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

mod dir;
mod files;
mod liveness;
mod scan;
mod watch;

pub use files::MAX_RECORD_SIZE;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use self::dir::{check_private, io_error, make_private_dir, uid};
use self::files::{NodeFile, escape, write_record};
use self::liveness::{now_ms, pid_namespace};
use self::scan::Scan;
use super::{Record, RegisterOptions, Registry, Watcher};
use crate::error::{Code, Error, Result};

/// A registry in a directory shared by the processes of one host.
#[derive(Clone, Debug)]
pub struct LocalRegistry {
    dir: PathBuf,
    /// Paths skipped with a warning, so that a watch looking every 250 ms warns once.
    warned: Arc<Mutex<HashSet<PathBuf>>>,
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

    /// Live records of the service `name`. Names that escape alike (`a/b`, `a-b`) share a
    /// directory: only this one's records.
    async fn read_service(&self, name: &str) -> Result<Vec<Record>> {
        let mut scan = self.scan(Some(name.to_owned()));
        Ok(scan.run().await?.into_values().collect())
    }

    async fn read_all(&self) -> Result<Vec<Record>> {
        let mut scan = self.scan(None);
        Ok(scan.run().await?.into_values().collect())
    }

    /// A look at the directory for the records of `service`, or of every service.
    fn scan(&self, service: Option<String>) -> Scan {
        Scan::new(self.dir.clone(), self.warned.clone(), service)
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
        watch::watch(self.scan(service.map(str::to_owned))).await
    }
}

#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::local::fixtures::svc;

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
}
