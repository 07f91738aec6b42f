//! The TXT record of a node: go-micro's record holding that one node, with its TTL and `seq`,
//! cut into DNS strings and joined again (the scheme is in the [`mdns`](super) module docs).

use std::time::Duration;

use mdns_sd::{TxtProperties, TxtProperty};

use crate::error::{Code, Error, Result};
use crate::registry::Record;

/// The largest record (go-micro's service JSON with one node) a node may publish.
pub const MAX_RECORD_BYTES: usize = 8192;

/// The version of the TXT scheme, in key `txtvers`.
const TXT_VERSION: &str = "1";

/// Bytes of record per TXT string: `r999=` plus 250 bytes is 255.
const PIECE_BYTES: usize = 250;

/// What one TXT record carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Published {
    /// go-micro's service record holding the one node.
    pub(super) record: Record,
    pub(super) ttl: Duration,
    pub(super) seq: u64,
}

/// The TXT strings of a record (the scheme is in the `mdns` module docs).
pub(super) fn encode_txt(published: &Published) -> Result<Vec<TxtProperty>> {
    let json = serde_json::to_vec(&published.record).map_err(|e| {
        Error::new(
            Code::Internal,
            format!("mdns registry: encode the record: {e}"),
        )
    })?;
    if json.len() > MAX_RECORD_BYTES {
        return Err(Error::new(
            Code::InvalidArgument,
            format!(
                "mdns registry: the record of {} is {} bytes, over the {MAX_RECORD_BYTES} an mDNS \
                 TXT record carries (fewer endpoints or less metadata would fit)",
                published.record.name,
                json.len()
            ),
        ));
    }
    let ttl_ms = u64::try_from(published.ttl.as_millis()).unwrap_or(u64::MAX);
    let pieces: Vec<&[u8]> = json.chunks(PIECE_BYTES).collect();
    let mut txt = vec![
        TxtProperty::from(("txtvers", TXT_VERSION)),
        TxtProperty::from(("ttl", ttl_ms.to_string())),
        TxtProperty::from(("seq", published.seq.to_string())),
        TxtProperty::from(("parts", pieces.len().to_string())),
    ];
    txt.extend(
        pieces
            .iter()
            .enumerate()
            .map(|(i, piece)| TxtProperty::from((format!("r{i}"), piece))),
    );
    Ok(txt)
}

/// Decodes a TXT record's wire form (length-prefixed strings) as an announcement's, for the
/// fuzz target (`crate::fuzz`): whether it holds a record.
pub(crate) fn decode_txt_wire(data: &[u8]) -> Result<()> {
    decode_txt(&TxtProperties::from(data)).map(|_| ())
}

