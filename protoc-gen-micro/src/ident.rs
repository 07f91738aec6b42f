//! Case conversion and keyword escaping, the same as prost-build's, so names we derive match
//! the types prost generates.

use heck::{ToSnakeCase, ToUpperCamelCase};

/// Escapes a Rust keyword: `r#type`, or `self_` for the ones raw identifiers can't spell.
pub(crate) fn sanitize(ident: &str) -> String {
    match ident {
        "as" | "break" | "const" | "continue" | "else" | "enum" | "false" | "fn" | "for" | "if"
        | "impl" | "in" | "let" | "loop" | "match" | "mod" | "move" | "mut" | "pub" | "ref"
        | "return" | "static" | "struct" | "trait" | "true" | "type" | "unsafe" | "use"
        | "where" | "while" | "dyn" | "abstract" | "become" | "box" | "do" | "final" | "macro"
        | "override" | "priv" | "typeof" | "unsized" | "virtual" | "yield" | "async" | "await"
        | "try" | "gen" => format!("r#{ident}"),
        "_" | "super" | "self" | "Self" | "extern" | "crate" => format!("{ident}_"),
        s if s.starts_with(|c: char| c.is_numeric()) => format!("_{ident}"),
        _ => ident.to_owned(),
    }
}

/// `HelloWorld` -> `hello_world`, escaped.
pub(crate) fn to_snake(s: &str) -> String {
    sanitize(&s.to_snake_case())
}

/// `hello_world` -> `HelloWorld`, escaped.
pub(crate) fn to_upper_camel(s: &str) -> String {
    sanitize(&s.to_upper_camel_case())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_and_escapes() {
        assert_eq!(to_snake("SayHello"), "say_hello");
        assert_eq!(to_snake("Type"), "r#type");
        assert_eq!(to_snake("Self"), "self_");
        assert_eq!(to_upper_camel("hello_request"), "HelloRequest");
        assert_eq!(to_upper_camel("self"), "Self_");
        assert_eq!(to_upper_camel("3d"), "_3d");
    }
}
