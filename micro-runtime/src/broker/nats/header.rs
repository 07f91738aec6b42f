//! Headers both ways: a message's headers as NATS headers (checked for what the protocol
//! cannot carry), and a delivered NATS message as a broker message.

use std::borrow::Cow;

use async_nats::HeaderMap;
use async_nats::header::{HeaderName, IntoHeaderName, IntoHeaderValue};
use bytes::Bytes;

use crate::broker::{Envelope, Header};
use crate::error::{Code, Error, Result};

/// NATS headers from a message's; fails on what would break the protocol (a name with `:`
/// or outside printable ASCII, a value with a line break). Names and values move over
/// without copies: a static name stays static, a `String` becomes the NATS name's bytes.
pub(super) fn headers<V>(
    header: impl IntoIterator<Item = (Cow<'static, str>, V)>,
) -> Result<HeaderMap>
where
    V: AsRef<str> + IntoHeaderValue,
{
    let mut map = HeaderMap::new();
    for (key, value) in header {
        // Folds without early exits, which compile to a few vector instructions.
        let valid_key = !key.is_empty()
            && key
                .bytes()
                .fold(true, |ok, c| ok & c.is_ascii_graphic() & (c != b':'));
        let valid_value = !value
            .as_ref()
            .bytes()
            .fold(false, |bad, c| bad | (c == b'\r') | (c == b'\n'));
        if !(valid_key && valid_value) {
            return Err(Error::new(
                Code::InvalidArgument,
                format!(
                    "nats: header {:?}: {:?} cannot be sent",
                    key,
                    value.as_ref()
                ),
            ));
        }
        let name = match key {
            Cow::Borrowed(name) => HeaderName::from_static(name),
            Cow::Owned(name) => name.into_header_name(),
        };
        map.insert(name, value);
    }
    Ok(map)
}

/// A delivered NATS message as a broker message (the first value of each header).
pub(super) fn message(headers: Option<HeaderMap>, body: Bytes) -> Envelope {
    // Collected, so sorted once: a message with many headers costs no quadratic inserts.
    let header: Header = headers
        .iter()
        .flat_map(HeaderMap::iter)
        .filter_map(|(key, values)| {
            let value = values.first()?;
            Some((key.to_string().into(), value.as_str().to_owned()))
        })
        .collect();
    Envelope { header, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_conversion() {
        let mut header = crate::broker::Header::new();
        header.insert("Content-Type".into(), "text/plain".to_owned());
        header.insert(String::from("Micro-Topic").into(), "t".to_owned());
        let map = headers(header.clone()).unwrap();
        let back = message(Some(map), Bytes::from_static(b"x"));
        assert_eq!(back.header, header);
        assert!(headers([("Bad:Name".into(), "v")]).is_err());
        assert!(headers([("Bad Name".into(), "v")]).is_err());
        assert!(headers([(String::from("Bad\u{e9}").into(), "v")]).is_err());
        assert!(headers([("Name".into(), "line\r\nbreak")]).is_err());
        assert!(
            headers(Vec::<(Cow<'static, str>, String)>::new())
                .unwrap()
                .is_empty()
        );
    }
}
