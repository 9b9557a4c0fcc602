//! Typed errors of the two paths, each with a stable machine-readable `code`.

use crate::capability::CapabilityId;
use crate::capability::mcp::ToolProblem;
use crate::capability::sql::MigrationError;
use crate::manifest::ManifestError;

/// Why an install was refused. Nothing is changed by a refused install.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("component is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("not a WebAssembly file: {0}")]
    NotWasm(String),
    #[error(
        "this is a core WebAssembly module, not a component: build with `--target wasm32-wasip2` or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    #[error("malformed component: {0}")]
    Malformed(String),
    #[error("not a Capstan plugin: {0}")]
    NotAPlugin(String),
    #[error(
        "no manifest: embed capstan.toml with `capstan_guest::export_plugin!` or supply a sidecar capstan.toml"
    )]
    NoManifest,
    #[error("the component carries {0} embedded manifests; it must carry at most one")]
    ManifestDuplicate(usize),
    #[error("the embedded manifest and the sidecar capstan.toml differ; supply only one")]
    ManifestConflict,
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("`{import}` targets contract {found}; this host implements {host} (before 1.0 the minor must match; from 1.0 the major must match and the minor may not be newer)", host = crate::contract::VERSION)]
    IncompatibleContract { import: String, found: String },
    #[error("plugin imports `{import}`, which this host does not provide")]
    UnknownImport { import: String },
    #[error("plugin imports `{import}`: {reason}")]
    ForbiddenImport {
        import: String,
        reason: &'static str,
    },
    #[error("plugin imports `{import}` ({capability}) but its manifest does not declare [capabilities.{key}]", key = capability.info().key)]
    Undeclared {
        import: String,
        capability: CapabilityId,
    },
    #[error("manifest declares [capabilities.{key}] but the component does not export `capstan:plugin/{interface}`", key = capability.info().key)]
    MissingExport {
        capability: CapabilityId,
        interface: &'static str,
    },
    #[error(
        "component sha256 {actual} does not match the policy's pin {expected} for plugin `{plugin}`"
    )]
    PinMismatch {
        plugin: String,
        expected: String,
        actual: String,
    },
    #[error(
        "plugin `{plugin}` would be granted a risk the policy refuses ({risk}): {detail}; narrow the grant or remove `{risk}` from `refuse_risks`"
    )]
    RiskRefused {
        plugin: String,
        risk: crate::consent::RiskId,
        detail: String,
    },
    #[error("{0}")]
    Signature(crate::trust::SignatureError),
    #[error("{capability}: {problem}; the version serving now keeps serving")]
    StateRejected {
        capability: CapabilityId,
        problem: String,
    },
    #[error("compiling the component failed: {0}")]
    Compile(String),
    #[error("compiling the component was stopped: {0}")]
    CompileBudget(String),
    #[error("linking the component failed: {0}")]
    Link(String),
    #[error("{0}")]
    Tools(#[from] ToolProblem),
    #[error(
        "tool `{exposed}` of plugin `{plugin}` collides with the same name from plugin `{holder}`; rename the tool or the plugin"
    )]
    ToolCollision {
        plugin: String,
        exposed: String,
        holder: String,
    },
    #[error(
        "plugin `{plugin}` claims `{kind}`, which plugin `{holder}` already holds; one plugin handles each kind"
    )]
    ClaimTaken {
        plugin: String,
        kind: String,
        holder: String,
    },
    #[error("listing the plugin's tools at install failed: {0}")]
    ToolDiscovery(String),
    #[error("its {hook} hook failed: {why}; the version serving now keeps serving")]
    HookFailed { hook: &'static str, why: String },
    #[error(
        "the plugin speaks {wanted} SQL and this host's databases are {host}: install it on a host of that kind, or build it with dialect = \"portable\""
    )]
    DialectUnavailable {
        wanted: &'static str,
        host: &'static str,
    },
    #[error("{0}; the version serving now keeps serving and its database is unchanged")]
    Migration(#[from] MigrationError),
    #[error("its manifest says it provides {what}, but once loaded it does not: {why}")]
    NotProvided { what: String, why: &'static str },
}

impl InstallError {
    /// Stable code for API clients and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            InstallError::TooLarge { .. } => "too-large",
            InstallError::NotWasm(_) => "not-wasm",
            InstallError::CoreModule => "core-module",
            InstallError::Malformed(_) => "malformed-component",
            InstallError::NotAPlugin(_) => "wrong-world",
            InstallError::NoManifest => "manifest-missing",
            InstallError::ManifestDuplicate(_) => "manifest-duplicate",
            InstallError::ManifestConflict => "manifest-conflict",
            InstallError::Manifest(ManifestError::IncompatibleContract { .. }) => {
                "incompatible-contract"
            }
            InstallError::Manifest(_) => "invalid-manifest",
            InstallError::IncompatibleContract { .. } => "incompatible-contract",
            InstallError::UnknownImport { .. } => "unknown-import",
            InstallError::ForbiddenImport { .. } => "forbidden-import",
            InstallError::Undeclared { .. } => "undeclared-import",
            InstallError::MissingExport { .. } => "missing-export",
            InstallError::PinMismatch { .. } => "pin-mismatch",
            InstallError::RiskRefused { .. } => "risk-refused",
            InstallError::Signature(refusal) => refusal.code(),
            InstallError::StateRejected { .. } => "state-rejected",
            InstallError::Compile(_) => "compile-failed",
            InstallError::CompileBudget(_) => "compile-budget",
            InstallError::Link(_) => "link-failed",
            InstallError::Tools(ToolProblem::Undeclared { .. }) => "undeclared-tool",
            InstallError::Tools(ToolProblem::Invalid { .. }) => "invalid-tool",
            InstallError::ToolCollision { .. } => "tool-collision",
            InstallError::ClaimTaken { .. } => "claim-taken",
            InstallError::ToolDiscovery(_) => "tools-failed",
            InstallError::HookFailed { .. } => "hook-failed",
            InstallError::DialectUnavailable { .. } => "dialect-unavailable",
            InstallError::Migration(MigrationError::Edited { .. }) => "migration-edited",
            InstallError::Migration(_) => "migration-failed",
            InstallError::NotProvided { .. } => "not-provided",
        }
    }
}

