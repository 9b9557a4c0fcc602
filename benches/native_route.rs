//! The baseline for `benches/route-vs-native`: a native axum server answering every path
//! with a fixed body, on the same tokio runtime shape as `capstan serve`. Prints
//! `listening on http://ADDR` like the real server.
//!
//! Run through the script, or: `cargo bench --bench native_route -- --body FILE
//! [--content-type TYPE] [--listen ADDR]`.

use axum::http::header::CONTENT_TYPE;
use std::net::SocketAddr;

/// The value following `flag` on the command line (cargo adds its own `--bench`).
fn arg(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let body = std::fs::read(arg("--body").expect("--body FILE")).expect("reading --body");
    let content_type = arg("--content-type").unwrap_or_else(|| "text/plain; charset=utf-8".into());
    let listen: SocketAddr = arg("--listen")
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()
        .expect("--listen ADDR");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let answer = move || {
            let body = body.clone();
            let content_type = content_type.clone();
            async move { ([(CONTENT_TYPE, content_type)], body) }
        };
        let router = axum::Router::new().fallback(answer);
        let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
        println!(
            "listening on http://{}",
            listener.local_addr().expect("address")
        );
        axum::serve(listener, router).await.expect("serve");
    });
}
