//! Watches the mDNS registry and prints each change on a line of its own:
//! `create greeter greeter-<uuid> 127.0.0.1:40123`, later `update ...` or `delete ...`.
//!
//! `cargo run -p examples --bin mdns-demo -- --service greeter`, then in another terminal
//! `cargo run -p examples --bin greeter-server -- --registry mdns --server_address 127.0.0.1:0`
//! and stop it. Multicast stays on loopback unless `--registry_address` names an interface's
//! IP (`0.0.0.0`: all interfaces). Stops on SIGINT/SIGTERM, after `--events` changes, or,
//! failing, when `--timeout` passes.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use micro_runtime::Registry;
use micro_runtime::registry::mdns::MdnsRegistry;

#[derive(Parser)]
#[command(
    name = "mdns-demo",
    version,
    about = "Watches the mDNS registry and prints each change"
)]
struct Cli {
    /// Only changes of this service.
    #[arg(long)]
    service: Option<String>,
    /// Stop after this many changes (0: watch until stopped).
    #[arg(long, default_value_t = 0)]
    events: usize,
    /// Fail when the changes asked for have not all come within this time (30s, 500ms).
    #[arg(long, value_parser = micro_runtime::options::parse_duration)]
    timeout: Option<Duration>,
    /// The IP of the interface to multicast on; 0.0.0.0 for all; loopback when unset.
    #[arg(long = "registry_address", env = "MICRO_REGISTRY_ADDRESS")]
    registry_address: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    micro_runtime::logging::init();
    let cli = Cli::parse();
    let registry = match MdnsRegistry::from_address(cli.registry_address.as_deref().unwrap_or("")) {
        Ok(r) => r,
        Err(e) => return examples::fail(&e),
    };
    let mut watcher = match registry.watch(cli.service.as_deref()).await {
        Ok(w) => w,
        Err(e) => return examples::fail(&e),
    };
    println!(
        "watching {}",
        cli.service.as_deref().unwrap_or("every service")
    );

    let watch = async {
        let mut seen = 0;
        while let Some(event) = watcher.next().await {
            let event = event?;
            let svc = &event.service;
            for node in &svc.nodes {
                let action = format!("{:?}", event.action).to_lowercase();
                println!("{action} {} {} {}", svc.name, node.id, node.address);
            }
            seen += 1;
            if seen == cli.events {
                break;
            }
        }
        Ok::<_, micro_runtime::Error>(())
    };
    let deadline = async {
        match cli.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        watched = watch => match watched {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => examples::fail(&e),
        },
        () = micro_runtime::service::shutdown_signal() => ExitCode::SUCCESS,
        () = deadline => examples::fail(&"timed out before the changes asked for"),
    }
}
