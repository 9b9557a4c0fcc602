//! The compiled-artifact cache: a component compiled once is kept on disk, keyed by its
//! sha256 and the engine's fingerprint, so restarts skip Cranelift. An entry is used only
//! if its own checksum matches and wasmtime accepts it for this engine; anything else is
//! recompiled and rewritten, never trusted.

use super::compile::CompileError;
use prometheus_client::metrics::counter::Counter;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Load `artifact`, produced by this host's compiler for `engine`'s settings.
pub(super) fn load_artifact(engine: &Engine, artifact: &[u8]) -> Result<Component, CompileError> {
    // SAFETY: the artifact was just produced by this host (in process or by its own
    // compile child) from a component the gate admitted; wasmtime checks it suits `engine`.
    unsafe { Component::deserialize(engine, artifact) }
        .map_err(|e| CompileError::Failed(format!("loading the compiled artifact failed: {e:#}")))
}

/// Length of the checksum that starts every cache file.
const CHECKSUM_BYTES: usize = 32;

/// Cache hits and misses since start (exported as metrics; clones share the counts).
#[derive(Debug, Default, Clone)]
pub struct CacheStats {
    pub hits: Counter,
    pub misses: Counter,
}

/// Compiled components in a directory.
pub struct ArtifactCache {
    dir: PathBuf,
    /// Identifies the engine (wasmtime version, settings, target) and this build of capstan.
    fingerprint: String,
    pub stats: CacheStats,
}

impl ArtifactCache {
    /// A cache in `dir` (created if missing) for artifacts of `engine`, counting into `stats`.
    pub fn open(dir: &Path, engine: &Engine, stats: CacheStats) -> std::io::Result<ArtifactCache> {
        std::fs::create_dir_all(dir)?;
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let fingerprint = hex::encode(
            &Sha256::digest(format!(
                "capstan {} engine {:016x}",
                env!("CARGO_PKG_VERSION"),
                hasher.finish()
            ))[..8],
        );
        Ok(ArtifactCache {
            dir: dir.to_path_buf(),
            fingerprint,
            stats,
        })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.cwasm", self.fingerprint))
    }

    /// The component with hash `sha256`: from the cache if a valid entry exists, else
    /// the artifact `compile` produces, stored and loaded.
    pub fn component(
        &self,
        engine: &Engine,
        sha256: &str,
        compile: impl FnOnce() -> Result<Vec<u8>, CompileError>,
    ) -> Result<Component, CompileError> {
        let path = self.path(sha256);
        if let Some(component) = self.load(engine, &path) {
            self.stats.hits.inc();
            return Ok(component);
        }
        self.stats.misses.inc();
        let artifact = compile()?;
        if let Err(error) = self.store(&path, &artifact) {
            tracing::warn!(
                "cannot write compiled artifact {}: {error:#}",
                path.display()
            );
        }
        load_artifact(engine, &artifact)
    }

    /// A valid entry at `path`, or None (missing, corrupt, or for another engine).
    fn load(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let data = std::fs::read(path).ok()?;
        let (checksum, artifact) = data.split_at_checked(CHECKSUM_BYTES)?;
        if Sha256::digest(artifact).as_slice() != checksum {
            tracing::warn!(
                "compiled artifact {} is corrupt; recompiling",
                path.display()
            );
            return None;
        }
        // SAFETY: the bytes are a serialized component this host wrote (the checksum
        // proves they are unchanged), and wasmtime checks they match this engine.
        match unsafe { Component::deserialize(engine, artifact) } {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(
                    "compiled artifact {} is stale ({error}); recompiling",
                    path.display()
                );
                None
            }
        }
    }

    /// Write `artifact` to `path` atomically (a temporary file renamed into place).
    fn store(&self, path: &Path, artifact: &[u8]) -> anyhow::Result<()> {
        let mut data = Sha256::digest(artifact).to_vec();
        data.extend_from_slice(artifact);
        let temporary = path.with_extension(format!("tmp-{}", crate::secrets::random_hex(4)));
        std::fs::write(&temporary, &data)?;
        std::fs::rename(&temporary, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })?;
        Ok(())
    }

    /// Delete every entry; returns how many files were removed.
    pub fn clear(&self) -> std::io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "cwasm") {
                std::fs::remove_file(&path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENT: &str = "(component (core module (func (export \"f\"))))";

    fn compiled(engine: &Engine, bytes: &[u8]) -> Result<Vec<u8>, CompileError> {
        engine
            .precompile_component(bytes)
            .map_err(|e| CompileError::Failed(e.to_string()))
    }

    fn cache() -> (tempfile::TempDir, Engine, ArtifactCache) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = ArtifactCache::open(dir.path(), &engine, CacheStats::default()).unwrap();
        (dir, engine, cache)
    }

    #[test]
    fn second_load_is_a_hit() {
        let (_dir, engine, cache) = cache();
        let bytes = wat::parse_str(COMPONENT).unwrap();
        cache
            .component(&engine, "abc", || compiled(&engine, &bytes))
            .unwrap();
        cache
            .component(&engine, "abc", || compiled(&engine, &bytes))
            .unwrap();
        assert_eq!(cache.stats.misses.get(), 1);
        assert_eq!(cache.stats.hits.get(), 1);
    }

    #[test]
    fn a_corrupt_entry_is_recompiled_and_rewritten() {
        let (_dir, engine, cache) = cache();
        let bytes = wat::parse_str(COMPONENT).unwrap();
        cache
            .component(&engine, "abc", || compiled(&engine, &bytes))
            .unwrap();
        let path = cache.path("abc");
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&path, &data).unwrap();
        cache
            .component(&engine, "abc", || compiled(&engine, &bytes))
            .unwrap();
        assert_eq!(cache.stats.misses.get(), 2);
        assert_ne!(std::fs::read(&path).unwrap(), data, "entry rewritten");
        cache
            .component(&engine, "abc", || compiled(&engine, &bytes))
            .unwrap();
        assert_eq!(cache.stats.hits.get(), 1);
    }

    #[test]
    fn an_entry_for_another_engine_is_not_used() {
        let (_dir, engine, cache) = cache();
        let bytes = wat::parse_str(COMPONENT).unwrap();
        cache
            .component(&engine, "abc", || compiled(&engine, &bytes))
            .unwrap();
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let other = Engine::new(&config).unwrap();
        // Same file name, checksum intact, but compiled for a differently configured engine.
        assert!(cache.load(&other, &cache.path("abc")).is_none());
    }

    #[test]
    fn clear_removes_entries() {
        let (_dir, engine, cache) = cache();
        let bytes = wat::parse_str(COMPONENT).unwrap();
        cache
            .component(&engine, "abc", || compiled(&engine, &bytes))
            .unwrap();
        assert_eq!(cache.clear().unwrap(), 1);
        assert!(!cache.path("abc").exists());
    }
}
