//! Generated bindings for the `capstan:plugin` contract: the imports, and one module per
//! export service so `export_plugin!` exports only what a plugin declares. Hand-written
//! code lives in the sibling modules; nothing here is edited by hand.

wit_bindgen::generate!({
    path: "../wit",
    world: "imports",
    default_bindings_module: "capstan_guest::bindings",
});

/// The `handler` export (`[capabilities.routes]`).
pub mod routes {
    wit_bindgen::generate!({
        path: "../wit",
        world: "routes",
        pub_export_macro: true,
        export_macro_name: "__export_routes",
        default_bindings_module: "capstan_guest::bindings::routes",
        with: { "capstan:plugin/types@0.2.0": crate::bindings::capstan::plugin::types },
    });
}

/// The `jobs` export (`[capabilities.jobs]`).
pub mod scheduled {
    wit_bindgen::generate!({
        path: "../wit",
        world: "scheduled",
        pub_export_macro: true,
        export_macro_name: "__export_scheduled",
        default_bindings_module: "capstan_guest::bindings::scheduled",
        with: { "capstan:plugin/types@0.2.0": crate::bindings::capstan::plugin::types },
    });
}

/// The `lifecycle` export (`[capabilities.lifecycle]`).
pub mod hooks {
    wit_bindgen::generate!({
        path: "../wit",
        world: "hooks",
        pub_export_macro: true,
        export_macro_name: "__export_hooks",
        default_bindings_module: "capstan_guest::bindings::hooks",
        with: { "capstan:plugin/types@0.2.0": crate::bindings::capstan::plugin::types },
    });
}

/// The `subscriber` export (`[capabilities.events] subscribe`).
pub mod subscribers {
    wit_bindgen::generate!({
        path: "../wit",
        world: "subscribers",
        pub_export_macro: true,
        export_macro_name: "__export_subscribers",
        default_bindings_module: "capstan_guest::bindings::subscribers",
    });
}

/// The `claim` export (`[capabilities.events] claims`).
pub mod claims {
    wit_bindgen::generate!({
        path: "../wit",
        world: "claims",
        pub_export_macro: true,
        export_macro_name: "__export_claims",
        default_bindings_module: "capstan_guest::bindings::claims",
        with: { "capstan:plugin/types@0.2.0": crate::bindings::capstan::plugin::types },
    });
}

/// The `mcp` export (`[capabilities.mcp]`).
pub mod tools {
    wit_bindgen::generate!({
        path: "../wit",
        world: "tools",
        pub_export_macro: true,
        export_macro_name: "__export_tools",
        default_bindings_module: "capstan_guest::bindings::tools",
        with: { "capstan:plugin/types@0.2.0": crate::bindings::capstan::plugin::types },
    });
}
