//! Messages as AMQP carries them: a message's headers as persistent AMQP properties and
//! back, and AMQP's limit on short strings (names, routing keys, header names).

use std::collections::BTreeMap;

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

use crate::broker::{CONTENT_TYPE_HEADER, Envelope, Header};
use crate::error::{Code, Error, Result};

/// AMQP's limit on short strings: routing keys, queue and exchange names, header names.
const MAX_SHORT_STRING: usize = 255;

/// The AMQP properties of a message: persistent, its headers as long strings, its
/// `Content-Type` as the content type.
pub(super) fn properties(message: &Envelope) -> Result<BasicProperties> {
    let mut table = BTreeMap::new();
    for (key, value) in &message.header {
        check_short("header name", key)?;
        table.insert(
            ShortString::from(key.as_ref()),
            AMQPValue::LongString(LongString::from(value.as_bytes())),
        );
    }
    let mut properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(FieldTable::from(table));
    if let Some(ct) = message.header(CONTENT_TYPE_HEADER)
        && ct.len() <= MAX_SHORT_STRING
    {
        properties = properties.with_content_type(ShortString::from(ct));
    }
    Ok(properties)
}

/// A delivery's headers as strings (go-micro's subscriber formats them with `%v` too), plus
/// `Content-Type` from the AMQP content type when the headers lack it (a message from a
/// publisher that is not micro).
pub(super) fn headers(properties: &BasicProperties) -> Header {
    // Collected, so sorted once: a message with many headers costs no quadratic inserts.
    let mut header: Header = properties
        .headers()
        .iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.to_string().into(), header_value(value)?)))
        .collect();
    if let Some(ct) = properties.content_type() {
        header
            .entry(CONTENT_TYPE_HEADER.into())
            .or_insert_with(|| ct.to_string());
    }
    header
}

fn header_value(value: &AMQPValue) -> Option<String> {
    Some(match value {
        AMQPValue::LongString(s) => s.to_string(),
        AMQPValue::ShortString(s) => s.to_string(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Float(n) => n.to_string(),
        AMQPValue::Double(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        AMQPValue::ByteArray(b) => String::from_utf8_lossy(b.as_slice()).into_owned(),
        AMQPValue::Void => return None,
        other => format!("{other:?}"),
    })
}

/// Fails when `s` (the `what`) is longer than an AMQP short string.
pub(super) fn check_short(what: &str, s: &str) -> Result<()> {
    if s.len() > MAX_SHORT_STRING {
        return Err(Error::new(
            Code::InvalidArgument,
            format!(
                "rabbitmq: {what} is {} bytes; AMQP allows {MAX_SHORT_STRING}",
                s.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let msg = Envelope::new("x")
            .with_header("Content-Type", "application/json")
            .with_header("Micro-Id", "42");
        let props = properties(&msg).unwrap();
        assert_eq!(props.delivery_mode(), &Some(2));
        assert_eq!(
            props.content_type().as_ref().map(ShortString::as_str),
            Some("application/json")
        );
        assert_eq!(headers(&props), msg.header);

        // A foreign publisher: typed headers, content type only as the property.
        let mut table = FieldTable::default();
        table.insert("n".into(), AMQPValue::LongInt(-3));
        table.insert("b".into(), AMQPValue::Boolean(true));
        let props = BasicProperties::default()
            .with_headers(table)
            .with_content_type("text/plain".into());
        let h = headers(&props);
        assert_eq!(h.get("n").map(String::as_str), Some("-3"));
        assert_eq!(h.get("b").map(String::as_str), Some("true"));
        assert_eq!(
            h.get("Content-Type").map(String::as_str),
            Some("text/plain")
        );

        let long = "k".repeat(256);
        let err = properties(&Envelope::new("x").with_header(long, "v")).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
}
