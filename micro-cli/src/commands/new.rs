//! `micro new NAME`: writes a new service crate (see [`scaffold`]) and says what it wrote.

use std::process::ExitCode;

use super::common::internal;

mod scaffold;

/// What `micro new` takes.
#[derive(clap::Args)]
pub(crate) struct NewArgs {
    /// The service and crate name (`inventory`, `stock-keeper`).
    name: String,
    /// Depend on the micro checkout at DIR (default: the one this micro was built from).
    #[arg(long, value_name = "DIR", conflicts_with = "git")]
    path: Option<std::path::PathBuf>,
    /// Depend on micro's git repository at URL.
    #[arg(long, value_name = "URL")]
    git: Option<String>,
    /// Handlers and messages from plain Rust types (`#[handler]`), no .proto.
    #[arg(long)]
    no_proto: bool,
}

/// Writes the crate in the current directory; needs no registry or broker.
pub(crate) fn run(args: NewArgs) -> micro_runtime::Result<ExitCode> {
    let NewArgs {
        name,
        path,
        git,
        no_proto,
    } = args;
    let source = path
        .map(scaffold::Source::Path)
        .or(git.map(scaffold::Source::Git));
    let dir = std::env::current_dir().map_err(internal)?;
    let files = scaffold::create(&dir, &name, source, !no_proto)?;
    println!("created {name}/");
    for file in files {
        println!("  {file}");
    }
    println!("\nnext: cd {name} && cargo test && cargo run");
    Ok(ExitCode::SUCCESS)
}
