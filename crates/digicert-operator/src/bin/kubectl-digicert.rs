//! `kubectl digicert`: the kubectl plugin of digicert-operator.

fn main() -> std::process::ExitCode {
    digicert_operator::cli::plugin::main(std::env::args_os(), "kubectl digicert")
}
