//! The card as a person sees it: rendered by headless Chromium from a file URL (so nothing
//! can be fetched), the screenshot decoded and checked to be a page with plots — not blank,
//! and holding many pixels of the plots' first colour.
//!
//! Chromium comes from `WHARF_TEST_CHROMIUM` (`cargo xtask test` installs Debian's
//! `chromium` and sets it); without it the test says `skipped:`, and fails under
//! `WHARF_TEST_REQUIRE_BACKENDS=1` or `CI=true`.

use std::path::Path;
use std::process::Command;

use wharf_ml::{datasets, Trainer};
use wharf_report::ModelReport;

fn chromium() -> Option<String> {
    match std::env::var("WHARF_TEST_CHROMIUM") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            let required = std::env::var("WHARF_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1")
                || std::env::var("CI").as_deref() == Ok("true");
            assert!(!required, "WHARF_TEST_CHROMIUM is not set but WHARF_TEST_REQUIRE_BACKENDS=1 or CI=true");
            eprintln!("skipped: WHARF_TEST_CHROMIUM is not set (cargo xtask test sets it)");
            None
        }
    }
}

/// Width, height and RGB pixels of a PNG.
fn pixels(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let file = std::fs::File::open(path).expect("screenshot");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a buffer size")];
    let frame = reader.next_frame(&mut buf).expect("a frame");
    let channels = match frame.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected colour type {other:?}"),
    };
    let px = buf[..frame.buffer_size()].chunks_exact(channels).map(|c| [c[0], c[1], c[2]]).collect();
    (frame.width, frame.height, px)
}

/// Close to colour `c` (antialiasing shifts edges, not a curve's core).
fn near(p: &[u8; 3], c: [u8; 3]) -> bool {
    p.iter().zip(c).all(|(a, b)| a.abs_diff(b) <= 12)
}

/// `html` without its `<svg>…</svg>` elements.
fn strip_svg(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("</svg>").expect("a closed svg") + start + "</svg>".len();
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Chromium's screenshot of `page` (1200 × 3600), as RGB pixels.
fn screenshot(chromium: &str, dir: &Path, page: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let shot = page.with_extension("png");
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,3600"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("start chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    pixels(&shot)
}

#[test]
fn chromium_renders_the_card_with_its_plots() {
    let Some(chromium) = chromium() else { return };
    let (train, test) = datasets::breast_cancer().split(0.3, 5).expect("split");
    let model = Trainer::gradient_boosting().trees(10).fit(&train).expect("fit");
    let dir = tempfile::tempdir().expect("tempdir");
    let card = dir.path().join("card.html");
    ModelReport::builder(&model).name("cancer").holdout(&test).build().expect("report").write(&card).expect("write");

    let (width, height, px) = screenshot(&chromium, dir.path(), &card);
    assert_eq!((width, height), (1200, 3600));
    let white = px.iter().filter(|p| p.iter().all(|c| *c >= 250)).count();
    let inked = px.len() - white;
    assert!(inked * 50 > px.len(), "the page is (nearly) blank: {inked} of {} pixels inked", px.len());
    let distinct: std::collections::BTreeSet<[u8; 3]> = px.iter().copied().collect();
    assert!(distinct.len() > 50, "only {} colours: no text or plots", distinct.len());

    // The same page without its SVG: what the plots add must be visible, in their colour.
    let html = std::fs::read_to_string(&card).expect("card");
    let bare = dir.path().join("bare.html");
    std::fs::write(&bare, strip_svg(&html)).expect("write");
    let (_, _, bare_px) = screenshot(&chromium, dir.path(), &bare);
    let blue = |px: &[[u8; 3]]| px.iter().filter(|p| near(p, [0x1F, 0x77, 0xB4])).count();
    let (with, without) = (blue(&px), blue(&bare_px));
    assert!(
        with > without + 1_500,
        "the plots add too few pixels of their colour ({with} with the SVG, {without} without): they did not render"
    );
    eprintln!(
        "screenshot {width}x{height}: {inked} inked pixels, {with} of the plot colour ({without} without the SVG)"
    );
}
