//! The `capstan` command.

fn main() -> std::process::ExitCode {
    capstan_host::cli::main()
}
