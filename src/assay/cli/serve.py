"""CLI commands of the serving stage: serve, predict, deploy, token create|list|revoke."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional, cast

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assay.errors import ConfigError
from assay.cli.common import (
    ConfigOpt,
    JsonOpt,
    out_console as _out,
    err_console as _err,
    open_project as _open,
)

if TYPE_CHECKING:
    from assay.project import Project
    from assay.registry import ModelRegistry
    from assay.serve.log import PredictionLog

__all__ = ["is_loopback", "register_serve_commands", "token_app"]


token_app = typer.Typer(
    name="token",
    help="API tokens for the server: create (shown once), list, revoke.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_json(value: Any) -> None:
    from assay.cli.render import print_json

    print_json(_out(), value)


def is_loopback(host: str) -> bool:
    """True if ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


#: GIL switch interval of the server process (Python's default is 5 ms)
SWITCH_INTERVAL_S = 0.001


def serve(
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
    insecure_no_auth: Annotated[
        bool, typer.Option("--insecure-no-auth", help="Accept requests without a token (loopback only).")
    ] = False,
    poll_seconds: Annotated[
        float, typer.Option(help="How often to pick up promotions and deployments.", min=0.1)
    ] = 1.0,
    max_records: Annotated[int, typer.Option(help="Most records per request.", min=1)] = 1000,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body, in bytes.", min=1)] = 8 * 1024 * 1024,
    extra_fields: Annotated[
        int, typer.Option(help="Keys a record (or CSV columns a request) may carry beyond the model's features.",
                          min=0)
    ] = 16,
    max_string_length: Annotated[
        int, typer.Option(help="Most characters in one string value or field name.", min=1)
    ] = 10_000,
    header_timeout: Annotated[
        float, typer.Option(help="Seconds a client has to send a request's line and headers (then 408).",
                            min=0.1)
    ] = 10.0,
    body_timeout: Annotated[
        float, typer.Option(help="Seconds a client has to send a request's body after its headers (then 408).",
                            min=0.1)
    ] = 30.0,
    batch_wait_ms: Annotated[
        float, typer.Option(help="Milliseconds a request to a model that prefers batches waits "
                            "for others to be scored with it (0: only those queued meanwhile). "
                            "Only under concurrent traffic: a request that finds the model idle "
                            "while requests come one at a time is scored at once.",
                            min=0.0)
    ] = 5.0,
    max_batch: Annotated[
        int, typer.Option(help="Most rows scored in one call of a model that prefers batches "
                          "(1: no gathering).", min=1)
    ] = 32,
    batch_always_wait: Annotated[
        bool, typer.Option("--batch-always-wait",
                           help="Hold every request that finds the model idle for --batch-wait-ms, "
                           "also when requests come one at a time (default: only under "
                           "concurrent traffic).")
    ] = False,
    access_log: Annotated[bool, typer.Option(help="Log every request line.")] = False,
    log_drain: Annotated[
        str, typer.Option(help="Who inserts the prediction log into the store: a separate "
                          "'process' (keeps it off the request path) or a 'thread'.")
    ] = "process",
    log_level: Annotated[str, typer.Option(help="critical | error | warning | info | debug.")] = "info",
    config: ConfigOpt = None,
) -> None:
    """Serve the champion over HTTP (REST, MLflow /invocations, OIP v2); docs at /docs."""
    import os

    import uvicorn

    from assay.serve.app import create_app
    from assay.serve.connection import PROTOCOL_PATH, protocol_class
    from assay.serve.gather import BatchPolicy
    from assay.serve.protocols import RequestLimits

    if insecure_no_auth and not is_loopback(host):
        raise ConfigError(
            "refusing to serve without authentication on a non-loopback address",
            key="--insecure-no-auth",
            expected="--host 127.0.0.1, ::1 or localhost",
            received=host,
            fix="Bind to 127.0.0.1, or keep auth on and give clients a token from "
            "`assay token create NAME --scope predict`.",
        )
    if log_drain not in ("process", "thread"):
        raise ConfigError("unknown prediction log drain", key="--log-drain",
                          expected="process or thread", received=log_drain)
    if log_level not in ("critical", "error", "warning", "info", "debug"):
        raise ConfigError("unknown log level", key="--log-level",
                          expected="critical, error, warning, info or debug", received=log_level)
    limits = RequestLimits(max_body_bytes=max_body_bytes, max_records=max_records, extra_fields=extra_fields,
                           max_string_length=max_string_length, header_timeout=header_timeout,
                           body_timeout=body_timeout)
    batching = BatchPolicy(wait_ms=batch_wait_ms, max_rows=max_batch, adaptive=not batch_always_wait)
    project, registry = _open(config)
    champion = registry.alias("champion")
    err = _err()
    shown = f"[{host}]" if ":" in host else host
    err.print(
        f"Serving [bold]{escape(project.spec.name or project.root.name)}[/] on http://{shown}:{port} "
        f"(docs at /docs), champion: {f'version {champion}' if champion else 'none yet'}, "
        f"auth: {'OFF (loopback only)' if insecure_no_auth else 'on'}"
    )
    if champion is None:
        err.print("[yellow]warning[/]: no champion yet; /readyz answers 503 until one is promoted "
                  "(`assay promote VERSION`).")
    common: dict[str, Any] = {"host": host, "port": port, "log_level": log_level, "access_log": access_log,
                              "server_header": False, "timeout_graceful_shutdown": 10}
    # Background threads (the model poller; the log writer with --log-drain thread) share the
    # GIL with the event loop: a short switch interval keeps them from holding requests for
    # the default 5 ms.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    if workers == 1:
        app = create_app(project, auth=not insecure_no_auth, poll_seconds=poll_seconds,
                         limits=limits, registry=registry, batching=batching,
                         log_drain=cast(Literal["process", "thread"], log_drain))
        uvicorn.run(app, http=protocol_class(limits), **common)
        return
    from assay.serve.settings import ServeSettings

    settings = ServeSettings(config=project.config_path, auth=not insecure_no_auth,
                             poll_seconds=poll_seconds,
                             log_drain=cast(Literal["process", "thread"], log_drain), limits=limits,
                             batching=batching)
    os.environ.update(settings.to_env())
    uvicorn.run("assay.serve.app:create_app_from_env", factory=True, workers=workers, http=PROTOCOL_PATH,
                **common)


