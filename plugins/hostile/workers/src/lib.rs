//! Hostile jobs: `patient` works until asked to stop and then stops, `stubborn` ignores
//! cancel (it keeps sleeping in short steps), `spin` loops in wasm forever, `noop` returns
//! at once, `fail` fails. It carries no manifest: the sidecar a test or bench installs it with decides
//! its id and the jobs' schedules (capstan.toml beside it is the usual one).

use capstan_guest::prelude::*;
use std::hint::black_box;
use std::time::Duration;

pub struct Workers;

impl Plugin for Workers {
    fn run_job(name: &str, _context: &RunContext) -> Result<(), Error> {
        match name {
            "patient" => {
                let mut step = 0u64;
                while !job::cancelled() {
                    step += 1;
                    job::heartbeat(Some(&format!("step {step}")));
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(())
            }
            "stubborn" => loop {
                std::thread::sleep(Duration::from_millis(20));
                let mut n = 0u64;
                for _ in 0..100_000 {
                    n = black_box(n.wrapping_add(1));
                }
            },
            "spin" => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "noop" => Ok(()),
            "fail" => Err(Error::Internal("this job always fails".into())),
            _ => Err(Error::NotFound),
        }
    }
}

capstan_guest::export_plugin!(Workers, manifest = none, exports = [jobs]);
