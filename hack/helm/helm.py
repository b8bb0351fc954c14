#!/usr/bin/env python3
"""A small helm-like CLI on top of helm-python-sdk (Helm v4 SDK, no helm binary).

Run it with the venv's interpreter (hack/helm/venv.sh prints its path):

    PY=$(hack/helm/venv.sh | tail -n 1)
    $PY hack/helm/helm.py lint CHART [--strict] [-f values.yaml] [--set k=v] [--kube-version v1.33.0]
    $PY hack/helm/helm.py template NAME CHART [-n NS] [-f values.yaml] [--set k=v] [--include-crds]
    $PY hack/helm/helm.py install NAME CHART -n NS [-f values.yaml] [--set k=v] [--kubeconfig PATH] [--wait] [--skip-crds]
    $PY hack/helm/helm.py upgrade NAME CHART -n NS [--install] [-f ...] [--set ...] [--kubeconfig PATH] [--wait] [--skip-crds]
    $PY hack/helm/helm.py uninstall NAME -n NS [--kubeconfig PATH] [--ignore-not-found] [--wait]
    $PY hack/helm/helm.py status NAME -n NS [--kubeconfig PATH]

Rendered manifests are validated by the API server itself:
    kubectl apply --dry-run=server --validate=strict -f FILE

Exit status: 0 on success, 1 on lint/release failures, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

import helm_python as helm

# ----------------------------------------------------------------- values


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge like Helm: maps merge recursively, anything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def collect_values(args: argparse.Namespace) -> dict[str, Any] | None:
    """-f files first (in order), then --set, --set-string, --set-json (in that order)."""
    values: dict[str, Any] = {}
    touched = False
    for path in args.values or []:
        with open(path, encoding="utf-8") as fh:
            values = _merge(values, helm.values_from_yaml(fh.read()) or {})
        touched = True
    for expr in args.set or []:
        values = _merge(values, helm.parse_set_string(expr))
        touched = True
    for expr in args.set_string or []:
        values = _merge(values, helm.parse_set_string_values(expr))
        touched = True
    for expr in args.set_json or []:
        values = _merge(values, helm.parse_set_json(expr))
        touched = True
    return values if touched else None


def add_values_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--values", action="append", metavar="FILE", help="values file (repeatable)")
    p.add_argument("--set", action="append", metavar="K=V", help="set values (repeatable)")
    p.add_argument("--set-string", action="append", metavar="K=V", help="set string values")
    p.add_argument("--set-json", action="append", metavar="K=JSON", help="set JSON values")


def add_cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--namespace", required=True)
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                   help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    p.add_argument("--kube-context")


def make_config(args: argparse.Namespace) -> helm.Config:
    return helm.Config(
        kubeconfig_path=args.kubeconfig or None,
        kube_context=args.kube_context,
        namespace=args.namespace,
    )


def print_release(release: dict[str, Any], output: str) -> None:
    if output == "json":
        print(json.dumps(release, indent=2, sort_keys=True))
        return
    print(f"NAME: {release.get('name')}")
    print(f"NAMESPACE: {release.get('namespace')}")
    print(f"STATUS: {release.get('status')}")
    print(f"REVISION: {release.get('revision')}")
    if release.get("chart_name"):
        print(f"CHART: {release.get('chart_name')}-{release.get('chart_version')}")
    if release.get("notes"):
        print("NOTES:")
        print(release["notes"].rstrip("\n"))


# ----------------------------------------------------------------- commands


def cmd_lint(args: argparse.Namespace) -> int:
    report = helm.lint(
        args.chart,
        collect_values(args),
        strict=args.strict,
        namespace=args.namespace,
        kube_version=args.kube_version,
        with_subcharts=args.with_subcharts or None,
    )
    names = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
    failed = False
    print(f"==> Linting {args.chart}")
    for msg in report.get("messages") or []:
        sev = int(msg.get("severity", 0))
        print(f"[{names.get(sev, sev)}] {msg.get('path')}: {msg.get('error')}")
        if sev >= 3 or (args.strict and sev >= 2):
            failed = True
    seen = {str(m.get("error")) for m in report.get("messages") or []}
    for err in report.get("errors") or []:
        # the report repeats the messages' errors here; print only new ones
        if str(err) not in seen:
            print(f"[ERROR] {err}")
        failed = True
    total = report.get("total_charts_linted", 0)
    print()
    if failed:
        print(f"Error: {total} chart(s) linted, 1 chart(s) failed")
        return 1
    print(f"{total} chart(s) linted, 0 chart(s) failed")
    return 0


def cmd_template(args: argparse.Namespace) -> int:
    values = collect_values(args)
    chart = helm.Chart.load(args.chart)
    try:
        out: list[str] = []
        if args.include_crds:
            for crd in chart.crds:
                out.append(f"---\n# Source: {crd['filename']}\n{crd['data'].strip()}\n")
        # A client-only dry-run install is exactly what `helm template` does: the
        # manifest comes back in Helm's install order with "# Source:" headers.
        # No cluster is contacted.
        with helm.Config(namespace=args.namespace, storage_driver="memory") as cfg:
            release = cfg.install(
                chart, args.name, values, namespace=args.namespace, dry_run="client"
            )
        manifest = release.get("manifest") or ""
        out.append(manifest.strip("\n") + "\n" if manifest.strip() else "")
        if not args.skip_hooks:
            # hooks are not part of the release manifest; render them separately
            rendered = chart.render(values, name=args.name, namespace=args.namespace,
                                    is_install=True)
            for path in sorted(rendered):
                for doc in re.split(r"(?m)^---[ \t]*$", rendered[path]):
                    if "helm.sh/hook" in doc and doc.strip():
                        out.append(f"---\n# Source: {path}\n{doc.strip()}\n")
        text = "".join(part for part in out if part)
        if args.output_file:
            with open(args.output_file, "w", encoding="utf-8") as fh:
                fh.write(text)
        else:
            sys.stdout.write(text)
    finally:
        chart.close()
    return 0


def install(cfg: helm.Config, chart: str, name: str, values: dict[str, Any] | None, *,
            skip_crds: bool, **options: Any) -> dict[str, Any]:
    """cfg.install, or with skip_crds the same without the chart's crds/ (`helm install
    --skip-crds`). helm-python-sdk 0.2.2 has no keyword for that; its library takes
    the option."""
    if not skip_crds:
        return cfg.install(chart, name, values, **options)
    from helm_python import _native

    handle, ref = cfg._chart_args(chart)
    opts = {
        "namespace": options.get("namespace"),
        "timeout_seconds": options.get("timeout"),
        "wait": options.get("wait"),
        "create_namespace": options.get("create_namespace") or None,
        "skip_crds": True,
    }
    payload = _native.call_string(
        "helm_install", cfg._raw(), cfg._context_arg(None), handle, ref, name,
        None if values is None else json.dumps(values),
        json.dumps({k: v for k, v in opts.items() if v is not None}),
    )
    return json.loads(payload)


def cmd_install(args: argparse.Namespace) -> int:
    values = collect_values(args)
    wait = "watcher" if args.wait else None
    with make_config(args) as cfg:
        release = install(
            cfg,
            args.chart,
            args.name,
            values,
            skip_crds=args.skip_crds,
            namespace=args.namespace,
            wait=wait,
            timeout=args.timeout,
            create_namespace=args.create_namespace,
        )
    print_release(release, args.output)
    return 0


def _release_exists(cfg: helm.Config, name: str) -> bool:
    try:
        cfg.history(name, max_revisions=1)
        return True
    except helm.HelmNotFoundError:
        return False


def cmd_upgrade(args: argparse.Namespace) -> int:
    values = collect_values(args)
    wait = "watcher" if args.wait else None
    with make_config(args) as cfg:
        if args.install and not _release_exists(cfg, args.name):
            release = install(
                cfg, args.chart, args.name, values, skip_crds=args.skip_crds,
                namespace=args.namespace, wait=wait, timeout=args.timeout,
                create_namespace=args.create_namespace,
            )
        else:
            release = cfg.upgrade(
                args.chart, args.name, values, namespace=args.namespace, wait=wait,
                timeout=args.timeout, reuse_values=args.reuse_values,
                reset_values=args.reset_values,
            )
    print_release(release, args.output)
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    with make_config(args) as cfg:
        result = cfg.uninstall(
            args.name,
            ignore_not_found=args.ignore_not_found,
            wait="watcher" if args.wait else None,
            timeout=args.timeout,
            keep_history=args.keep_history,
        )
    if result.get("info"):
        print(result["info"])
    if result.get("release") is None:
        print(f'release "{args.name}" not found (ignored)')
    else:
        print(f'release "{args.name}" uninstalled')
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with make_config(args) as cfg:
        release = cfg.status(args.name)
    print_release(release, args.output)
    return 0


# ----------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helm.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("lint", help="lint a chart")
    p.add_argument("chart")
    p.add_argument("--strict", action="store_true", help="fail on warnings too")
    p.add_argument("-n", "--namespace")
    p.add_argument("--kube-version", help="e.g. v1.33.0 (Capabilities.KubeVersion)")
    p.add_argument("--with-subcharts", action="store_true")
    add_values_args(p)
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser("template", help="render a chart locally (no cluster)")
    p.add_argument("name")
    p.add_argument("chart")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("--include-crds", action="store_true", help="also print crds/")
    p.add_argument("--skip-hooks", action="store_true")
    p.add_argument("--output-file", "-o", metavar="FILE")
    add_values_args(p)
    p.set_defaults(func=cmd_template)

    for name, func in (("install", cmd_install), ("upgrade", cmd_upgrade)):
        p = sub.add_parser(name, help=f"{name} a release")
        p.add_argument("name")
        p.add_argument("chart")
        add_cluster_args(p)
        add_values_args(p)
        p.add_argument("--wait", action="store_true", help="wait until resources are ready")
        p.add_argument("--timeout", type=int, default=300, metavar="SECONDS")
        p.add_argument("--create-namespace", action="store_true")
        p.add_argument("--skip-crds", action="store_true",
                       help="do not install the chart's crds/ (`helm install --skip-crds`)")
        p.add_argument("--output", "-o", choices=("text", "json"), default="text")
        if name == "upgrade":
            p.add_argument("--install", "-i", action="store_true",
                           help="install if the release does not exist")
            p.add_argument("--reuse-values", action="store_true")
            p.add_argument("--reset-values", action="store_true")
        p.set_defaults(func=func)

    p = sub.add_parser("uninstall", help="uninstall a release")
    p.add_argument("name")
    add_cluster_args(p)
    p.add_argument("--ignore-not-found", action="store_true")
    p.add_argument("--keep-history", action="store_true")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--timeout", type=int, default=300, metavar="SECONDS")
    p.set_defaults(func=cmd_uninstall)

    p = sub.add_parser("status", help="show a release")
    p.add_argument("name")
    add_cluster_args(p)
    p.add_argument("--output", "-o", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_status)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except helm.HelmError as e:
        print(f"Error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
