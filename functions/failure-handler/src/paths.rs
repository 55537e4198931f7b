//! The three entry points' flows: pipeline failure path, CodeDeploy event,
//! execution status-change event. They only orchestrate: decisions come from
//! `greenlight_core::runbook`, AWS calls from `greenlight_aws`.

use super::*;

/// Looks for the deployment a dead `Create` task made (its description names
/// the execution): ListDeployments for the group since the upload, then
/// GetDeployment for each. The search is recorded.
pub(crate) async fn find_orphan(
    deps: &Deps,
    input: &PipelineInput,
    execution_name: &str,
    actions: &mut Vec<ActionRecord>,
) -> Option<String> {
    let target = format!("{}/{}", input.application, input.deployment_group);
    match list_group_deployments(
        &deps.codedeploy,
        &input.application,
        &input.deployment_group,
        orphan_search_since(input.uploaded_at_ms),
    )
    .await
    {
        Ok(candidates) => match orphan_deployment(execution_name, &candidates) {
            Some(id) => {
                actions.push(ActionRecord::new(
                    Step::FindDeployment,
                    &target,
                    Outcome::Done,
                    format!(
                        "found deployment {id}, created by execution {execution_name} but never recorded in its state"
                    ),
                ));
                Some(id)
            }
            None => {
                actions.push(ActionRecord::new(
                    Step::FindDeployment,
                    &target,
                    Outcome::AlreadyDone,
                    format!(
                        "no deployment of the group since the upload names execution {execution_name} ({} looked at)",
                        candidates.len()
                    ),
                ));
                None
            }
        },
        Err(e) => {
            actions.push(ActionRecord::new(
                Step::FindDeployment,
                &target,
                Outcome::Failed,
                format!("could not list the group's deployments, so a deployment this execution may have created was not looked for: {e}"),
            ));
            None
        }
    }
}

/// Reads the deployment (recorded in `actions` when it fails).
pub(crate) async fn read_view(
    deps: &Deps,
    deployment_id: Option<&str>,
    actions: &mut Vec<ActionRecord>,
) -> Option<DeploymentView> {
    let id = deployment_id?;
    match read_deployment(&deps.codedeploy, id).await {
        Ok(view) => Some(view),
        Err(e) => {
            tracing::warn!(deployment_id = id, error = %e, "could not read the deployment");
            actions.push(ActionRecord::new(
                Step::ReadDeployment,
                id,
                Outcome::Failed,
                e.to_string(),
            ));
            None
        }
    }
}

