//! Issue 10's bake with blue kept warm in the standby target group, when the
//! rollback FAILS: the bake fails (a revision that degrades under real
//! traffic), the listener is switched to `{main 0, standby 1}` (blue serves
//! through the standby), then CodeDeploy's rollback deployment fails
//! (`fail_rollback`: before it touches the load balancer, so blue is never
//! re-registered in the main target group and the degrading green stays
//! there, healthy). The failure handler must not put the listener back onto
//! that main target group: blue keeps serving through the standby, and the
//! report and the one notification say LISTENER NOT PUT BACK with the exact
//! `aws elbv2` commands that put it back by hand.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::bake::{
    listener_actions, listener_changes, serving_only_since, start_baking_with, watch_versions,
    weight_of,
};
use super::{spec, Checks};
use greenlight_core::bake::standby::{
    restore_commands, Route, RouteKind, StandbyState, StandbyTarget, Weights,
};
use greenlight_e2e::print_progress;
use local_cloud::cloud::{LocalCloud, INITIAL_VERSION};
use local_cloud::faults::{FaultKind, FaultSpec};
use local_cloud::revisions::RevisionKind;
use local_cloud::scenarios;

fn at_ms(t: &SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// (instance id, state) of every target registered in `target_group_arn`.
async fn target_states(
    cloud: &LocalCloud,
    target_group_arn: &str,
) -> Result<Vec<(String, String)>, String> {
    aws_sdk_elasticloadbalancingv2::Client::new(&cloud.sdk)
        .describe_target_health()
        .target_group_arn(target_group_arn)
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
                .collect();
            t.sort();
            t
        })
        .map_err(|e| format!("{e:?}"))
}

/// The port of the deployment's target group (blue's port in the standby).
async fn target_group_port(cloud: &LocalCloud) -> Option<u16> {
    aws_sdk_elasticloadbalancingv2::Client::new(&cloud.sdk)
        .describe_target_groups()
        .target_group_arns(&cloud.resources.target_group_arn)
        .send()
        .await
        .ok()?
        .target_groups()
        .first()?
        .port()
        .and_then(|p| u16::try_from(p).ok())
}

