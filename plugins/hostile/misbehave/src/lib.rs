//! Hostile plugin: each route attacks the host's limits in one way.

use capstan_guest::prelude::*;
use std::hint::black_box;

pub struct Misbehave;

/// Recurses with a stack frame the optimiser cannot remove until the stack runs out.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    if black_box(depth) == u64::MAX {
        return frame[0];
    }
    recurse(depth + 1).wrapping_add(frame[31])
}

/// The word `/leave` writes for `tag`: a hash, so the bytes of the tag itself (which are
/// in memory as the query) never match it.
fn tag_word(request: &Request) -> u64 {
    let tag = request.query_param("tag").unwrap_or_default();
    tag.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    }) ^ 0x9e37_79b9_7f4a_7c15
}

/// Aligned words equal to `word` anywhere in this instance's linear memory.
#[cfg(target_arch = "wasm32")]
fn words_in_memory(word: u64) -> usize {
    let end = core::arch::wasm32::memory_size(0) * 65536;
    (8..end)
        .step_by(8)
        // SAFETY: every aligned address below the memory's size is readable in wasm; the
        // read is volatile so the scan is not optimised away on what Rust cannot see.
        .filter(|&address| unsafe { core::ptr::read_volatile(address as *const u64) } == word)
        .count()
}

/// Outside wasm there is no linear memory to scan.
#[cfg(not(target_arch = "wasm32"))]
fn words_in_memory(_word: u64) -> usize {
    0
}

impl Plugin for Misbehave {
    fn handle(request: Request) -> Result<Response, Error> {
        Ok(match request.path.as_str() {
            "/loop" => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "/memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![0xA5; 1 << 20]));
                }
            }
            "/recursion" => Response::text(200, recurse(0).to_string()),
            // Leaves `kib` KiB of words derived from `tag` behind, answering how many of
            // them this call's own scan sees; `/find` answers how many a later call sees.
            "/leave" => {
                let kib: usize = request
                    .query_param("kib")
                    .and_then(|kib| kib.parse().ok())
                    .unwrap_or(1024);
                let left = black_box(vec![tag_word(&request); kib * 1024 / 8]);
                let seen = words_in_memory(tag_word(&request));
                drop(left);
                Response::text(200, seen.to_string())
            }
            "/find" => Response::text(200, words_in_memory(tag_word(&request)).to_string()),
            "/log-flood" => {
                for i in 0..100_000 {
                    capstan_guest::info!("flood line {i} {}", "x".repeat(200));
                }
                Response::text(200, "flooded")
            }
            "/stdout-flood" => {
                for i in 0..20_000 {
                    println!("stdout flood line {i}");
                }
                Response::text(200, "flooded stdout")
            }
            "/sleep" => {
                let ms = request
                    .query_param("ms")
                    .and_then(|ms| ms.parse().ok())
                    .unwrap_or(5_000);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Response::text(200, "slept")
            }
            "/status" => {
                let code = request
                    .query_param("code")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(101);
                Response::text(code, "")
            }
            "/split-header" => {
                let mut response = Response::text(200, "ok");
                response
                    .headers
                    .push(("x-forged".into(), "1\r\nset-cookie: session=stolen".into()));
                response
            }
            "/bad-header-name" => {
                let mut response = Response::text(200, "ok");
                response.headers.push(("x bad\n".into(), "1".into()));
                response
            }
            "/huge-header" => {
                let mut response = Response::text(200, "ok");
                response
                    .headers
                    .push(("x-huge".into(), "h".repeat(24 * 1024 * 1024)));
                response
            }
            "/forge-log" => {
                capstan_guest::warn!(
                    "benign\x1b[2J\x1b]0;pwned\x07\n2026-01-01T00:00:00Z  victim  error  host   forged line"
                );
                Response::text(200, "logged")
            }
            "/framing" => {
                // Headers that would desynchronise the connection if passed through.
                let mut response = Response::text(200, "ok");
                response.headers.extend(
                    [
                        ("transfer-encoding", "chunked"),
                        ("content-length", "9999"),
                        ("connection", "upgrade"),
                        ("upgrade", "h2c"),
                        ("x-plugin", "kept"),
                    ]
                    .map(|(n, v)| (n.to_string(), v.to_string())),
                );
                response
            }
            _ => Response::text(200, "ok"),
        })
    }
}

capstan_guest::export_plugin!(Misbehave);
