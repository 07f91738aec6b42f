//! Fuzz target: micro_runtime::fuzz::registry_record (what it decodes is in its docs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| micro_runtime::fuzz::registry_record(data));
