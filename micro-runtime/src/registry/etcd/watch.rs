//! Watching etcd: a prefix watch with previous values made into registry events, reopened
//! from the revision after the last event delivered when its stream breaks.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::api::{self, WatchResponse};
use super::client::Conn;
use super::layout::{PREFIX, decode, from_key, service_prefix};
use crate::error::{Code, Error, Result};
use crate::registry::{Action, Change, Watcher};
use crate::stream::CallStream;

/// Longest wait between attempts to reopen a broken watch.
const MAX_WATCH_BACKOFF: Duration = Duration::from_secs(5);

/// A watch stream.
type WatchStream = CallStream<api::WatchRequest, WatchResponse>;

/// A watch of `service` (or of every service): its stream is open and confirmed when this
/// returns; a task feeds the [`Watcher`] from it.
pub(super) async fn watch(conn: &Arc<Conn>, service: Option<&str>) -> Result<Watcher> {
    let prefix = service.map_or_else(|| PREFIX.to_owned(), service_prefix);
    let (stream, next) = conn.open_watch(&prefix, None).await?;
    let (tx, watcher) = Watcher::channel();
    let task = WatchTask {
        conn: conn.clone(),
        prefix,
        service: service.map(str::to_owned),
        next,
        tx,
    };
    tokio::spawn(task.run(stream));
    Ok(watcher)
}

impl Conn {
    /// What a watcher is told when its changes can't be replayed.
    fn compacted(&self, prefix: &str, from: i64) -> Error {
        self.fail(
            Code::Unavailable,
            &format!("watch {prefix}"),
            format!("the changes from revision {from} are compacted away; watch again"),
        )
    }

    /// Opens a prefix watch from revision `start` (or from now), once etcd confirmed it.
    /// Returns the stream and the first revision it reports.
    async fn open_watch(&self, prefix: &str, start: Option<i64>) -> Result<(WatchStream, i64)> {
        // Progress notifications (etcd sends them on a quiet watch, every
        // --experimental-watch-progress-notify-interval) move the resume point on when
        // nothing under the prefix changes, so a resume after a compaction is no false loss.
        let create = api::WatchRequest {
            create_request: Some(api::WatchCreateRequest {
                key: prefix.as_bytes().to_vec(),
                range_end: api::prefix_end(prefix.as_bytes()),
                start_revision: start.unwrap_or(0),
                progress_notify: true,
                prev_kv: true,
            }),
        };
        let what = format!("watch {prefix}");
        let deadline = crate::transport::deadline_in(self.timeout);
        let (stream, first) = self
            .stream_until(deadline, &api::WATCH, &what, |mut stream: WatchStream| {
                let create = create.clone();
                async move {
                    stream.send(create).await?;
                    // Events are only certain to be seen once etcd confirmed the watch.
                    match stream.recv().await? {
                        Some(first) => Ok((stream, first)),
                        None => Err(Error::new(Code::Unavailable, "the stream closed")),
                    }
                }
            })
            .await?;
        if first.compact_revision > 0 {
            return Err(self.fail(
                Code::OutOfRange,
                &what,
                format!("revision {start:?} is compacted away"),
            ));
        }
        if !first.created || first.canceled {
            return Err(self.fail(
                Code::Unavailable,
                &what,
                format!("refused: {}", first.cancel_reason),
            ));
        }
        let now = first.header.as_ref().map_or(0, |h| h.revision);
        if let Some(from) = start {
            // etcd accepts a start in the future and waits for it: after its data was wiped
            // (revisions start again at 1) that would skip every change up to the old
            // revision, silently.
            if now + 1 < from {
                return Err(self.fail(
                    Code::OutOfRange,
                    &what,
                    format!(
                        "etcd is at revision {now}, behind the {from} this watch resumes from (its data was reset); watch again"
                    ),
                ));
            }
        }
        Ok((stream, start.unwrap_or(now + 1)))
    }
}

