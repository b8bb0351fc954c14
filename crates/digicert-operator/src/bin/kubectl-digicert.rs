//! `kubectl digicert`: the kubectl plugin of digicert-operator. Linked as
//! `kubectl_complete-digicert`, it completes `kubectl digicert …` for kubectl.

use digicert_operator::cli::{complete, plugin};

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let program = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_stem())
        .and_then(|n| n.to_str());
    if program == Some(complete::PROGRAM) {
        return complete::main(args);
    }
    plugin::main(args, "kubectl digicert")
}
