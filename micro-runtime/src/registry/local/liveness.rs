//! Whether a node's record lives: its TTL has not passed and, on Linux, the process that
//! wrote it (when in this pid namespace) has not exited.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::files::NodeFile;

/// Whether `rec` is dead at Unix time `now` (milliseconds): expired, or its process exited.
pub(super) fn is_dead(rec: &NodeFile, now: u64) -> bool {
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
pub(super) fn pid_namespace() -> Option<&'static str> {
    static NS: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    NS.get_or_init(|| {
        let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
        link.to_str().map(str::to_owned)
    })
    .as_deref()
}

/// The Unix time in milliseconds.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use crate::registry::Registry as _;
    use crate::registry::local::LocalRegistry;
    use crate::registry::local::fixtures::svc;

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
}
