"""The monitored half of ``assay demo``: live traffic, drift, retraining, shadow, decision, rollback.

Steps (each a :class:`assay.demo.result.DemoStep`):

1. *serve*: the champion behind the real HTTP server on a loopback port, with a token;
2. *traffic*: flights of the months the model trained on, answered and labelled; *monitor*: no drift;
3. *drift*: November and December flights; *monitor*: the drift is detected and alerted;
4. *retrain*: the project's data plus the labelled traffic, the same spec, offline gates,
   then shadow deployment; more traffic is scored by both models; *decide*: promote or
   reject with the reasons;
5. *rollback*: when a new champion was promoted, the previous one is put back, and the
   server answers with it again within seconds.
"""

from __future__ import annotations

import time
from typing import Callable

import pandas as pd

from assay.demo.loop import LoopbackServer, send_traffic
from assay.demo.result import DemoStep
from assay.project import Project

__all__ = ["run_loop"]

Say = Callable[..., None]
#: predictions per traffic batch (one drift window)
BATCH = 800


def _ok(flag: bool) -> str:
    return "[green]✓[/]" if flag else "[red]✗[/]"


def run_loop(project: Project, *, held_back: pd.DataFrame, later: pd.DataFrame, say: Say) -> list[DemoStep]:
    """Serve the champion, send traffic that drifts, detect it, retrain, shadow, decide, roll back."""
    from assay.lifecycle import rollback_champion
    from assay.monitor.monitor import monitor_project
    from assay.monitor.retrain import retrain_project
    from assay.registry import open_registry
    from assay.serve.auth import create_token

    registry = open_registry(project)
    champion = registry.alias("champion")
    steps: list[DemoStep] = []
    if champion is None:
        steps.append(DemoStep("serve", False, "no champion to serve: the loop needs a promoted "
                              "version (see the run's gates above)", 0.0))
        say(f"  [red]✗[/] {steps[-1].summary}")
        return steps
    record = registry.get(champion)
    features = list(record.lineage.features)
    target = project.spec.data.target
    token = create_token(registry, "demo-client", ["predict", "feedback"])
    seed = project.spec.seed
    # rows from the training period, in its month mix (the earliest share of the chronological split)
    period = held_back.sort_values("time_hour", kind="stable")
    train_share = 1 - project.spec.split.test_size - project.spec.split.validation_size
    early = period.iloc[: int(len(period) * train_share)]
    familiar = early.sample(n=min(BATCH, len(early)), random_state=seed)
    winter = later.loc[later["month"] >= 11]
    drifted = winter.sample(n=min(BATCH, len(winter)), random_state=seed)
    shadow_rows = winter.drop(drifted.index).sample(
        n=min(project.spec.retrain.shadow_predictions + 100, max(len(winter) - len(drifted), 0)),
        random_state=seed,
    )

    start = time.perf_counter()
    with LoopbackServer(project) as server:
        steps.append(DemoStep("serve", True, f"version {champion} served at {server.url} (token scopes: "
                              "predict, feedback)", time.perf_counter() - start, {"url": server.url}))
        say(f"  {_ok(True)} serve: {steps[-1].summary}")

        start = time.perf_counter()
        traffic = send_traffic(server, token, familiar, features=features, target=target)
        report = monitor_project(project, registry=registry)
        steps.append(DemoStep(
            "monitor (familiar traffic)", report.verdict in ("ok", "insufficient_data"),
            f"{traffic.predictions} predictions over HTTP ({traffic.failed} failed requests), "
            f"{traffic.labels} labels; verdict {report.verdict}; "
            f"{len(report.drift.ranked)} drifted features", time.perf_counter() - start,
        ))
        say(f"  {_ok(steps[-1].ok)} {steps[-1].name}: {steps[-1].summary}")
        say(f"      live performance: {report.performance.message}")

        start = time.perf_counter()
        traffic = send_traffic(server, token, drifted, features=features, target=target)
        report = monitor_project(project, registry=registry)
        ranked = ", ".join(str(getattr(c, "name", c)) for c in report.drift.ranked[:5])
        raised = list(report.alerts.raised)
        steps.append(DemoStep(
            "monitor (winter traffic)", report.verdict != "ok",
            f"{traffic.predictions} November-December predictions; verdict {report.verdict}; drifted: "
            f"{ranked or 'none'}; {len(raised)} alert(s) raised", time.perf_counter() - start,
        ))
        say(f"  {_ok(steps[-1].ok)} {steps[-1].name}: {steps[-1].summary}")
        say(f"      live performance: {report.performance.message}")

        start = time.perf_counter()
        first = retrain_project(project, reason="demo: drift detected", registry=registry)
        steps.append(DemoStep("retrain", first.status in ("shadowing", "promoted", "rejected"),
                              f"{first.status}: {first.message}", time.perf_counter() - start))
        say(f"  {_ok(steps[-1].ok)} retrain: {steps[-1].summary}")
        final = first
        if first.status == "shadowing" and first.candidate is not None:
            start = time.perf_counter()
            server.wait_for(champion, first.candidate)
            traffic = send_traffic(server, token, shadow_rows, features=features, target=target)
            final = retrain_project(project, reason="demo: shadow traffic scored", registry=registry)
            steps.append(DemoStep(
                "shadow and decide", final.status in ("promoted", "rejected"),
                f"{traffic.predictions} predictions answered by v{champion} and scored in shadow by "
                f"v{first.candidate}; {final.status}: {final.message}", time.perf_counter() - start,
            ))
            say(f"  {_ok(steps[-1].ok)} shadow: {steps[-1].summary}")

        start = time.perf_counter()
        if final.status == "promoted" and final.candidate is not None:
            server.wait_for(final.candidate)
            back = rollback_champion(registry, reason="demo: show that rollback is one command")
            live = server.wait_for(back.version)
            summary = (f"v{final.candidate} was promoted and served; rollback put v{back.version} back and "
                       f"the server {'answers with it again' if live else 'has not swapped yet'}")
            steps.append(DemoStep("rollback", live, summary, time.perf_counter() - start))
        else:
            summary = f"the champion stays v{registry.alias('champion')}: nothing to roll back"
            steps.append(DemoStep("rollback", True, summary, time.perf_counter() - start))
        say(f"  {_ok(steps[-1].ok)} {steps[-1].summary}")
    return steps
