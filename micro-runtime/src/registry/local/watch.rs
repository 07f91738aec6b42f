//! Watching the directory: a look every 250 ms, and the differences between two looks as
//! events.

use std::time::Duration;

use super::scan::{Scan, Snapshot};
use crate::error::Result;
use crate::registry::{Action, Change, Watcher};

/// How often a watch looks at the directory.
const WATCH_PERIOD: Duration = Duration::from_millis(250);

/// A watch fed by `scan`, from the records it reads now.
pub(super) async fn watch(mut scan: Scan) -> Result<Watcher> {
    let (tx, watcher) = Watcher::channel();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use crate::registry::local::LocalRegistry;
    use crate::registry::local::fixtures::svc;
    use crate::registry::{RegisterOptions, Registry as _};

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
}
