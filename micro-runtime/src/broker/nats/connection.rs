//! The connection a broker's clones share: opened on first use (JetStream checked, in that
//! mode), with the topics whose stream is known to exist, and the subscriptions using it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use async_nats::ConnectOptions;
use async_nats::jetstream;
use bytes::Bytes;

use super::control::Control;
use super::options::{API_TIMEOUT, Config, Credentials, Mode};
use crate::error::{Code, Error, Result};

/// How long connecting to a server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a broker's clones and its subscriptions share.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) conn: ArcSwapOption<Conn>,
    /// Serialises connecting and disconnecting.
    pub(super) connecting: tokio::sync::Mutex<()>,
    pub(super) subs: Mutex<HashMap<u64, Arc<Control>>>,
    pub(super) next_id: AtomicU64,
}

impl Drop for Shared {
    /// The broker and its subscribers are all gone: so are the subscriptions' tasks (and
    /// with them the connection).
    fn drop(&mut self) {
        let subs = self.subs.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, control) in subs.drain() {
            control.stop();
            control.abort();
        }
    }
}

/// A live connection.
pub(super) struct Conn {
    pub(super) client: async_nats::Client,
    /// Set in JetStream mode.
    js: Option<jetstream::Context>,
    /// The topics whose stream is known to exist.
    streams: RwLock<HashSet<String>>,
}

impl Shared {
    /// Connects with `config`, unless connected meanwhile.
    pub(super) async fn open(&self, config: &Config) -> Result<Arc<Conn>> {
        let _guard = self.connecting.lock().await;
        if let Some(conn) = self.conn.load_full() {
            return Ok(conn);
        }
        let address = config.address.clone();
        let options = ConnectOptions::new()
            .name("micro")
            .connection_timeout(CONNECT_TIMEOUT)
            .event_callback(move |event| {
                let address = address.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!(%address, "nats: connected")
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!(%address, "nats: disconnected, reconnecting")
                        }
                        // Messages dropped for a subscriber that fell behind: lost, so
                        // seen at the default level.
                        async_nats::Event::SlowConsumer(sid) => {
                            tracing::warn!(%address, subscription = sid, "nats: slow consumer, messages dropped")
                        }
                        other => tracing::debug!(%address, event = %other, "nats"),
                    }
                }
            });
        let options = match &config.credentials {
            Some(Credentials::UserPassword(user, password)) => {
                options.user_and_password(user.clone(), password.clone())
            }
            Some(Credentials::Token(token)) => options.token(token.clone()),
            None => options,
        };
        let client = options
            .connect(config.servers.clone())
            .await
            .map_err(|e| unavailable(format!("nats: cannot connect to {}: {e}", config.address)))?;
        let js = match config.mode {
            Mode::Core => None,
            Mode::JetStream => {
                let js = jetstream::ContextBuilder::new()
                    .timeout(API_TIMEOUT)
                    .backpressure_on_inflight(true)
                    .build(client.clone());
                // Any answer will do: without JetStream, nobody answers.
                let info = client.request("$JS.API.INFO", Bytes::new());
                if let Err(e) = tokio::time::timeout(API_TIMEOUT, info)
                    .await
                    .map_err(|_| "no answer".to_owned())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                {
                    let _ = client.drain().await;
                    return Err(unavailable(format!(
                        "nats: JetStream is not available at {} (is the server started with -js?): {e}",
                        config.address
                    )));
                }
                Some(js)
            }
        };
        let conn = Arc::new(Conn {
            client,
            js,
            streams: RwLock::default(),
        });
        self.conn.store(Some(conn.clone()));
        Ok(conn)
    }

    /// Keeps `control` until the subscription ends, or the broker disconnects.
    pub(super) fn register(&self, control: &Arc<Control>) {
        self.subs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(control.id, control.clone());
    }
}

impl Conn {
    pub(super) fn jetstream(&self) -> Result<&jetstream::Context> {
        self.js.as_ref().ok_or_else(|| {
            Error::new(
                Code::Internal,
                "nats: JetStream used on a core NATS connection",
            )
        })
    }

    pub(super) fn has_stream(&self, topic: &str) -> bool {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(topic)
    }

    pub(super) fn remember_stream(&self, topic: &str) {
        self.streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(topic.to_owned());
    }

    pub(super) fn forget_stream(&self, topic: &str) {
        self.streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(topic);
    }
}

/// The error of a server that cannot be reached, or does not answer in time.
pub(super) fn unavailable(detail: String) -> Error {
    Error::new(Code::Unavailable, detail)
}
