//! The `scalpmap` command line: parses arguments into the library's plain configs and maps
//! outcomes to exit codes. No image or planning logic lives here.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
