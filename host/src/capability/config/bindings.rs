//! Generated host bindings for the standard `wasi:config/store` spellings; hand-written
//! code lives in `host.rs` and `deny.rs`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "capstan:plugin/standard-config",
});

pub use wasi::config0_2_0_draft_2024_09_27::store as draft;
pub use wasi::config0_2_0_rc_1::store as rc;
