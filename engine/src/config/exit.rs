//! `[exit]`: what a live trading run does with its open orders when it stops cleanly
//! (SIGTERM, Ctrl-C, the end of `--duration`); see [`pinion_gateway::exit`].

use pinion_gateway::ExitPolicy;
use serde::Deserialize;

/// `[exit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitConfig {
    /// `cancel_all` (the default), `keep_protective` or `leave`.
    #[serde(default = "default_policy")]
    pub policy: String,
}

fn default_policy() -> String {
    ExitPolicy::default().as_str().to_owned()
}

impl Default for ExitConfig {
    fn default() -> Self {
        Self {
            policy: default_policy(),
        }
    }
}

/// The policy `cfg` names, or the problem (key, message).
pub(super) fn exit_policy(cfg: &ExitConfig, problems: &mut Vec<(String, String)>) -> ExitPolicy {
    ExitPolicy::from_name(&cfg.policy).unwrap_or_else(|| {
        let names: Vec<String> = ExitPolicy::ALL
            .iter()
            .map(|p| format!("\"{}\"", p.as_str()))
            .collect();
        problems.push((
            "exit.policy".to_owned(),
            format!("{:?}: must be one of {}", cfg.policy, names.join(", ")),
        ));
        ExitPolicy::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_is_read_by_name_and_a_wrong_one_is_named() {
        let mut p = Vec::new();
        for name in ["cancel_all", "keep_protective", "leave"] {
            let cfg = ExitConfig {
                policy: name.to_owned(),
            };
            assert_eq!(exit_policy(&cfg, &mut p).as_str(), name);
        }
        assert!(p.is_empty());
        let bad = ExitConfig {
            policy: "cancel".to_owned(),
        };
        exit_policy(&bad, &mut p);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "exit.policy");
        assert!(
            p[0].1.contains("\"cancel\"") && p[0].1.contains("keep_protective"),
            "{p:?}"
        );
    }
}
