//! The `keygate` binary: a thin shell over `keygate-server` (serve, and the admin commands,
//! which act on the database directly through its operations) and the HTTP client commands.

mod allocator;
mod commands;

use clap::Parser;

// The allocator: jemalloc by default, measured against mimalloc and glibc's malloc in
// docs/PERFORMANCE.md ("A million keys").
#[cfg(all(feature = "mimalloc", feature = "jemalloc"))]
compile_error!(
    "the features `mimalloc` and `jemalloc` each choose the allocator: enable one (`--no-default-features --features mimalloc`)"
);

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = commands::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            // The whole chain, so that the cause is visible.
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
