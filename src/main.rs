//! The `gwanmun` binary: everything lives in the library; see `gwanmun --help`.

fn main() -> std::process::ExitCode {
    gwanmun::cli::main()
}
