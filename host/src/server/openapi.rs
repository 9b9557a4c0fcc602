//! The OpenAPI 3 document of the admin API, generated from the handlers' annotations and
//! served at `/admin/v1/openapi.json` (without a token, so clients can discover the API).

use super::admin;
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Capstan admin API",
        description = "Install and manage WebAssembly plugins, their settings, the operator \
                       policy, secrets, MCP clients and client sessions, publish events and replay dead letters, and \
                       query audit records and plugin logs. \
                       Every operation needs `Authorization: Bearer <admin token>`; errors are \
                       `{code, message}`."
    ),
    paths(
        admin::install, admin::list, admin::show, admin::enable, admin::disable,
        admin::versions, admin::rollback, admin::remove, admin::migrations,
        admin::grants, admin::dry_run_grants,
        admin::get_config, admin::put_config,
        admin::get_policy, admin::put_policy, admin::dry_run_policy,
        admin::list_secrets, admin::put_secret, admin::delete_secret,
        admin::audit, admin::logs, admin::clear_cache,
        admin::create_client, admin::list_clients, admin::revoke_client,
        admin::list_jobs, admin::run_job, admin::list_runs, admin::show_run, admin::cancel_run,
        admin::publish_event, admin::list_events, admin::list_deliveries, admin::retry_delivery,
        admin::create_publisher, admin::list_publishers, admin::revoke_publisher,
        admin::create_session, admin::list_sessions, admin::show_session,
        admin::renew_session, admin::close_session,
    ),
    modifiers(&BearerToken),
    security(("admin-token" = [])),
)]
struct AdminApi;

/// Declares the bearer-token scheme every operation uses, and the 401 each answers
/// without it.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "admin-token",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        let unauthorized = ResponseBuilder::new()
            .description("Missing or wrong admin bearer token")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                operation
                    .responses
                    .responses
                    .insert("401".into(), unauthorized.clone().into());
            }
        }
    }
}

/// The document, built once per process.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(AdminApi::openapi)
}

/// `GET /admin/v1/openapi.json`.
pub async fn serve() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(document())
}
