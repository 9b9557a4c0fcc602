//! `serve --plugins-dir DIR`: every `NAME.wasm` in DIR is installed at start and again
//! whenever it changes, through the same checks as an upload, with `NAME.toml` as its
//! sidecar manifest and `NAME.wasm.sig` as its detached signature when they exist. A file
//! that is refused is reported (its code in `/readyz` and the log) and never unloads what
//! serves; a file still being written is left until it stops changing; removing a file
//! removes its plugin only with `--plugins-dir-prune`.

use super::{AppState, blocking, error::ApiError};
use crate::registry::RegistryError;
use crate::storage::Upload;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How often the directory is looked at.
pub const SCAN_EVERY: Duration = Duration::from_secs(1);

/// The directory, and what became of each file in it.
pub struct PluginsDir {
    dir: PathBuf,
    prune: bool,
    max_bytes: usize,
    files: Mutex<BTreeMap<String, Tracked>>,
}

/// One `.wasm` file as last seen.
#[derive(Debug, Clone)]
struct Tracked {
    /// Size and modification time of the file and its sidecars, at the last scan.
    stamp: Stamp,
    /// The stamp last acted on (installed, refused or found already serving).
    acted: Option<Stamp>,
    outcome: Outcome,
}

type Stamp = Vec<(u64, Option<SystemTime>)>;

/// What installing a file came to.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Seen, not yet acted on (still being written, or not yet scanned twice).
    Pending,
    /// Serving as plugin `id` (installed from it, or already the serving version).
    Serving { id: String },
    /// Refused with `code`; what served before still serves.
    Refused { code: &'static str, message: String },
}

/// A file whose install was refused, as `/readyz` reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    pub file: String,
    pub code: &'static str,
    pub message: String,
}

/// The directory's state for `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub path: String,
    /// `.wasm` files serving as a plugin.
    pub serving: usize,
    pub problems: Vec<Problem>,
}

impl PluginsDir {
    pub fn new(dir: PathBuf, prune: bool, max_bytes: usize) -> anyhow::Result<Arc<PluginsDir>> {
        anyhow::ensure!(
            dir.is_dir(),
            "--plugins-dir {}: not a directory",
            dir.display()
        );
        Ok(Arc::new(PluginsDir {
            dir,
            prune,
            max_bytes,
            files: Mutex::new(BTreeMap::new()),
        }))
    }

