"""Dynamic batching: concurrent requests to a model that prefers batches, scored in one call.

A transformer's ``predict_proba`` costs milliseconds per call and little more per row, so
sixteen one-text requests scored one by one cost about sixteen times what one call over
their sixteen rows costs. A model declares this with ``prefers_batches_ = True`` on its
final estimator (:attr:`assay.model.loaded.LoadedModel.prefers_batches`); requests it
answers are then handed to a :class:`Gatherer` after validation:

1. a request's validated rows join the queue of the model object that will answer them
   (champion, canary challenger or shadow: each has its own queue, so a batch never mixes
   two models, and a hot swap leaves the old model's queue to drain on the old model);
2. the queue's first request waits at most :attr:`BatchPolicy.wait_ms` for company, or
   less once :attr:`BatchPolicy.max_rows` rows are queued; requests are taken whole, in
   arrival order, while their rows fit under ``max_rows`` (the first always goes). A request
   that finds its model idle while traffic is sequential (no two requests to one model have
   overlapped within :data:`CONCURRENT_WINDOW_S`) does not wait: nobody would join it, and
   one client sending one text at a time would pay the wait on every answer;
3. the batch is scored in one call in a worker thread (the event loop keeps answering),
   one batch per model at a time; requests that arrive meanwhile form the next batch;
4. each request gets exactly its own rows' answers, in order. If the combined call
   fails, each request of the batch is scored alone, so a row that breaks the model
   fails only its own request.

Validation, request limits and the prediction log stay per request (:mod:`assay.serve.scoring`):
a request is admitted before it queues, and its predictions are logged before it is
answered. A request of ``max_rows`` rows or more, and every request when ``max_rows`` is 1,
is scored alone in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from assay.errors import ConfigError
from assay.model.loaded import LoadedModel, Prediction

__all__ = ["DEFAULT_MAX_ROWS", "DEFAULT_WAIT_MS", "BatchPolicy", "Gatherer"]

logger = logging.getLogger("assay.serve")

#: how long the first request of a batch waits for others, by default (milliseconds)
DEFAULT_WAIT_MS = 5.0
#: most rows one gathered call scores, by default
DEFAULT_MAX_ROWS = 32
#: traffic counts as concurrent for this long (seconds) after two requests overlapped
CONCURRENT_WINDOW_S = 1.0

_ENV_PREFIX = "ASSAY_SERVE_"
_ENV = {"wait_ms": "BATCH_WAIT_MS", "max_rows": "MAX_BATCH"}
_OPTIONS = {"wait_ms": "--batch-wait-ms", "max_rows": "--max-batch"}
_ADAPTIVE_ENV = "BATCH_ADAPTIVE"


@dataclass(frozen=True)
class BatchPolicy:
    """How requests to a model that prefers batches are gathered.

    Attributes:
        wait_ms: longest time (milliseconds) the first request of a batch waits for others;
            0 gathers only the requests that queued while the previous batch was scored.
        max_rows: most rows in one call; 1 turns gathering off (each request is scored
            alone, still in a worker thread).
        adaptive: a request that finds its model idle waits only when requests have
            overlapped recently (concurrent traffic); False: it always waits ``wait_ms``.
    """

    wait_ms: float = DEFAULT_WAIT_MS
    max_rows: int = DEFAULT_MAX_ROWS
    adaptive: bool = True

    def __post_init__(self) -> None:
        if not (self.wait_ms >= 0 and self.wait_ms != float("inf")):
            raise ConfigError(
                "the batch wait is not a number of milliseconds >= 0",
                key=_OPTIONS["wait_ms"], expected="a number >= 0 such as 5",
                received=self.wait_ms, fix=f"Use {DEFAULT_WAIT_MS:g} (the default), or 0.",
            )
        rows = self.max_rows
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ConfigError(
                "the largest batch is not a positive whole number of rows",
                key=_OPTIONS["max_rows"], expected="a whole number >= 1 such as 32",
                received=self.max_rows, fix=f"Use {DEFAULT_MAX_ROWS} (the default), or 1 to turn "
                "gathering off.",
            )

    @property
    def enabled(self) -> bool:
        """True when requests are gathered (``max_rows`` above 1)."""
        return self.max_rows > 1

    def to_env(self) -> dict[str, str]:
        """``ASSAY_SERVE_BATCH_WAIT_MS``, ``ASSAY_SERVE_MAX_BATCH`` and
        ``ASSAY_SERVE_BATCH_ADAPTIVE`` (see :meth:`from_env`)."""
        return {_ENV_PREFIX + _ENV["wait_ms"]: repr(float(self.wait_ms)),
                _ENV_PREFIX + _ENV["max_rows"]: str(self.max_rows),
                _ENV_PREFIX + _ADAPTIVE_ENV: "1" if self.adaptive else "0"}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BatchPolicy:
        """The policy set by ``ASSAY_SERVE_BATCH_WAIT_MS``, ``ASSAY_SERVE_MAX_BATCH`` and
        ``ASSAY_SERVE_BATCH_ADAPTIVE`` (defaults for the unset); a malformed value is refused
        naming its variable."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, suffix in _ENV.items():
            raw = env.get(_ENV_PREFIX + suffix)
            if raw is None or raw == "":
                continue
            try:
                values[name] = float(raw) if name == "wait_ms" else int(raw)
                cls(**{name: values[name]})
            except (ValueError, ConfigError):
                default = getattr(cls(), name)
                raise ConfigError(
                    "a batching setting of the server is not valid",
                    key=_ENV_PREFIX + suffix,
                    expected=("a number of milliseconds >= 0" if name == "wait_ms"
                              else "a whole number >= 1"),
                    received=raw,
                    fix=f"Unset {_ENV_PREFIX}{suffix} for the default ({default:g}), or set a "
                    "valid value.",
                ) from None
        raw = env.get(_ENV_PREFIX + _ADAPTIVE_ENV)
        if raw not in (None, ""):
            if raw not in ("0", "1"):
                raise ConfigError(
                    "a batching setting of the server is not valid",
                    key=_ENV_PREFIX + _ADAPTIVE_ENV, expected="1 or 0", received=raw,
                    fix=f"Unset {_ENV_PREFIX}{_ADAPTIVE_ENV} for the default (1: a lone request "
                    "in sequential traffic does not wait), or set 0 to always wait.",
                )
            values["adaptive"] = raw == "1"
        return cls(**values)


