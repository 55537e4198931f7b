use super::*;
use crate::loadgen::{get, GetError};
use crate::revisions::{build_revision, RevisionKind, INSTALL_ERROR_LINE, UNHEALTHY_BODY};
use std::io::Write;

const T: Duration = Duration::from_secs(2);

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("gl-fleet-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fleet(name: &str, scale: f64) -> (Arc<Fleet>, TempDir) {
    let dir = TempDir::new(name);
    (
        Fleet::on_reserved_port(TimeScale::new(scale), dir.0.clone()).expect("port"),
        dir,
    )
}

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in files {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("entry");
        zip.write_all(content.as_bytes()).expect("write");
    }
    zip.finish().expect("zip").into_inner()
}

async fn deploy(
    fleet: &Fleet,
    id: &str,
    deployment: &str,
    zip: Vec<u8>,
) -> Vec<(String, HookResult)> {
    fleet
        .download_bundle(id, deployment, zip)
        .await
        .expect("download");
    let mut results = Vec::new();
    for event in [
        "ApplicationStop",
        "BeforeInstall",
        "Install",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
    ] {
        let r = fleet.run_lifecycle_event(id, deployment, event).await;
        let ok = r.succeeded;
        results.push((event.to_string(), r));
        if !ok {
            break;
        }
    }
    results
}

#[test]
fn addresses_are_loopback_from_2_and_stable() {
    let (fleet, _dir) = fleet("addr", 1.0);
    let a = fleet.address_of("i-a");
    let b = fleet.address_of("i-b");
    assert_eq!(a, Ipv4Addr::new(127, 0, 0, 2));
    assert_eq!(b, Ipv4Addr::new(127, 0, 0, 3));
    assert_eq!(fleet.address_of("i-a"), a);
    assert_eq!(fleet.known_address("i-b"), Some(b));
    assert_eq!(fleet.known_address("i-c"), None);
    assert_eq!(fleet.instance_at(b).as_deref(), Some("i-b"));
    assert_eq!(loopback(254), Ipv4Addr::new(127, 0, 0, 254));
    assert_eq!(loopback(257), Ipv4Addr::new(127, 0, 1, 1));
}

