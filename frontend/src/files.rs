//! Files the page offers to save: traces, packets, the diagram as SVG.

use leptos::prelude::window;
use wasm_bindgen::JsCast;

/// Offers `contents` as a file download, through the page's one download link (which tests
/// can also read).
pub(crate) fn download(file_name: &str, contents: &str, mime: &str) {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(contents));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else {
        return;
    };
    offer(file_name, &blob);
}

/// Offers a blob as a file, through the page's one download link (whose last blob URL is
/// let go first).
fn offer(file_name: &str, blob: &web_sys::Blob) {
    let Some(document) = window().document() else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(blob) else {
        return;
    };
    let Some(link) = document
        .query_selector("[data-testid='download-link']")
        .ok()
        .flatten()
        .and_then(|element| element.dyn_into::<web_sys::HtmlAnchorElement>().ok())
    else {
        return;
    };
    let old = link.href();
    if old.starts_with("blob:") {
        let _ = web_sys::Url::revoke_object_url(&old);
    }
    link.set_href(&url);
    link.set_download(file_name);
    link.click();
}

/// The diagram as a standalone SVG file: the page's SVG carries its own styles.
pub(crate) fn export_svg(file_name: &str) {
    let svg = window()
        .document()
        .and_then(|document| {
            document
                .query_selector("[data-testid='diagram']")
                .ok()
                .flatten()
        })
        .map(|element| element.outer_html());
    if let Some(svg) = svg {
        download(
            file_name,
            &format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{svg}"),
            "image/svg+xml",
        );
    }
}

/// Offers bytes as a file to download, through the page's download link.
pub(crate) fn download_bytes(file_name: &str, contents: &[u8], mime: &str) {
    let array = js_sys::Uint8Array::from(contents);
    let parts = js_sys::Array::of1(&array);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options) else {
        return;
    };
    offer(file_name, &blob);
}
