//! Reads a component without compiling it: is it a valid component, what does it import
//! and export, and does it carry an embedded manifest.

use crate::error::InstallError;
use wasmparser::{Parser, Payload, Validator, WasmFeatures};

/// Custom section holding an embedded `capstan.toml` (written by the guest SDK).
pub const MANIFEST_SECTION: &str = "capstan-manifest";

/// What a component declares at its top level.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// Names of top-level imports, e.g. `capstan:plugin/kv@0.2.0`.
    pub imports: Vec<String>,
    /// Names of top-level exports, e.g. `capstan:plugin/handler@0.2.0`.
    pub exports: Vec<String>,
    /// Bytes of the embedded manifest, if any.
    pub manifest: Option<Vec<u8>>,
}

/// Inspect `bytes`, refusing anything that is not a valid component.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, InstallError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(InstallError::NotWasm(
            "missing the \\0asm magic header".to_string(),
        ));
    }
    if Parser::is_core_wasm(bytes) {
        return Err(InstallError::CoreModule);
    }
    if !Parser::is_component(bytes) {
        return Err(InstallError::NotWasm(
            "unsupported WebAssembly version or layer".to_string(),
        ));
    }
    Validator::new_with_features(WasmFeatures::default())
        .validate_all(bytes)
        .map_err(|e| InstallError::Malformed(e.to_string()))?;

    let mut inspection = Inspection {
        imports: Vec::new(),
        exports: Vec::new(),
        manifest: None,
    };
    let mut manifests = 0;
    let mut depth = 0i32;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| InstallError::Malformed(e.to_string()))?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| InstallError::Malformed(e.to_string()))?;
                    inspection.imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| InstallError::Malformed(e.to_string()))?;
                    inspection.exports.push(export.name.name.to_string());
                }
            }
            Payload::CustomSection(reader) if reader.name() == MANIFEST_SECTION => {
                manifests += 1;
                inspection.manifest = Some(reader.data().to_vec());
            }
            _ => {}
        }
    }
    if manifests > 1 {
        return Err(InstallError::ManifestDuplicate(manifests));
    }
    Ok(inspection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_are_not_wasm() {
        assert!(matches!(
            inspect(b"hello world, not wasm"),
            Err(InstallError::NotWasm(_))
        ));
        assert!(matches!(inspect(b""), Err(InstallError::NotWasm(_))));
    }

    #[test]
    fn core_module_is_named_as_such() {
        let module = wat::parse_str("(module)").unwrap();
        assert!(matches!(inspect(&module), Err(InstallError::CoreModule)));
    }

    #[test]
    fn lists_top_level_imports_and_exports_only() {
        let component = wat::parse_str(
            r#"(component
                (import "capstan:plugin/kv@0.2.0" (instance))
                (component $inner (import "nested:only/thing" (instance)))
                (@custom "capstan-manifest" "id = \"x\"")
                (instance $i)
                (export "capstan:plugin/handler@0.2.0" (instance $i))
            )"#,
        )
        .unwrap();
        let inspection = inspect(&component).unwrap();
        assert_eq!(inspection.imports, ["capstan:plugin/kv@0.2.0"]);
        assert_eq!(inspection.exports, ["capstan:plugin/handler@0.2.0"]);
        assert_eq!(inspection.manifest.as_deref(), Some(&b"id = \"x\""[..]));
    }

    #[test]
    fn truncated_component_is_malformed() {
        let component =
            wat::parse_str(r#"(component (import "capstan:plugin/kv@0.2.0" (instance)))"#).unwrap();
        let cut = &component[..component.len() - 3];
        assert!(matches!(inspect(cut), Err(InstallError::Malformed(_))));
    }
}