#[tokio::test]
async fn launched_instance_serves_health_and_version_then_terminate_frees_it() {
    let (fleet, _dir) = fleet("launch", 0.05);
    let addr = fleet.socket_of("i-blue1");
    assert!(addr.ip().is_loopback() && addr.ip() != std::net::IpAddr::from([127, 0, 0, 1]));
    // A fresh instance refuses connections.
    assert!(matches!(
        get(addr, "/health", T).await,
        Err(GetError::Connect(_))
    ));

    fleet
        .launch_with_bundle("i-blue1", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    let health = get(addr, "/health", T).await.expect("health");
    assert_eq!((health.status, health.text().as_str()), (200, "ok"));
    let version = get(addr, "/version", T).await.expect("version");
    assert_eq!((version.status, version.text().as_str()), (200, "v1"));
    assert_eq!(
        version
            .headers
            .get("x-app-version")
            .and_then(|v| v.to_str().ok()),
        Some("v1")
    );
    let page = get(addr, "/", T).await.expect("page");
    assert!(page.text().contains("demo-app v1"));
    assert_eq!(get(addr, "/nope", T).await.expect("404").status, 404);
    assert_eq!(fleet.running_version("i-blue1").as_deref(), Some("v1"));

    fleet.terminate("i-blue1").await;
    assert_eq!(fleet.running_version("i-blue1"), None);
    assert!(matches!(
        get(addr, "/health", T).await,
        Err(GetError::Connect(_))
    ));
    // The port is free again: a new launch on the same address works.
    fleet
        .launch_with_bundle("i-blue1", build_revision(RevisionKind::Good, "v1b"))
        .await
        .expect("relaunch");
    assert_eq!(
        get(addr, "/version", T).await.expect("version").text(),
        "v1b"
    );
    fleet.terminate_all().await;
}

#[tokio::test]
async fn dropping_the_fleet_stops_its_servers() {
    let (fleet, _dir) = fleet("drop", 1.0);
    fleet
        .launch_with_bundle("i-d", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    let addr = fleet.socket_of("i-d");
    assert_eq!(get(addr, "/health", T).await.expect("health").status, 200);
    drop(fleet);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(
        get(addr, "/health", T).await,
        Err(GetError::Connect(_))
    ));
}

#[tokio::test]
async fn full_lifecycle_installs_and_starts_the_revision() {
    let (fleet, dir) = fleet("lifecycle", 0.01);
    fleet.set_deployment_context("d-OK", Some("demo"), Some("demo-group"), None);
    let results = deploy(
        &fleet,
        "i-green1",
        "d-OK",
        build_revision(RevisionKind::Good, "v2"),
    )
    .await;
    let events: Vec<&str> = results.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        events,
        [
            "ApplicationStop",
            "BeforeInstall",
            "Install",
            "AfterInstall",
            "ApplicationStart",
            "ValidateService"
        ]
    );
    for (event, r) in &results {
        assert!(r.succeeded, "{event}: {r:?}");
        assert_eq!(r.error_code, None);
    }
    let after = &results[3].1;
    assert_eq!(
        after.script_name.as_deref(),
        Some("scripts/after_install.sh")
    );
    assert!(
        after.log_tail.contains("LifecycleEvent - AfterInstall"),
        "{}",
        after.log_tail
    );
    assert!(
        after.log_tail.contains("[stdout]configuration ok"),
        "{}",
        after.log_tail
    );
    let appspec = dir.0.join("i-green1/d-OK/appspec.yml");
    assert!(appspec.is_file(), "{} is not a file", appspec.display());
    let addr = fleet.socket_of("i-green1");
    assert_eq!(
        get(addr, "/version", T).await.expect("version").text(),
        "v2"
    );

    // The next deployment: ApplicationStop runs the CURRENT revision's script and stops the server.
    fleet
        .download_bundle(
            "i-green1",
            "d-NEXT",
            build_revision(RevisionKind::Good, "v3"),
        )
        .await
        .expect("download");
    let stop = fleet
        .run_lifecycle_event("i-green1", "d-NEXT", "ApplicationStop")
        .await;
    assert!(stop.succeeded, "{stop:?}");
    assert!(
        stop.log_tail
            .contains("stopping demo-app (deployment d-NEXT)"),
        "{}",
        stop.log_tail
    );
    let health = get(addr, "/health", T).await;
    assert!(
        matches!(health, Err(GetError::Connect(_))),
        "{addr} still answers after ApplicationStop: {health:?}"
    );
    assert_eq!(fleet.running_version("i-green1"), None);
    fleet.terminate_all().await;
}

#[tokio::test]
async fn a_stopped_server_refuses_connections_while_a_forked_copy_of_its_socket_lives() {
    // A process forked by another thread holds a copy of every descriptor until
    // its exec; `forked` stands for that copy.
    let reservation = PortReservation::new().expect("port");
    let addr = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), reservation.port()));
    let listener = bind(addr).expect("bind");
    let ours = listening_copy(&listener).expect("copy");
    let forked = listening_copy(&listener).expect("copy");

    // Closing is not stopping: the socket still completes handshakes.
    drop(listener);
    let accepted = tokio::net::TcpStream::connect(addr).await;
    assert!(
        accepted.is_ok(),
        "closing one descriptor stopped it: {accepted:?}"
    );

    stop_listening(&ours);
    drop(ours);
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert_eq!(
        refused.as_ref().map_err(std::io::Error::kind).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "{refused:?}"
    );
    // The next revision's server can listen there at once.
    let next = bind(addr).expect("the next server binds while the copy lives");
    drop((next, forked));
}

#[tokio::test]
async fn hooks_get_codedeploy_environment() {
    let (fleet, _dir) = fleet("env", 1.0);
    let appspec = "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: env.sh\n      timeout: 10\n";
    let script = "echo \"event=$LIFECYCLE_EVENT id=$DEPLOYMENT_ID app=${APPLICATION_NAME:-} group=${DEPLOYMENT_GROUP_NAME:-} pwd=$(basename \"$PWD\")\"\n";
    fleet.set_deployment_context("d-ENV", Some("demo"), Some("blue-green"), Some("dg-1"));
    fleet
        .download_bundle(
            "i-env",
            "d-ENV",
            zip_of(&[("appspec.yml", appspec), ("env.sh", script)]),
        )
        .await
        .expect("download");
    let r = fleet
        .run_lifecycle_event("i-env", "d-ENV", "BeforeInstall")
        .await;
    assert!(r.succeeded, "{r:?}");
    assert!(
        r.log_tail
            .contains("[stdout]event=BeforeInstall id=d-ENV app=demo group=blue-green pwd=d-ENV"),
        "{}",
        r.log_tail
    );
}

