//! kubectl's completion of `kubectl digicert …`: kubectl (1.26 and later) runs
//! `kubectl_complete-digicert ARGS… PARTIAL` and reads the candidates for the last
//! word, one a line, then cobra's directive (`:4`: no file names). Order names come
//! from the cluster, as kubectl's own completion does.

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;

use clap::{Arg, Command, CommandFactory};
use kube::ResourceExt;

use super::KubeFlags;
use super::plugin::Plugin;

/// The program kubectl runs to complete `kubectl digicert`.
pub const PROGRAM: &str = "kubectl_complete-digicert";

/// Cobra's ShellCompDirectiveNoFileComp.
const NO_FILES: &str = ":4";

/// The verbs whose words after them are DigicertOrder names.
const TAKE_ORDERS: [&str; 7] = [
    "status",
    "renew",
    "cancel",
    "inspect",
    "allow-revocation",
    "approve",
    "deny",
];

/// What the words typed so far say.
#[derive(Debug, Default)]
struct Typed {
    verb: Option<String>,
    /// Names given after the verb.
    positionals: usize,
    /// The flag whose value the last word is (its long name).
    value_of: Option<String>,
    kube: KubeFlags,
}

fn find_arg<'a>(args: &'a [&'a Arg], word: &str) -> Option<&'a Arg> {
    if let Some(long) = word.strip_prefix("--") {
        args.iter()
            .copied()
            .find(|a| a.get_long() == Some(long.split('=').next().unwrap_or(long)))
    } else {
        let short = word.strip_prefix('-')?.chars().last()?;
        args.iter().copied().find(|a| a.get_short() == Some(short))
    }
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// Reads the words before the one being completed.
fn read(command: &Command, words: &[String]) -> Typed {
    let mut typed = Typed::default();
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        let verb = typed
            .verb
            .as_deref()
            .and_then(|v| command.find_subcommand(v));
        let args: Vec<&Arg> = command
            .get_arguments()
            .chain(verb.into_iter().flat_map(|v| v.get_arguments()))
            .collect();
        if word.starts_with('-') && word.len() > 1 {
            if let Some(arg) = find_arg(&args, word) {
                let inline = word.starts_with("--") && word.contains('=');
                if takes_value(arg) && !inline {
                    let value = words.get(i + 1).cloned();
                    let id = arg.get_id().as_str().to_string();
                    match value {
                        Some(v) => set_kube(&mut typed.kube, &id, v),
                        None => typed.value_of = Some(id),
                    }
                    i += 1;
                } else if inline && let Some((_, v)) = word.split_once('=') {
                    set_kube(&mut typed.kube, arg.get_id().as_str(), v.to_string());
                }
            }
        } else if typed.verb.is_none() {
            typed.verb = Some(word.clone());
        } else {
            typed.positionals += 1;
        }
        i += 1;
    }
    typed
}

fn set_kube(kube: &mut KubeFlags, id: &str, value: String) {
    match id {
        "kubeconfig" => kube.kubeconfig = Some(value.into()),
        "context" => kube.context = Some(value),
        "cluster" => kube.cluster = Some(value),
        "user" => kube.user = Some(value),
        "namespace" => kube.namespace = Some(value),
        _ => {}
    }
}

/// The candidates that need no cluster: verbs, flags, values of fixed choice.
fn fixed_candidates(command: &Command, typed: &Typed, partial: &str) -> Vec<String> {
    let verb = typed
        .verb
        .as_deref()
        .and_then(|v| command.find_subcommand(v));
    if let Some(id) = &typed.value_of {
        let arg = command
            .get_arguments()
            .chain(verb.into_iter().flat_map(|v| v.get_arguments()))
            .find(|a| a.get_id().as_str() == id);
        return arg
            .map(|a| {
                a.get_possible_values()
                    .iter()
                    .map(|v| v.get_name().to_string())
                    .collect()
            })
            .unwrap_or_default();
    }
    if partial.starts_with('-') {
        return command
            .get_arguments()
            .chain(verb.into_iter().flat_map(|v| v.get_arguments()))
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
    }
    match verb {
        None if typed.verb.is_none() => command
            .get_subcommands()
            .filter(|c| c.get_name() != "help")
            .map(|c| c.get_name().to_string())
            .collect(),
        Some(v) => v
            .get_arguments()
            .filter(|a| a.is_positional())
            .flat_map(|a| a.get_possible_values())
            .map(|p| p.get_name().to_string())
            .collect(),
        None => Vec::new(),
    }
}

/// Whether the word being completed is a DigicertOrder's name.
fn wants_orders(typed: &Typed, partial: &str) -> bool {
    let Some(verb) = typed.verb.as_deref() else {
        return false;
    };
    typed.value_of.is_none()
        && !partial.starts_with('-')
        && TAKE_ORDERS.contains(&verb)
        && (verb == "renew" || typed.positionals == 0)
}

/// The DigicertOrders of the chosen namespace, or the namespaces, or the contexts.
async fn cluster_candidates(typed: &Typed) -> Vec<String> {
    use kube::api::{Api, ListParams};
    let context_names = || -> Vec<String> {
        let file = match &typed.kube.kubeconfig {
            Some(path) => kube::config::Kubeconfig::read_from(path),
            None => kube::config::Kubeconfig::read(),
        };
        file.map(|k| k.contexts.into_iter().map(|c| c.name).collect())
            .unwrap_or_default()
    };
    if typed.value_of.as_deref() == Some("context") {
        return context_names();
    }
    let Ok(kube) = typed.kube.connect().await else {
        return Vec::new();
    };
    if typed.value_of.as_deref() == Some("namespace") {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(kube.client);
        return api
            .list_metadata(&ListParams::default())
            .await
            .map(|l| l.items.iter().map(|n| n.name_any()).collect())
            .unwrap_or_default();
    }
    kube.orders()
        .list_metadata(&ListParams::default())
        .await
        .map(|l| l.items.iter().map(|o| o.name_any()).collect())
        .unwrap_or_default()
}

/// Prints the candidates for the last of `args` (the program first).
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let words: Vec<String> = args
        .into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (partial, done) = match words.split_last() {
        Some((last, done)) => (last.clone(), done.to_vec()),
        None => (String::new(), Vec::new()),
    };
    let command = Plugin::command();
    let typed = read(&command, &done);
    let mut candidates = fixed_candidates(&command, &typed, &partial);
    let from_cluster = wants_orders(&typed, &partial)
        || matches!(typed.value_of.as_deref(), Some("context" | "namespace"));
    if from_cluster
        && let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    {
        // A cluster that does not answer soon gets no candidates, not a hung shell.
        let found = runtime.block_on(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                cluster_candidates(&typed),
            )
            .await
            .unwrap_or_default()
        });
        candidates.extend(found);
    }
    let mut out = String::new();
    for c in candidates.iter().filter(|c| c.starts_with(&partial)) {
        out.push_str(c);
        out.push('\n');
    }
    out.push_str(NO_FILES);
    out.push('\n');
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush());
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_words_typed_say_what_comes_next() {
        let command = Plugin::command();
        let typed = read(
            &command,
            &words(&["--context", "prod", "renew", "-n", "team"]),
        );
        assert_eq!(typed.verb.as_deref(), Some("renew"));
        assert_eq!(typed.kube.context.as_deref(), Some("prod"));
        assert_eq!(typed.kube.namespace.as_deref(), Some("team"));
        assert_eq!(typed.value_of, None);
        assert!(wants_orders(&typed, "w"));

        let typed = read(&command, &words(&["status", "-o"]));
        assert_eq!(typed.value_of.as_deref(), Some("output"));
        let mut values = fixed_candidates(&command, &typed, "");
        values.sort();
        assert_eq!(values, ["json", "wide", "yaml"]);
        assert!(!wants_orders(&typed, ""));

        let typed = read(&command, &words(&[]));
        let verbs = fixed_candidates(&command, &typed, "");
        assert!(verbs.contains(&"approve".to_string()), "{verbs:?}");
        assert!(!verbs.contains(&"help".to_string()), "{verbs:?}");
        assert!(!wants_orders(&typed, ""));

        let typed = read(&command, &words(&["inspect", "web"]));
        assert_eq!(typed.positionals, 1);
        assert!(!wants_orders(&typed, ""), "inspect takes one name");
        let flags = fixed_candidates(&command, &typed, "--");
        assert!(flags.contains(&"--context".to_string()), "{flags:?}");

        let typed = read(&command, &words(&["--kubeconfig=/k", "completion"]));
        assert_eq!(
            typed.kube.kubeconfig.as_deref(),
            Some(std::path::Path::new("/k"))
        );
        let shells = fixed_candidates(&command, &typed, "");
        assert!(shells.contains(&"bash".to_string()), "{shells:?}");
    }
}