pub(crate) async fn handle_pipeline(
    task: TaskRequest<Action>,
    claimed_by: &str,
    now: EpochMillis,
    deadline_ms: Option<EpochMillis>,
    deps: &Deps,
) -> Result<Response, Error> {
    let state = &task.pipeline;
    let execution_name = task.execution_name.trim();
    if execution_name.is_empty() {
        return Err(Error::InvalidInput(
            "executionName is empty; the state machine passes $$.Execution.Name".to_string(),
        ));
    }
    let application = state.input.application.as_str();
    let group = state.input.deployment_group.as_str();
    if application.is_empty() || group.is_empty() {
        return Err(Error::InvalidInput(
            "pipeline.application and pipeline.deploymentGroup must be set".to_string(),
        ));
    }
    let classification = classify_pipeline(state);
    let job_id = codepipeline_job_id(state);
    let source = ReportSource::Pipeline {
        execution_name: execution_name.to_string(),
        codepipeline_job_id: job_id.clone(),
    };
    let mut actions = Vec::new();
    let mut deployment_id = pipeline_deployment_id(state);
    if deployment_id.is_none() && should_search_orphan(state) {
        deployment_id = find_orphan(deps, &state.input, execution_name, &mut actions).await;
    }
    tracing::info!(
        execution = execution_name,
        error = classification.kind.as_str(),
        deployment_id = deployment_id.as_deref().unwrap_or(""),
        "handling pipeline failure"
    );

    let key = marker_key(
        &deps.config.report_prefix,
        deployment_id.as_deref(),
        execution_name,
    );
    // Step Functions runs one attempt of HandleFailure at a time and retries
    // only after an attempt failed: a claim this execution's failure path
    // left is from an attempt that crashed or timed out mid-runbook.
    let claimant = Claimant {
        by: claimed_by,
        execution: Some(execution_name),
        ended_failure_path: Some(execution_name),
    };
    match claim(deps, &key, &claimant, now).await {
        Claim::Claimed(record) | Claim::Unavailable(record) => actions.push(record),
        Claim::Skip {
            report: Some(report),
            ..
        } => return Ok(Response::Duplicate(*report)),
        Claim::Skip {
            reason,
            report: None,
        } => {
            return Ok(Response::Duplicate(in_progress_report(
                source,
                state,
                classification,
                &reason,
                now,
            )))
        }
    }

    let view = read_view(deps, deployment_id.as_deref(), &mut actions).await;
    let recorded_blue = state
        .deployment
        .as_ref()
        .map(|d| d.blue_auto_scaling_groups.clone())
        .unwrap_or_default();
    let plan = plan_runbook(
        classification.kind,
        group,
        deployment_id.as_deref(),
        view.as_ref(),
        &recorded_blue,
    );
    let target = Target {
        application,
        group,
        deployment_id: deployment_id.as_deref(),
        recorded_blue: &recorded_blue,
    };
    let mut result = run_runbook(deps, &target, view, &plan, &mut actions).await;
    if classification.kind == FailureKind::BakeFailed {
        // The bake re-applied the fast profile before it stopped the
        // deployment: restore only once the rollback has re-registered blue.
        if let Some(id) = deployment_id.as_deref() {
            crate::steps::await_bake_rollback(deps, id, &mut result).await;
        }
    }
    release_scaling(deps, execution_name, &mut actions).await;
    let scope = crate::steps::StandbyScope {
        bake: state.bake.as_ref(),
        application,
        group,
        deployment_id: deployment_id.as_deref(),
        deadline_ms,
        // The groups this execution tuned: a bake (the only writer of a
        // standby record) runs only after Tune recorded them.
        target_groups: Some(
            state
                .tuning
                .as_ref()
                .map(|t| {
                    t.snapshots
                        .iter()
                        .map(|s| s.target_group_arn.clone())
                        .collect()
                })
                .unwrap_or_default(),
        ),
    };
    let standby_serving =
        crate::steps::restore_standby(deps, &scope, Some(&mut result), &mut actions).await;
    let rollback = result.rollback_outcome(&recorded_blue, standby_serving.as_deref());
    let latest = result.latest;
    let restore_source = if classification.kind == FailureKind::LostSight {
        lost_sight_restore_source(state, latest.as_ref())
    } else {
        pipeline_restore_source(state)
    };
    restore_load_balancer(deps, application, group, &restore_source, &mut actions).await;

    let report = compose_report(ReportInput {
        source,
        application: application.to_string(),
        deployment_group: group.to_string(),
        deployment_id: deployment_id.clone(),
        revision: Some(state.input.revision.clone()),
        classification,
        diagnosis: latest.as_ref().map(diagnose),
        validation_evidence: failing_evidence(state),
        runbook: plan,
        rollback,
        restore_source,
        actions,
        now,
    });
    let report = finish(deps, &key, now, report, job_id.as_deref()).await;
    Ok(Response::Handled(report))
}