def predict(
    source: Annotated[
        Optional[Path], typer.Argument(help="Records to score: .parquet, .csv or .jsonl.", show_default=False,
                                 metavar="SOURCE")
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Where to write (default: SOURCE.predictions.parquet).")
    ] = None,
    version: Annotated[Optional[int], typer.Option(help="Model version (default: the champion).")] = None,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read JSON lines (one record each) from stdin; write JSON lines.")
    ] = False,
    chunk_size: Annotated[int, typer.Option(help="Rows scored at a time.", min=1)] = 10_000,
    skip_invalid: Annotated[
        bool, typer.Option(help="Write refused rows with an empty prediction and the reason, instead of stopping.")
    ] = False,
    log: Annotated[
        bool, typer.Option("--log/--no-log", help="Log the predictions like the server (route 'batch'; "
                           "ids in the prediction_id column/field) so feedback and monitoring see them.")
    ] = True,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score a file (or JSON lines on stdin), validated like the server; logged unless --no-log."""
    from assay.serve.batch import predict_file, predict_stream

    if stdin:
        if source is not None or output is not None:
            raise ConfigError("--stdin reads standard input and writes standard output", key="--stdin",
                              expected="no SOURCE and no -o with --stdin", received=str(source or output),
                              fix="Drop SOURCE and -o, or drop --stdin.")
        project, registry = _open(config)
        out = sys.stdout
        plog = _batch_log(project, registry) if log else None
        try:
            result = predict_stream(registry, sys.stdin.buffer, out.write, version=version,
                                    chunk_size=min(chunk_size, 1000), flush=out.flush, log=plog)
        finally:
            if plog is not None:
                plog.close()
        logged = ", logged" if plog is not None else ""
        _err().print(f"version {result.version}: {result.scored} scored, {result.refused} refused, "
                     f"{result.flagged} flagged{logged}", highlight=False)
        return
    if source is None:
        raise ConfigError("nothing to score", key="SOURCE", expected="a .parquet, .csv or .jsonl file, or --stdin",
                          fix="Run `assay predict in.parquet -o out.parquet` or `assay predict --stdin`.")
    if output is None:
        output = source.with_name(source.stem + ".predictions.parquet")
    project, registry = _open(config)
    err = _err()
    plog = _batch_log(project, registry) if log else None
    progress = Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal,
    )
    with progress:
        bar = progress.add_task("predict", total=None)

        def tick(done: int, total: int | None) -> None:
            progress.update(bar, completed=done, total=total)

        try:
            result = predict_file(registry, source, output, version=version, chunk_size=chunk_size,
                                  skip_invalid=skip_invalid, progress=tick, log=plog)
        finally:
            if plog is not None:
                plog.close()
    if json_out:
        _print_json(result.to_dict())
        return
    refused = f", {result.refused} refused (see the error column)" if result.refused else ""
    logged = "; logged (ids in prediction_id)" if plog is not None else ""
    _out().print(f"Scored {result.scored} of {result.rows} rows with version {result.version} "
                 f"({result.flagged} flagged{refused}) into {escape(str(output))} in {result.seconds:.1f} s"
                 f"{logged}.")


def _batch_log(project: Project, registry: ModelRegistry) -> PredictionLog:
    """The prediction log of ``assay predict``: the project's WAL folder, the log caps of assay.yaml."""
    from assay.serve.batch import batch_log

    monitoring = project.spec.monitoring
    return batch_log(registry, project.state_dir / "wal", max_string=monitoring.log_max_string,
                     max_input_bytes=monitoring.log_max_input_bytes)


