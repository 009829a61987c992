//! Mounts the page. Everything lives in the library, so that tests can use it.

/// Talc instead of the standard library's dlmalloc: smaller in the wasm, and as fast at the
/// page's work (PERFORMANCE.md).
#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

fn main() {
    #[cfg(target_arch = "wasm32")]
    frontend::app::mount();
}
