//! Addresses as they may be shown: in logs, errors and `--help`, a password in a URL's user
//! part (`nats://user:secret@host`, `amqp://guest:guest@host/`) is replaced by `***`.

/// `address` (one URL, or several separated by commas) with the password of each hidden.
pub(crate) fn address(address: &str) -> String {
    address.split(',').map(url).collect::<Vec<_>>().join(",")
}

/// One URL with its password hidden: the user part is what comes before the last `@` of
/// the authority (before any `/`, `?` or `#`).
fn url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host) = authority.split_at(at);
    match userinfo.find(':') {
        Some(colon) => format!("{scheme}{}:***{host}{path}", &userinfo[..colon]),
        // A user name alone may be a token (`nats://TOKEN@host`).
        None => format!("{scheme}***{host}{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_are_hidden() {
        assert_eq!(address("amqp://u:pw@h/"), "amqp://u:***@h/");
        assert_eq!(address("amqp://h/"), "amqp://h/");
        assert_eq!(
            address("nats://a:s3cr@t@h:4222, nats://b:x@h2"),
            "nats://a:***@h:4222, nats://b:***@h2"
        );
        assert_eq!(address("nats://sometoken@h:4222"), "nats://***@h:4222");
        assert_eq!(address("h:4222/path@x"), "h:4222/path@x");
        assert_eq!(address("user:pw@h:2379"), "user:***@h:2379");
    }
}
