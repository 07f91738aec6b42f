//! The message on the wire, go-micro's HTTP broker format: a JSON object with the headers
//! (the topic among them) and the base64 body, encoded by publishers and decoded by
//! subscribers.

use std::collections::HashMap;

use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::broker::{Envelope, Header, TOPIC_HEADER};
use crate::error::{Code, Error, Result};

/// The id of the errors the broker itself answers with (not a handler's).
pub(super) const BROKER_ID: &str = "go.micro.broker";

/// The JSON of a message on the wire: go's encoding of `broker.Message`.
#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(rename = "Header", default)]
    header: Option<HashMap<String, String>>,
    #[serde(rename = "Body", default)]
    body: Option<String>,
}

/// The JSON a publisher POSTs: `message` with its `topic` as the `Micro-Topic` header.
pub(super) fn encode_message(topic: &str, message: Envelope) -> Result<Bytes> {
    let mut header: HashMap<String, String> = message
        .header
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v))
        .collect();
    header.insert(TOPIC_HEADER.to_owned(), topic.to_owned());
    let wire = Wire {
        header: Some(header),
        body: Some(base64::engine::general_purpose::STANDARD.encode(&message.body)),
    };
    serde_json::to_vec(&wire)
        .map(Bytes::from)
        .map_err(|e| Error::new(Code::Internal, format!("encode message: {e}")))
}

/// A message as go-micro's HTTP broker POSTs it (`{"Header": {...}, "Body": "<base64>"}`),
/// with its topic (its `Micro-Topic` header). Errors are go-micro's error JSON's: 400 for a
/// body that is no such message.
///
/// ```
/// let (topic, message) = micro_runtime::broker::http::decode_message(
///     br#"{"Header": {"Micro-Topic": "events"}, "Body": "aGk="}"#,
/// )?;
/// assert_eq!(topic, "events");
/// assert_eq!(&message.body[..], b"hi");
/// # Ok::<(), micro_runtime::Error>(())
/// ```
pub fn decode_message(json: &[u8]) -> Result<(String, Envelope)> {
    const ID: &str = BROKER_ID;
    let wire: Wire = serde_json::from_slice(json)
        .map_err(|e| Error::bad_request(ID, format!("not a broker message: {e}")))?;
    let header: Header = wire
        .header
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.into(), v))
        .collect();
    let topic = header
        .get(TOPIC_HEADER)
        .cloned()
        .ok_or_else(|| Error::bad_request(ID, "the message has no Micro-Topic header"))?;
    let body = match wire.body {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| Error::bad_request(ID, format!("the body is not base64: {e}")))?,
        None => Vec::new(),
    };
    Ok((
        topic,
        Envelope {
            header,
            body: body.into(),
        },
    ))
}