pub(crate) async fn handle_event(
    event: CodeDeployEvent,
    claimed_by: &str,
    now: EpochMillis,
    deadline_ms: Option<EpochMillis>,
    deps: &Deps,
) -> Result<Response, Error> {
    let detail = &event.detail;
    let deployment_id = detail
        .deployment_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string);
    if let EventDisposition::Ignore { reason } =
        event_disposition(event.detail_type.as_deref(), &detail.state)
    {
        tracing::info!(reason = reason.as_str(), "event ignored");
        return Ok(Response::Ignored {
            reason,
            deployment_id,
        });
    }
    let Some(deployment_id) = deployment_id else {
        return Err(Error::InvalidInput(
            "the CodeDeploy state-change event has no detail.deploymentId".to_string(),
        ));
    };
    let view = read_event_deployment(deps, &deployment_id, "reading the deployment").await?;
    // A rollback CodeDeploy created is part of the incident of the
    // deployment it rolls back, never an incident of its own.
    let original = match rollback_trigger(&view) {
        Some(Some(original_id)) => Some(
            read_event_deployment(
                deps,
                &original_id,
                "reading the deployment this rollback rolls back",
            )
            .await?,
        ),
        _ => None,
    };
    let (deployment_id, view, state) = match rollback_event_fold(&view, original.as_ref()) {
        RollbackFold::Own => (deployment_id, view, detail.state.clone()),
        RollbackFold::Ignore { reason } => {
            tracing::info!(reason = reason.as_str(), "rollback event folded");
            return Ok(Response::Ignored {
                reason,
                deployment_id: Some(deployment_id),
            });
        }
        RollbackFold::Original {
            deployment_id: original_id,
        } => match original {
            Some(original) => {
                tracing::info!(
                    rollback = deployment_id.as_str(),
                    original = original_id.as_str(),
                    "rollback event folded into the original deployment's incident"
                );
                let state = if original.status == DeploymentStatus::Stopped {
                    "STOP"
                } else {
                    "FAILURE"
                };
                (original_id, original, state.to_string())
            }
            None => (deployment_id, view, detail.state.clone()),
        },
    };
    if let Ownership::Pipeline { execution_name } = ownership(&view) {
        let reason = format!(
            "owned by execution {execution_name}: deployment {deployment_id} was created by the greenlight pipeline, whose own failure path handles it"
        );
        tracing::info!(reason = reason.as_str(), "event skipped");
        return Ok(Response::Ignored {
            reason,
            deployment_id: Some(deployment_id),
        });
    }
    let application = non_empty_or(&view.application, detail.application.as_deref());
    let group = non_empty_or(&view.deployment_group, detail.deployment_group.as_deref());
    if application.is_empty() || group.is_empty() {
        return Err(Error::InvalidInput(format!(
            "neither deployment {deployment_id} nor the event names its application and deployment group"
        )));
    }
    let classification = classify_event(&state, &view);
    let source = ReportSource::Event {
        event_id: event.id.clone(),
        state: state.clone(),
    };
    tracing::info!(
        deployment_id = deployment_id.as_str(),
        state = state.as_str(),
        "handling a deployment that failed outside the pipeline"
    );

    let key = marker_key(
        &deps.config.report_prefix,
        Some(&deployment_id),
        &deployment_id,
    );
    let mut actions = Vec::new();
    let claimant = Claimant {
        by: claimed_by,
        execution: None,
        ended_failure_path: None,
    };
    match claim_or_answer(deps, &key, &claimant, now, Some(&deployment_id)).await {
        Ok(record) => actions.push(record),
        Err(answer) => return Ok(answer),
    }

    // No create-time record of the blue group on this path: point_at_blue
    // never guesses (see greenlight_core::runbook::point_at_blue).
    let plan = plan_runbook(
        classification.kind,
        &group,
        Some(&deployment_id),
        Some(&view),
        &[],
    );
    let target = Target {
        application: &application,
        group: &group,
        deployment_id: Some(&deployment_id),
        recorded_blue: &[],
    };
    let mut result = run_runbook(deps, &target, Some(view), &plan, &mut actions).await;
    let scope = crate::steps::StandbyScope {
        bake: None,
        application: &application,
        group: &group,
        deployment_id: Some(&deployment_id),
        deadline_ms,
        target_groups: None,
    };
    let standby_serving =
        crate::steps::restore_standby(deps, &scope, Some(&mut result), &mut actions).await;
    let rollback = result.rollback_outcome(&[], standby_serving.as_deref());
    let latest = result.latest;
    let restore_source = event_restore_source();
    restore_load_balancer(deps, &application, &group, &restore_source, &mut actions).await;

    let report = compose_report(ReportInput {
        source,
        application: application.clone(),
        deployment_group: group.clone(),
        deployment_id: Some(deployment_id.clone()),
        revision: None,
        classification,
        diagnosis: latest.as_ref().map(diagnose),
        validation_evidence: Vec::new(),
        runbook: plan,
        rollback,
        restore_source,
        actions,
        now,
    });
    let report = finish(deps, &key, now, report, None).await;
    Ok(Response::Handled(report))
}