#[tokio::test]
async fn failing_after_install_is_script_failed_with_the_log_tail() {
    let (fleet, _dir) = fleet("fail", 0.01);
    let results = deploy(
        &fleet,
        "i-bad",
        "d-BAD",
        build_revision(RevisionKind::FailingInstall, "v9"),
    )
    .await;
    let (event, r) = results.last().expect("results");
    assert_eq!(event, "AfterInstall");
    assert!(!r.succeeded);
    assert_eq!(r.error_code.as_deref(), Some("ScriptFailed"));
    assert_eq!(r.script_name.as_deref(), Some("scripts/after_install.sh"));
    assert_eq!(r.message, "Script at specified location: scripts/after_install.sh run as user root failed with exit code 1");
    assert!(
        r.log_tail
            .contains(&format!("[stderr]{INSTALL_ERROR_LINE}")),
        "{}",
        r.log_tail
    );
    assert!(
        r.log_tail
            .contains("[stdout]AfterInstall: configuring demo-app v9"),
        "{}",
        r.log_tail
    );
    // Never started: the address still refuses connections.
    assert!(matches!(
        get(fleet.socket_of("i-bad"), "/health", T).await,
        Err(GetError::Connect(_))
    ));
    assert_eq!(fleet.running_version("i-bad"), None);
}

#[tokio::test]
async fn a_script_over_its_timeout_is_killed_as_script_timed_out() {
    // timeout 20 s × scale 0.01 = 200 ms; the script (and its child sleep) would take 30 s.
    let (fleet, _dir) = fleet("timeout", 0.01);
    let appspec = "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: scripts/hang.sh\n      timeout: 20\n";
    let script = "echo starting\nsleep 30\necho never\n";
    fleet
        .download_bundle(
            "i-slow",
            "d-T",
            zip_of(&[("appspec.yml", appspec), ("scripts/hang.sh", script)]),
        )
        .await
        .expect("download");
    let started = std::time::Instant::now();
    let r = fleet
        .run_lifecycle_event("i-slow", "d-T", "ApplicationStart")
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "killed promptly, took {:?}",
        started.elapsed()
    );
    assert_eq!(r.error_code.as_deref(), Some("ScriptTimedOut"));
    assert_eq!(
        r.message,
        "Script at specified location: scripts/hang.sh failed to complete in 20 seconds"
    );
    assert!(
        r.log_tail.contains("[stdout]starting") && !r.log_tail.contains("never"),
        "{}",
        r.log_tail
    );
    assert_eq!(fleet.running_version("i-slow"), None);
}

