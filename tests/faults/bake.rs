//! Issue 10's bake after the reroute: a good revision ends the termination
//! wait early; a revision that degrades under real traffic fails the bake and
//! is rolled back to blue while blue still exists.
//!
//! Timing: the local cloud's CodeDeploy and ALB run 10× faster than AWS, but
//! CloudWatch metrics are per wall-clock minute (as the greenlight functions
//! read them), so these scenarios take a minute or two each.

use std::time::{Duration, Instant};

use super::{blue_kept_checks, green_deployed_checks, Checks};
use greenlight_e2e::{print_progress, project_root, TIME_SCALE};
use local_cloud::cloud::{LocalCloud, Options, INITIAL_VERSION};
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios;

/// The blue termination wait of these scenarios, simulated minutes (30 min =
/// 180 s real at the tests' time scale): long enough for any bake here.
const TERMINATION_WAIT_MINUTES: i32 = 30;

async fn start_baking(name: &str, bake_seconds: u32) -> LocalCloud {
    start_baking_with(name, bake_seconds, &[]).await
}

pub(super) async fn start_baking_with(
    name: &str,
    bake_seconds: u32,
    alarms: &[&str],
) -> LocalCloud {
    let root = project_root();
    let work = root
        .join("target")
        .join("e2e")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let mut options = Options::new(&root, &work, TIME_SCALE);
    options.settings.termination_wait_minutes = TERMINATION_WAIT_MINUTES;
    let mut bake = options.demo_bake(bake_seconds);
    bake.alarms = alarms.iter().map(|a| a.to_string()).collect();
    options.bake = vec![bake];
    match LocalCloud::start(options).await {
        Ok(cloud) => cloud,
        Err(e) => panic!("the local cloud did not start for {name}: {e}"),
    }
}

/// The `$.bake` of a finished execution (its output).
fn bake_report(report: &scenarios::DeploymentReport) -> Option<serde_json::Value> {
    report.followed.output.as_ref()?.get("bake").cloned()
}

/// The listener's default actions as moto holds them.
pub(super) async fn listener_actions(
    cloud: &LocalCloud,
) -> Result<Vec<greenlight_core::bake::standby::RouteAction>, String> {
    aws_sdk_elasticloadbalancingv2::Client::new(&cloud.sdk)
        .describe_listeners()
        .listener_arns(&cloud.resources.listener_arn)
        .send()
        .await
        .map(|o| {
            o.listeners()
                .iter()
                .flat_map(|l| l.default_actions())
                .map(greenlight_aws::listener::route_action)
                .collect()
        })
        .map_err(|e| format!("{e:?}"))
}

/// The listener's forward changes the local ALB saw: armed `{main 1,
/// standby 0}`, switched `{main 0, standby 1}` (on a failed bake), put back
/// `{main 1}`.
pub(super) fn listener_changes(
    cloud: &LocalCloud,
) -> Vec<local_cloud::load_balancer::routing::RouteChange> {
    cloud.lb.route_history(&cloud.resources.listener_arn)
}

pub(super) fn weight_of(
    change: &local_cloud::load_balancer::routing::RouteChange,
    arn: &str,
) -> Option<u32> {
    change
        .forward
        .iter()
        .find(|(a, _)| a == arn)
        .map(|(_, w)| *w)
}

