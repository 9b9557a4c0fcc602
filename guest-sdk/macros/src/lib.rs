//! `capstan_guest::export_plugin!` expands to this macro, which reads the plugin's
//! manifest at compile time and exports exactly the services it declares (`routes`,
//! `mcp`, `jobs`, `lifecycle`, and `subscriber`/`claim` for events it subscribes to or
//! kinds it claims), so a component never offers an export its manifest does not
//! mention. A manifest that is not valid TOML, or declares none of them, is a compile
//! error that names the file.

use proc_macro::TokenStream;
use proc_macro2::{TokenStream as Tokens, TokenTree};
use quote::quote;
use std::path::PathBuf;

/// An export service: its name in `exports = [...]`, the manifest table that declares it
/// and, when only part of that table does, the list in it that must not be empty.
struct Service {
    name: &'static str,
    key: &'static str,
    list: Option<&'static str>,
}

const fn whole(key: &'static str) -> Service {
    Service {
        name: key,
        key,
        list: None,
    }
}

/// Every export service the SDK can export.
const SERVICES: &[Service] = &[
    whole("routes"),
    whole("mcp"),
    whole("jobs"),
    whole("lifecycle"),
    Service {
        name: "subscriber",
        key: "events",
        list: Some("subscribe"),
    },
    Service {
        name: "claim",
        key: "events",
        list: Some("claims"),
    },
];