@dataclass
class _Request:
    """One request's rows waiting in a queue, and where its answers go."""

    rows: Sequence[Mapping[str, Any]]
    answer: asyncio.Future[list[Prediction]]
    arrived: float


@dataclass
class _Queue:
    """The requests waiting for one model object, and the task that scores them."""

    model: LoadedModel
    waiting: deque[_Request] = field(default_factory=deque)
    rows: int = 0
    full: asyncio.Event = field(default_factory=asyncio.Event)
    #: the first request found the model idle during sequential traffic: it goes at once
    alone: bool = False


BatchObserver = Callable[[LoadedModel, int, int, bool], None]


class Gatherer:
    """Gathers concurrent requests to each model that prefers batches into one call.

    Args:
        policy: how long to wait and how many rows to gather.
        observe: called after every scored batch with ``(model, requests, rows, fell_back)``
            (the server counts batches in its metrics).

    A gatherer belongs to one event loop (the server's); its queues and their tasks
    exist only while requests wait, so a model that stops serving leaves nothing behind.
    """

    def __init__(
        self, policy: BatchPolicy | None = None, *, observe: BatchObserver | None = None
    ) -> None:
        self.policy = policy if policy is not None else BatchPolicy()
        self._observe = observe
        self._queues: dict[LoadedModel, _Queue] = {}
        #: event-loop time when a request last arrived while another was queued or scored
        self._overlapped_at = float("-inf")

    async def predict(
        self, model: LoadedModel, rows: Sequence[Mapping[str, Any]]
    ) -> list[Prediction]:
        """The predictions of ``rows`` (validated records of one request), in order, scored by
        ``model`` together with other requests' rows when it prefers batches."""
        if not rows:
            return []
        policy = self.policy
        if not model.prefers_batches or not policy.enabled or len(rows) >= policy.max_rows:
            return await run_in_threadpool(model.predict, list(rows))
        loop = asyncio.get_running_loop()
        request = _Request(rows, loop.create_future(), loop.time())
        queue = self._queues.get(model)
        if queue is None:
            alone = policy.adaptive and not self.concurrent(request.arrived)
            queue = self._queues[model] = _Queue(model, alone=alone)
            queue.waiting.append(request)
            queue.rows = len(rows)
            loop.create_task(self._drain(queue), name=f"assay-gather-v{model.version}")
        else:
            self._overlapped_at = request.arrived
            queue.waiting.append(request)
            queue.rows += len(rows)
            if queue.rows >= policy.max_rows:
                queue.full.set()
        return await request.answer

    def concurrent(self, now: float) -> bool:
        """Whether two requests to one model overlapped within :data:`CONCURRENT_WINDOW_S`
        of ``now`` (event-loop time)."""
        return now - self._overlapped_at <= CONCURRENT_WINDOW_S

    @property
    def waiting(self) -> int:
        """Requests queued and not yet taken into a batch (all models)."""
        return sum(len(q.waiting) for q in self._queues.values())

    async def _drain(self, queue: _Queue) -> None:
        """Score ``queue``'s requests batch by batch until it is empty, then forget it."""
        loop = asyncio.get_running_loop()
        wait = self.policy.wait_ms / 1000.0
        limit = self.policy.max_rows
        batch: list[_Request] = []
        try:
            while queue.waiting:
                # a lone request in sequential traffic goes at once; later batches formed
                # while the previous one was scored, so their traffic is concurrent
                deadline = queue.waiting[0].arrived + (0.0 if queue.alone else wait)
                queue.alone = False
                while queue.rows < limit:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    queue.full.clear()
                    try:
                        async with asyncio.timeout(remaining):
                            await queue.full.wait()
                    except TimeoutError:
                        break
                batch = self._take(queue, limit)
                if batch:
                    await self._score(queue.model, batch)
                batch = []
        except BaseException as exc:  # cancelled with the loop: no request may hang
            for request in [*batch, *queue.waiting]:
                _settle(request, RuntimeError("the server stopped scoring"))
            if not isinstance(exc, Exception):
                raise
            logger.exception("the batch queue of model version %s failed", queue.model.version)
        finally:
            if self._queues.get(queue.model) is queue:
                del self._queues[queue.model]

    @staticmethod
    def _take(queue: _Queue, limit: int) -> list[_Request]:
        """Whole requests in arrival order while their rows fit under ``limit`` (the first
        always); requests whose client went away are dropped unscored."""
        batch: list[_Request] = []
        rows = 0
        while queue.waiting:
            head = queue.waiting[0]
            if head.answer.done():  # cancelled: nobody waits for its answer
                queue.waiting.popleft()
                queue.rows -= len(head.rows)
                continue
            if batch and rows + len(head.rows) > limit:
                break
            queue.waiting.popleft()
            queue.rows -= len(head.rows)
            batch.append(head)
            rows += len(head.rows)
        return batch

    async def _score(self, model: LoadedModel, batch: list[_Request]) -> None:
        rows = [row for request in batch for row in request.rows]
        try:
            predictions = await run_in_threadpool(model.predict, rows)
            if len(predictions) != len(rows):
                raise RuntimeError(f"the model answered {len(predictions)} rows for {len(rows)}")
        except Exception as exc:  # noqa: BLE001 - each request is scored alone below
            if len(batch) == 1:
                _settle(batch[0], exc)
                self._observed(model, 1, len(rows), False)
                return
            logger.warning("a batch of %d requests failed on model version %s (%s: %s); scoring "
                           "each alone", len(batch), model.version, type(exc).__name__, exc)
            self._observed(model, len(batch), len(rows), True)
            for request in batch:
                if request.answer.done():
                    continue
                try:
                    alone = await run_in_threadpool(model.predict, list(request.rows))
                except Exception as own:  # noqa: BLE001 - the request's own error
                    _settle(request, own)
                else:
                    _settle(request, alone)
            return
        self._observed(model, len(batch), len(rows), False)
        start = 0
        for request in batch:
            end = start + len(request.rows)
            _settle(request, predictions[start:end])
            start = end

    def _observed(self, model: LoadedModel, requests: int, rows: int, fell_back: bool) -> None:
        if self._observe is not None:
            try:
                self._observe(model, requests, rows, fell_back)
            except Exception:  # noqa: BLE001 - metrics never fail an answer
                logger.exception("observing a batch failed")


def _settle(request: _Request, outcome: list[Prediction] | BaseException) -> None:
    if request.answer.done():
        return
    if isinstance(outcome, BaseException):
        request.answer.set_exception(outcome)
    else:
        request.answer.set_result(outcome)
