//! Write Capstan plugins in Rust.
//!
//! A plugin implements [`Plugin`] (every method has a sensible default) and names its
//! type in [`export_plugin!`], which reads the crate's `capstan.toml` at compile time,
//! exports exactly the services it declares, and embeds the manifest into the component
//! so one `.wasm` file carries it:
//!
//! ```ignore
//! use capstan_guest::prelude::*;
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn handle(req: Request) -> Result<Response, Error> {
//!         let name = req.query_param("name").unwrap_or("world");
//!         capstan_guest::info!("greeting {name}");
//!         Ok(Response::text(200, format!("hello, {name}")))
//!     }
//! }
//!
//! capstan_guest::export_plugin!(Hello);
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2 --release` (or `cargo component build
//! --release`). Compiled for the native target, the capability wrappers talk to the
//! in-process doubles in [`testing`], which follow the host's rules (the same size caps,
//! `denied` for what the manifest does not declare), so plugins are unit-tested with plain
//! `cargo test`.

#[doc(hidden)]
pub mod bindings;
pub mod config;
mod error;
pub mod events;
pub mod http;
pub mod job;
pub mod kv;
pub mod log;
pub mod mcp;
mod plugin;
pub mod route;
pub mod secrets;
pub mod sql;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use error::Error;
pub use plugin::Plugin;
pub use serde_json;

#[doc(hidden)]
pub use capstan_guest_macros::plugin_exports as __plugin_exports;

/// The names a plugin usually needs: `use capstan_guest::prelude::*;`.
pub mod prelude {
    pub use crate::events::{DeliveryError, Event};
    pub use crate::job::RunContext;
    pub use crate::mcp::{CallContext, Tool};
    pub use crate::route::{Request, Response};
    pub use crate::{Error, Plugin, config, events, http, job, kv, log, secrets, sql};
    pub use serde_json::{Value, json};
}

/// Name of the custom section that carries a plugin's embedded `capstan.toml`.
pub const MANIFEST_SECTION: &str = "capstan-manifest";

/// Export `$ty` (which implements [`Plugin`]) as the services its manifest declares
/// (`handler` for `[capabilities.routes]`, `mcp` for `[capabilities.mcp]`, `jobs` for
/// `[capabilities.jobs]`, `lifecycle` for `[capabilities.lifecycle]`, `subscriber` and
/// `claim` for `[capabilities.events]` `subscribe` and `claims`) and embed the manifest.
///
/// - `export_plugin!(MyPlugin)` reads and embeds `capstan.toml` from the crate root.
/// - `export_plugin!(MyPlugin, manifest = "path/from/crate/root.toml")` uses another file.
/// - `export_plugin!(MyPlugin, manifest = none, exports = [routes, mcp, jobs, lifecycle, subscriber, claim])` embeds nothing
///   (ship a sidecar `capstan.toml` next to the `.wasm`) and exports what it lists.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ty) => {
        $crate::__plugin_exports!($crate, $ty, "capstan.toml");
    };
    ($ty:ty, manifest = none, exports = [$($export:ident),* $(,)?]) => {
        $crate::__plugin_exports!($crate, $ty, none, [$($export),*]);
    };
    ($ty:ty, manifest = $path:literal) => {
        $crate::__plugin_exports!($crate, $ty, $path);
    };
}
