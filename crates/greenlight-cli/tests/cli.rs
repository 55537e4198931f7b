//! The `greenlight` CLI against the local cloud: every command driven with
//! the same arguments a user passes (`--endpoint-url`, `--bucket`,
//! `--state-machine-arn`, ...), exit codes and output checked. Tests that run
//! deployments are named `fault_cli_...` so CI runs them in its parallel pass.

use local_cloud::cloud::LocalCloud;
use local_cloud::revisions::{write_revision, RevisionKind};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn credentials() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The local cloud accepts any credentials; the CLI reads the standard chain.
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    });
}

/// Runs `greenlight <args>` in-process against `cloud`; exit code and stdout.
async fn gl(cloud: &LocalCloud, args: &[&str]) -> (u8, String) {
    credentials();
    let names = &cloud.resources.names;
    let endpoint = cloud.endpoint();
    let mut argv: Vec<String> = vec!["greenlight".into()];
    argv.extend(
        [
            "--endpoint-url",
            endpoint.as_str(),
            "--region",
            local_cloud::provision::REGION,
            "--bucket",
            &names.bucket,
            "--prefix",
            &names.artifact_prefix,
            "--state-machine-arn",
            &cloud.resources.state_machine_arn,
            "--report-bucket",
            &names.report_bucket,
            "--report-prefix",
            &names.report_prefix,
            "--interval",
            "1",
            "--time-scale",
            &greenlight_e2e::TIME_SCALE.to_string(),
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    argv.extend(args.iter().map(|s| s.to_string()));
    let mut out = Vec::new();
    let code = greenlight_cli::run_args(argv, &mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    println!("$ greenlight {} -> exit {code}\n{text}", args.join(" "));
    (code, text)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A revision bundle `<dir>/<label>.zip` of `kind`.
fn bundle(dir: &str, kind: RevisionKind, build: &str) -> (String, PathBuf) {
    let label = local_cloud::scenarios::new_label(build);
    let path = greenlight_e2e::project_root()
        .join("target/e2e")
        .join(format!("{dir}-{}", std::process::id()))
        .join(format!("{label}.zip"));
    write_revision(&path, kind, &label).expect("bundle written");
    (label, path)
}

/// `deploy --wait --json`: exit code and the JSON answer.
async fn deploy(cloud: &LocalCloud, path: &std::path::Path, wait: bool) -> (u8, Value) {
    let names = &cloud.resources.names;
    let p = path.display().to_string();
    let mut args = vec![
        "--json",
        "deploy",
        p.as_str(),
        "--app",
        &names.application,
        "--group",
        &names.deployment_group,
    ];
    if wait {
        args.push("--wait");
    }
    let (code, text) = gl(cloud, &args).await;
    (code, json(&text))
}

fn group_args(cloud: &LocalCloud) -> [String; 4] {
    let n = &cloud.resources.names;
    [
        "--app".into(),
        n.application.clone(),
        "--group".into(),
        n.deployment_group.clone(),
    ]
}

#[test]
fn cli_help_version_and_usage_exit_codes() {
    let bin = env!("CARGO_BIN_EXE_greenlight");
    let run = |args: &[&str]| {
        let out = Command::new(bin).args(args).output().expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, help, _) = run(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(help.contains("Exit codes:"), "{help}");
    for c in [
        "deploy", "status", "wait", "watch", "history", "logs", "promote", "abort", "rollback",
        "plan",
    ] {
        assert!(help.contains(c), "{c} missing from --help");
        let (code, sub, _) = run(&[c, "--help"]);
        assert_eq!(code, Some(0), "{c} --help");
        assert!(sub.contains("Usage: greenlight"), "{c}: {sub}");
        assert!(sub.contains("--json"), "{c} --help lacks --json: {sub}");
        assert!(sub.contains("--endpoint-url"), "{c}: {sub}");
    }
    let (code, version, _) = run(&["--version"]);
    assert_eq!(code, Some(0));
    assert!(version.starts_with("greenlight "), "{version}");
    let (code, _, err) = run(&["deploy"]);
    assert_eq!(code, Some(2), "missing arguments are bad usage: {err}");
    // A bundle that is not a zip is refused before any AWS call: rejected.
    let (code, _, err) = run(&[
        "--bucket",
        "b",
        "--state-machine-arn",
        "arn:aws:states:us-east-1:1:stateMachine:p",
        "deploy",
        "build.tar.gz",
        "--app",
        "shop",
        "--group",
        "bg",
    ]);
    assert_eq!(code, Some(6), "{err}");
    assert!(err.contains("not a .zip bundle"), "{err}");
    let (code, _, _) = run(&["no-such-command"]);
    assert_eq!(code, Some(2));
    let (code, _, err) = run(&["status", "--app", "a"]);
    assert_eq!(code, Some(2), "--app without --group: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_cli_deploy_status_wait_history_logs_abort() {
    let cloud = greenlight_e2e::start("cli-deploy").await;
    let g = group_args(&cloud);
    let g: Vec<&str> = g.iter().map(String::as_str).collect();

    // deploy (no wait), then watch it: plain progress lines (stdout is not a
    // terminal here) through the phases and the gate, then the report; exit 0.
    let (label, path) = bundle("cli-deploy", RevisionKind::Good, "1");
    let (code, out) = deploy(&cloud, &path, false).await;
    assert_eq!(code, 0, "{out}");
    assert!(out["key"]
        .as_str()
        .unwrap_or("")
        .ends_with(&format!("/{label}.zip")));
    let exec = out["executionName"]
        .as_str()
        .expect("execution")
        .to_string();
    let mut watched = String::new();
    for _ in 0..60 {
        let (code, text) = gl(&cloud, &["watch", &exec]).await;
        if code == 1 && text.is_empty() {
            // The trigger has not started the execution yet.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        assert_eq!(code, 0, "{text}");
        watched = text;
        break;
    }
    let progress: Vec<&str> = watched.lines().filter(|l| l.contains(" | ")).collect();
    assert!(progress.len() >= 3, "progress lines: {watched}");
    for phase in ["Installing", "Rerouting", "Terminating"] {
        assert!(
            progress.iter().any(|l| l.contains(phase)),
            "no progress line in {phase}: {watched}"
        );
    }
    assert!(watched.contains("gate passed"), "{watched}");
    assert!(
        watched.contains("outcome    deployed (exit 0)"),
        "{watched}"
    );
    let (_, text) = gl(&cloud, &["--json", "status", &exec]).await;
    let status = json(&text);
    assert_eq!(status["revision"], label.as_str());
    assert_eq!(status["validation"]["passed"], true, "{text}");
    let dep = status["deploymentId"]
        .as_str()
        .expect("deployment id")
        .to_string();

    // status by deployment (text) and by group (JSON), wait by execution.
    let (code, text) = gl(&cloud, &["status", &dep]).await;
    assert_eq!(code, 0);
    assert!(text.contains("outcome    deployed (exit 0)"), "{text}");
    assert!(text.contains(&exec), "status names the execution: {text}");
    for phase in ["Provisioning", "Installing", "Rerouting", "Terminating"] {
        assert!(text.contains(phase), "{phase} missing: {text}");
    }
    let mut args = vec!["--json", "status"];
    args.extend(&g);
    let (code, text) = gl(&cloud, &args).await;
    assert_eq!(code, 0);
    assert_eq!(json(&text)["deploymentId"], dep.as_str());
    let (code, text) = gl(&cloud, &["wait", &exec, "--timeout", "30"]).await;
    assert_eq!(code, 0, "{text}");

    // history: the deployment with per-phase actual and predicted seconds.
    let mut args = vec!["--json", "history"];
    args.extend(&g);
    let (code, text) = gl(&cloud, &args).await;
    assert_eq!(code, 0);
    let history = json(&text);
    let rows = history.as_array().expect("list");
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(rows[0]["deploymentId"], dep.as_str());
    let phases = rows[0]["phases"].as_array().expect("phases");
    assert!(phases.len() >= 4, "{text}");
    assert!(phases
        .iter()
        .all(|p| p["predictedSeconds"].as_u64().is_some() && p["actualSeconds"].is_number()));

    // An upload for a group that does not exist is refused before uploading.
    let p = path.display().to_string();
    let (code, text) = gl(
        &cloud,
        &[
            "--json",
            "deploy",
            &p,
            "--app",
            g[1],
            "--group",
            "no-such-group",
        ],
    )
    .await;
    assert_eq!(code, 6, "{text}");
    assert!(json(&text)["error"]
        .as_str()
        .unwrap_or("")
        .contains("no-such-group"));

    // logs of a deployment that did not fail: no report, exit 1, says why.
    let (code, _) = gl(&cloud, &["logs", &dep]).await;
    assert_eq!(code, 1);
    // promote / abort of a finished deployment are refused.
    let (code, _) = gl(&cloud, &["promote", &dep]).await;
    assert_eq!(code, 1);
    let (code, _) = gl(&cloud, &["abort", &dep]).await;
    assert_eq!(code, 1);

    // A revision whose health check fails: the gate stops it, CodeDeploy
    // rolls back: exit 4; logs shows the failure report.
    let (_, bad) = bundle("cli-deploy", RevisionKind::FailingHealth, "2");
    let (code, out) = deploy(&cloud, &bad, true).await;
    assert_eq!(code, 4, "{out}");
    assert_eq!(out["report"]["outcome"], "rolledBack");
    let bad_dep = out["report"]["deploymentId"]
        .as_str()
        .expect("deployment id")
        .to_string();
    let mut report = String::new();
    for _ in 0..30 {
        let (code, text) = gl(&cloud, &["logs", &bad_dep]).await;
        if code == 0 && text.contains("next step") {
            report = text;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    assert!(report.contains("ValidationFailed"), "{report}");
    let (code, text) = gl(&cloud, &["--json", "logs", &bad_dep]).await;
    assert_eq!(code, 0);
    assert_eq!(json(&text)["report"]["error"], "ValidationFailed");

    // deploy without --wait, abort once its deployment exists, wait: rolled back.
    let (_, third) = bundle("cli-deploy", RevisionKind::Slow, "3");
    let (code, out) = deploy(&cloud, &third, false).await;
    assert_eq!(code, 0, "{out}");
    let exec3 = out["executionName"]
        .as_str()
        .expect("execution")
        .to_string();
    let mut aborted = false;
    for _ in 0..120 {
        let (_, text) = gl(&cloud, &["--json", "status", &exec3]).await;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if v["deploymentId"].is_string() {
            // wait's own timeout: exit 7, the deployment goes on.
            let (code, text) = gl(&cloud, &["--json", "wait", &exec3, "--timeout", "1"]).await;
            assert_eq!(code, 7, "{text}");
            assert_eq!(json(&text)["outcome"], "timedOut");
            let (code, text) = gl(&cloud, &["abort", &exec3]).await;
            assert_eq!(code, 0, "{text}");
            aborted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(aborted, "the deployment of {exec3} never appeared");
    let (code, text) = gl(&cloud, &["wait", &exec3, "--timeout", "170"]).await;
    assert_eq!(code, 4, "aborted = rolled back: {text}");
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_cli_rollback_redeploys_the_previous_good_revision() {
    let cloud = greenlight_e2e::start("cli-rollback").await;
    let g = group_args(&cloud);
    let g: Vec<&str> = g.iter().map(String::as_str).collect();
    // plan before any deployment: the demo's target group lacks greenlight's
    // tag; applying the printed fix makes every readable check pass.
    let mut args = vec!["--json", "plan"];
    args.extend(&g);
    let (code, text) = gl(&cloud, &args).await;
    assert_eq!(code, 3, "{text}");
    let plan = json(&text);
    let checks = plan["checks"].as_array().expect("checks");
    let failing: Vec<&Value> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert_eq!(failing.len(), 1, "{text}");
    assert_eq!(failing[0]["name"], "target group found and tagged");
    let fix = failing[0]["fix"].as_str().expect("fix").to_string();
    let arn = fix
        .split_whitespace()
        .skip_while(|w| *w != "--resource-arns")
        .nth(1)
        .expect("the fix names the target group ARN");
    assert_eq!(arn, cloud.resources.target_group_arn);
    aws_sdk_elasticloadbalancingv2::Client::new(&cloud.sdk)
        .add_tags()
        .resource_arns(arn)
        .tags(
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key("greenlight:application")
                .value(&cloud.resources.names.application)
                .build(),
        )
        .send()
        .await
        .expect("tag added as the fix says");
    let mut args = vec!["plan"];
    args.extend(&g);
    let (code, text) = gl(&cloud, &args).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("PASS  target group found and tagged"),
        "{text}"
    );
    // The demo's seed settings (30 s × 10 healthy + 30 s, 300 s drain), two
    // instances one at a time, against greenlight's (15 s + 30 s).
    assert!(
        text.lines()
            .any(|l| l.starts_with("Rerouting") && l.contains("1260s") && l.contains("90s")),
        "{text}"
    );

    let (first_label, first) = bundle("cli-rollback", RevisionKind::Good, "1");
    let (code, out) = deploy(&cloud, &first, true).await;
    assert_eq!(code, 0, "{out}");
    let first_dep = out["report"]["deploymentId"]
        .as_str()
        .expect("id")
        .to_string();
    let (_, second) = bundle("cli-rollback", RevisionKind::Good, "2");
    let (code, out) = deploy(&cloud, &second, true).await;
    assert_eq!(code, 0, "{out}");

    let mut args = vec!["--json", "rollback", "--wait"];
    args.extend(&g);
    let (code, text) = gl(&cloud, &args).await;
    assert_eq!(code, 0, "{text}");
    let out = json(&text);
    assert_eq!(out["fromDeployment"], first_dep.as_str());
    assert!(
        out["key"].as_str().unwrap_or("").contains("/rollback-"),
        "{out}"
    );
    assert_eq!(out["report"]["outcome"], "deployed");
    assert_eq!(out["report"]["revision"], first_label.as_str());
    let served = local_cloud::scenarios::served_versions(&cloud, 20).await;
    assert!(
        served.keys().all(|v| v.contains(&first_label)),
        "the whole fleet serves the first revision again: {served:?}"
    );

    // history shows three deployments, newest (the rollback) first, as text.
    let mut args = vec!["history"];
    args.extend(&g);
    let (code, text) = gl(&cloud, &args).await;
    assert_eq!(code, 0);
    assert_eq!(text.matches("deployed").count(), 3, "{text}");
    assert!(
        text.lines().next().unwrap_or("").contains(&first_label),
        "{text}"
    );
    cloud.shutdown().await;
}

/// `plan --standby-target-group`'s check in `--json` output.
async fn standby_check_of(cloud: &LocalCloud, standby: &str) -> Value {
    let g = group_args(cloud);
    let mut args: Vec<&str> = vec!["--json", "plan"];
    args.extend(g.iter().map(String::as_str));
    args.extend(["--standby-target-group", standby]);
    let (_, text) = gl(cloud, &args).await;
    json(&text)["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "standby target group"))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_plan_checks_the_bake_standby_target_group() {
    let cloud = greenlight_e2e::start("cli-plan-standby").await;
    let names = cloud.resources.names.clone();
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&cloud.sdk);

    // Without the flag there is no standby check.
    let g = group_args(&cloud);
    let mut args: Vec<&str> = vec!["--json", "plan"];
    args.extend(g.iter().map(String::as_str));
    let (_, text) = gl(&cloud, &args).await;
    assert!(
        json(&text)["checks"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["name"] != "standby target group")),
        "{text}"
    );

    // The demo's standby: same protocol, port, VPC, path and matcher as the
    // target group, a faster health check (reported, not a failure).
    let check = standby_check_of(&cloud, &names.standby_target_group).await;
    assert_eq!(check["status"], "pass", "{check}");
    assert!(
        check["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!(
                "{} matches {}: HTTP port ",
                names.standby_target_group, names.target_group
            ))),
        "{check}"
    );

    // A name that does not exist: the create command copies the target group.
    let main = elb
        .describe_target_groups()
        .target_group_arns(&cloud.resources.target_group_arn)
        .send()
        .await
        .expect("DescribeTargetGroups");
    let main = main.target_groups().first().expect("the target group");
    let check = standby_check_of(&cloud, "greenlight-demo-nope").await;
    assert_eq!(check["status"], "fail", "{check}");
    let detail = check["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("the standby target group greenlight-demo-nope was not found (")
            && !detail.contains("deployment group's load balancer settings"),
        "the detail names the missing standby, not the group's settings: {check}"
    );
    let fix = check["fix"].as_str().unwrap_or_default();
    assert!(
        fix.contains(&format!(
            "aws elbv2 create-target-group --name greenlight-demo-nope --protocol HTTP --port {} --vpc-id {} ",
            main.port().unwrap_or_default(),
            main.vpc_id().unwrap_or_default()
        )) && fix.contains(&format!(
            "--health-check-path {}",
            main.health_check_path().unwrap_or_default()
        )),
        "{check}"
    );

    // The standby's health check asks another path: the fix, applied as
    // printed, makes the check pass.
    elb.modify_target_group()
        .target_group_arn(&cloud.resources.standby_target_group_arn)
        .health_check_path("/elsewhere")
        .send()
        .await
        .expect("ModifyTargetGroup");
    let check = standby_check_of(&cloud, &names.standby_target_group).await;
    assert_eq!(check["status"], "fail", "{check}");
    assert!(
        check["detail"]
            .as_str()
            .is_some_and(|d| d.contains("HealthCheckPath /elsewhere (main: ")),
        "{check}"
    );
    let fix = check["fix"].as_str().unwrap_or_default().to_string();
    let words: Vec<&str> = fix.split_whitespace().collect();
    assert_eq!(
        words.get(..4),
        Some(&["aws", "elbv2", "modify-target-group", "--target-group-arn"][..]),
        "{fix}"
    );
    assert_eq!(
        words.get(4).copied(),
        Some(cloud.resources.standby_target_group_arn.as_str()),
        "{fix}"
    );
    let value = |flag: &str| {
        words
            .iter()
            .position(|w| *w == flag)
            .and_then(|i| words.get(i + 1))
            .map(|v| v.to_string())
    };
    let mut modify = elb
        .modify_target_group()
        .target_group_arn(&cloud.resources.standby_target_group_arn)
        .set_health_check_path(value("--health-check-path"))
        .set_health_check_port(value("--health-check-port"));
    if let Some(m) =
        value("--matcher").and_then(|m| m.strip_prefix("HttpCode=").map(str::to_string))
    {
        modify = modify.matcher(
            aws_sdk_elasticloadbalancingv2::types::Matcher::builder()
                .http_code(m)
                .build(),
        );
    }
    if let Some(p) = value("--health-check-protocol") {
        modify = modify.health_check_protocol(p.as_str().into());
    }
    modify.send().await.expect("the fix as printed");
    let check = standby_check_of(&cloud, &names.standby_target_group).await;
    assert_eq!(check["status"], "pass", "{check}");
    cloud.shutdown().await;
}
