//! Write Capstan plugins in Rust.
//!
//! A plugin implements [`Plugin`] (every method has a sensible default) and names its
//! type in [`export_plugin!`], which also embeds the crate's `capstan.toml` manifest into
//! the component so one `.wasm` file carries it:
//!
//! ```ignore
//! use capstan_guest::prelude::*;
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn handle(req: Request) -> Response {
//!         Response::text(200, format!("hello from {}", req.path))
//!     }
//! }
//!
//! capstan_guest::export_plugin!(Hello);
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2 --release` (or `cargo component build
//! --release`). Compiled for the native target, the capability wrappers talk to the
//! in-process doubles in [`testing`], so plugins are unit-tested with plain `cargo test`.

#[doc(hidden)]
pub mod bindings;
pub mod http;
pub mod kv;
pub mod log;
pub mod mcp;
mod plugin;
pub mod route;
pub mod secrets;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use bindings::capstan::plugin::types::Error;
pub use plugin::Plugin;
pub use serde_json;

/// A one-line human description of a capability error, e.g. `denied: storage.kv is not granted`.
pub fn describe(error: &Error) -> String {
    match error {
        Error::Denied(why) => format!("denied: {why}"),
        Error::NotFound => "not found".to_string(),
        Error::QuotaExceeded(why) => format!("quota exceeded: {why}"),
        Error::InvalidInput(why) => format!("invalid input: {why}"),
        Error::Timeout => "timed out".to_string(),
        Error::TooLarge(why) => format!("too large: {why}"),
        Error::Internal(why) => format!("internal error: {why}"),
    }
}

/// The names a plugin usually needs: `use capstan_guest::prelude::*;`.
pub mod prelude {
    pub use crate::mcp::{CallContext, Tool};
    pub use crate::route::{Request, Response};
    pub use crate::{Error, Plugin, http, kv, log, secrets};
    pub use serde_json::{Value, json};
}

/// Name of the custom section that carries a plugin's embedded `capstan.toml`.
pub const MANIFEST_SECTION: &str = "capstan-manifest";

/// Export `$ty` (which implements [`Plugin`]) as this component's `handler` and `mcp`
/// exports, and embed the manifest.
///
/// - `export_plugin!(MyPlugin)` embeds `capstan.toml` from the crate root.
/// - `export_plugin!(MyPlugin, manifest = "path/from/crate/root.toml")` embeds another file.
/// - `export_plugin!(MyPlugin, manifest = none)` embeds nothing: ship a sidecar
///   `capstan.toml` next to the `.wasm` instead.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ty) => {
        $crate::export_plugin!($ty, manifest = "capstan.toml");
    };
    ($ty:ty, manifest = none) => {
        $crate::__export_plugin_exports!($ty);
    };
    ($ty:ty, manifest = $path:literal) => {
        $crate::__export_plugin_exports!($ty);
        #[cfg(target_arch = "wasm32")]
        #[used]
        #[unsafe(link_section = "capstan-manifest")]
        static __CAPSTAN_MANIFEST: [u8; include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/",
            $path
        ))
        .len()] = *include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin_exports {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __CapstanExports;

            impl $crate::bindings::exports::capstan::plugin::handler::Guest for __CapstanExports {
                fn handle(
                    request: $crate::route::Request,
                ) -> $crate::route::Response {
                    <$ty as $crate::Plugin>::handle(request)
                }
            }

            impl $crate::bindings::exports::capstan::plugin::mcp::Guest for __CapstanExports {
                fn list_tools() -> ::std::vec::Vec<$crate::mcp::Tool> {
                    <$ty as $crate::Plugin>::tools()
                }

                fn call_tool(
                    name: ::std::string::String,
                    arguments: ::std::string::String,
                    context: $crate::mcp::CallContext,
                ) -> ::std::result::Result<::std::string::String, $crate::Error> {
                    $crate::mcp::dispatch::<$ty>(&name, &arguments, &context)
                }
            }

            $crate::bindings::__capstan_export_world!(__CapstanExports with_types_in $crate::bindings);
        };
    };
}
