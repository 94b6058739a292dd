//! The web page the gateway serves at `GET /`, built into the binary.
//!
//! The sources are in `bridge/web/` (`index.html`, `page.ts`, `style.css`);
//! `cd bridge/web && npm ci && npm run build` bundles them with hls.js into
//! `bridge/web/dist/`, which is committed so that building the daemon needs
//! no node. The gateway does not depend on this crate: the daemon hands
//! these files to it.

/// One file of the page, served at `/web/<name>` (`index.html` at `/`).
#[derive(Clone, Copy, Debug)]
pub struct WebFile {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

const FILES: [WebFile; 4] = [
    WebFile {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../web/dist/index.html"),
    },
    WebFile {
        name: "page.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../web/dist/page.js"),
    },
    WebFile {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../web/dist/style.css"),
    },
    // hls.js's transmuxing worker, which the page names as `workerPath`.
    WebFile {
        name: "hls.worker.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../web/dist/hls.worker.js"),
    },
];

/// Every file of the built page.
pub fn assets() -> &'static [WebFile] {
    &FILES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> &'static [u8] {
        assets()
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} is not among the assets"))
            .bytes
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    /// `include_bytes!` already stops the build when a file is missing; this
    /// catches an empty or stale `dist/`.
    #[test]
    fn the_built_page_is_committed_and_matches_its_sources() {
        let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let page = std::fs::read(web.join("dist/page.js"))
            .expect("bridge/web/dist/page.js is missing: cd bridge/web && npm ci && npm run build");
        assert!(page.len() > 100_000, "page.js is too small to hold hls.js");
        assert!(
            contains(&page, "manifestLoadError"),
            "page.js does not bundle hls.js"
        );
        for name in ["index.html", "style.css"] {
            let source = std::fs::read(web.join(name)).unwrap();
            assert_eq!(
                file(name),
                source.as_slice(),
                "dist/{name} differs from {name}: run npm run build in bridge/web"
            );
        }
        let html = std::str::from_utf8(file("index.html")).unwrap();
        for name in ["page.js", "style.css"] {
            assert!(
                html.contains(&format!("/web/{name}")),
                "index.html names {name}"
            );
        }
        for other_origin in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
            assert!(
                !html.contains(other_origin),
                "the page loads nothing from elsewhere"
            );
        }
        let page = std::str::from_utf8(file("page.js")).unwrap();
        assert!(
            page.contains("/web/hls.worker.js"),
            "page.js names the worker"
        );
        assert!(!file("hls.worker.js").is_empty());
    }
}
