//! The `wattprint` binary.

fn main() -> std::process::ExitCode {
    wattprint::cli_main()
}
