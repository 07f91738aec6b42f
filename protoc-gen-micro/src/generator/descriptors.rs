//! The descriptor set as the generator checks and embeds it: protobuf's own package told
//! apart (prost maps it to `prost_types`), source info and options that hold nothing left out
//! so both fronts embed the same bytes, the set a package's module embeds, and descriptor
//! errors located in their file.

use std::collections::BTreeSet;

use prost::Message as _;
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};

/// The protobuf package prost maps to `prost_types` (its extern path): its files are not
/// generated.
const WELL_KNOWN_PACKAGE: &str = "google.protobuf";

/// Whether `package` is protobuf's own, which prost maps to `prost_types`.
pub(super) fn is_well_known(package: &str) -> bool {
    package == WELL_KNOWN_PACKAGE
}

/// `set` as it is checked and embedded: without source info (smaller), and with the options
/// that hold nothing left out (protoc keeps an empty `options` where an extension was set,
/// which prost drops; protox leaves it out), so both fronts embed the same bytes.
pub(super) fn without_source_info(set: &FileDescriptorSet) -> FileDescriptorSet {
    fn clear<T: Default + PartialEq>(options: &mut Option<T>) {
        if options.as_ref().is_some_and(|o| *o == T::default()) {
            *options = None;
        }
    }
    fn message(msg: &mut DescriptorProto) {
        clear(&mut msg.options);
        msg.field.iter_mut().for_each(|f| clear(&mut f.options));
        msg.extension.iter_mut().for_each(|f| clear(&mut f.options));
        msg.oneof_decl
            .iter_mut()
            .for_each(|o| clear(&mut o.options));
        msg.nested_type.iter_mut().for_each(message);
        msg.enum_type.iter_mut().for_each(enumeration);
    }
    fn enumeration(e: &mut prost_types::EnumDescriptorProto) {
        clear(&mut e.options);
        e.value.iter_mut().for_each(|v| clear(&mut v.options));
    }
    let mut set = set.clone();
    for file in &mut set.file {
        file.source_code_info = None;
        clear(&mut file.options);
        file.message_type.iter_mut().for_each(message);
        file.enum_type.iter_mut().for_each(enumeration);
        file.extension
            .iter_mut()
            .for_each(|f| clear(&mut f.options));
        for service in &mut file.service {
            clear(&mut service.options);
            service
                .method
                .iter_mut()
                .for_each(|m| clear(&mut m.options));
        }
    }
    set
}

/// `file:line:column: message` of a descriptor error, as much of it as is known.
pub(super) fn describe_error(e: &prost_reflect::DescriptorError) -> String {
    match (e.file(), e.line(), e.column()) {
        (Some(file), Some(line), Some(column)) => {
            format!("{file}:{}:{}: {e}", line + 1, column + 1)
        }
        (Some(file), _, _) => format!("{file}: {e}"),
        _ => e.to_string(),
    }
}

/// The set a package's module embeds, encoded: its files and every file they import,
/// directly or not, in the set's order (imports first, as protoc and protox write it), but
/// protobuf's own files: the runtime has those (prost-reflect's, whichever version of them
/// protoc or protox compiled with), so both fronts embed the same bytes.
pub(super) fn embedded_descriptors(
    set: &FileDescriptorSet,
    files: &[&FileDescriptorProto],
) -> Vec<u8> {
    let mut needed: BTreeSet<&str> = BTreeSet::new();
    let mut todo: Vec<&str> = files.iter().map(|f| f.name()).collect();
    while let Some(name) = todo.pop() {
        if needed.insert(name)
            && let Some(file) = set.file.iter().find(|f| f.name() == name)
        {
            todo.extend(file.dependency.iter().map(String::as_str));
        }
    }
    FileDescriptorSet {
        file: set
            .file
            .iter()
            .filter(|f| needed.contains(f.name()) && !is_well_known(f.package()))
            .cloned()
            .collect(),
    }
    .encode_to_vec()
}