/// The record a TXT record carries; an error says what is wrong with a broken one.
pub(super) fn decode_txt(txt: &TxtProperties) -> Result<Published> {
    let broken = |what: String| Error::new(Code::Internal, format!("broken mdns record: {what}"));
    let text = |key: &str| -> Result<Option<&str>> {
        match txt.get_property_val(key) {
            None => Ok(None),
            Some(value) => std::str::from_utf8(value.unwrap_or_default())
                .map(Some)
                .map_err(|_| broken(format!("{key} is not text"))),
        }
    };
    let number = |key: &str| -> Result<u64> {
        match text(key)? {
            None => Ok(0),
            Some(s) => s
                .parse()
                .map_err(|_| broken(format!("{key}={s:?} is not a number"))),
        }
    };
    match text("txtvers")? {
        Some(TXT_VERSION) => {}
        Some(other) => return Err(broken(format!("unknown txtvers {other:?}"))),
        None => return Err(broken("no txtvers".into())),
    }
    let parts = number("parts")?;
    let max_parts = MAX_RECORD_BYTES.div_ceil(PIECE_BYTES) as u64;
    if parts == 0 || parts > max_parts {
        return Err(broken(format!("parts={parts}, expected 1 to {max_parts}")));
    }
    let mut json = Vec::new();
    for i in 0..parts {
        match txt.get_property_val(&format!("r{i}")) {
            Some(Some(piece)) => json.extend_from_slice(piece),
            _ => return Err(broken(format!("piece r{i} of {parts} is missing"))),
        }
    }
    let record = Record::from_json(&json)?;
    if record.nodes.len() != 1 {
        return Err(broken(format!(
            "{} holds {} nodes, expected 1",
            record.name,
            record.nodes.len()
        )));
    }
    Ok(Published {
        record,
        ttl: Duration::from_millis(number("ttl")?),
        seq: number("seq")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Endpoint;
    use crate::registry::mdns::fixtures::published;
    use mdns_sd::IntoTxtProperties;

    /// A record whose JSON needs many TXT strings, with multi-byte characters across the
    /// cuts.
    fn big() -> Published {
        let mut p = published("greeter", "greeter-1");
        for i in 0..40 {
            p.record.endpoints.push(Endpoint {
                name: format!("Greeter.Méthode{i}"),
                metadata: [("note".to_owned(), "é".repeat(10))].into(),
                ..Endpoint::default()
            });
        }
        p
    }

    fn props(txt: Vec<TxtProperty>) -> TxtProperties {
        txt.into_txt_properties()
    }

    /// The strings as they go on the wire (`key=value`, each length-prefixed), read back as
    /// a peer's daemon reads them.
    fn over_the_wire(txt: &[TxtProperty]) -> TxtProperties {
        let mut wire = Vec::new();
        for p in txt {
            let mut s = p.key().as_bytes().to_vec();
            if let Some(v) = p.val() {
                s.push(b'=');
                s.extend_from_slice(v);
            }
            assert!(s.len() <= 255, "TXT string of {} bytes", s.len());
            wire.push(s.len() as u8);
            wire.extend(s);
        }
        TxtProperties::from(wire.as_slice())
    }

    #[test]
    fn txt_round_trip() {
        for p in [published("greeter", "greeter-1"), big()] {
            let txt = encode_txt(&p).unwrap();
            assert_eq!(decode_txt(&over_the_wire(&txt)).unwrap(), p);
        }
        let txt = encode_txt(&big()).unwrap();
        assert!(
            txt.len() > 10,
            "the big record is split: {} strings",
            txt.len()
        );
    }

    #[test]
    fn txt_layout() {
        let txt = encode_txt(&published("greeter", "greeter-1")).unwrap();
        let keys: Vec<&str> = txt.iter().map(TxtProperty::key).collect();
        assert_eq!(&keys[..5], ["txtvers", "ttl", "seq", "parts", "r0"]);
        let txt = props(txt);
        assert_eq!(txt.get_property_val_str("ttl"), Some("1500"));
        assert_eq!(txt.get_property_val_str("seq"), Some("7"));
        let parts: usize = txt.get_property_val_str("parts").unwrap().parse().unwrap();
        assert_eq!(txt.len(), 4 + parts);
        assert!(
            txt.get_property_val_str("r0")
                .unwrap()
                .starts_with(r#"{"name":"greeter","version":"latest""#)
        );
    }

    #[test]
    fn too_big_a_record_is_refused() {
        let mut p = published("greeter", "greeter-1");
        p.record
            .metadata
            .insert("blob".into(), "x".repeat(MAX_RECORD_BYTES));
        let err = encode_txt(&p).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.detail().contains("bytes"), "{err}");
    }

    #[test]
    fn broken_txt_is_an_error() {
        let good = encode_txt(&big()).unwrap();
        let without = |key: &str| {
            props(
                good.iter()
                    .filter(|p| p.key() != key)
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        };
        let with = |key: &str, val: &[u8]| {
            props(
                good.iter()
                    .map(|p| {
                        if p.key() == key {
                            TxtProperty::from((key, val))
                        } else {
                            p.clone()
                        }
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let single = |json: &str| {
            props(vec![
                TxtProperty::from(("txtvers", "1")),
                TxtProperty::from(("parts", "1")),
                TxtProperty::from(("r0", json)),
            ])
        };
        let cases = [
            ("empty", props(Vec::new())),
            ("no version", without("txtvers")),
            ("other version", with("txtvers", b"2")),
            ("no parts", without("parts")),
            ("zero parts", with("parts", b"0")),
            ("parts not a number", with("parts", b"many")),
            ("too many parts", with("parts", b"999999")),
            ("a missing piece", without("r3")),
            (
                "a piece without value",
                props(vec![
                    TxtProperty::from(("txtvers", "1")),
                    TxtProperty::from(("parts", "1")),
                    TxtProperty::from("r0"),
                ]),
            ),
            ("a cut piece", with("r1", b"}")),
            ("ttl not a number", with("ttl", b"-1")),
            ("seq not text", with("seq", &[0xff, 0xfe])),
            ("not JSON", single("{nope")),
            (
                "no name",
                single(r#"{"name":"","nodes":[{"id":"a","address":"x"}]}"#),
            ),
            ("no node", single(r#"{"name":"a","nodes":[]}"#)),
            (
                "two nodes",
                single(
                    r#"{"name":"a","nodes":[{"id":"a","address":"x"},{"id":"b","address":"y"}]}"#,
                ),
            ),
        ];
        for (what, txt) in cases {
            assert!(decode_txt(&txt).is_err(), "{what} was accepted");
        }
        // Missing ttl and seq read as zero: no TTL, never refreshed.
        let p = decode_txt(&without("ttl")).unwrap();
        assert_eq!(p.ttl, Duration::ZERO);
    }
}
