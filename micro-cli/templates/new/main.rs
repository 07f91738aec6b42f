//! The {{ p.name }} service: `cargo run` (go-micro's flags and `MICRO_*` variables: `--help`).

use micro_runtime::Service;
use {{ p.module }}::{{ p.service }};

#[tokio::main]
async fn main() -> micro_runtime::Result<()> {
    let service = Service::builder()
        .name("{{ p.name }}")
        .version(env!("CARGO_PKG_VERSION"))
        .from_args()
        .build()?;
{%- if p.proto %}
    {{ p.module }}::register_{{ p.module }}_handler(service.server(), {{ p.service }})?;
{%- else %}
    service.server().handle({{ p.service }})?;
{%- endif %}
    // Logs its start, serves until SIGINT/SIGTERM, then deregisters and drains.
    service.run().await
}
