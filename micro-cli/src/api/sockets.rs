//! The gateway's WebSockets: streaming endpoints (go-micro's rpc handler) and, in the
//! sidecar, broker subscriptions (go-micro's broker handler).
//!
//! Both ping the peer every [`PING_EVERY`] and take it for gone after [`SILENCE`] without a
//! frame from it (pongs count), end with a close frame and wait (briefly) for the peer's,
//! and close with 1001 when the gateway stops, which waits for them.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, Uri, header};
use axum::response::Response;
use base64::prelude::{BASE64_STANDARD, Engine as _};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use micro_runtime::broker::{self, Event, SubscribeOptions};
use micro_runtime::{CallStream, Code, Error};
use serde_json::{Map, Value};
use tokio::sync::watch;

use micro_runtime::api::form;

use super::Gateway;
use super::http::{
    bad_request, call_options, error_status, header_list, json_response, request_of,
};

/// How often a socket is pinged.
const PING_EVERY: Duration = Duration::from_secs(30);
/// How long a socket may send nothing (not even a pong) before it is taken for gone.
const SILENCE: Duration = Duration::from_secs(2 * 30);
/// How long a closing socket waits for the peer's close (and for its own to go out).
const CLOSE_WAIT: Duration = Duration::from_secs(2);

type Out = SplitSink<WebSocket, Message>;
type In = SplitStream<WebSocket>;

