//! Pieces of go-micro's API gateway (its `api/resolver` packages) that any front may use:
//! how an HTTP path names a service and an endpoint, and how form fields and query
//! parameters become a request. `micro api` and `micro sidecar` use them.
//!
//! ```
//! use micro_runtime::api::{proxy_route, resolve};
//!
//! assert_eq!(resolve("/greeter/say-hello"), Some(("greeter".into(), "Greeter.SayHello".into())));
//! assert_eq!(resolve("/v1/foo/bar"), Some(("v1.foo".into(), "Foo.Bar".into())));
//! assert_eq!(proxy_route("/v1/foo/bar").as_deref(), Some("v1.foo"));
//! ```

use serde_json::{Map, Value};

/// go-micro's `micro` resolver: the service name and endpoint of a path, before the
/// namespace; `None` for a path with no service in it.
///
/// ```text
/// /foo/bar          -> foo,     Foo.Bar
/// /foo/bar/baz      -> foo,     Bar.Baz
/// /foo/bar/baz/cat  -> foo.bar, Baz.Cat
/// /v1/foo/bar       -> v1.foo,  Foo.Bar
/// ```
pub fn resolve(path: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (service, method) = match parts.as_slice() {
        [] => return None,
        // One or two parts: the first is the service, all of them the method.
        [first] | [first, _] => (first.to_string(), &parts[..]),
        // /v1/foo/bar: versioned.
        [version, name, _] if is_version(version) => (format!("{version}.{name}"), &parts[1..]),
        // Everything but the last two parts is the service, those two the method.
        _ => (
            parts[..parts.len() - 2].join("."),
            &parts[parts.len() - 2..],
        ),
    };
    let endpoint = method
        .iter()
        .map(|p| camel(p))
        .collect::<Vec<_>>()
        .join(".");
    Some((service, endpoint))
}

/// go-micro's resolver for its proxying handlers: the service a path's first part names
/// (`/v1/foo/...`: `v1.foo`); `None` for a path without one, or a name go-micro refuses.
pub fn proxy_route(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    let (service, alias) = match parts.as_slice() {
        [version, name, ..] if is_version(version) => (format!("{version}.{name}"), *name),
        [name, ..] => (name.to_string(), *name),
        [] => return None,
    };
    // go-micro's ^[a-zA-Z0-9]+([a-zA-Z0-9-_]*[a-zA-Z0-9]+)?$
    let bytes = alias.as_bytes();
    let edge = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    let valid = edge(bytes.first())
        && edge(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
    valid.then_some(service)
}

/// `v1`, `v22`: a version part of a path.
fn is_version(part: &str) -> bool {
    part.strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `say-hello` -> `SayHello`: each dash-separated word with its first letter upper-cased.
fn camel(part: &str) -> String {
    part.split('-')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect()
}

/// Form or query parameters as a JSON object of strings (the first of repeated keys).
pub fn form(bytes: &[u8]) -> Map<String, Value> {
    let mut fields = Map::new();
    for (key, value) in form_urlencoded::parse(bytes) {
        fields
            .entry(key.into_owned())
            .or_insert_with(|| Value::String(value.into_owned()));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_routes_as_go_micro_resolves_them() {
        assert_eq!(proxy_route("/foo/bar/baz").as_deref(), Some("foo"));
        assert_eq!(proxy_route("/foo").as_deref(), Some("foo"));
        assert_eq!(proxy_route("/v1/foo/bar").as_deref(), Some("v1.foo"));
        assert_eq!(proxy_route("/v1/foo").as_deref(), Some("v1.foo"));
        assert_eq!(proxy_route("/v1").as_deref(), Some("v1"));
        assert_eq!(proxy_route("/my-svc_2/x").as_deref(), Some("my-svc_2"));
        for refused in [
            "/",
            "",
            "/-foo/x",
            "/foo-/x",
            "/fo.o/x",
            "/%2e%2e/x",
            "/v1/",
        ] {
            assert_eq!(proxy_route(refused), None, "{refused}");
        }
    }

    #[test]
    fn paths_resolve_as_go_micros_micro_resolver() {
        for (path, service, endpoint) in [
            ("/foo/bar", "foo", "Foo.Bar"),
            ("/foo/bar/baz", "foo", "Bar.Baz"),
            ("/foo/bar/baz/cat", "foo.bar", "Baz.Cat"),
            ("/v1/foo/bar", "v1.foo", "Foo.Bar"),
            ("/v1/foo/bar/baz", "v1.foo", "Bar.Baz"),
            ("/greeter/say-hello", "greeter", "Greeter.SayHello"),
            ("/greeter/hello/", "greeter", "Greeter.Hello"),
            ("/foo", "foo", "Foo"),
            ("/vx/foo/bar", "vx", "Foo.Bar"),
        ] {
            assert_eq!(
                resolve(path),
                Some((service.to_owned(), endpoint.to_owned())),
                "{path}"
            );
        }
        assert_eq!(resolve("/"), None);
        assert_eq!(resolve("//"), None);
    }

    #[test]
    fn forms_take_the_first_of_repeated_keys() {
        assert_eq!(
            Value::Object(form(b"name=Ada&name=Bob&x=%C3%A9+y")),
            serde_json::json!({ "name": "Ada", "x": "é y" })
        );
        assert!(form(b"").is_empty());
    }
}
