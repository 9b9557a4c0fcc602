//! Times Extism calls the way benches/peers times Capstan's: `batches` batches of `calls`
//! calls each, printing `name nanoseconds-per-call` for the median batch. Two models:
//! a kept plugin (Extism's usual one: one instance called again and again) and a fresh
//! instance per call from a precompiled plugin (Capstan's model).
//!
//! Usage: extism-host PLUGIN.wasm INPUT-FILE [calls (2000)] [batches (15)]

use extism::{CompiledPlugin, Plugin, PluginBuilder, Wasm};
use std::hint::black_box;

#[path = "../../timing.rs"]
mod timing;
use timing::median_ns;

/// One call of `function`, its answer read and dropped.
fn call(plugin: &mut Plugin, function: &str, input: &[u8]) {
    let out: &[u8] = plugin.call(function, input).expect("extism call");
    black_box(out.len());
}

fn main() -> Result<(), extism::Error> {
    let args: Vec<String> = std::env::args().collect();
    let [_, plugin_path, input_path, rest @ ..] = args.as_slice() else {
        eprintln!("usage: extism-host PLUGIN.wasm INPUT-FILE [calls] [batches]");
        std::process::exit(2);
    };
    let calls = rest.first().map_or(Ok(2000), |n| n.parse()).expect("calls");
    let batches = rest.get(1).map_or(Ok(15), |n| n.parse()).expect("batches");
    let input = std::fs::read(input_path)?;
    let wasm = std::fs::read(plugin_path)?;

    let builder = || PluginBuilder::new(extism::Manifest::new([Wasm::data(wasm.clone())]));
    let mut kept = builder().with_wasi(false).build()?;
    let answer: String = kept.call("count_vowels", input.as_slice())?;
    let expected = input.iter().filter(|b| b"aeiouAEIOU".contains(b)).count();
    assert_eq!(
        answer,
        format!("{{\"count\":{expected}}}"),
        "count-vowels answer"
    );
    let compiled = CompiledPlugin::new(builder().with_wasi(false))?;

    let fresh = |function: &str, input: &[u8]| {
        let mut plugin = Plugin::new_from_compiled(&compiled).expect("instance");
        call(&mut plugin, function, input);
    };
    let kept_noop = median_ns(calls, batches, || call(&mut kept, "noop", b""));
    let kept_vowels = median_ns(calls, batches, || call(&mut kept, "count_vowels", &input));
    let fresh_noop = median_ns(calls, batches, || fresh("noop", b""));
    let fresh_vowels = median_ns(calls, batches, || fresh("count_vowels", &input));
    println!("extism-kept/noop {kept_noop:.0}");
    println!("extism-kept/count-vowels {kept_vowels:.0}");
    println!("extism-fresh/noop {fresh_noop:.0}");
    println!("extism-fresh/count-vowels {fresh_vowels:.0}");
    Ok(())
}
