//! Generated host bindings for the `capstan:plugin` world; hand-written code lives in
//! `capability/` and `runtime/`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
});