/// The standby put back: the listener's default actions exactly as before
/// the deployment, its last change a forward to the target group alone, and
/// no target left in the standby target group (blue drains out within its
/// 30 s deregistration delay, 3 s real). The failure handler's settle
/// (`greenlight_core::bake::standby_record::settle_plan`) fits its time left
/// here as on AWS (the local cloud gives a function its scaled Timeout plus
/// real time for its own work: `local_cloud::lambda_host::real_timeout`), so
/// blue is never left in the standby.
async fn standby_put_back_checks(
    checks: &mut Checks,
    cloud: &LocalCloud,
    before: &Result<Vec<greenlight_core::bake::standby::RouteAction>, String>,
) {
    let changes = listener_changes(cloud);
    let standby = cloud.resources.standby_target_group_arn.as_str();
    let main = cloud.resources.target_group_arn.as_str();
    checks.check(
        "the bake armed the standby (listener weighted target group 1 / standby 0)",
        changes
            .iter()
            .any(|c| weight_of(c, standby) == Some(0) && weight_of(c, main) == Some(1)),
        &changes,
    );
    checks.check(
        "the listener's last change forwards to the target group alone",
        changes
            .last()
            .is_some_and(|c| c.forward == vec![(main.to_string(), 1)]),
        changes.last(),
    );
    let live = listener_actions(cloud).await;
    checks.check(
        "the listener is back to exactly its actions before the deployment",
        before.is_ok() && live == *before,
        (&live, before),
    );
    let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(&cloud.sdk);
    let started = Instant::now();
    let left = loop {
        let left = elbv2
            .describe_target_health()
            .target_group_arn(&cloud.resources.standby_target_group_arn)
            .send()
            .await
            .map(|o| {
                o.target_health_descriptions()
                    .iter()
                    .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .map_err(|e| format!("{e:?}"));
        if left.as_ref().is_ok_and(|l| l.is_empty()) || started.elapsed() > Duration::from_secs(15)
        {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    checks.check(
        "the standby target group is empty again",
        left.as_ref().is_ok_and(|l| l.is_empty()),
        &left,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_bake_good_revision_ends_the_termination_wait_early() {
    let cloud = start_baking("fault-bake-good", 20).await;
    let before = listener_actions(&cloud).await;
    let label = scenarios::new_label("1001");
    let started = Instant::now();
    let report = scenarios::upload_and_follow_settled(
        &cloud,
        RevisionKind::Good,
        &label,
        scenarios::SETTLE,
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    let took = started.elapsed();
    let bake = bake_report(&report);
    let wait_real =
        Duration::from_secs_f64(f64::from(TERMINATION_WAIT_MINUTES) * 60.0 * TIME_SCALE);
    println!(
        "bake (good): execution {} in {:.1} s real; termination wait {:.0} s real; bake {:?}; timeline {:?}",
        report.followed.status,
        took.as_secs_f64(),
        wait_real.as_secs_f64(),
        bake,
        report.followed.timeline
    );

    let mut checks = Checks::new();
    checks.check(
        "the execution succeeded",
        report.followed.status == "SUCCEEDED",
        (&report.followed.status, &report.followed.error),
    );
    checks.check(
        "the bake passed and continued the deployment",
        bake.as_ref()
            .is_some_and(|b| b["verdict"] == "passed" && b["bakeSeconds"] == 20),
        &bake,
    );
    checks.check(
        "the bake reports the saving",
        bake.as_ref()
            .and_then(|b| b["savedSeconds"].as_u64())
            .is_some_and(|s| s > 0),
        &bake,
    );
    checks.check(
        "blue was released before the termination wait ran out",
        took < wait_real,
        (took, wait_real),
    );
    let standby: Option<greenlight_core::bake::standby::StandbyState> = bake
        .as_ref()
        .and_then(|b| serde_json::from_value(b["standby"].clone()).ok());
    checks.check(
        "the bake put the standby back before releasing blue",
        standby
            .as_ref()
            .is_some_and(|s| s.restored && s.switched_at_ms.is_none()),
        &standby,
    );
    checks.check(
        "a passed bake never switched to the standby",
        !listener_changes(&cloud)
            .iter()
            .any(|c| weight_of(c, &cloud.resources.standby_target_group_arn) == Some(1)),
        listener_changes(&cloud),
    );
    standby_put_back_checks(&mut checks, &cloud, &before).await;
    if let Some(saved) = bake.as_ref().and_then(|b| b["savedSeconds"].as_u64()) {
        checks.note(format!(
            "bake {} s passed, savedSeconds {saved} (the {} s wait minus the bake's real seconds), run {:.0} s real vs a {:.0} s real wait",
            bake.as_ref().and_then(|b| b["bakeSeconds"].as_u64()).unwrap_or(0),
            TERMINATION_WAIT_MINUTES * 60,
            took.as_secs_f64(),
            wait_real.as_secs_f64()
        ));
    }
    green_deployed_checks(&mut checks, &report);
    checks.finish("bake: good revision, early termination", &[], &report);
    cloud.shutdown().await;
}

/// One `/version` ask: when it was sent, and the version that answered 200
/// (None: no 200 answer).
pub(super) type Seen = (std::time::SystemTime, Option<String>);

/// Asks the listener for `/version` every 100 ms until stopped.
pub(super) fn watch_versions(
    listener: std::net::SocketAddr,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Vec<Seen>>,
) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            let sent = std::time::SystemTime::now();
            let answer =
                local_cloud::loadgen::get(listener, "/version", Duration::from_secs(2)).await;
            seen.push((
                sent,
                match answer {
                    Ok(r) if r.status == 200 => Some(r.text().trim().to_string()),
                    _ => None,
                },
            ));
            tokio::select! {
                _ = &mut stopped => return seen,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    });
    (stop, task)
}

/// From when on every answer came from `version` (the first answer after the
/// last one that did not), if the last answer did.
pub(super) fn serving_only_since(seen: &[Seen], version: &str) -> Option<std::time::SystemTime> {
    let last_other = seen
        .iter()
        .rposition(|(_, v)| v.as_deref() != Some(version));
    match last_other {
        None => seen.first().map(|(t, _)| *t),
        Some(i) => seen.get(i + 1).map(|(t, _)| *t),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_bake_degrading_revision_is_rolled_back_to_blue() {
    let cloud = start_baking("fault-bake-degrading", 150).await;
    let before = listener_actions(&cloud).await;
    let label = scenarios::new_label("1002");
    let (stop_watch, watch) = watch_versions(cloud.listener);
    let report = scenarios::upload_and_follow_settled(
        &cloud,
        RevisionKind::Degrading,
        &label,
        scenarios::SETTLE,
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    let _ = stop_watch.send(());
    let seen = watch.await.unwrap_or_default();
    let green_served = seen
        .iter()
        .any(|(_, v)| v.as_deref() == Some(label.as_str()));
    let failed_answers = seen.iter().filter(|(_, v)| v.is_none()).count();
    let blue_since = serving_only_since(&seen, INITIAL_VERSION);
    let stopped_at_ms = report
        .followed
        .deployment
        .as_ref()
        .and_then(|d| d.completed_at_ms);
    // The failed check's switch as the local ALB saw it: read (ModifyListener)
    // and in force (after the listener change delay).
    let at_ms = |t: &std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    };
    let switch = listener_changes(&cloud)
        .into_iter()
        .find(|c| weight_of(c, &cloud.resources.standby_target_group_arn) == Some(1));
    let switched_at_ms = switch.as_ref().map(|c| at_ms(&c.read_at));
    let switch_in_force_ms = switch.as_ref().map(|c| at_ms(&c.in_force_at));
    let seconds_to_blue = match (blue_since, switched_at_ms) {
        (Some(t), Some(switched)) => t
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| (d.as_millis() as i64 - switched) as f64 / 1000.0),
        _ => None,
    };
    // The watcher's failed answers by window: before the failed check (the
    // bake's detection window: green degraded, the minute had to close and
    // reach CloudWatch), between the failed check (the listener switched to
    // blue in the standby) and blue serving all traffic (the listener change
    // propagating: green still answers), and after (must be none).
    let failed_in = |from: Option<i64>, to: Option<i64>| {
        seen.iter()
            .filter(|(t, v)| {
                let t = at_ms(t);
                v.is_none() && from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e)
            })
            .count()
    };
    let blue_since_ms = blue_since.as_ref().map(at_ms);
    let failed_detecting = failed_in(None, switched_at_ms);
    let failed_switching = switched_at_ms.map_or(0, |s| failed_in(Some(s), switch_in_force_ms));
    let failed_after_switch =
        switch_in_force_ms.map_or(failed_answers, |s| failed_in(Some(s), None));
    let failed_after_blue = blue_since_ms.map_or(failed_answers, |b| failed_in(Some(b), None));
    // Whatever happens after the rollback: fresh load, nothing may fail.
    let after = local_cloud::loadgen::start_load(
        &format!("{}/version", cloud.listener_url()),
        20,
        Duration::from_secs(60),
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = after.stop().await;
    let notifications = report.notifications.clone();
    let deployments = scenarios::group_deployments(&cloud)
        .await
        .unwrap_or_else(|e| panic!("ListDeployments: {e}"));
    println!(
        "bake (degrading): execution {} {:?}; failed check (listener switched to the standby) at {:?} ms, StopDeployment at {:?} ms; blue serving all traffic {:?} s after the switch; watcher: {} answers, {} not 200; load during the run {:?}; load after {:?}",
        report.followed.status,
        report.followed.error,
        switched_at_ms,
        stopped_at_ms,
        seconds_to_blue,
        seen.len(),
        failed_answers,
        report.load,
        after
    );

    let mut checks = Checks::new();
    checks.check(
        "the execution failed with BakeFailed",
        report.followed.status == "FAILED"
            && report.followed.error.as_deref() == Some("BakeFailed"),
        (
            &report.followed.status,
            &report.followed.error,
            &report.followed.cause,
        ),
    );
    checks.check(
        "the cause carries the metric evidence",
        report
            .followed
            .cause
            .as_deref()
            .is_some_and(|c| c.contains("target 5xx")),
        &report.followed.cause,
    );
    let deployment = report.followed.deployment.clone();
    checks.check(
        "the deployment was stopped with a rollback",
        deployment.as_ref().is_some_and(|d| {
            d.status == greenlight_core::DeploymentStatus::Stopped
                && d.rollback_deployment_id.is_some()
        }),
        &deployment,
    );
    checks.check(
        "the rollback succeeded",
        deployments.iter().any(|d| {
            d.ended
                && d.status == "Succeeded"
                && Some(&d.id)
                    == deployment
                        .as_ref()
                        .and_then(|x| x.rollback_deployment_id.as_ref())
        }),
        &deployments,
    );
    checks.check(
        "exactly one notification, naming the bake and the evidence",
        notifications.len() == 1
            && notifications[0].message.contains("BakeFailed")
            && notifications[0].message.contains("target 5xx"),
        &notifications,
    );
    checks.check(
        "green served real traffic before the bake rolled it back",
        green_served,
        seen.len(),
    );
    checks.check(
        "blue serves all traffic again",
        blue_since.is_some(),
        seconds_to_blue,
    );
    checks.check(
        "the blue ASG is the group's again and green is gone",
        report.group_asgs == vec![cloud.resources.names.blue_asg.clone()]
            && report.existing_asgs == vec![cloud.resources.names.blue_asg.clone()],
        (&report.group_asgs, &report.existing_asgs),
    );
    checks.check(
        "the failed bake switched the listener to blue in the standby before the rollback",
        switched_at_ms.is_some_and(|sw| stopped_at_ms.is_none_or(|st| sw <= st + 1_000)),
        (&switched_at_ms, &stopped_at_ms),
    );
    checks.check(
        "no watched request failed once the switch took effect, nor once blue served all traffic",
        blue_since.is_some() && failed_after_switch == 0 && failed_after_blue == 0,
        (
            failed_detecting,
            failed_switching,
            failed_after_switch,
            failed_after_blue,
        ),
    );
    standby_put_back_checks(&mut checks, &cloud, &before).await;
    let main_targets = aws_sdk_elasticloadbalancingv2::Client::new(&cloud.sdk)
        .describe_target_health()
        .target_group_arn(&cloud.resources.target_group_arn)
        .send()
        .await
        .map(|o| {
            let mut t: Vec<(String, String)> = o
                .target_health_descriptions()
                .iter()
                .filter_map(|d| {
                    Some((
                        d.target()?.id()?.to_string(),
                        d.target_health()?.state()?.as_str().to_string(),
                    ))
                })
                .filter(|(_, state)| state != "draining")
                .collect();
            t.sort();
            t
        })
        .map_err(|e| format!("{e:?}"));
    let mut blue_healthy: Vec<(String, String)> = cloud
        .resources
        .blue_instances
        .iter()
        .map(|i| (i.clone(), "healthy".to_string()))
        .collect();
    blue_healthy.sort();
    checks.check(
        "green is blocked: the target group routes to blue's instances only, all healthy",
        main_targets.as_ref().ok() == Some(&blue_healthy),
        &main_targets,
    );
    checks.note(format!(
        "failed check (ModifyListener to the standby) to blue serving all traffic: {} s (the listener change's delay: {} s); watched requests failed while detecting {failed_detecting}, while the listener change propagated {failed_switching}, after the switch took effect {failed_after_switch}; the load's failures are green's 500s before the switch took effect",
        seconds_to_blue.map_or("unmeasured".to_string(), |s| format!("{s:.1}")),
        match (switched_at_ms, switch_in_force_ms) {
            (Some(a), Some(b)) => format!("{:.1}", (b - a) as f64 / 1000.0),
            _ => "unmeasured".to_string(),
        }
    ));
    checks.check(
        "no request failed after the rollback",
        after.sent >= 20 && after.failed == 0,
        &after,
    );
    checks.check(
        "settings before are the seed's, settings after equal them",
        report.settings_before == super::seed_settings()
            && report.settings_after == report.settings_before,
        (&report.settings_before, &report.settings_after),
    );
    checks.check(
        "one version (blue) serves the whole fleet",
        report.served_versions.len() == 1
            && report.served_versions.get(INITIAL_VERSION) == Some(&10),
        &report.served_versions,
    );
    checks.finish(
        "bake: degrading revision, rolled back to blue",
        &[],
        &report,
    );
    cloud.shutdown().await;
}

/// The alarm the user names for the group in the alarm scenario.
const USER_ALARM: &str = "greenlight-demo-checkout-errors";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_bake_user_alarm_firing_during_the_bake_rolls_back_to_blue() {
    let cloud = start_baking_with("fault-bake-alarm", 150, &[USER_ALARM]).await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&cloud.sdk);
    // The user's alarm exists before the deployment (a named alarm that
    // does not exist fails the bake): INSUFFICIENT_DATA, then OK.
    cloudwatch
        .put_metric_alarm()
        .alarm_name(USER_ALARM)
        .namespace("Shop")
        .metric_name("CheckoutErrors")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(
            aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold,
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutMetricAlarm: {e:?}"));
    cloudwatch
        .set_alarm_state()
        .alarm_name(USER_ALARM)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
        .state_reason("quiet before the deployment")
        .send()
        .await
        .unwrap_or_else(|e| panic!("SetAlarmState OK: {e:?}"));
    let label = scenarios::new_label("1003");
    // Once green serves through the listener (the reroute), the alarm fires.
    let fire = {
        let cloudwatch = cloudwatch.clone();
        let listener = cloud.listener;
        let label = label.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(r) =
                    local_cloud::loadgen::get(listener, "/version", Duration::from_secs(2)).await
                {
                    if r.status == 200 && r.text().trim() == label {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let fired_at = std::time::SystemTime::now();
            let set = cloudwatch
                .set_alarm_state()
                .alarm_name(USER_ALARM)
                .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
                .state_reason("Threshold Crossed: 1 datapoint [7.0] was >= the threshold (1.0)")
                .send()
                .await;
            (fired_at, set.map(|_| ()).map_err(|e| format!("{e:?}")))
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
    let fired = if fire.is_finished() {
        fire.await.ok()
    } else {
        fire.abort();
        None
    };
    let stopped_at_ms = report
        .followed
        .deployment
        .as_ref()
        .and_then(|d| d.completed_at_ms);
    let detected_after = match (&fired, stopped_at_ms) {
        (Some((at, _)), Some(stopped)) => at
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| (stopped - d.as_millis() as i64) as f64 / 1000.0),
        _ => None,
    };
    println!(
        "bake (alarm): execution {} {:?} {:?}; alarm set {:?}; StopDeployment {:?} s after the alarm; load {:?}",
        report.followed.status,
        report.followed.error,
        report.followed.cause,
        fired,
        detected_after,
        report.load
    );

    let mut checks = Checks::new();
    checks.check(
        "the alarm was set to ALARM once green served",
        fired.as_ref().is_some_and(|(_, set)| set.is_ok()),
        &fired,
    );
    checks.check(
        "the execution failed with BakeFailed naming the alarm",
        report.followed.status == "FAILED"
            && report.followed.error.as_deref() == Some("BakeFailed")
            && report
                .followed
                .cause
                .as_deref()
                .is_some_and(|c| c.contains(USER_ALARM)),
        (
            &report.followed.status,
            &report.followed.error,
            &report.followed.cause,
        ),
    );
    checks.check(
        "the notification names the alarm",
        report.notifications.len() == 1 && report.notifications[0].message.contains(USER_ALARM),
        &report.notifications,
    );
    checks.check(
        "the deployment was stopped with a rollback",
        report.followed.deployment.as_ref().is_some_and(|d| {
            d.status == greenlight_core::DeploymentStatus::Stopped
                && d.rollback_deployment_id.is_some()
        }),
        &report.followed.deployment,
    );
    checks.note(format!(
        "alarm set to StopDeployment: {}",
        detected_after.map_or("unmeasured".to_string(), |s| format!("{s:.1} s"))
    ));
    // Green is a good revision: the rollback (blue re-registered and healthy
    // before green is blocked) fails no request at all.
    blue_kept_checks(&mut checks, &report, &cloud);
    checks.finish(
        "bake: user alarm fires during the bake, rolled back to blue",
        &[],
        &report,
    );
    cloud.shutdown().await;
}

/// The `greenlight:standby` record tags on the deployment's target group.
async fn standby_record_keys(cloud: &LocalCloud) -> Result<Vec<String>, String> {
    aws_sdk_elasticloadbalancingv2::Client::new(&cloud.sdk)
        .describe_tags()
        .resource_arns(&cloud.resources.target_group_arn)
        .send()
        .await
        .map(|o| {
            o.tag_descriptions()
                .iter()
                .flat_map(|d| d.tags())
                .filter_map(|t| t.key())
                .filter(|k| k.starts_with("greenlight:standby"))
                .map(str::to_string)
                .collect()
        })
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_bake_execution_aborted_after_the_standby_was_armed_puts_it_back() {
    // A long bake with the standby armed (blue registered in it, the
    // listener weighted {target group 1, standby 0}); an operator stops the
    // execution (StopExecution) mid-bake, so no HandleFailure runs and no
    // `$.bake.standby` reaches the failure handler. Its execution-end path
    // must put the listener back from the record on the target group:
    // listener exactly as before, standby empty, record gone.
    let cloud = start_baking("fault-bake-aborted-armed", 600).await;
    let before = listener_actions(&cloud).await;
    let label = scenarios::new_label("1004");
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let (report, recorded) = scenarios::upload_and_intervene(
        &cloud,
        RevisionKind::Good,
        &label,
        scenarios::SETTLE,
        |arn| {
            let cloud = &cloud;
            let sfn = sfn.clone();
            async move {
                let standby = cloud.resources.standby_target_group_arn.clone();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
                loop {
                    let armed = listener_changes(cloud)
                        .iter()
                        .any(|c| weight_of(c, &standby) == Some(0));
                    if armed {
                        break;
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(scenarios::ScenarioError::Fault(
                            "the bake never armed the standby".into(),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let recorded = standby_record_keys(cloud).await;
                sfn.stop_execution()
                    .execution_arn(&arn)
                    .error("OperatorStopped")
                    .cause("stopped by an operator during the bake")
                    .send()
                    .await
                    .map_err(|e| {
                        scenarios::ScenarioError::Fault(format!(
                            "StopExecution: {}",
                            aws_sdk_sfn::error::DisplayErrorContext(&e)
                        ))
                    })?;
                Ok(recorded)
            }
        },
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));

    let mut checks = Checks::new();
    checks.check(
        "the execution ended ABORTED",
        report.followed.status == "ABORTED",
        (&report.followed.status, &report.followed.error),
    );
    checks.check(
        "the standby's record was on the target group while armed",
        recorded
            .as_ref()
            .is_ok_and(|keys| keys.iter().any(|k| k == "greenlight:standby") && keys.len() >= 2),
        &recorded,
    );
    checks.check(
        "exactly one notification, naming the listener put back",
        report.notifications.len() == 1 && report.notifications[0].message.contains("Listener ("),
        &report.notifications,
    );
    standby_put_back_checks(&mut checks, &cloud, &before).await;
    let left = standby_record_keys(&cloud).await;
    checks.check(
        "the standby's record is removed",
        left.as_ref().is_ok_and(|k| k.is_empty()),
        &left,
    );
    checks.finish(
        "bake: execution aborted after the standby was armed",
        &[],
        &report,
    );
    cloud.shutdown().await;
}
