//! Runs the service in the test's process, on a registry of its own, and calls it over the
//! network as any client would.

use std::sync::Arc;

use micro_runtime::Service;
use micro_runtime::registry::memory::MemoryRegistry;
{%- if p.proto %}
use {{ p.module }}::{ {{- p.service }}, {{ p.service }}Client, Request, StreamingRequest};
{%- else %}
use {{ p.module }}::{ {{- p.service }}, Request, Response};
{%- endif %}

#[tokio::test]
async fn the_service_answers() -> micro_runtime::Result<()> {
    let registry = Arc::new(MemoryRegistry::new());
    let service = Service::builder()
        .name("{{ p.name }}")
        .address("127.0.0.1:0")
        .registry(registry)
        .build()?;
{%- if p.proto %}
    {{ p.module }}::register_{{ p.module }}_handler(service.server(), {{ p.service }})?;
{%- else %}
    service.server().handle({{ p.service }})?;
{%- endif %}
    service.start().await?;

{%- if p.proto %}
    let client = {{ p.service }}Client::new("{{ p.name }}", service.client());
    let rsp = client.call(Request { name: "Alice".into() }).await?;
    assert_eq!(rsp.msg, "Hello Alice");

    let mut stream = client.stream(StreamingRequest { count: 3 }).await?;
    let mut counts = Vec::new();
    while let Some(rsp) = stream.recv().await? {
        counts.push(rsp.count);
    }
    assert_eq!(counts, [0, 1, 2]);

    let err = client.stream(StreamingRequest { count: -1 }).await?.recv().await.unwrap_err();
    assert_eq!(err.code(), micro_runtime::Code::InvalidArgument);
{%- else %}
    let rsp: Response = service
        .client()
        .call_endpoint("{{ p.name }}", "{{ p.service }}.Call", Request { name: "Alice".into() })
        .await?;
    assert_eq!(rsp.msg, "Hello Alice");
{%- endif %}

    service.stop().await
}