/// Why a call failed. The host stays healthy: every call runs in a fresh instance.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InvokeError {
    #[error("plugin `{plugin}` is not granted {capability}")]
    Denied {
        plugin: String,
        capability: CapabilityId,
    },
    #[error("tool `{tool}` is not exposed by the operator's policy")]
    ToolNotGranted { tool: String },
    #[error("plugin `{plugin}` does not export `capstan:plugin/{interface}`")]
    NotExported {
        plugin: String,
        interface: &'static str,
    },
    #[error("call exceeded its {deadline_ms} ms deadline and was stopped")]
    Timeout { deadline_ms: u32 },
    #[error("plugin exceeded its memory limit of {limit_mib} MiB")]
    MemoryLimit { limit_mib: u32 },
    #[error("plugin exceeded its {what} limit of {limit}")]
    ResourceLimit { what: &'static str, limit: u32 },
    #[error("plugin overflowed its stack")]
    StackOverflow,
    #[error("plugin trapped: {0}")]
    Trap(String),
    #[error("plugin answered a response the host will not send: {0}")]
    InvalidResponse(String),
}

impl InvokeError {
    /// Stable code for API clients and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            InvokeError::Denied { .. } => "denied",
            InvokeError::ToolNotGranted { .. } => "denied",
            InvokeError::NotExported { .. } => "not-exported",
            InvokeError::Timeout { .. } => "timeout",
            InvokeError::MemoryLimit { .. } => "memory-limit",
            InvokeError::ResourceLimit { .. } => "resource-limit",
            InvokeError::StackOverflow => "stack-overflow",
            InvokeError::Trap(_) => "trap",
            InvokeError::InvalidResponse(_) => "invalid-response",
        }
    }
}
