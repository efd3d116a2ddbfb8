//! `deploy`: one instance per (workload, generation), started by `RunInstances`.
//!
//! Idempotency has two layers: a lookup by tags finds the instance of an earlier call
//! (even one whose `ClientToken` AWS has forgotten), and the `ClientToken` makes two
//! racing calls converge on one instance inside EC2 itself. Both are per owner: the
//! lookup sees only the request owner's instances, and the token
//! ([`DeployRequest::idempotency_key`]) holds the owner's discriminator, so a drill and
//! production deploying the same (workload, generation) get two instances. The workload
//! itself is started by cloud-init from the user data rendered here.

use aws_sdk_ec2::types::{
    IamInstanceProfileSpecification, InstanceType, ResourceType, Tag, TagSpecification,
};
use lifeboat_provider::{DeployRequest, DeploymentRef, ErrorClass, Op, ProviderError, Run, labels};

use crate::classify::from_sdk;
use crate::instance::endpoint_of;
use crate::{Ec2Provider, list, tags};

/// EC2 refuses user data over 16 KiB (before base64).
const MAX_USER_DATA: usize = 16 * 1024;

pub(crate) async fn deploy(
    provider: &Ec2Provider,
    req: &DeployRequest,
) -> Result<DeploymentRef, ProviderError> {
    let invalid =
        |message: String| ProviderError::new(ErrorClass::InvalidRequest, Op::Deploy, message);
    if req.workload.replicas > 1 {
        // One deployment is one instance; running several would need several handles.
        return Err(invalid(format!(
            "workload {} asks for {} replicas; an aws-ec2 provider runs one instance per deployment",
            req.workload.name, req.workload.replicas
        )));
    }
    let user_data = render_user_data(req).map_err(invalid)?;
    // The check is remembered on the instance in the contract's one-line form, so
    // `inspect` can run it later without the workload spec.
    let health_tag = req.workload.health.as_ref().map(ToString::to_string);
    if health_tag.as_ref().is_some_and(|h| h.len() > 256) {
        return Err(invalid(
            "the health check path is longer than an EC2 tag allows".into(),
        ));
    }

    if let Some(existing) = list::find_generation(provider, req, Op::Deploy).await? {
        tracing::debug!(provider = %provider.name, instance = %existing.handle, "deploy: instance of this generation exists");
        return Ok(existing);
    }

    let config = &provider.config;
    let mut instance_tags = vec![
        tag(labels::WORKLOAD, &req.workload.name),
        tag(labels::GENERATION, &req.generation.to_string()),
        tag(labels::MANAGED, "true"),
        tag(
            "Name",
            &format!("lifeboat-{}-g{}", req.workload.name, req.generation),
        ),
    ];
    instance_tags.extend(req.owner.labels().iter().map(|(k, v)| tag(k, v)));
    if let Some(port) = req.workload.port {
        instance_tags.push(tag(tags::PORT, &port.to_string()));
    }
    if let Some(health) = health_tag {
        instance_tags.push(tag(tags::HEALTH, &health));
    }
    let mut run = provider
        .client
        .run_instances()
        .image_id(&config.image_id)
        .instance_type(InstanceType::from(config.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .client_token(req.idempotency_key())
        .user_data(aws_smithy_types::base64::encode(user_data.as_bytes()))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(instance_tags))
                .build(),
        )
        .set_subnet_id(config.subnet_id.clone())
        .set_key_name(config.key_name.clone());
    for group in &config.security_group_ids {
        run = run.security_group_ids(group);
    }
    if let Some(profile) = &config.iam_instance_profile {
        let spec = if profile.starts_with("arn:") {
            IamInstanceProfileSpecification::builder().arn(profile)
        } else {
            IamInstanceProfileSpecification::builder().name(profile)
        };
        run = run.iam_instance_profile(spec.build());
    }
    let out = run.send().await.map_err(|e| from_sdk(Op::Deploy, e))?;
    let instance = out.instances().first().ok_or_else(|| {
        ProviderError::new(
            ErrorClass::Internal,
            Op::Deploy,
            "RunInstances returned no instance",
        )
    })?;
    let handle = instance.instance_id().unwrap_or_default().to_owned();
    if handle.is_empty() {
        return Err(ProviderError::new(
            ErrorClass::Internal,
            Op::Deploy,
            "RunInstances returned an instance without an id",
        ));
    }
    tracing::info!(provider = %provider.name, workload = %req.workload.name, generation = %req.generation, owner = %req.owner, instance = %handle, "deploy: instance launched");
    Ok(DeploymentRef {
        workload: req.workload.name.clone(),
        generation: req.generation,
        endpoint: endpoint_of(instance, config.address, req.workload.port),
        handle,
        owner: Some(req.owner.clone()),
    })
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// The cloud-init user data (a shell script, which cloud-init runs once at first boot)
/// that starts the workload: its image through docker or podman, or its command under
/// systemd, with its environment, `PORT` and `LIFEBOAT_GENERATION`.
///
/// Every value is single-quoted, so no name, argument or environment value can break
/// out of the script. Errors name what is wrong with the workload.
pub fn render_user_data(req: &DeployRequest) -> Result<String, String> {
    let workload = &req.workload;
    let unit = format!("lifeboat-{}-g{}", workload.name, req.generation);
    let mut env = workload.env.clone();
    if let Some(port) = workload.port {
        env.entry("PORT".into()).or_insert_with(|| port.to_string());
    }
    env.insert(labels::GENERATION_ENV.into(), req.generation.to_string());
    for key in env.keys() {
        if !is_env_name(key) {
            return Err(format!(
                "workload {}: {key:?} is not a valid environment variable name",
                workload.name
            ));
        }
    }
    let pairs = |flag: &str| -> String {
        env.iter()
            .map(|(k, v)| format!(" {flag}{}", sh_quote(&format!("{k}={v}"))))
            .collect()
    };
    let words =
        |argv: &[String]| -> String { argv.iter().map(|a| format!(" {}", sh_quote(a))).collect() };

    let mut script = format!(
        "#!/bin/sh\n# lifeboat: workload {}, generation {}. Run once by cloud-init at first boot.\nset -eu\n",
        sh_quote(&workload.name),
        req.generation
    );
    match &workload.run {
        Run::Image { image, command } => {
            if image.trim().is_empty() {
                return Err(format!("workload {}: the image is empty", workload.name));
            }
            let (entrypoint, args) = match command.split_first() {
                Some((program, args)) => (format!(" --entrypoint {}", sh_quote(program)), args),
                None => (String::new(), &[][..]),
            };
            script.push_str(
                "if command -v docker >/dev/null 2>&1; then runtime=docker\n\
                 elif command -v podman >/dev/null 2>&1; then runtime=podman\n\
                 else echo 'lifeboat: neither docker nor podman is installed' >&2; exit 1\nfi\n",
            );
            script.push_str(&format!(
                "exec \"$runtime\" run --detach --restart=always --network=host --name {}{}{} {}{}\n",
                sh_quote(&unit),
                pairs("--env "),
                entrypoint,
                sh_quote(image),
                words(args),
            ));
        }
        Run::Command { command } => {
            if command.is_empty() || command[0].is_empty() {
                return Err(format!("workload {}: the command is empty", workload.name));
            }
            // systemd restarts the workload when it dies and after a reboot; without
            // systemd it runs detached, once.
            script.push_str(&format!(
                "if command -v systemd-run >/dev/null 2>&1; then\n  exec systemd-run --unit={} --property=Restart=always{} --{}\nfi\n",
                sh_quote(&unit),
                pairs("--setenv="),
                words(command),
            ));
            script.push_str(&format!(
                "nohup env{} --{} >>{} 2>&1 &\n",
                pairs(""),
                words(command),
                sh_quote(&format!("/var/log/{unit}.log"))
            ));
        }
    }
    if script.len() > MAX_USER_DATA {
        return Err(format!(
            "workload {}: the rendered user data is {} bytes, EC2 allows {MAX_USER_DATA}",
            workload.name,
            script.len()
        ));
    }
    Ok(script)
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// POSIX single quoting: the result is one shell word whose value is exactly `s`.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
#[path = "deploy_tests.rs"]
mod tests;
