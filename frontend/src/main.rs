//! Mounts the page. Everything lives in the library, so that tests can use it.

fn main() {
    #[cfg(target_arch = "wasm32")]
    frontend::app::mount();
}
