//! Generated bindings for the `capstan:plugin` world. Hand-written code lives in the
//! sibling modules; nothing here is edited by hand.

wit_bindgen::generate!({
    path: "../wit",
    world: "plugin",
    pub_export_macro: true,
    export_macro_name: "__capstan_export_world",
    default_bindings_module: "capstan_guest::bindings",
});