def deploy(
    version: Annotated[Optional[int], typer.Argument(help="Model version to run beside the champion.", metavar="VERSION")] = None,
    shadow: Annotated[bool, typer.Option("--shadow", help="Score and log every request, never answer.")] = False,
    canary: Annotated[
        Optional[float], typer.Option("--canary", help="Answer this percentage of requests (0 < P <= 100).")
    ] = None,
    off: Annotated[bool, typer.Option("--off", help="End the deployment: the champion answers everything.")] = False,
    reason: Annotated[Optional[str], typer.Option(help="Why (kept in the audit trail).")] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a challenger in shadow or as a canary, or end it; without options, show the deployment."""
    from assay.registry import current_user
    from assay.model.deployments import active_deployment
    from assay.model.deployments import deploy as start_deployment
    from assay.model.deployments import undeploy

    chosen = [name for name, on in (("--shadow", shadow), ("--canary", canary is not None), ("--off", off)) if on]
    if len(chosen) > 1:
        raise ConfigError("choose one deployment mode", key=" ".join(chosen),
                          expected="one of --shadow, --canary P, --off", received=", ".join(chosen))
    _, registry = _open(config)
    console = _out()
    if not chosen:
        current = active_deployment(registry)
        if json_out:
            _print_json(current.to_dict() if current else None)
        elif current is None:
            console.print("No deployment: the champion answers every request.")
        else:
            console.print(_describe(current.version, current.mode, current.share)
                          + f" (since {current.created_at.isoformat(timespec='seconds')}, by {current.actor})")
        return
    if off:
        if version is not None:
            raise ConfigError("--off ends the active deployment and takes no VERSION", key="VERSION",
                              received=version, fix="Run `assay deploy --off`.")
        undeploy(registry, actor=current_user(), reason=reason)
        if json_out:
            _print_json({"deployment": None})
        else:
            console.print("Deployment ended: the champion answers every request (servers switch within seconds).")
        return
    if version is None:
        raise ConfigError("which version?", key="VERSION", expected="a model version (see `assay models`)",
                          fix=f"Run `assay deploy VERSION {chosen[0]}{' P' if canary is not None else ''}`.")
    if canary is not None and not 0 < canary <= 100:
        raise ConfigError("the canary share is a percentage of requests", key="--canary",
                          expected="a number with 0 < P <= 100", received=canary,
                          fix="Pass e.g. --canary 10 for one request in ten.")
    mode: Literal["shadow", "canary"] = "canary" if canary is not None else "shadow"
    share = (canary or 0.0) / 100.0
    result = start_deployment(registry, version, mode=mode, share=share, actor=current_user(), reason=reason)
    if json_out:
        _print_json(result.to_dict())
        return
    console.print(_describe(result.version, result.mode, result.share)
                  + "; running servers switch within a few seconds.")


def _describe(version: int, mode: str, share: float) -> str:
    if mode == "canary":
        return f"Version {version} runs as a canary, answering {share * 100:g}% of requests"
    return f"Version {version} runs in shadow: scored and logged beside the champion, never returned"


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who or what uses it, e.g. checkout-service.", metavar="NAME")],
    scope: Annotated[
        Optional[list[str]], typer.Option("--scope", "-s", help="predict | explain | feedback | admin (repeatable).")
    ] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from assay.serve.auth import create_token

    _, registry = _open(config)
    scopes = list(scope or ["predict"])
    token = create_token(registry, name, scopes)
    if json_out:
        _print_json({"name": name, "scopes": scopes, "token": token})
        return
    _err().print(f"Token '{escape(name)}' (scopes: {', '.join(scopes)}). Copy it now; it is not shown again:")
    typer.echo(token)


@token_app.command("list")
def token_list(config: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """Tokens with their scopes, creator and last use (never the secrets)."""
    from assay.serve.auth import list_tokens

    _, registry = _open(config)
    tokens = list_tokens(registry)
    if json_out:
        _print_json([t.to_dict() for t in tokens])
        return
    console = _out()
    if not tokens:
        console.print("No tokens yet: create one with [bold]assay token create NAME --scope predict[/].")
        return
    table = Table()
    for column in ("name", "scopes", "created", "by", "last used", "status"):
        table.add_column(column)
    for t in tokens:
        used = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "-"
        table.add_row(t.name, ", ".join(t.scopes), t.created_at.isoformat(timespec="seconds"), t.created_by,
                      used, "revoked" if t.revoked else "active")
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.", metavar="NAME")],
    config: ConfigOpt = None,
) -> None:
    """Revoke a token; servers refuse it within a few seconds."""
    from assay.serve.auth import revoke_token

    _, registry = _open(config)
    revoke_token(registry, name)
    _out().print(f"Token '{escape(name)}' revoked; servers refuse it within a few seconds.")


def register_serve_commands(app: typer.Typer) -> None:
    """Add ``serve``, ``predict``, ``deploy`` and ``token create|list|revoke`` to ``app``."""
    app.command("serve")(serve)
    app.command("predict")(predict)
    app.command("deploy")(deploy)
    app.add_typer(token_app, name="token")