/// `(krate, Type, manifest)` where manifest is a path literal or `none`, optionally
/// followed by `[routes, mcp]` (required with `none`).
#[doc(hidden)]
#[proc_macro]
pub fn plugin_exports(input: TokenStream) -> TokenStream {
    match expand(input.into()) {
        Ok(tokens) => tokens.into(),
        Err(message) => quote!(::core::compile_error!(#message);).into(),
    }
}

fn expand(input: Tokens) -> Result<Tokens, String> {
    let mut parts = split_commas(input);
    if parts.len() < 3 {
        return Err("export_plugin!: expected a plugin type".into());
    }
    let krate = parts.remove(0);
    let ty = parts.remove(0);
    let manifest = parts.remove(0);
    let listed = parts.first().map(listed_services).transpose()?;
    let (declared, embed) = match manifest.to_string().as_str() {
        "none" => (
            listed.ok_or(
                "export_plugin!: with `manifest = none`, name the exports: \
                          `export_plugin!(MyPlugin, manifest = none, exports = [routes])`",
            )?,
            Tokens::new(),
        ),
        literal => {
            let relative = literal.trim_matches('"').to_string();
            let path = manifest_path(&relative)?;
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("export_plugin!: cannot read {}: {e}", path.display()))?;
            let declared = match listed {
                Some(listed) => listed,
                None => declared_services(&text, &path)?,
            };
            let (embedded, sources) = with_migrations(&text, &path)?;
            let bytes = proc_macro2::Literal::byte_string(embedded.as_bytes());
            let length = embedded.len();
            let tracked = sources.iter().map(|source| {
                let source = source.display().to_string();
                quote! { const _: &[u8] = include_bytes!(#source); }
            });
            let embed = quote! {
                // Rebuild when the manifest or a migration changes.
                #(#tracked)*
                #[cfg(target_arch = "wasm32")]
                #[used]
                #[unsafe(link_section = "capstan-manifest")]
                static __CAPSTAN_MANIFEST: [u8; #length] = *#bytes;
            };
            (declared, embed)
        }
    };
    if declared.is_empty() {
        return Err(
            "export_plugin!: the manifest declares none of [capabilities.routes], \
                    [capabilities.mcp], [capabilities.jobs], [capabilities.lifecycle], \
                    [capabilities.events] subscribe or claims; a plugin must offer at least one"
                .into(),
        );
    }
    let exports = declared.iter().map(|service| export(&krate, &ty, service));
    Ok(quote! {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __CapstanExports;
            #(#exports)*
        };
        #embed
    })
}

/// The glue for one service: its `Guest` impl delegating to `Plugin`, and the export.
fn export(krate: &Tokens, ty: &Tokens, service: &Service) -> Tokens {
    match service.name {
        "subscriber" => quote! {
            impl #krate::bindings::subscribers::exports::capstan::plugin::subscriber::Guest for __CapstanExports {
                fn on_event(
                    event: #krate::events::Event,
                ) -> ::std::result::Result<(), #krate::events::DeliveryError> {
                    <#ty as #krate::Plugin>::on_event(&event)
                }
            }
            #krate::bindings::subscribers::__export_subscribers!(__CapstanExports with_types_in #krate::bindings::subscribers);
        },
        "claim" => quote! {
            impl #krate::bindings::claims::exports::capstan::plugin::claim::Guest for __CapstanExports {
                fn handle(
                    kind: ::std::string::String,
                    payload: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, #krate::bindings::capstan::plugin::types::Error> {
                    <#ty as #krate::Plugin>::handle_claim(&kind, &payload).map_err(::core::convert::Into::into)
                }
            }
            #krate::bindings::claims::__export_claims!(__CapstanExports with_types_in #krate::bindings::claims);
        },
        "routes" => quote! {
            impl #krate::bindings::routes::exports::capstan::plugin::handler::Guest for __CapstanExports {
                fn handle(request: #krate::route::Request) -> #krate::route::Response {
                    #krate::route::respond(<#ty as #krate::Plugin>::handle(request))
                }
            }
            #krate::bindings::routes::__export_routes!(__CapstanExports with_types_in #krate::bindings::routes);
        },
        "jobs" => quote! {
            impl #krate::bindings::scheduled::exports::capstan::plugin::jobs::Guest for __CapstanExports {
                fn run(
                    name: ::std::string::String,
                    context: #krate::job::RunContext,
                ) -> ::std::result::Result<(), #krate::bindings::capstan::plugin::types::Error> {
                    <#ty as #krate::Plugin>::run_job(&name, &context).map_err(::core::convert::Into::into)
                }
            }
            #krate::bindings::scheduled::__export_scheduled!(__CapstanExports with_types_in #krate::bindings::scheduled);
        },
        "lifecycle" => quote! {
            impl #krate::bindings::hooks::exports::capstan::plugin::lifecycle::Guest for __CapstanExports {
                fn on_install(
                    previous_version: ::std::option::Option<::std::string::String>,
                ) -> ::std::result::Result<(), #krate::bindings::capstan::plugin::types::Error> {
                    <#ty as #krate::Plugin>::on_install(previous_version.as_deref()).map_err(::core::convert::Into::into)
                }

                fn on_remove() -> ::std::result::Result<(), #krate::bindings::capstan::plugin::types::Error> {
                    <#ty as #krate::Plugin>::on_remove().map_err(::core::convert::Into::into)
                }

                fn on_config_changed() -> ::std::result::Result<(), #krate::bindings::capstan::plugin::types::Error> {
                    <#ty as #krate::Plugin>::on_config_changed().map_err(::core::convert::Into::into)
                }

                fn on_secret_changed(
                    name: ::std::string::String,
                ) -> ::std::result::Result<(), #krate::bindings::capstan::plugin::types::Error> {
                    <#ty as #krate::Plugin>::on_secret_changed(&name).map_err(::core::convert::Into::into)
                }
            }
            #krate::bindings::hooks::__export_hooks!(__CapstanExports with_types_in #krate::bindings::hooks);
        },
        _ => quote! {
            impl #krate::bindings::tools::exports::capstan::plugin::mcp::Guest for __CapstanExports {
                fn list_tools() -> ::std::vec::Vec<#krate::mcp::Tool> {
                    <#ty as #krate::Plugin>::tools()
                }

                fn call_tool(
                    name: ::std::string::String,
                    arguments: ::std::string::String,
                    context: #krate::mcp::CallContext,
                ) -> ::std::result::Result<::std::string::String, #krate::bindings::capstan::plugin::types::Error> {
                    #krate::mcp::dispatch::<#ty>(&name, &arguments, &context)
                }
            }
            #krate::bindings::tools::__export_tools!(__CapstanExports with_types_in #krate::bindings::tools);
        },
    }
}

