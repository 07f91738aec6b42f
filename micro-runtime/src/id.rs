//! Random ids. go-micro's node, broker and message ids are v4 UUIDs.

/// A v4 UUID from the thread's fast generator: fastrand's wyrand, seeded per thread from the
/// operating system's randomness (through std's hasher keys), the thread and the time. Ids
/// must be unique, not secret; this costs two multiplications per id where a ChaCha-based
/// generator costs a block of rounds and a thread-local set-up, and the system's generator
/// a system call.
pub(crate) fn uuid_v4() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid()
}

/// `<prefix>-<v4 uuid>`, go-micro's form of node and broker ids (`greeter-6f1c...`).
pub(crate) fn prefixed(prefix: &str) -> String {
    let mut buf = uuid::Uuid::encode_buffer();
    let uuid = uuid_v4().hyphenated().encode_lower(&mut buf);
    let mut id = String::with_capacity(prefix.len() + 1 + uuid.len());
    id.push_str(prefix);
    id.push('-');
    id.push_str(uuid);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v4_uuids_and_differ() {
        let a = uuid_v4();
        assert_eq!(a.get_version(), Some(uuid::Version::Random));
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, uuid_v4());
        let id = prefixed("greeter");
        let (name, uuid) = id.split_at(8);
        assert_eq!(name, "greeter-");
        assert_eq!(uuid::Uuid::parse_str(uuid).unwrap().get_version_num(), 4);
    }

    #[test]
    fn ids_differ_across_threads() {
        let other = std::thread::spawn(uuid_v4).join().unwrap();
        assert_ne!(other, uuid_v4());
    }
}
