//! JetStream names: the stream of each topic (its name and its configuration) and the
//! consumer name of each queue group, made valid for JetStream and kept apart by a hash.

use async_nats::jetstream::stream;

/// What the name of each topic's JetStream stream starts with.
pub const STREAM_PREFIX: &str = "MICRO_";

/// The configuration of `topic`'s stream: in files, kept while some consumer still needs a
/// message.
pub(super) fn stream_config(topic: &str) -> stream::Config {
    stream::Config {
        name: stream_name(topic),
        subjects: vec![topic.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Interest,
        ..Default::default()
    }
}

/// The JetStream stream of `topic`.
pub fn stream_name(topic: &str) -> String {
    format!("{STREAM_PREFIX}{}", js_name(topic))
}

/// A valid JetStream name for `raw`: `.` becomes `_`; anything lossier (other characters,
/// or truncation) appends `__` and a hash of `raw`, which plain names never contain.
pub(super) fn js_name(raw: &str) -> String {
    const KEEP: usize = 64;
    let mut name: String = raw
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' => c,
            _ => '_',
        })
        .collect();
    let lossy = raw
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        || name.contains("__")
        || name.len() > KEEP;
    if lossy {
        name.truncate(KEEP - 18);
        name.push_str(&format!("__{:016x}", fnv1a(raw.as_bytes())));
    }
    name
}

/// FNV-1a: a hash that stays the same across builds and processes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(stream_name("orders.new"), "MICRO_orders_new");
        assert_eq!(js_name("billing"), "billing");
        let underscored = js_name("orders_new");
        assert!(underscored.starts_with("orders_new__"), "{underscored}");
        assert_ne!(js_name("a.b"), js_name("a_b"));
        assert_ne!(js_name("a b"), js_name("a_b"));
        let long = js_name(&"x".repeat(300));
        assert_eq!(long.len(), 64);
        assert_ne!(long, js_name(&"x".repeat(301)));
        assert!(
            js_name("a.*>/ é")
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
    }
}
