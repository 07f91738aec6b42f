//! `_micro_includes.rs`: every generated package's module at its place in the tree of
//! packages, so `micro_runtime::include_protos!()` brings them all in.

use prost_build::Module;

use super::HEADER;

/// The file of [`includes`], beside the packages' files. No package's file has its name
/// (the root package's is `_.rs`).
pub(super) const INCLUDES: &str = "_micro_includes.rs";

/// Every package's module at its place in the tree of packages (`google.api` as
/// `pub mod google { pub mod api { include!("google.api.rs"); } }`), so that the paths
/// generated code takes to other packages (`super::common::Money`) resolve; the root package
/// at the top. `include!` paths are relative to this file.
pub(super) fn includes(modules: &[Module]) -> String {
    let mut modules: Vec<&Module> = modules.iter().collect();
    modules.sort();
    let mut out = String::from(HEADER);
    let mut stack: Vec<&str> = Vec::new();
    let line = |out: &mut String, depth: usize, text: &str| {
        out.push_str(&"    ".repeat(depth));
        out.push_str(text);
        out.push('\n');
    };
    for module in modules {
        let parts: Vec<&str> = module.parts().collect();
        while !parts.starts_with(&stack) {
            stack.pop();
            line(&mut out, stack.len(), "}");
        }
        while stack.len() < parts.len() {
            let part = parts[stack.len()];
            line(&mut out, stack.len(), &format!("pub mod {part} {{"));
            stack.push(part);
        }
        let file = module.to_file_name_or("_");
        line(&mut out, stack.len(), &format!("include!({file:?});"));
    }
    while !stack.is_empty() {
        stack.pop();
        line(&mut out, stack.len(), "}");
    }
    out
}
