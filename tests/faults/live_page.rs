//! The local cloud's live page (`/_greenlight/`, issue 11 "A picture people
//! can look at"), looked at in headless Chromium (Debian's `chromium`,
//! installed by scripts/tools/install.sh) during and after a deployment of a
//! good revision: the DOM Chromium renders (after the page's script fetched
//! `state.json`) shows the deployment, its phases with actual and predicted
//! seconds, the instances' lifecycle events, the traffic by version and the
//! notification; the screenshots are real pictures (PNG, not one colour).
//! Loopback only: Chromium loads the front server's 127.0.0.1 endpoint and
//! nothing else (the page has no external resource).

use super::{green_deployed_checks, Checks};
use greenlight_e2e::{print_progress, start};
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Chromium as the installer puts it on PATH.
const CHROMIUM: &str = "chromium";

fn chromium(args: &[String]) -> Result<Vec<u8>, String> {
    let out = std::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            // Let the page's script fetch state.json and render before the dump.
            "--virtual-time-budget=4000",
        ])
        .args(args)
        .output()
        .map_err(|e| {
            format!("cannot run {CHROMIUM} (scripts/tools/install.sh installs it): {e}")
        })?;
    if !out.status.success() {
        return Err(format!(
            "{CHROMIUM} exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

/// The DOM after the page's script ran, and a screenshot written to `png`.
async fn look(url: &str, png: &Path) -> Result<String, String> {
    let url = url.to_string();
    let png = png.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let dom = chromium(&["--dump-dom".to_string(), url.clone()])?;
        chromium(&[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,1600".to_string(),
            url,
        ])?;
        Ok(String::from_utf8_lossy(&dom).into_owned())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// How many distinct pixel values the PNG has (a blank page has one).
fn distinct_pixels(png: &Path) -> Result<usize, String> {
    let bytes = std::fs::read(png).map_err(|e| format!("{}: {e}", png.display()))?;
    let image = png_pixels(&bytes)?;
    let mut seen = std::collections::HashSet::new();
    for pixel in image.chunks(image_channels(&bytes)?) {
        seen.insert(pixel.to_vec());
        if seen.len() > 50 {
            break;
        }
    }
    Ok(seen.len())
}

fn image_channels(bytes: &[u8]) -> Result<usize, String> {
    // IHDR: width(4) height(4) bit depth(1) colour type(1) at offset 16.
    let depth = *bytes.get(24).ok_or("PNG too short")?;
    let colour = *bytes.get(25).ok_or("PNG too short")?;
    if depth != 8 {
        return Err(format!("PNG bit depth {depth} (expected 8)"));
    }
    match colour {
        0 => Ok(1),
        2 => Ok(3),
        4 => Ok(2),
        6 => Ok(4),
        c => Err(format!("PNG colour type {c} not handled")),
    }
}

/// The unfiltered pixel bytes of an 8-bit, non-interlaced PNG (PNG
/// specification, sections 5 "Datastream structure" and 9 "Filtering").
fn png_pixels(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    if bytes.get(..8) != Some(b"\x89PNG\r\n\x1a\n".as_slice()) {
        return Err("not a PNG".into());
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let width = be(&bytes[16..20]);
    let channels = image_channels(bytes)?;
    if bytes.get(28) != Some(&0) {
        return Err("interlaced PNG not handled".into());
    }
    let mut idat = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = be(&bytes[at..at + 4]);
        let kind = &bytes[at + 4..at + 8];
        let data = bytes.get(at + 8..at + 8 + len).ok_or("truncated chunk")?;
        if kind == b"IDAT" {
            idat.extend_from_slice(data);
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .map_err(|e| format!("IDAT: {e}"))?;
    let stride = width * channels;
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut prev = vec![0u8; stride];
    for row in raw.chunks(stride + 1) {
        if row.len() != stride + 1 {
            return Err("short scanline".into());
        }
        let (filter, data) = (row[0], &row[1..]);
        let mut line = vec![0u8; stride];
        for i in 0..stride {
            let a = if i >= channels { line[i - channels] } else { 0 };
            let b = prev[i];
            let c = if i >= channels { prev[i - channels] } else { 0 };
            let predictor = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => return Err(format!("PNG filter {f}")),
            };
            line[i] = data[i].wrapping_add(predictor);
        }
        out.extend_from_slice(&line);
        prev = line;
    }
    Ok(out)
}

/// GET `url` (`http://127.x.x.x:port/path`, loopback) and parse its JSON body.
async fn http_get_json(url: &str) -> Option<serde_json::Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/')?;
    let mut stream =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(host))
            .await
            .ok()?
            .ok()?;
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    // A chunked answer: the JSON object sits between the chunk sizes.
    let start = body.find('{')?;
    let end = body.rfind('}')?;
    serde_json::from_str(&body[start..=end]).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_live_page_shows_the_deployment_in_headless_chromium() {
    let cloud = start("fault-live-page").await;
    let page = format!("{}/_greenlight/", cloud.endpoint());
    assert!(
        page.starts_with("http://127."),
        "the page must be on loopback: {page}"
    );
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("e2e")
        .join("live-page");
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    let label = scenarios::new_label("1101");

    // During: once the deployment shows on the page's state, look at the page.
    let state_url = format!("{}/_greenlight/state.json", cloud.endpoint());
    let during_png = shots.join("during.png");
    let during = {
        let state_url = state_url.clone();
        let page = page.clone();
        let png = during_png.clone();
        tokio::spawn(async move {
            for _ in 0..600 {
                let running = http_get_json(&state_url).await.is_some_and(|s| {
                    s["deployments"].as_array().is_some_and(|d| {
                        d.iter().any(|d| {
                            d["deploymentStatus"] == "InProgress"
                                && d["instances"].as_array().is_some_and(|i| !i.is_empty())
                        })
                    })
                });
                if running {
                    return look(&page, &png).await;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err("the deployment never showed InProgress with instances on state.json".to_string())
        })
    };
    let report = scenarios::upload_and_follow_settled(
        &cloud,
        RevisionKind::Good,
        &label,
        scenarios::SETTLE,
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    let during_dom = during.await.expect("during task");
    let after_png = shots.join("after.png");
    let after_dom = look(&page, &after_png).await;

    let mut checks = Checks::new();
    let deployment_id = report
        .followed
        .deployment
        .as_ref()
        .map(|d| d.deployment_id.clone())
        .unwrap_or_default();
    let has =
        |dom: &Result<String, String>, needle: &str| dom.as_ref().is_ok_and(|d| d.contains(needle));
    checks.check(
        "during: the page shows the running deployment with its phases and instances",
        has(&during_dom, &deployment_id)
            && has(&during_dom, "InProgress")
            && has(&during_dom, "class=\"phase\"")
            && has(&during_dom, "data-phase=\"Provisioning\"")
            && has(&during_dom, "class=\"instance\""),
        during_dom.as_ref().map(|d| d.len()).map_err(Clone::clone),
    );
    checks.check(
        "after: the page shows the phases actual vs predicted, the lifecycle events, traffic by version and the notification",
        has(&after_dom, &deployment_id)
            && has(&after_dom, "Succeeded")
            && has(&after_dom, "data-phase=\"Installing\"")
            && has(&after_dom, "data-phase=\"Rerouting\"")
            && has(&after_dom, "/ predicted ")
            && has(&after_dom, ">AllowTraffic<")
            && has(&after_dom, &format!("data-version=\"{label}\""))
            && has(&after_dom, "[deployed] greenlight deployed"),
        after_dom.as_ref().map(|d| d.len()).map_err(Clone::clone),
    );
    for (name, png) in [("during", &during_png), ("after", &after_png)] {
        let distinct = distinct_pixels(png);
        checks.check(
            &format!("{name}: the screenshot is a picture, not a blank page"),
            distinct.as_ref().is_ok_and(|n| *n > 10),
            (png, &distinct),
        );
    }
    green_deployed_checks(&mut checks, &report);
    checks.finish(
        "live page in headless Chromium (good revision)",
        &[],
        &report,
    );
    cloud.shutdown().await;
}
