//! Generated host bindings for the `capstan:plugin` world; hand-written code lives in
//! `capability/` and `runtime/`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    // Exports are called as futures: a route call runs on the server's own async threads
    // (its wasm yields at every epoch tick), other callers drive it to completion.
    exports: { default: async },
});