/// The failure handler's report object (`<prefix><deployment id>.json` in
/// the report bucket).
async fn failure_report(cloud: &LocalCloud, deployment_id: &str) -> Option<serde_json::Value> {
    let names = &cloud.resources.names;
    let object = cloud
        .s3()
        .get_object()
        .bucket(&names.report_bucket)
        .key(format!("{}{deployment_id}.json", names.report_prefix))
        .send()
        .await
        .ok()?;
    let bytes = object.body.collect().await.ok()?.into_bytes();
    serde_json::from_slice(&bytes).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_bake_failed_and_rollback_failed_blue_keeps_serving_through_the_standby() {
    let cloud = start_baking_with("fault-bake-rollback-failed", 150, &[]).await;
    let before = listener_actions(&cloud).await;
    let names = cloud.resources.names.clone();
    let main = cloud.resources.target_group_arn.clone();
    let standby = cloud.resources.standby_target_group_arn.clone();
    scenarios::inject(
        &cloud,
        FaultSpec {
            resource: Some(format!("{}/{}", names.application, names.deployment_group)),
            ..spec(FaultKind::FailRollback)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("fail_rollback: {e}"));
    let label = scenarios::new_label("1004");
    let (stop_watch, watch) = watch_versions(cloud.listener);
    let mut report = scenarios::upload_and_follow_settled(
        &cloud,
        RevisionKind::Degrading,
        &label,
        scenarios::SETTLE,
        &mut print_progress,
    )
    .await
    .unwrap_or_else(|e| panic!("scenario did not run: {e}"));
    // Late notifications (an event path reporting the incident again) count too.
    tokio::time::sleep(Duration::from_secs(5)).await;
    report.notifications.extend(
        scenarios::notifications(&cloud)
            .await
            .unwrap_or_else(|e| panic!("notifications: {e}")),
    );
    let _ = stop_watch.send(());
    let seen = watch.await.unwrap_or_default();
    let faults = cloud.faults.list();
    let deployments = scenarios::group_deployments(&cloud)
        .await
        .unwrap_or_else(|e| panic!("ListDeployments: {e}"));

    let changes = listener_changes(&cloud);
    let switch = changes
        .iter()
        .find(|c| weight_of(c, &standby) == Some(1))
        .cloned();
    let switched_at_ms = switch.as_ref().map(|c| at_ms(&c.read_at));
    let switch_in_force_ms = switch.as_ref().map(|c| at_ms(&c.in_force_at));
    let failed_in = |from: Option<i64>, to: Option<i64>| {
        seen.iter()
            .filter(|(t, v)| {
                let t = at_ms(t);
                v.is_none() && from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e)
            })
            .count()
    };
    let failed_detecting = failed_in(None, switched_at_ms);
    let failed_after_switch = switch_in_force_ms.map_or(seen.len(), |s| failed_in(Some(s), None));
    let answered_after_switch = switch_in_force_ms.map_or(0, |s| {
        seen.iter()
            .filter(|(t, v)| at_ms(t) >= s && v.is_some())
            .count()
    });
    // Answers after the switch took effect that were not blue's (failed or green).
    let not_blue_after_switch = switch_in_force_ms.map_or(seen.len(), |s| {
        seen.iter()
            .filter(|(t, v)| at_ms(t) >= s && v.as_deref() != Some(INITIAL_VERSION))
            .count()
    });
    let blue_since = serving_only_since(&seen, INITIAL_VERSION);
    let green_served = seen
        .iter()
        .any(|(_, v)| v.as_deref() == Some(label.as_str()));
    // Blue still serves through the standby after everything ended: fresh load.
    let after = local_cloud::loadgen::start_load(
        &format!("{}/version", cloud.listener_url()),
        20,
        Duration::from_secs(60),
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = after.stop().await;
    let live = listener_actions(&cloud).await;
    let main_targets = target_states(&cloud, &main).await;
    let standby_targets = target_states(&cloud, &standby).await;
    let deployment = report.followed.deployment.clone();
    let deployment_id = deployment
        .as_ref()
        .map(|d| d.deployment_id.clone())
        .unwrap_or_default();
    let rollback_id = deployment
        .as_ref()
        .and_then(|d| d.rollback_deployment_id.clone())
        .unwrap_or_default();
    let stored = failure_report(&cloud, &deployment_id).await;
    // The commands that put the listener back by hand, from what the test
    // itself read before the deployment: the listener's default actions and
    // blue's instances on the target group's port.
    let port = target_group_port(&cloud).await;
    let mut blue = cloud.resources.blue_instances.clone();
    blue.sort();
    let expected_commands = match (&before, port) {
        (Ok(actions), Some(port)) => restore_commands(&StandbyState {
            deployment_id: deployment_id.clone(),
            main_target_group_arn: main.clone(),
            standby_target_group_arn: standby.clone(),
            blue_targets: blue
                .iter()
                .map(|i| StandbyTarget {
                    instance_id: i.clone(),
                    port,
                })
                .collect(),
            routes: vec![Route {
                kind: RouteKind::Listener,
                arn: cloud.resources.listener_arn.clone(),
                actions: actions.clone(),
            }],
            weights: Weights::Switched,
            restored: false,
            settle_seconds: 0,
            switched_at_ms: None,
        }),
        _ => Vec::new(),
    };
    println!(
        "bake failed, rollback failed: execution {} {:?}; switch read {:?} ms, in force {:?} ms; watcher {} answers, failed while detecting {failed_detecting}, after the switch {failed_after_switch} ({answered_after_switch} answered); listener changes {changes:?}; main {main_targets:?}; standby {standby_targets:?}; load {:?}; after {after:?}; notifications {:?}",
        report.followed.status,
        report.followed.error,
        switched_at_ms,
        switch_in_force_ms,
        seen.len(),
        report.load,
        report.notifications,
    );

    let mut checks = Checks::new();
    checks.check(
        "the rollback failure fired once",
        faults.len() == 1 && faults[0].fired == 1,
        &faults,
    );
    checks.check(
        "the execution failed with BakeFailed and the metric evidence",
        report.followed.status == "FAILED"
            && report.followed.error.as_deref() == Some("BakeFailed")
            && report
                .followed
                .cause
                .as_deref()
                .is_some_and(|c| c.contains("target 5xx")),
        (
            &report.followed.status,
            &report.followed.error,
            &report.followed.cause,
        ),
    );
    checks.check(
        "the upload is accounted for: rejected, with the reason",
        report.upload.is_rejected()
            && matches!(&report.upload, scenarios::UploadFate::Rejected { reason, .. } if reason.contains("BakeFailed")),
        &report.upload,
    );
    checks.check(
        "green served real traffic before the bake failed",
        green_served,
        seen.len(),
    );
    checks.check(
        "the deployment was stopped with a rollback, and that rollback failed",
        deployment.as_ref().is_some_and(|d| {
            d.status == greenlight_core::DeploymentStatus::Stopped && !rollback_id.is_empty()
        }) && deployments.iter().any(|d| {
            d.id == rollback_id && d.creator == "codeDeployRollback" && d.status == "Failed"
        }),
        (&deployment, &deployments),
    );
    checks.check(
        "every deployment of the group has ended",
        deployments.iter().all(|d| d.ended),
        &deployments,
    );
    checks.check(
        "the failed bake switched the listener to blue in the standby",
        switch.is_some(),
        &changes,
    );
    checks.check(
        "no watched request failed once the switch took effect, and blue answered all of them",
        switch_in_force_ms.is_some()
            && failed_after_switch == 0
            && not_blue_after_switch == 0
            && answered_after_switch > 0
            && blue_since.is_some(),
        (
            failed_detecting,
            failed_after_switch,
            not_blue_after_switch,
            answered_after_switch,
            blue_since.as_ref().map(at_ms),
            switch_in_force_ms,
        ),
    );
    checks.check(
        "the listener was NOT put back: its last change is the switch {main 0, standby 1}",
        changes
            .last()
            .is_some_and(|c| weight_of(c, &main) == Some(0) && weight_of(c, &standby) == Some(1)),
        changes.last(),
    );
    checks.check(
        "the listener still forwards to the standby alone (main weight 0)",
        live.as_ref().is_ok_and(|actions| {
            actions.len() == 1
                && actions[0]
                    .forward_to
                    .iter()
                    .any(|g| g.target_group_arn == standby && g.weight == Some(1))
                && actions[0]
                    .forward_to
                    .iter()
                    .all(|g| g.target_group_arn != main || g.weight == Some(0))
        }),
        &live,
    );
    checks.check(
        "the main target group has no blue (the failed rollback never re-registered it) and green still healthy there",
        main_targets.as_ref().is_ok_and(|t| {
            !t.is_empty()
                && t.iter().all(|(id, _)| !blue.contains(id))
                && t.iter().any(|(_, s)| s == "healthy")
        }),
        &main_targets,
    );
    checks.check(
        "blue stays registered and healthy in the standby target group",
        standby_targets.as_ref().is_ok_and(|t| {
            *t == blue
                .iter()
                .map(|i| (i.clone(), "healthy".to_string()))
                .collect::<Vec<_>>()
        }),
        &standby_targets,
    );
    checks.check(
        "blue serves every request after the failure handler ended",
        after.sent >= 20 && after.failed == 0,
        &after,
    );
    checks.check(
        "one version (blue) serves the whole fleet",
        report.served_versions.len() == 1
            && report.served_versions.get(INITIAL_VERSION) == Some(&10),
        &report.served_versions,
    );
    checks.check(
        "settings before are the seed's, settings after equal them",
        report.settings_before == super::seed_settings()
            && report.settings_after == report.settings_before,
        (&report.settings_before, &report.settings_after),
    );
    // The report object is the failure handler's completed marker: the
    // report under `report`.
    let listener_record = stored.as_ref().and_then(|r| {
        r.pointer("/report/actions")
            .and_then(|a| a.as_array())?
            .iter()
            .find(|a| a["step"] == "restoreListener")
            .cloned()
    });
    let record_detail = listener_record
        .as_ref()
        .and_then(|a| a["detail"].as_str())
        .unwrap_or_default()
        .to_string();
    checks.check(
        "the report's RestoreListener step failed: LISTENER NOT PUT BACK with every exact command",
        !expected_commands.is_empty()
            && listener_record
                .as_ref()
                .is_some_and(|a| a["outcome"] == "failed")
            && record_detail.starts_with("LISTENER NOT PUT BACK: ")
            && expected_commands
                .iter()
                .all(|c| record_detail.contains(c.as_str())),
        (&listener_record, &expected_commands),
    );
    let failed: Vec<_> = report
        .notifications
        .iter()
        .filter(|n| n.outcome.as_deref() == Some("failed"))
        .collect();
    checks.check(
        "exactly one notification, failed, naming the deployment and the failed rollback",
        report.notifications.len() == 1
            && failed.len() == 1
            && failed[0].message.contains(&deployment_id)
            && failed[0]
                .subject
                .as_deref()
                .is_some_and(|s| s.contains("rollback FAILED")),
        report
            .notifications
            .iter()
            .map(|n| (n.subject.clone(), n.outcome.clone()))
            .collect::<Vec<_>>(),
    );
    checks.check(
        "the notification says LISTENER NOT PUT BACK with every exact command",
        failed.first().is_some_and(|n| {
            !expected_commands.is_empty()
                && n.message.contains("LISTENER NOT PUT BACK")
                && expected_commands
                    .iter()
                    .all(|c| n.message.contains(c.as_str()))
        }),
        (
            failed.first().map(|n| n.message.clone()),
            &expected_commands,
        ),
    );
    let standby_arn = &cloud.resources.standby_target_group_arn;
    checks.check(
        "the notification says blue serves alone through the standby (not that both versions may serve)",
        failed.first().is_some_and(|n| {
            n.message.contains(&format!(
                "the listener still forwards to the bake's standby target group {standby_arn}, where the blue fleet"
            )) && !n.message.contains("BOTH versions")
        }),
        failed.first().map(|n| n.message.clone()),
    );
    checks.note(format!(
        "rollback failed after a failed bake: watched requests failed while detecting {failed_detecting}, after the switch took effect {failed_after_switch} of {}; listener kept on the standby",
        failed_after_switch + answered_after_switch
    ));
    checks.finish(
        "bake: degrading revision, rollback FAILED, blue keeps serving through the standby",
        &faults,
        &report,
    );
    cloud.shutdown().await;
}
