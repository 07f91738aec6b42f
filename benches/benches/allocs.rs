//! Heap allocations per unary call on the server path, ours and tonic's, counted by a
//! global allocator on the server's threads only (the client runs on other threads).
//!
//! `cargo bench -p micro-bench --bench allocs -- [--calls N]` (default 20000).

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use examples::greeter::{GreeterClient, HelloRequest};
use micro_runtime::registry::memory::MemoryRegistry;
use micro_runtime::{CallOptions, Service};

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

fn main() {
    let calls: u64 = std::env::args()
        .skip_while(|a| a != "--calls")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let server_rt = support::runtime("server", 1);
    let client_rt = support::runtime("client", 1);
    let registry = Arc::new(MemoryRegistry::new());
    let (_server, micro_addr) = support::start_micro(&server_rt, registry.clone());
    let tonic_addr = support::start_tonic(&server_rt);

    let client = {
        let _guard = client_rt.enter();
        GreeterClient::new(
            "greeter",
            Service::builder()
                .name("bench")
                .registry(registry)
                .build()
                .expect("client")
                .client(),
        )
    };
    let count = |addr: std::net::SocketAddr| {
        let opts = CallOptions::new().address(addr.to_string());
        client_rt.block_on(async {
            // Warm up: connection set-up and first-use allocations are not per call.
            for _ in 0..1000 {
                client
                    .hello_with(
                        HelloRequest {
                            name: "World".into(),
                        },
                        &opts,
                    )
                    .await
                    .expect("call");
            }
            let before = SERVER_ALLOCS.load(Ordering::Relaxed);
            for _ in 0..calls {
                client
                    .hello_with(
                        HelloRequest {
                            name: "World".into(),
                        },
                        &opts,
                    )
                    .await
                    .expect("call");
            }
            (SERVER_ALLOCS.load(Ordering::Relaxed) - before) as f64 / calls as f64
        })
    };
    let micro = count(micro_addr);
    let tonic = count(tonic_addr);
    println!(
        "server-side heap allocations per unary call ({calls} sequential calls, same client):"
    );
    println!("micro {micro:.1}");
    println!("tonic {tonic:.1}");
}