/// Feeds one [`Watcher`], reconnecting when the stream breaks.
struct WatchTask {
    conn: Arc<Conn>,
    prefix: String,
    /// The service watched, `None` for all.
    service: Option<String>,
    /// The revision to resume from: the one after the last event delivered.
    next: i64,
    tx: mpsc::Sender<Result<Change>>,
}

impl WatchTask {
    async fn run(mut self, stream: WatchStream) {
        let mut stream = Some(stream);
        loop {
            let mut current = match stream.take() {
                Some(s) => s,
                None => match self.reopen().await {
                    Some(s) => s,
                    None => return,
                },
            };
            loop {
                let message = tokio::select! {
                    _ = self.tx.closed() => return,
                    m = current.recv() => m,
                };
                let rsp = match message {
                    Ok(Some(rsp)) => rsp,
                    Ok(None) => {
                        tracing::debug!(prefix = %self.prefix, "etcd watch stream ended, reconnecting");
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(prefix = %self.prefix, error = %e, "etcd watch stream broke, reconnecting");
                        break;
                    }
                };
                if rsp.compact_revision > 0 {
                    let _ = self
                        .tx
                        .send(Err(self.conn.compacted(&self.prefix, self.next)))
                        .await;
                    return;
                }
                if rsp.canceled {
                    tracing::debug!(prefix = %self.prefix, reason = %rsp.cancel_reason, "etcd canceled the watch, reconnecting");
                    break;
                }
                // A progress notification: every change up to its revision was sent.
                if rsp.events.is_empty()
                    && !rsp.created
                    && let Some(header) = &rsp.header
                {
                    self.next = self.next.max(header.revision + 1);
                }
                for ev in &rsp.events {
                    if let Some(kv) = &ev.kv {
                        self.next = self.next.max(kv.mod_revision + 1);
                    }
                    let Some(event) = event(ev) else { continue };
                    if self
                        .service
                        .as_ref()
                        .is_some_and(|s| *s != event.service.name)
                    {
                        continue;
                    }
                    if self.tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// A new stream from the next revision, retried with backoff; `None` once the watcher is
    /// gone.
    async fn reopen(&mut self) -> Option<WatchStream> {
        let mut delay = Duration::from_millis(100);
        loop {
            tokio::select! {
                _ = self.tx.closed() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            let opened = tokio::select! {
                _ = self.tx.closed() => return None,
                o = self.conn.open_watch(&self.prefix, Some(self.next)) => o,
            };
            match opened {
                Ok((stream, _)) => return Some(stream),
                // Compacted away, or etcd's data reset: the changes since `next` can't be
                // had; the watcher's owner must look everything up again.
                Err(e) if e.code() == Code::OutOfRange => {
                    let err = if e.detail().contains("compacted") {
                        self.conn.compacted(&self.prefix, self.next)
                    } else {
                        Error::new(Code::Unavailable, e.detail())
                    };
                    let _ = self.tx.send(Err(err)).await;
                    return None;
                }
                Err(e) => {
                    tracing::debug!(prefix = %self.prefix, error = %e, "reopening the etcd watch failed");
                    delay = (delay * 2).min(MAX_WATCH_BACKOFF);
                }
            }
        }
    }
}

/// The registry event of an etcd event; `None` for a record that can't be read.
fn event(ev: &api::WatchEvent) -> Option<Change> {
    let kv = ev.kv.as_ref()?;
    // A deleted key comes as a tombstone, version 0; a put key has version 1 or more.
    if kv.version == 0 {
        let service = match &ev.prev_kv {
            Some(prev) => decode(prev)?,
            // The previous value was compacted away: what the key tells.
            None => from_key(&kv.key)?,
        };
        return Some(Change {
            action: Action::Delete,
            service,
        });
    }
    let action = if ev.prev_kv.is_some() {
        Action::Update
    } else {
        Action::Create
    };
    Some(Change {
        action,
        service: decode(kv)?,
    })
}
