//! Registry descriptions of Rust types: what `#[derive(Message)]` builds a message's
//! endpoint [`Value`] from, field by field.
//!
//! A field is described by its type: scalars by their protobuf name (`int64`, `string`,
//! `bool`, ...), so services written from a `.proto` and services written in plain Rust
//! describe alike; sequences as `[]<item>`, maps as `map<key,value>`; messages by their name,
//! with their own fields nested. Like go-micro's extractor (and the generator), nesting stops
//! at depth [`MAX_DEPTH`], which also ends recursive types.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::registry::Value;

/// How deep fields are described (go-micro's limit).
pub const MAX_DEPTH: usize = 3;

/// A type that can be described in a registry endpoint: its type name and, for messages, its
/// fields.
///
/// Implemented for Rust's scalars, `String`, `Vec<T>`, maps, sets, `Option<T>`, `Box<T>` and
/// `Arc<T>`; `#[derive(Message)]` implements it for messages. A field type of your own that is
/// not a message can implement it by hand:
///
/// ```
/// use std::borrow::Cow;
/// use micro_runtime::codec::Describe;
///
/// struct Timestamp(u64);
///
/// impl Describe for Timestamp {
///     fn type_name() -> Cow<'static, str> {
///         Cow::Borrowed("uint64")
///     }
/// }
/// assert_eq!(Vec::<Timestamp>::type_name(), "[]uint64");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be described in the registry",
    label = "this field's type has no registry description",
    note = "derive `micro_runtime::Message` for it, implement `micro_runtime::codec::Describe` by hand, or name its type with `#[micro(type = \"string\")]` on the field"
)]
pub trait Describe {
    /// The type's name in the registry (`int64`, `[]string`, `AddRequest`).
    fn type_name() -> Cow<'static, str>;

    /// The fields of a message, described `depth` levels below the endpoint's message; empty
    /// for scalars and once `depth` reaches [`MAX_DEPTH`].
    fn fields(depth: usize) -> Vec<Value> {
        let _ = depth;
        Vec::new()
    }
}

/// The description of field `name` of type `T`, `depth` levels below the endpoint's message
/// (its own fields one level further down).
///
/// ```
/// use micro_runtime::codec::describe::field;
/// let v = field::<Option<Vec<i64>>>("ids", 0);
/// assert_eq!((v.name.as_str(), v.kind.as_str()), ("ids", "[]int64"));
/// ```
pub fn field<T: Describe + ?Sized>(name: &str, depth: usize) -> Value {
    Value {
        name: name.to_owned(),
        kind: T::type_name().into_owned(),
        values: T::fields(depth + 1),
    }
}

macro_rules! scalars {
    ($($ty:ty => $name:literal),* $(,)?) => {$(
        impl Describe for $ty {
            fn type_name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    )*};
}

scalars! {
    bool => "bool",
    i8 => "int32", i16 => "int32", i32 => "int32", i64 => "int64", isize => "int64",
    u8 => "uint32", u16 => "uint32", u32 => "uint32", u64 => "uint64", usize => "uint64",
    f32 => "float", f64 => "double",
    char => "string", str => "string", String => "string",
    bytes::Bytes => "bytes",
}

/// Wrappers that add nothing to the description.
macro_rules! transparent {
    ($($ty:ident),*) => {$(
        impl<T: Describe + ?Sized> Describe for $ty<T> {
            fn type_name() -> Cow<'static, str> {
                T::type_name()
            }
            fn fields(depth: usize) -> Vec<Value> {
                T::fields(depth)
            }
        }
    )*};
}

transparent!(Box, Arc);

impl<T: Describe> Describe for Option<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }
    fn fields(depth: usize) -> Vec<Value> {
        T::fields(depth)
    }
}

impl<T: Describe + ?Sized + ToOwned> Describe for Cow<'_, T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }
    fn fields(depth: usize) -> Vec<Value> {
        T::fields(depth)
    }
}

/// Sequences: `[]<item>`, with the item's fields (as the generator describes repeated fields).
macro_rules! sequences {
    ($($ty:ident),*) => {$(
        impl<T: Describe> Describe for $ty<T> {
            fn type_name() -> Cow<'static, str> {
                Cow::Owned(format!("[]{}", T::type_name()))
            }
            fn fields(depth: usize) -> Vec<Value> {
                T::fields(depth)
            }
        }
    )*};
}

sequences!(Vec, VecDeque, BTreeSet);

impl<T: Describe, S> Describe for HashSet<T, S> {
    fn type_name() -> Cow<'static, str> {
        Cow::Owned(format!("[]{}", T::type_name()))
    }
    fn fields(depth: usize) -> Vec<Value> {
        T::fields(depth)
    }
}

impl<T: Describe> Describe for [T] {
    fn type_name() -> Cow<'static, str> {
        Cow::Owned(format!("[]{}", T::type_name()))
    }
    fn fields(depth: usize) -> Vec<Value> {
        T::fields(depth)
    }
}

impl<K: Describe, V: Describe> Describe for BTreeMap<K, V> {
    fn type_name() -> Cow<'static, str> {
        Cow::Owned(format!("map<{},{}>", K::type_name(), V::type_name()))
    }
}

impl<K: Describe, V: Describe, S> Describe for HashMap<K, V, S> {
    fn type_name() -> Cow<'static, str> {
        Cow::Owned(format!("map<{},{}>", K::type_name(), V::type_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Node;

    // A recursive message, as the derive writes it.
    impl Describe for Node {
        fn type_name() -> Cow<'static, str> {
            Cow::Borrowed("Node")
        }
        fn fields(depth: usize) -> Vec<Value> {
            if depth >= MAX_DEPTH {
                return Vec::new();
            }
            vec![
                field::<String>("name", depth),
                field::<Vec<Node>>("children", depth),
            ]
        }
    }

    #[test]
    fn names_follow_protobuf() {
        assert_eq!(i64::type_name(), "int64");
        assert_eq!(<Vec<String>>::type_name(), "[]string");
        assert_eq!(<HashMap<String, u32>>::type_name(), "map<string,uint32>");
        assert_eq!(<Option<Box<f64>>>::type_name(), "double");
    }

    #[test]
    fn recursion_stops_at_max_depth() {
        let top = Node::fields(0);
        let level1 = &top[1].values;
        let level2 = &level1[1].values;
        assert_eq!(top[1].kind, "[]Node");
        assert_eq!(level1.len(), 2);
        assert_eq!(level2.len(), 2);
        assert!(level2[1].values.is_empty());
    }
}
