//! Generated host bindings for the `capstan:plugin` world; hand-written code lives in
//! `capability/` and `runtime/`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    // Exports are called as futures: route and tool calls run on the server's own async
    // threads (their wasm yields at every epoch tick), other callers drive them to
    // completion.
    exports: { default: async },
});
