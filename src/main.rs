//! The `gwanmun` binary: everything lives in the library; see `gwanmun --help`.

/// mimalloc instead of glibc's malloc: per-thread free lists by size class,
/// no fastbin consolidation when a request's large future is allocated
/// (docs/performance.md has what it bought).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    gwanmun::cli::main()
}