/// An execution that ended ABORTED / TIMED_OUT / FAILED without running its
/// failure path: read its input (DescribeExecution), find the deployment it
/// created by its description, apply the runbook, restore, notify, fail the
/// CodePipeline job. Deduped with the pipeline path through the same marker.
pub(crate) async fn handle_execution_end(
    event: ExecutionEvent,
    claimed_by: &str,
    now: EpochMillis,
    deadline_ms: Option<EpochMillis>,
    deps: &Deps,
) -> Result<Response, Error> {
    let d = &event.detail;
    let end = ExecutionEnd {
        execution_arn: d.execution_arn.clone(),
        state_machine_arn: d.state_machine_arn.clone(),
        name: d.name.clone(),
        status: d.status.clone(),
        error: d.error.clone(),
        cause: d.cause.clone(),
    };
    if let EventDisposition::Ignore { reason } = execution_end_disposition(
        Some(&event.detail_type),
        &end,
        deps.config.state_machine_arn.as_deref(),
    ) {
        tracing::info!(reason = reason.as_str(), "execution event ignored");
        return Ok(Response::Ignored {
            reason,
            deployment_id: None,
        });
    }
    let execution_name = if end.name.trim().is_empty() {
        end.execution_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string()
    } else {
        end.name.trim().to_string()
    };
    if execution_name.is_empty() {
        return Err(Error::InvalidInput(
            "the execution status-change event names no execution (detail.name and detail.executionArn are empty)".to_string(),
        ));
    }
    let described = describe_execution(&deps.sfn, &end.execution_arn).await?;
    let Some(input) = described
        .input
        .as_deref()
        .and_then(|text| serde_json::from_str::<PipelineInput>(text).ok())
    else {
        let reason = format!(
            "execution {execution_name}'s input is not a greenlight PipelineInput, so it is not a greenlight pipeline execution"
        );
        tracing::info!(reason = reason.as_str(), "execution event ignored");
        return Ok(Response::Ignored {
            reason,
            deployment_id: None,
        });
    };
    let application = input.application.clone();
    let group = input.deployment_group.clone();
    let classification = classify_execution_end(&end, &application, &group);
    let job_id = match &input.source {
        Source::CodePipeline { job_id } => Some(job_id.clone()),
        Source::S3 { .. } => None,
    };
    let source = ReportSource::Execution {
        execution_name: execution_name.clone(),
        status: end.status.clone(),
    };
    let mut actions = Vec::new();
    let deployment_id = find_orphan(deps, &input, &execution_name, &mut actions).await;
    tracing::info!(
        execution = execution_name.as_str(),
        status = end.status.as_str(),
        deployment_id = deployment_id.as_deref().unwrap_or(""),
        "handling an execution that ended outside its failure path"
    );
    let key = marker_key(
        &deps.config.report_prefix,
        deployment_id.as_deref(),
        &execution_name,
    );
    // Failed with FailureHandlerFailed: the handler's last attempt ended
    // mid-runbook, so its fresh claim is taken over and the runbook finished.
    let claimant = Claimant {
        by: claimed_by,
        execution: None,
        ended_failure_path: failure_path_ended(&end),
    };
    match claim_or_answer(deps, &key, &claimant, now, deployment_id.as_deref()).await {
        Ok(record) => actions.push(record),
        Err(answer) => return Ok(answer),
    }
    let view = read_view(deps, deployment_id.as_deref(), &mut actions).await;
    let plan = plan_runbook(
        classification.kind,
        &group,
        deployment_id.as_deref(),
        view.as_ref(),
        &[],
    );
    let target = Target {
        application: &application,
        group: &group,
        deployment_id: deployment_id.as_deref(),
        recorded_blue: &[],
    };
    let mut result = run_runbook(deps, &target, view, &plan, &mut actions).await;
    release_scaling(deps, &execution_name, &mut actions).await;
    let scope = crate::steps::StandbyScope {
        bake: None,
        application: &application,
        group: &group,
        deployment_id: deployment_id.as_deref(),
        deadline_ms,
        target_groups: None,
    };
    let standby_serving =
        crate::steps::restore_standby(deps, &scope, Some(&mut result), &mut actions).await;
    let rollback = result.rollback_outcome(&[], standby_serving.as_deref());
    let latest = result.latest;
    let restore_source = execution_end_restore_source(classification.kind, latest.as_ref());
    restore_load_balancer(deps, &application, &group, &restore_source, &mut actions).await;
    let report = compose_report(ReportInput {
        source,
        application: application.clone(),
        deployment_group: group.clone(),
        deployment_id: deployment_id.clone(),
        revision: Some(input.revision.clone()),
        classification,
        diagnosis: latest.as_ref().map(diagnose),
        validation_evidence: Vec::new(),
        runbook: plan,
        rollback,
        restore_source,
        actions,
        now,
    });
    let report = finish(deps, &key, now, report, job_id.as_deref()).await;
    Ok(Response::Handled(report))
}

/// Reads a deployment an event names: not found is bad input, anything else
/// an AWS error (Lambda's retry of the event runs it again).
async fn read_event_deployment(
    deps: &Deps,
    deployment_id: &str,
    operation: &'static str,
) -> Result<DeploymentView, Error> {
    read_deployment(&deps.codedeploy, deployment_id)
        .await
        .map_err(|e| {
            if e.is_not_found() {
                Error::InvalidInput(e.to_string())
            } else {
                Error::AwsError {
                    operation,
                    detail: e.to_string(),
                }
            }
        })
}

pub(crate) fn non_empty_or(primary: &str, fallback: Option<&str>) -> String {
    if primary.trim().is_empty() {
        fallback.unwrap_or_default().trim().to_string()
    } else {
        primary.to_string()
    }
}
