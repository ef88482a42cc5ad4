//! The `waymark` binary: everything lives in the library; see `waymark::cli`.

fn main() {
    std::process::exit(waymark::cli::main());
}
