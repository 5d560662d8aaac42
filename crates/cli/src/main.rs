//! The `wattprint` binary.

fn main() {
    wattprint::cli_main()
}
