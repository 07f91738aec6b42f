//! Calls the {{ p.name }} service: `cargo run --bin {{ p.name }}-client -- --name Alice`.

use clap::Parser;
use micro_runtime::Service;
{%- if p.proto %}
use {{ p.module }}::{ {{- p.service }}Client, Request, StreamingRequest};
{%- else %}
use {{ p.module }}::{Request, Response};
{%- endif %}

#[derive(Parser)]
#[command(version, about = "Calls the {{ p.name }} service")]
struct Cli {
    /// Who to greet.
    #[arg(long, default_value = "World")]
    name: String,
{%- if p.proto %}
    /// How many responses to stream.
    #[arg(long, default_value_t = 3)]
    count: i64,
{%- endif %}
    #[command(flatten)]
    micro: micro_runtime::Options,
}

#[tokio::main]
async fn main() -> micro_runtime::Result<()> {
    let cli = Cli::parse();
    let service = Service::builder()
        .name("{{ p.name }}-client")
        .options(cli.micro)
        .build()?;
{%- if p.proto %}
    let client = {{ p.service }}Client::new("{{ p.name }}", service.client());
    let rsp = client.call(Request { name: cli.name }).await?;
    println!("{}", rsp.msg);
    let mut stream = client.stream(StreamingRequest { count: cli.count }).await?;
    while let Some(rsp) = stream.recv().await? {
        println!("stream {}", rsp.count);
    }
{%- else %}
    let rsp: Response = service
        .client()
        .call_endpoint("{{ p.name }}", "{{ p.service }}.Call", Request { name: cli.name })
        .await?;
    println!("{}", rsp.msg);
{%- endif %}
    Ok(())
}
