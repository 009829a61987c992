//! `socket-lab`: the same command line as `backend` (see `cli.rs`), under the name a student
//! types once `cargo install --path backend` has installed it: `socket-lab watch -- ...`.

fn main() -> std::process::ExitCode {
    backend::cli::main()
}