impl Gateway {
    /// Whether a WebSocket request may be upgraded: browsers apply no CORS to WebSockets,
    /// so, as go-micro's broker handler, only a request without an `Origin`, from the
    /// gateway's own host, or from an origin `--cors` allows.
    pub(super) fn socket_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        if self.cors_allows(origin) {
            return true;
        }
        let host = headers.get(header::HOST).map(|h| h.as_bytes());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.parse::<Uri>().ok())
            .and_then(|u| u.authority().map(|a| a.as_str().to_owned()));
        origin_host.is_some_and(|o| Some(o.as_bytes()) == host)
    }

    /// A WebSocket request for a streaming endpoint: the upgrade, with the stream relayed
    /// over the socket (see the api module's docs); or, when it failed to open, its error
    /// as a call's. `None` when the path names no streaming endpoint: the request is then
    /// answered as a call, as go-micro does.
    pub(super) async fn stream(
        &self,
        upgrade: WebSocketUpgrade,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<Response> {
        if self.own_path(uri.path()) {
            return None;
        }
        let (service, endpoint) = self.resolved(uri.path()).ok()?;
        if !self.is_stream(&service, &endpoint).await {
            return None;
        }
        let opened = async {
            let request = request_of(uri, headers, &[])?;
            let options = call_options(headers)?;
            let stream = self
                .client
                .stream_endpoint::<Value, Value>(&service, &endpoint, &options)
                .await?;
            Ok::<_, Error>((request, stream))
        };
        let (request, stream) = match opened.await {
            Ok(opened) => opened,
            Err(e) => return Some(json_response(error_status(&e), e.to_json())),
        };
        // As go-micro: any subprotocol the client offers is accepted, `binary` first, and
        // with `binary` the responses go as binary messages.
        let mut offered: Vec<String> = header_list(headers, header::SEC_WEBSOCKET_PROTOCOL)
            .map(str::to_owned)
            .collect();
        let binary = offered.iter().any(|p| p == "binary");
        if binary {
            offered.insert(0, "binary".to_owned());
        }
        let stopping = self.stopping.clone();
        let tasks = self.tasks.clone();
        Some(
            upgrade
                .protocols(offered)
                .max_message_size(self.client.options().max_message_size)
                .on_upgrade(move |socket| {
                    tasks.track_future(relay(socket, stream, request, binary, stopping))
                }),
        )
    }

    /// Whether a version of `service` in the registry has `endpoint` as a stream.
    async fn is_stream(&self, service: &str, endpoint: &str) -> bool {
        let Ok(versions) = self.client.registry().get_service(service).await else {
            return false;
        };
        versions
            .iter()
            .flat_map(|v| &v.endpoints)
            .filter(|e| e.name == endpoint)
            .any(|e| e.metadata.get("stream").is_some_and(|s| s == "true"))
    }

    /// `/broker?topic=T[&queue=Q]` as a WebSocket (go-micro's sidecar broker handler): each
    /// message on the topic comes as a text message of go-micro's JSON of a broker message
    /// (`{"Header": {...}, "Body": "<base64>"}`), and each message from the socket is
    /// published to the topic, its `Content-Type` the request's (`text/plain` without one).
    /// Subscribed once upgraded; unsubscribed when the socket closes. A failure to subscribe
    /// closes the socket with 1011 and the error.
    pub(super) fn subscribe(
        &self,
        upgrade: WebSocketUpgrade,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Response {
        let query = form(uri.query().unwrap_or_default().as_bytes());
        let text = |key: &str| {
            query
                .get(key)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let (Some(topic), Some(broker)) = (text("topic"), self.client.broker().cloned()) else {
            let e = match self.client.broker() {
                None => Error::new(Code::FailedPrecondition, "the sidecar has no broker"),
                Some(_) => bad_request("subscribe needs ?topic="),
            };
            return json_response(error_status(&e), e.to_json());
        };
        let options = match text("queue") {
            Some(queue) => SubscribeOptions::new().queue(queue),
            None => SubscribeOptions::new(),
        };
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("text/plain")
            .to_owned();
        let mut stopping = self.stopping.clone();
        let tasks = self.tasks.clone();
        let session = async move |socket: WebSocket| {
            let (mut out, mut incoming) = socket.split();
            let (tx, mut events) = tokio::sync::mpsc::channel::<String>(64);
            let deliver = broker::handler(move |event: Event| {
                let tx = tx.clone();
                async move {
                    let message = event.message();
                    let json = serde_json::json!({
                        "Header": message
                            .header
                            .iter()
                            .map(|(k, v)| (k.to_string(), Value::from(v.as_str())))
                            .collect::<Map<_, _>>(),
                        "Body": BASE64_STANDARD.encode(&message.body),
                    });
                    tx.send(json.to_string()).await.map_err(|_| {
                        Error::new(Code::Unavailable, "the subscriber's socket closed")
                    })
                }
            });
            let subscriber = match broker.subscribe(&topic, deliver, options).await {
                Ok(subscriber) => subscriber,
                Err(e) => {
                    let frame = close_frame(close_code::ERROR, &e);
                    return finish(out, incoming, Some(frame)).await;
                }
            };
            // Apart, so that a publish waiting for our own subscription's delivery (the
            // http broker waits for its subscribers) never waits on itself.
            let forward = async {
                let mut ping = pings();
                loop {
                    let message = tokio::select! {
                        event = events.recv() => match event {
                            Some(event) => Message::Text(event.into()),
                            None => return,
                        },
                        _ = ping.tick() => Message::Ping(Default::default()),
                    };
                    if out.send(message).await.is_err() {
                        return;
                    }
                }
            };
            let publish = async {
                while let Some(message) = heard(&mut incoming).await {
                    let body = match message {
                        Message::Text(text) => text.into(),
                        Message::Binary(bytes) => bytes,
                        Message::Ping(_) | Message::Pong(_) => continue,
                        Message::Close(_) => break,
                    };
                    let message = broker::Envelope::new(body)
                        .with_header("Content-Type", content_type.clone());
                    if let Err(e) = broker.publish(&topic, message).await {
                        tracing::warn!(%topic, error = %e, "publishing a socket's message failed");
                    }
                }
            };
            let close = tokio::select! {
                () = forward => None,
                () = publish => None,
                _ = stopping.wait_for(|stopped| *stopped) => Some(going_away()),
            };
            // Deliveries waiting for room in the channel fail now, so that the broker's
            // delivery loop lets the unsubscribe through.
            drop(events);
            if let Err(e) = subscriber.unsubscribe().await {
                tracing::warn!(%topic, error = %e, "unsubscribing failed");
            }
            finish(out, incoming, close).await;
        };
        upgrade
            .max_message_size(self.client.options().max_message_size)
            .on_upgrade(move |socket| tasks.track_future(session(socket)))
    }
}

/// Relays a stream over a WebSocket: `request`, unless it is an empty object, is the one
/// request; else the socket's messages are. Ends when the stream ends (the socket closed
/// with its outcome), when the socket closes or goes silent (the call dropped, so
/// cancelled), or when the gateway stops.
async fn relay(
    socket: WebSocket,
    stream: CallStream<Value, Value>,
    request: Value,
    binary: bool,
    mut stopping: watch::Receiver<bool>,
) {
    let (mut requests, mut replies) = stream.split();
    let (mut out, mut incoming) = socket.split();
    let given = request.as_object().is_none_or(|fields| !fields.is_empty());
    // Ends only when the socket closes or goes silent (None) or sends what is not JSON.
    let send = async {
        let mut open = true;
        if given {
            // Its failure shows in the stream's answer.
            let _ = requests.send(request).await;
            requests.close_send();
            open = false;
        }
        while let Some(message) = heard(&mut incoming).await {
            let parsed = match &message {
                Message::Text(text) => serde_json::from_str::<Value>(text),
                Message::Binary(bytes) => serde_json::from_slice(bytes),
                Message::Close(_) => break,
                // Pings are answered by the socket itself.
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            match parsed {
                Err(e) => {
                    let e = bad_request(format!("request is not JSON: {e}"));
                    return Some(close_frame(close_code::INVALID, &e));
                }
                // Once the request side is over, the stream's answer says why.
                Ok(request) if open => open = requests.send(request).await.is_ok(),
                Ok(_) => {}
            }
        }
        None
    };
    let receive = async {
        let mut ping = pings();
        loop {
            let message = tokio::select! {
                reply = replies.recv() => match reply {
                    Ok(Some(reply)) if binary => Message::Binary(reply.to_string().into()),
                    Ok(Some(reply)) => Message::Text(reply.to_string().into()),
                    Ok(None) => {
                        return Some(CloseFrame {
                            code: close_code::NORMAL,
                            reason: "".into(),
                        });
                    }
                    Err(e) => return Some(close_frame(close_code::ERROR, &e)),
                },
                _ = ping.tick() => Message::Ping(Default::default()),
            };
            if out.send(message).await.is_err() {
                return None;
            }
        }
    };
    let close = tokio::select! {
        close = send => close,
        close = receive => close,
        _ = stopping.wait_for(|stopped| *stopped) => Some(going_away()),
    };
    finish(out, incoming, close).await;
}

/// A ping timer whose first tick is one period away.
fn pings() -> tokio::time::Interval {
    let start = tokio::time::Instant::now() + PING_EVERY;
    tokio::time::interval_at(start, PING_EVERY)
}

/// The socket's next message; `None` when it closed, failed, or sent nothing for
/// [`SILENCE`].
async fn heard(incoming: &mut In) -> Option<Message> {
    match tokio::time::timeout(SILENCE, incoming.next()).await {
        Ok(Some(Ok(message))) => Some(message),
        _ => None,
    }
}

/// Ends a socket: with `close` sent, waiting up to [`CLOSE_WAIT`] for the peer's close (what
/// it still sends is dropped); with none (the peer closed, or went away), the reply to its
/// close flushed.
async fn finish(mut out: Out, mut incoming: In, close: Option<CloseFrame>) {
    let ending = async {
        match close {
            Some(frame) => {
                if out.send(Message::Close(Some(frame))).await.is_ok() {
                    while let Some(message) = heard(&mut incoming).await {
                        if matches!(message, Message::Close(_)) {
                            break;
                        }
                    }
                }
            }
            None => {
                let _ = out.close().await;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, ending).await;
}

/// The close frame of a gateway that is stopping.
fn going_away() -> CloseFrame {
    CloseFrame {
        code: close_code::AWAY,
        reason: "the gateway is stopping".into(),
    }
}

/// A close frame for `error`: `Code: detail` as the reason, cut to the 123 bytes a close
/// frame holds.
fn close_frame(code: u16, error: &Error) -> CloseFrame {
    let mut reason = format!("{:?}: {}", error.code(), error.detail());
    if reason.len() > 123 {
        let mut end = 123;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    CloseFrame {
        code,
        reason: reason.into(),
    }
}
