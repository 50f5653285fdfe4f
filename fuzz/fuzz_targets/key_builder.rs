//! The registry's key builder on arbitrary arguments: function-identity keys are always valid
//! text keys (1 to 250 bytes, no space, control byte or DEL), the same call always gets the
//! same key, and two calls whose canonical argument encodings differ never share a key.
//!
//! Input: `arbitrary` picks a function path, a version and two argument lists of strings,
//! bytes, numbers, options, sequences and maps (maps as `BTreeMap` and `HashMap`: their
//! encoding must not depend on iteration order).

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mcache_proto::Key;
use mcache_registry::{__item_key, Args, Function};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Arbitrary, Serialize, Debug, Clone, PartialEq)]
enum Arg {
    Str(String),
    Bytes(#[serde(with = "serde_bytes_compat")] Vec<u8>),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Char(char),
    Unit,
    Opt(Option<String>),
    Seq(Vec<String>),
    Tuple((u8, String)),
    Map(BTreeMap<String, u32>),
    HashMap(HashMap<String, i16>),
    Nested(Vec<Option<(String, u64)>>),
}

mod serde_bytes_compat {
    pub(crate) fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
}

/// Function paths: `Function` takes a `&'static str`, as `#[memoize]` writes it.
const PATHS: [&str; 4] = [
    "app::db::get_email",
    "app::db::Db::get_email",
    "a",
    "very::long::module::path::that::goes::on::and::on::for::a::while::to::push::the::key::past::the::limit::of::two::hundred::and::fifty::bytes::so::that::the::hashed::form::with::its::path::prefix::is::used::even::for::short::arguments::Type::method",
];

#[derive(Arbitrary, Debug)]
struct Input {
    path: u8,
    version: u32,
    a: Vec<Arg>,
    b: Vec<Arg>,
}

fn args(list: &[Arg]) -> Option<Args> {
    let mut a = Args::new();
    for arg in list {
        a.push(arg).ok()?;
    }
    Some(a)
}

/// The key of a call, exactly as `Cache::key` builds it (the registry's key function, no client).
fn key(function: &Function, args: &Args) -> Key {
    __item_key("fz", function, args)
}

fn check(key: &Key) {
    let wire = key.wire();
    assert!(!key.is_binary());
    assert!(
        !wire.is_empty() && wire.len() <= 250,
        "key length {}",
        wire.len()
    );
    assert!(
        wire.iter().all(|&b| b > b' ' && b != 0x7f),
        "unsafe byte in {key:?}"
    );
    assert_eq!(Key::new(wire).as_ref(), Ok(key), "a valid text key");
}

fuzz_target!(|input: Input| {
    let path = PATHS[usize::from(input.path) % PATHS.len()];
    let function = Function::new(path).with_version(input.version);
    let (Some(a), Some(b)) = (args(&input.a), args(&input.b)) else {
        return;
    };
    let ka = key(&function, &a);
    let kb = key(&function, &b);
    check(&ka);
    check(&kb);
    assert_eq!(
        ka,
        key(&function, &args(&input.a).unwrap_or_default()),
        "stable"
    );
    if a.as_bytes() != b.as_bytes() {
        assert_ne!(
            ka, kb,
            "different calls share a key: {:?} / {:?}",
            input.a, input.b
        );
    }
});
