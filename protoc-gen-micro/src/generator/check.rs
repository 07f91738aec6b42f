//! The protos whose generated code would not compile, refused with an error that says what
//! to change: an rpc that takes or returns one of protobuf's own types the runtime has no
//! `Message` for, and names that come out alike in Rust.

use std::collections::BTreeMap;

use prost_types::FileDescriptorProto;

use super::names::{client_names, qualified};
use crate::Error;
use crate::ident::{to_snake, to_upper_camel};

/// The well-known types a generated service may take or return: those `micro_runtime`
/// implements `Message` for (prost maps `Empty` to `()` and the wrappers to primitives).
const WELL_KNOWN_MESSAGES: &[&str] = &[
    "Empty",
    "Timestamp",
    "Duration",
    "Struct",
    "Value",
    "ListValue",
    "Any",
    "FieldMask",
    "DoubleValue",
    "FloatValue",
    "Int64Value",
    "UInt64Value",
    "Int32Value",
    "UInt32Value",
    "BoolValue",
    "StringValue",
    "BytesValue",
];

/// Fails on an rpc that takes or returns a type of `google.protobuf` the runtime has no
/// `Message` for (`google.protobuf.FileDescriptorSet`, say), which would not compile.
pub(super) fn check_rpc_types(file: &FileDescriptorProto) -> Result<(), Error> {
    for service in &file.service {
        for method in &service.method {
            for (what, ty) in [
                ("request", method.input_type()),
                ("response", method.output_type()),
            ] {
                let ty = ty.trim_start_matches('.');
                if let Some(name) = ty.strip_prefix("google.protobuf.")
                    && !WELL_KNOWN_MESSAGES.contains(&name)
                {
                    return Err(Error::Unsupported(format!(
                        "{}: rpc {}.{}: {ty} as a {what}: of protobuf's own types, only {} can be a request or response; wrap it in a message of your own",
                        file.name(),
                        qualified(file.package(), service.name()),
                        method.name(),
                        WELL_KNOWN_MESSAGES
                            .iter()
                            .map(|m| format!("google.protobuf.{m}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Fails on the names that would make the generated code of a package not compile: a
/// service whose handler trait (`Order`) or client (`OrderClient`) is named like a message,
/// an enum or another service's item of the same package, and rpcs of a service whose handler
/// methods or client methods come out alike (see [`client_names`]).
pub(super) fn check_names(files: &[&FileDescriptorProto]) -> Result<(), Error> {
    let clash = |s: String| Err(Error::NameClash(s));
    // Rust type name -> what it is, for the messages and enums prost writes at the top
    // of the package's module.
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    for file in files {
        let package = file.package();
        for msg in &file.message_type {
            let what = format!("message {}", qualified(package, msg.name()));
            types.insert(to_upper_camel(msg.name()), what);
        }
        for e in &file.enum_type {
            let what = format!("enum {}", qualified(package, e.name()));
            types.insert(to_upper_camel(e.name()), what);
        }
    }
    for file in files {
        let package = file.package();
        for service in &file.service {
            let full = qualified(package, service.name());
            let name = to_upper_camel(service.name());
            for (item, what) in [
                (name.clone(), "handler trait"),
                (format!("{name}Client"), "client struct"),
            ] {
                if let Some(other) = types.get(&item) {
                    return clash(format!(
                        "service {full}: its {what} `{item}` has the name of the Rust type of {other} (both go in the module of package `{package}`): rename the service or the other type"
                    ));
                }
                types.insert(item, format!("the {what} of service {full}"));
            }
            let methods: Vec<(String, String)> = service
                .method
                .iter()
                .map(|m| (m.name().to_owned(), to_snake(m.name())))
                .collect();
            let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
            for (proto, rust) in &methods {
                if let Some(other) = seen.insert(rust, proto) {
                    return clash(format!(
                        "service {full}: rpc {other} and rpc {proto} are both the handler method `{rust}`: rename one of them"
                    ));
                }
            }
            let rust: Vec<&str> = methods.iter().map(|(_, r)| r.as_str()).collect();
            let mut seen: BTreeMap<String, &str> = BTreeMap::new();
            seen.insert("new".into(), "the client's constructor");
            seen.insert("clone".into(), "the client's `Clone::clone`");
            for ((proto, _), names) in methods.iter().zip(client_names(&rust)) {
                for name in [names.call, names.with] {
                    if let Some(other) = seen.get(&name) {
                        return clash(format!(
                            "service {full}: rpc {proto} would have the client method `{name}` of {other}: rename the rpc"
                        ));
                    }
                    seen.insert(name, "another rpc");
                }
            }
        }
    }
    Ok(())
}
