//! `backend`: Socket Lab's command line (see `cli.rs`), as `cargo run -p backend` runs it.

fn main() -> std::process::ExitCode {
    backend::cli::main()
}
