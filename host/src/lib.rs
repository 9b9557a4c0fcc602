//! Capstan host: admits WebAssembly component plugins through a two-party gate
//! (manifest ∩ policy), links only what was granted, and runs every call in a fresh,
//! limited instance.

pub mod audit;
pub mod batched;
pub mod bindings;
pub mod blocking;
pub mod capability;
pub mod cli;
pub mod consent;
pub mod contract;
pub mod deliverer;
pub mod engine;
pub mod error;
pub mod gate;
pub mod inspect;
pub mod json_schema;
pub mod manifest;
pub mod metrics;
pub mod policy;
pub mod rate;
pub mod registry;
pub mod retention;
pub mod runtime;
pub mod scheduler;
pub mod secrets;
pub mod server;
pub mod sessions;
pub mod slots;
pub mod storage;
pub mod text;
mod toml_text;
pub mod trust;
pub mod wit_error;

pub use error::{InstallError, InvokeError};
pub use manifest::Manifest;
pub use policy::Policy;
pub use runtime::{Plugin, Runtime, Services};