    /// What `/readyz` shows.
    pub fn report(&self) -> Report {
        let files = self.lock();
        Report {
            path: self.dir.display().to_string(),
            serving: files
                .values()
                .filter(|t| matches!(t.outcome, Outcome::Serving { .. }))
                .count(),
            problems: files
                .iter()
                .filter_map(|(file, tracked)| match &tracked.outcome {
                    Outcome::Refused { code, message } => Some(Problem {
                        file: file.clone(),
                        code,
                        message: message.clone(),
                    }),
                    _ => None,
                })
                .collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Tracked>> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Look at the directory once: install what changed and settled (at `start`, every
    /// file as it is), forget or prune what is gone.
    fn scan(&self, state: &AppState, start: bool) {
        let present = match self.list() {
            Ok(present) => present,
            Err(error) => {
                tracing::error!(dir = %self.dir.display(), "cannot read the plugins directory: {error}");
                return;
            }
        };
        let gone: Vec<(String, Tracked)> = {
            let mut files = self.lock();
            let gone = files
                .keys()
                .filter(|name| !present.contains_key(*name))
                .cloned()
                .collect::<Vec<_>>();
            gone.into_iter()
                .filter_map(|name| files.remove_entry(&name))
                .collect()
        };
        for (name, tracked) in gone {
            self.gone(state, &name, &tracked);
        }
        for (name, stamp) in present {
            let due = {
                let mut files = self.lock();
                let mut fresh = false;
                let tracked = files.entry(name.clone()).or_insert_with(|| {
                    fresh = true;
                    Tracked {
                        stamp: stamp.clone(),
                        acted: None,
                        outcome: Outcome::Pending,
                    }
                });
                // Settled: the same on two looks in a row (or at start), and not yet acted on.
                let settled = start || (!fresh && tracked.stamp == stamp);
                tracked.stamp = stamp.clone();
                settled && tracked.acted.as_ref() != Some(&stamp)
            };
            if due {
                let outcome = self.install(state, &name);
                let mut files = self.lock();
                if let Some(tracked) = files.get_mut(&name) {
                    tracked.acted = Some(stamp);
                    tracked.outcome = outcome;
                }
            }
        }
    }

    /// Each `NAME.wasm` with the stamp of it and its sidecars.
    fn list(&self) -> std::io::Result<BTreeMap<String, Stamp>> {
        let mut present = BTreeMap::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".wasm") || !entry.file_type()?.is_file() {
                continue;
            }
            let stamp = self
                .paths(&name)
                .iter()
                .map(|path| {
                    std::fs::metadata(path).map_or((0, None), |m| (m.len(), m.modified().ok()))
                })
                .collect();
            present.insert(name, stamp);
        }
        Ok(present)
    }

    /// The component, its sidecar manifest and its detached signature.
    fn paths(&self, wasm: &str) -> [PathBuf; 3] {
        let stem = wasm.strip_suffix(".wasm").unwrap_or(wasm);
        [
            self.dir.join(wasm),
            self.dir.join(format!("{stem}.toml")),
            self.dir.join(format!("{wasm}.sig")),
        ]
    }

    /// Install `name` unless its bytes are what already serves.
    fn install(&self, state: &AppState, name: &str) -> Outcome {
        let upload = match self.read(name) {
            Ok(upload) => upload,
            Err((code, message)) => return self.refused(name, code, message),
        };
        let sha256 = hex::encode(Sha256::digest(&upload.wasm));
        if let Some(serving) = state
            .registry
            .list()
            .into_iter()
            .find(|p| p.session.is_none() && p.sha256.as_deref() == Some(sha256.as_str()))
        {
            return Outcome::Serving { id: serving.id };
        }
        match state.registry.install(&upload) {
            Ok(info) => {
                if let Err(error) = state.jobs.cancel_plugin(&info.id) {
                    tracing::error!(plugin = %info.id, "cancelling the old version's job runs failed: {error}");
                }
                tracing::info!(file = name, plugin = %info.id, seq = info.seq, "installed from the plugins directory");
                Outcome::Serving { id: info.id }
            }
            Err(error) => {
                let code = super::error::registry_status(&error).1;
                let message = match &error {
                    RegistryError::Store(_) => "storage failed; see the host log".to_string(),
                    other => other.to_string(),
                };
                if let RegistryError::Store(error) = &error {
                    tracing::error!(file = name, "storage failed: {error}");
                }
                self.refused(name, code, message)
            }
        }
    }

    fn refused(&self, name: &str, code: &'static str, message: String) -> Outcome {
        tracing::warn!(file = name, code, "plugins directory: refused: {message}");
        Outcome::Refused { code, message }
    }

    /// The upload `name` stands for, each part capped before it is read.
    fn read(&self, name: &str) -> Result<Upload, (&'static str, String)> {
        let [wasm, manifest, signature] = self.paths(name);
        let read = |path: &Path,
                    limit: usize,
                    required: bool|
         -> Result<Option<Vec<u8>>, (&'static str, String)> {
            let size = match std::fs::metadata(path) {
                Ok(meta) => meta.len(),
                Err(_) if !required => return Ok(None),
                Err(error) => return Err(("unreadable", format!("{}: {error}", path.display()))),
            };
            if size > limit as u64 {
                return Err((
                    "too-large",
                    format!("{} is {size} bytes; the limit is {limit}", path.display()),
                ));
            }
            std::fs::read(path)
                .map(Some)
                .map_err(|error| ("unreadable", format!("{}: {error}", path.display())))
        };
        Ok(Upload {
            wasm: read(&wasm, self.max_bytes, true)?.unwrap_or_default(),
            manifest: read(&manifest, crate::manifest::MAX_MANIFEST_BYTES, false)?,
            signature: read(&signature, crate::trust::MAX_SIGNATURE_BYTES, false)?,
        })
    }

    /// `name` is gone: with `--plugins-dir-prune`, remove the plugin it installed.
    fn gone(&self, state: &AppState, name: &str, tracked: &Tracked) {
        let Outcome::Serving { id } = &tracked.outcome else {
            return;
        };
        if !self.prune {
            tracing::info!(file = name, plugin = %id, "file removed; the plugin stays (no --plugins-dir-prune)");
            return;
        }
        // Another file may now serve the same id.
        let still_served = self
            .lock()
            .values()
            .any(|t| t.outcome == Outcome::Serving { id: id.clone() });
        if still_served {
            return;
        }
        match state.registry.remove(id, false) {
            Ok(()) => {
                let _ = state.jobs.cancel_plugin(id);
                tracing::info!(file = name, plugin = %id, "file removed; plugin removed (--plugins-dir-prune)");
            }
            Err(error) => tracing::error!(file = name, plugin = %id, "removing failed: {error}"),
        }
    }
}

/// Install what the directory holds now (before the server listens), then keep watching
/// it until shutdown.
pub async fn watch(state: Arc<AppState>, dir: Arc<PluginsDir>) -> Result<(), ApiError> {
    let (first, first_dir) = (state.clone(), dir.clone());
    blocking(move || {
        first_dir.scan(&first, true);
        Ok(())
    })
    .await?;
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SCAN_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                () = state.shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let (app, dir) = (state.clone(), dir.clone());
            if let Err(error) = blocking(move || {
                dir.scan(&app, false);
                Ok(())
            })
            .await
            {
                tracing::error!("scanning the plugins directory failed: {error}");
            }
        }
    });
    Ok(())
}
