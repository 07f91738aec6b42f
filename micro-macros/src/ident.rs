//! All case conversion of the macros: endpoint names from method names, and serde's
//! `rename_all` rules for the field names described in the registry.

/// A Rust identifier as written, without the raw prefix (`r#type` is `type`).
pub(crate) fn unraw(ident: &syn::Ident) -> String {
    let s = ident.to_string();
    match s.strip_prefix("r#") {
        Some(rest) => rest.to_owned(),
        None => s,
    }
}

/// `say_hello` -> `SayHello`: go-micro's endpoint method names are Go's exported method names.
pub(crate) fn upper_camel(snake: &str) -> String {
    snake
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// A field name under one of serde's `rename_all` rules (field names are snake_case in Rust);
/// `None` for a rule serde does not know (serde reports it).
pub(crate) fn rename_field(rule: &str, field: &str) -> Option<String> {
    Some(match rule {
        "lowercase" | "snake_case" => field.to_owned(),
        "UPPERCASE" | "SCREAMING_SNAKE_CASE" => field.to_ascii_uppercase(),
        "PascalCase" => upper_camel(field),
        "camelCase" => {
            let pascal = upper_camel(field);
            let mut chars = pascal.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => String::new(),
            }
        }
        "kebab-case" => field.replace('_', "-"),
        "SCREAMING-KEBAB-CASE" => field.replace('_', "-").to_ascii_uppercase(),
        _ => return None,
    })
}

/// Whether `s` can be one dot-free part of a gRPC path and a go-micro endpoint name.
pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names() {
        assert_eq!(upper_camel("add"), "Add");
        assert_eq!(upper_camel("say_hello"), "SayHello");
        assert_eq!(upper_camel("get_v2_info"), "GetV2Info");
        assert_eq!(upper_camel("_private__x"), "PrivateX");
        assert_eq!(upper_camel("already_Camel"), "AlreadyCamel");
    }

    #[test]
    fn raw_identifiers() {
        let ident: syn::Ident = syn::parse_str("r#type").unwrap();
        assert_eq!(unraw(&ident), "type");
        assert_eq!(upper_camel(&unraw(&ident)), "Type");
    }

    #[test]
    fn serde_rules() {
        let cases = [
            ("lowercase", "user_id"),
            ("snake_case", "user_id"),
            ("UPPERCASE", "USER_ID"),
            ("SCREAMING_SNAKE_CASE", "USER_ID"),
            ("PascalCase", "UserId"),
            ("camelCase", "userId"),
            ("kebab-case", "user-id"),
            ("SCREAMING-KEBAB-CASE", "USER-ID"),
        ];
        for (rule, want) in cases {
            assert_eq!(
                rename_field(rule, "user_id").as_deref(),
                Some(want),
                "{rule}"
            );
        }
        assert_eq!(rename_field("Title Case", "a"), None);
    }

    #[test]
    fn names() {
        assert!(is_name("Calculator"));
        assert!(is_name("_x1"));
        assert!(!is_name(""));
        assert!(!is_name("1x"));
        assert!(!is_name("a.b"));
        assert!(!is_name("a/b"));
    }
}
