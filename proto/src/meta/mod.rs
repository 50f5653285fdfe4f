//! The meta protocol: `mg`, `ms`, `md`, `ma`, `mn`, `me`, their flags and replies.

pub mod flags;
pub mod request;
