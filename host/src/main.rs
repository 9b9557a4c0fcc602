//! The `capstan` command.

/// Every plugin call allocates and frees a store, its instance records and its strings;
/// mimalloc's per-thread free lists serve those faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Error values carry no backtrace unless asked for with RUST_LIB_BACKTRACE: wasmtime
    // makes an error for every instance-pool slot it has to wait for, and with
    // RUST_BACKTRACE=1 each cost a full stack walk (about 69k instructions). Panics keep
    // their backtraces under RUST_BACKTRACE.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: the first statement of `main`; no other thread exists yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    capstan_host::cli::main()
}
