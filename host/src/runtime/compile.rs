//! Compiling a component to machine code: in this process (tools and tests), or in a
//! child process under a time and a memory budget (the server), so a component built to
//! blow up the compiler is refused with `compile-budget` while everything already loaded
//! keeps serving: the child is killed at the budget, its memory capped by `RLIMIT_AS`.
//! At most [`MAX_PARALLEL_COMPILES`] compiles run at once.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::Duration;
use wasmtime::Engine;

/// Compiles allowed at once; each may use every core (Cranelift compiles functions in
/// parallel), so more would only queue inside the machine.
pub const MAX_PARALLEL_COMPILES: usize = 2;

/// Hidden subcommand the child runs.
pub const CHILD_COMMAND: &str = "__compile";

/// What one compile may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileBudget {
    /// Wall-clock time, after which the child is killed.
    pub time: Duration,
    /// Address space of the child (`RLIMIT_AS`).
    pub memory_mib: u32,
}

impl Default for CompileBudget {
    fn default() -> Self {
        CompileBudget {
            time: Duration::from_secs(60),
            memory_mib: 4096,
        }
    }
}

/// Why compiling failed.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    OverBudget(String),
}

/// Where components are compiled.
#[derive(Debug, Clone)]
pub enum Compiler {
    /// In this process, without a budget.
    InProcess,
    /// In a child process running `exe __compile`, under `budget`.
    Child { exe: PathBuf, budget: CompileBudget },
}

/// Counts compiles in progress, making callers wait above [`MAX_PARALLEL_COMPILES`].
#[derive(Default)]
pub(super) struct CompileSlots {
    running: Mutex<usize>,
    freed: Condvar,
}

impl CompileSlots {
    fn run<R>(&self, compile: impl FnOnce() -> R) -> R {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        while *running >= MAX_PARALLEL_COMPILES {
            running = self.freed.wait(running).unwrap_or_else(|p| p.into_inner());
        }
        *running += 1;
        drop(running);
        let result = compile();
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.freed.notify_one();
        result
    }
}

impl Compiler {
    /// The serialized artifact of component `bytes`, loadable by `engine`.
    pub(super) fn precompile(
        &self,
        slots: &CompileSlots,
        engine: &Engine,
        bytes: &[u8],
    ) -> Result<Vec<u8>, CompileError> {
        slots.run(|| match self {
            Compiler::InProcess => engine
                .precompile_component(bytes)
                .map_err(|e| CompileError::Failed(format!("{e:#}"))),
            Compiler::Child { exe, budget } => in_child(exe, *budget, bytes),
        })
    }
}

/// Run `exe __compile` on `bytes` under `budget`.
fn in_child(exe: &PathBuf, budget: CompileBudget, bytes: &[u8]) -> Result<Vec<u8>, CompileError> {
    let failed = |what: String| CompileError::Failed(format!("the compile process {what}"));
    let mut command = Command::new(exe);
    command
        .arg(CHILD_COMMAND)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let memory = u64::from(budget.memory_mib) << 20;
    let cpu_seconds = cpu_backstop(budget.time, cores());
    // SAFETY: setrlimit and prctl are async-signal-safe; nothing else runs between fork
    // and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
            // The child dies with the host, never outliving it.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            set_limit(libc::RLIMIT_AS, memory)?;
            set_limit(libc::RLIMIT_CPU, cpu_seconds)
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| failed(format!("could not start: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let _ = stdin.write_all(bytes);
        });
        let errors = scope.spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        scope.spawn(move || {
            let mut artifact = Vec::new();
            let read = stdout.read_to_end(&mut artifact).map(|_| artifact);
            let _ = done.send(read);
        });
        let outcome = finished.recv_timeout(budget.time);
        let timed_out = outcome.is_err();
        if timed_out {
            let _ = child.kill();
        }
        let status = child.wait();
        let errors = errors.join().unwrap_or_default();
        if timed_out {
            return Err(CompileError::OverBudget(format!(
                "compiling took longer than the {} s budget",
                budget.time.as_secs()
            )));
        }
        let status = status.map_err(|e| failed(format!("could not be waited for: {e}")))?;
        if status.success() {
            let artifact = outcome
                .expect("checked above")
                .map_err(|e| failed(format!("output could not be read: {e}")))?;
            return Ok(artifact);
        }
        Err(classify(status, errors.trim(), budget))
    })
}

/// Why the child failed: a budget it ran into, or the compiler's own error.
fn classify(status: std::process::ExitStatus, errors: &str, budget: CompileBudget) -> CompileError {
    use std::os::unix::process::ExitStatusExt;
    let out_of_memory = errors.contains("memory allocation")
        || matches!(status.signal(), Some(libc::SIGABRT | libc::SIGSEGV));
    if out_of_memory {
        return CompileError::OverBudget(format!(
            "compiling needed more than the {} MiB memory budget",
            budget.memory_mib
        ));
    }
    if matches!(status.signal(), Some(libc::SIGXCPU | libc::SIGKILL)) {
        return CompileError::OverBudget(format!(
            "compiling used more than {} s of CPU time (the {} s budget on every core)",
            cpu_backstop(budget.time, cores()),
            budget.time.as_secs()
        ));
    }
    CompileError::Failed(if errors.is_empty() {
        format!("the compile process exited with {status}")
    } else {
        crate::text::cap(errors, 2048).into_owned()
    })
}

/// Cores the compiler may keep busy at once.
fn cores() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// CPU seconds (`RLIMIT_CPU`) after which the child is killed even if the wall-clock
/// watch never fires: every core busy for the whole budget, plus one second. Cranelift
/// compiles on all cores, so a limit of the budget alone would stop a compile that
/// keeps two cores busy at half the budget the operator set.
fn cpu_backstop(time: Duration, cores: u64) -> u64 {
    time.as_secs().max(1) * cores.max(1) + 1
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: a plain system call with a valid pointer.
    if unsafe { libc::setrlimit(resource, &limit) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `capstan __compile`: read a component on stdin, write its serialized artifact to
/// stdout; errors go to stderr with exit code 1.
pub fn child_main() -> ExitCode {
    let mut bytes = Vec::new();
    if let Err(error) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("reading the component failed: {error}");
        return ExitCode::from(1);
    }
    let artifact = crate::engine::build_compiler().and_then(|engine| {
        engine
            .precompile_component(&bytes)
            .map_err(|e| anyhow::anyhow!("{e:#}"))
    });
    match artifact {
        Ok(artifact) => match std::io::stdout().write_all(&artifact) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("writing the artifact failed: {error}");
                ExitCode::from(1)
            }
        },
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_backstop_lets_every_core_work_through_the_whole_budget() {
        assert_eq!(cpu_backstop(Duration::from_secs(3), 2), 7);
        assert_eq!(cpu_backstop(Duration::from_secs(60), 1), 61);
        assert_eq!(cpu_backstop(Duration::from_secs(60), 8), 481);
        assert_eq!(cpu_backstop(Duration::from_millis(200), 0), 2, "never zero");
    }
}
