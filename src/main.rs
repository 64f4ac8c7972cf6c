//! The `lipo` command line: a thin skin over the library. Built with libtorch (the default
//! features) it runs every command ([`cli::full`]); the inference-only build
//! (`--no-default-features --features infer`) is a light front that predicts with bundles and
//! hands every other command to the full binary ([`cli::front`]).

mod cli;

fn main() {
    cli::init_logging();
    #[cfg(feature = "train")]
    let result = cli::full::main();
    #[cfg(not(feature = "train"))]
    let result = cli::front::main();
    if let Err(e) = result {
        eprintln!("error: {}", cli::error_message(&e));
        std::process::exit(1);
    }
}
