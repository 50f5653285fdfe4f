//! The text protocol: storage, retrieval, arithmetic and administrative commands.

pub mod request;
