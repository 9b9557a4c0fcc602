//! How benches/peers times a call, shared by both of its in-process harnesses
//! (`benches/peers_inproc.rs` and `extism-host`) so that every runner is timed alike.

use std::time::Instant;

/// The median, over `batches` batches of `calls` calls of `call`, of nanoseconds per call,
/// after a warm-up of up to 200 calls.
pub fn median_ns(calls: u32, batches: u32, mut call: impl FnMut()) -> f64 {
    for _ in 0..calls.min(200) {
        call();
    }
    let mut per_call: Vec<f64> = (0..batches)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                call();
            }
            start.elapsed().as_nanos() as f64 / f64::from(calls)
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[per_call.len() / 2]
}