fn manifest_path(relative: &str) -> Result<PathBuf, String> {
    let root = std::env::var("CARGO_MANIFEST_DIR")
        .map_err(|_| "export_plugin!: CARGO_MANIFEST_DIR is not set (build with cargo)")?;
    Ok(PathBuf::from(root).join(relative))
}

/// The manifest to embed: `text`, plus the crate's `migrations/*.sql` (beside the
/// manifest) as `[capabilities.sql.migrations]` when it declares `[capabilities.sql]` and
/// lists none itself; and every file it was made from.
fn with_migrations(text: &str, path: &std::path::Path) -> Result<(String, Vec<PathBuf>), String> {
    let manifest: toml::Table = toml::from_str(text)
        .map_err(|e| format!("export_plugin!: {} is not valid TOML: {e}", path.display()))?;
    let sql = manifest
        .get("capabilities")
        .and_then(|c| c.get("sql"))
        .and_then(toml::Value::as_table);
    let mut sources = vec![path.to_path_buf()];
    if sql.is_none_or(|sql| sql.contains_key("migrations")) {
        return Ok((text.to_string(), sources));
    }
    let dir = path.with_file_name("migrations");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok((text.to_string(), sources));
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|file| file.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    let mut migrations = toml::Table::new();
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sql = std::fs::read_to_string(file)
            .map_err(|e| format!("export_plugin!: cannot read {}: {e}", file.display()))?;
        migrations.insert(name, toml::Value::String(sql));
    }
    sources.extend(files);
    let rendered = toml::to_string(&migrations)
        .map_err(|e| format!("export_plugin!: cannot embed the migrations: {e}"))?;
    Ok((
        format!("{text}\n[capabilities.sql.migrations]\n{rendered}"),
        sources,
    ))
}

/// The services `[capabilities]` of manifest `text` declares, in registry order.
fn declared_services(text: &str, path: &std::path::Path) -> Result<Vec<&'static Service>, String> {
    let manifest: toml::Table = toml::from_str(text)
        .map_err(|e| format!("export_plugin!: {} is not valid TOML: {e}", path.display()))?;
    let capabilities = manifest.get("capabilities").and_then(toml::Value::as_table);
    Ok(SERVICES
        .iter()
        .filter(|service| {
            let table = capabilities.and_then(|c| c.get(service.key));
            match (table, service.list) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(table), Some(list)) => table
                    .get(list)
                    .and_then(toml::Value::as_array)
                    .is_some_and(|items| !items.is_empty()),
            }
        })
        .collect())
}

/// `exports = [routes, mcp]`.
fn listed_services(tokens: &Tokens) -> Result<Vec<&'static Service>, String> {
    let mut names = Vec::new();
    for token in tokens.clone() {
        if let TokenTree::Group(group) = token {
            for item in group.stream() {
                if let TokenTree::Ident(name) = item {
                    names.push(name.to_string());
                }
            }
        }
    }
    names
        .iter()
        .map(|name| {
            SERVICES
                .iter()
                .find(|service| service.name == name)
                .ok_or_else(|| {
                    format!(
                        "export_plugin!: unknown export `{name}` (routes, mcp, jobs, lifecycle, \
                         subscriber, claim)"
                    )
                })
        })
        .collect()
}

/// Split at top-level commas.
fn split_commas(input: Tokens) -> Vec<Tokens> {
    let mut parts = vec![Tokens::new()];
    for token in input {
        match &token {
            TokenTree::Punct(p) if p.as_char() == ',' => parts.push(Tokens::new()),
            _ => parts.last_mut().expect("never empty").extend([token]),
        }
    }
    parts.retain(|part| !part.is_empty());
    parts
}
