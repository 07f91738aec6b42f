//! The `micro` commands, one module each: its flags (a clap `Args` struct) and its `run`.
//! What several of them share is in [`common`].

pub(crate) mod api;
pub(crate) mod call;
mod common;
pub(crate) mod deregister;
pub(crate) mod get;
pub(crate) mod health;
pub(crate) mod list;
pub(crate) mod new;
pub(crate) mod publish;
pub(crate) mod register;
pub(crate) mod sidecar;
pub(crate) mod stream;
pub(crate) mod watch;
pub(crate) mod web;

pub(crate) use common::CallArgs;
