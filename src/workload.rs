//! From a workload's config to what an adapter needs ([`WorkloadSpec`]): the placement
//! rules, dependencies, objectives and hooks stay with the controller.

use lifeboat_provider::{Run, WorkloadSpec};

use crate::config::WorkloadConfig;

/// The adapter's view of a workload. A `command` whose program is `lifeboat` is passed
/// through unchanged: the local adapter resolves it to this very binary.
pub fn spec(config: &WorkloadConfig) -> WorkloadSpec {
    let run = match &config.image {
        Some(image) => Run::Image {
            image: image.clone(),
            command: config.command.clone(),
        },
        None => Run::Command {
            command: config.command.clone(),
        },
    };
    WorkloadSpec {
        name: config.name.clone(),
        run,
        env: config.env.clone(),
        port: config.port,
        resources: config.resources,
        replicas: config.replicas,
        health: config.health.clone(),
        extra: config.extra.clone(),
    }
}

/// The name clients use for a workload: its `public_name`, or its own name.
pub fn public_name(config: &WorkloadConfig) -> &str {
    config.public_name.as_deref().unwrap_or(&config.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> WorkloadConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn a_command_workload_keeps_its_argv_and_settings() {
        let w = config(
            "name: api\ncommand: [lifeboat, demo-server]\nport: 8080\nreplicas: 2\n\
             env: {MODE: prod}\nplacement: [a]\nhealth: {type: tcp}\n",
        );
        let spec = spec(&w);
        assert_eq!(
            spec.run,
            Run::Command {
                command: vec!["lifeboat".into(), "demo-server".into()]
            }
        );
        assert_eq!((spec.port, spec.replicas), (Some(8080), 2));
        assert_eq!(spec.env["MODE"], "prod");
        assert_eq!(public_name(&w), "api");
    }

    #[test]
    fn an_image_workload_carries_its_command_override() {
        let w = config(
            "name: web\nimage: ghcr.io/acme/web:1\ncommand: [serve]\nplacement: [a]\n\
             public_name: www.example.com\n",
        );
        assert_eq!(
            spec(&w).run,
            Run::Image {
                image: "ghcr.io/acme/web:1".into(),
                command: vec!["serve".into()]
            }
        );
        assert_eq!(public_name(&w), "www.example.com");
    }
}
