//! Heap allocations per unary call on the server path, counted by a global allocator on the
//! server's threads only (the client runs on other threads), with the mean time per call.
//! Side by side, one client and the same request each time:
//! - the greeter generated from `proto/greeter.proto`, in protobuf and in JSON;
//! - the same greeter written with `#[micro_runtime::handler]` on the same generated prost
//!   messages (protobuf), and on serde messages of the same shape (JSON);
//! - tonic's greeter (protobuf).
//!
//! `cargo bench -p micro-bench --bench allocs -- [--calls N]` (default 20000).

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use examples::greeter::{HelloRequest, HelloResponse};
use micro_bench::{MacroHello, SerdeHello, SerdeHelloRequest, SerdeHelloResponse};
use micro_runtime::registry::memory::MemoryRegistry;
use micro_runtime::{CallOptions, Client, Codec, Message, Service};

struct Counting;

static SERVER_ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Whether this thread is a server thread; decided once per thread.
    static ON_SERVER: Cell<Option<bool>> = const { Cell::new(None) };
}

fn on_server() -> bool {
    ON_SERVER
        .try_with(|c| match c.get() {
            Some(v) => v,
            None => {
                // Mark first so the name lookup's own allocation is not counted recursively.
                c.set(Some(false));
                let v = std::thread::current()
                    .name()
                    .is_some_and(|n| n.starts_with("server"));
                c.set(Some(v));
                v
            }
        })
        .unwrap_or(false)
}

#[allow(unsafe_code)] // a global allocator is unsafe by definition; this one only counts
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if on_server() {
            SERVER_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if on_server() {
            SERVER_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Server-side allocations and mean microseconds per call of `calls` sequential calls.
fn measure<Req: Message, Rsp: Message>(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    addr: std::net::SocketAddr,
    codec: Codec,
    calls: u64,
    request: impl Fn() -> Req,
) -> (f64, f64) {
    let opts = CallOptions::new().address(addr.to_string()).codec(codec);
    rt.block_on(async {
        let call = || async {
            client
                .call_endpoint_with::<Req, Rsp>("greeter", "Greeter.Hello", &request(), &opts)
                .await
                .expect("call")
        };
        // Warm up: connection set-up and first-use allocations are not per call.
        for _ in 0..1000 {
            call().await;
        }
        let before = SERVER_ALLOCS.load(Ordering::Relaxed);
        let started = Instant::now();
        for _ in 0..calls {
            call().await;
        }
        let micros = started.elapsed().as_secs_f64() * 1e6 / calls as f64;
        let allocs = (SERVER_ALLOCS.load(Ordering::Relaxed) - before) as f64 / calls as f64;
        (allocs, micros)
    })
}

fn main() {
    let calls: u64 = std::env::args()
        .skip_while(|a| a != "--calls")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let server_rt = support::runtime("server", 1);
    let client_rt = support::runtime("client", 1);
    let registry = Arc::new(MemoryRegistry::new());
    let (_generated, generated) = support::start_micro(&server_rt, registry.clone());
    let (_macro, with_macro) =
        support::start_with(&server_rt, registry.clone(), |s| s.handle(MacroHello));
    let (_serde, with_serde) =
        support::start_with(&server_rt, registry.clone(), |s| s.handle(SerdeHello));
    let tonic = support::start_tonic(&server_rt);

    let client = {
        let _guard = client_rt.enter();
        Service::builder()
            .name("bench")
            .registry(registry)
            .build()
            .expect("client")
            .client()
    };
    let prost = || HelloRequest {
        name: "World".into(),
    };
    let serde = || SerdeHelloRequest {
        name: "World".into(),
    };
    let rows = [
        ("micro, generated from .proto, protobuf", {
            measure::<_, HelloResponse>(&client_rt, &client, generated, Codec::Proto, calls, prost)
        }),
        ("micro, #[handler] on prost messages, protobuf", {
            measure::<_, HelloResponse>(&client_rt, &client, with_macro, Codec::Proto, calls, prost)
        }),
        ("micro, generated from .proto, JSON", {
            measure::<_, HelloResponse>(&client_rt, &client, generated, Codec::Json, calls, prost)
        }),
        ("micro, #[handler] on serde messages, JSON", {
            measure::<_, SerdeHelloResponse>(
                &client_rt,
                &client,
                with_serde,
                Codec::Json,
                calls,
                serde,
            )
        }),
        ("tonic, protobuf", {
            measure::<_, HelloResponse>(&client_rt, &client, tonic, Codec::Proto, calls, prost)
        }),
    ];
    println!(
        "server-side heap allocations and mean time per unary call ({calls} sequential calls, same client):"
    );
    println!("{:<48} {:>8} {:>9}", "server", "allocs", "µs/call");
    for (name, (allocs, micros)) in rows {
        println!("{name:<48} {allocs:>8.1} {micros:>9.1}");
    }
}
