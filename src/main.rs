// Parsing and rendering make hundreds of thousands of small allocations
// for a big template; mimalloc serves them some 10% faster than glibc's.
// Its v2 line (the `v2` feature), not v3 (the crate's default): for a
// short run over several threads, v3 touched 44 MB of fresh memory for
// 8 MB live (pages kept per thread and size class, in transparent huge
// pages), and the kernel's zeroing of it was a quarter of `unitgen
// render`'s time; v2 touches 25 MB and renders 1,000 services some 12%
// faster (interleaved runs, see the README's benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    unitgen::cli::main()
}