#[tokio::test]
async fn a_missing_script_is_script_missing() {
    let (fleet, _dir) = fleet("missing", 1.0);
    let appspec =
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: scripts/nope.sh\n";
    fleet
        .download_bundle("i-m", "d-M", zip_of(&[("appspec.yml", appspec)]))
        .await
        .expect("download");
    let r = fleet
        .run_lifecycle_event("i-m", "d-M", "AfterInstall")
        .await;
    assert_eq!(r.error_code.as_deref(), Some("ScriptMissing"));
    assert!(
        r.message
            .starts_with("Script does not exist at specified location: "),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn bundles_are_validated_and_cannot_escape_their_directory() {
    let (fleet, dir) = fleet("guard", 1.0);
    let spec = "version: 0.0\nos: linux\n";
    let evil = zip_of(&[("appspec.yml", spec), ("../../escaped.sh", "echo pwned")]);
    let err = fleet
        .download_bundle("i-g", "d-1", evil)
        .await
        .expect_err("traversal refused");
    assert!(err.contains("escapes the bundle directory"), "{err}");
    assert!(!dir.0.join("escaped.sh").exists() && !dir.0.join("i-g/escaped.sh").exists());

    let err = fleet
        .download_bundle("i-g", "d-2", zip_of(&[("app.json", "{}")]))
        .await
        .expect_err("appspec required");
    assert!(err.contains("did not find an AppSpec file"), "{err}");
    let err = fleet
        .download_bundle(
            "i-g",
            "d-3",
            zip_of(&[("appspec.yml", "version: 1.0\nos: linux\n")]),
        )
        .await
        .expect_err("version");
    assert!(err.contains("invalid version value (1.0)"), "{err}");
    let err = fleet
        .download_bundle(
            "i-g",
            "d-4",
            zip_of(&[("appspec.yml", "version: 0.0\nos: windows\n")]),
        )
        .await
        .expect_err("os");
    assert!(err.contains("operating system"), "{err}");
    let err = fleet
        .download_bundle("i-g", "d-5", b"not a zip".to_vec())
        .await
        .expect_err("zip");
    assert!(err.contains("not a valid zip"), "{err}");
    // A hook location outside the bundle is refused too.
    let outside = zip_of(&[(
        "appspec.yml",
        "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: ../../../bin/true\n",
    )]);
    fleet
        .download_bundle("i-g", "d-6", outside)
        .await
        .expect("download");
    let r = fleet
        .run_lifecycle_event("i-g", "d-6", "BeforeInstall")
        .await;
    assert_eq!(r.error_code.as_deref(), Some("ScriptMissing"));
}

#[tokio::test]
async fn failing_health_revision_answers_500_with_its_reason() {
    let (fleet, _dir) = fleet("unhealthy", 0.01);
    let results = deploy(
        &fleet,
        "i-sick",
        "d-S",
        build_revision(RevisionKind::FailingHealth, "v4"),
    )
    .await;
    assert!(results.iter().all(|(_, r)| r.succeeded), "{results:?}");
    let addr = fleet.socket_of("i-sick");
    let health = get(addr, "/health", T).await.expect("health");
    assert_eq!(health.status, 500);
    assert_eq!(health.text(), UNHEALTHY_BODY);
    assert_eq!(
        get(addr, "/version", T).await.expect("version").text(),
        "v4"
    );
    fleet.terminate_all().await;
}

#[tokio::test]
async fn slow_revision_starts_late_and_answers_health_slowly() {
    // Scale 0.05: start delay 2 s → 100 ms, /health 1 s → 50 ms, hooks 3-5 s → 150-250 ms.
    let (fleet, _dir) = fleet("slow", 0.05);
    let results = deploy(
        &fleet,
        "i-slow",
        "d-SL",
        build_revision(RevisionKind::Slow, "v5"),
    )
    .await;
    assert!(results.iter().all(|(_, r)| r.succeeded), "{results:?}");
    assert!(
        results[4]
            .1
            .log_tail
            .contains("slow revision: this step takes 5 s"),
        "{:?}",
        results[4].1
    );
    let addr = fleet.socket_of("i-slow");
    let mut health = None;
    for _ in 0..50 {
        if let Ok(r) = get(addr, "/health", T).await {
            health = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = std::time::Instant::now();
    let again = get(addr, "/health", T).await.expect("health");
    assert!(
        started.elapsed() >= Duration::from_millis(45),
        "slow health: {:?}",
        started.elapsed()
    );
    assert_eq!(health.expect("started within 1 s").status, 200);
    assert_eq!(again.status, 200);
    fleet.terminate_all().await;
}

#[test]
fn log_tail_keeps_the_last_4kb_on_a_line_boundary() {
    let log: String = (0..1000).map(|i| format!("[stdout]line {i}\n")).collect();
    let t = tail(&log);
    assert!(t.len() <= LOG_TAIL_MAX);
    assert!(t.starts_with("[stdout]line "));
    assert!(t.ends_with("[stdout]line 999"));
}

#[tokio::test]
async fn a_killed_instance_never_reports_its_lifecycle_event_until_the_hour_is_up() {
    // 3600 s at this scale is 0.36 s real.
    let (fleet, _dir) = fleet("killed-agent", 0.0001);
    fleet
        .launch_with_bundle("i-dead", build_revision(RevisionKind::Good, "v1"))
        .await
        .expect("launch");
    assert!(fleet.kill("i-dead").await);
    let result = fleet
        .run_lifecycle_event("i-dead", "d-KILLED01", "BeforeBlockTraffic")
        .await;
    assert!(!result.succeeded, "{result:?}");
    assert_eq!(result.error_code.as_deref(), Some("UnknownError"));
    assert!(
        result
            .message
            .contains("did not report lifecycle event BeforeBlockTraffic within 3600 seconds"),
        "{}",
        result.message
    );
    // Its server stays down: nothing answers on its address.
    let answer = get(fleet.socket_of("i-dead"), "/version", T).await;
    assert!(matches!(answer, Err(GetError::Connect(_))), "{answer:?}");
}
