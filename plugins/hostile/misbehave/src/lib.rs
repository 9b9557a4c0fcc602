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
