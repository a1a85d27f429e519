//! The `pyctl` binary (also the `pip` wrapper, by its file name): a thin shell around
//! `pyctl::run`.

fn main() {
    let ctx = pyctl::context::Context::from_process();
    let code = pyctl::run(ctx, std::env::args_os().collect());
    std::process::exit(code);
}
