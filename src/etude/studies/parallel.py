"""Run (study, seed) tasks in parallel worker processes, one fresh process per task.

Each task runs `etude.studies.runner.run_task` in a spawned process, the same code as a
sequential run, so results are identical to ``jobs = 1`` (every study fixes its torch thread
count). A task whose process dies is recorded as crashed and the others go on; a user error
(`BadInputError`, `CheckpointError`) stops the run and is raised here, as in a sequential run.
One progress bar counts finished tasks and names the running ones; the workers' own bars are off.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from etude.errors import BadInputError, CheckpointError
from etude.runtime import progress
from etude.studies.protocol import Result

__all__ = ["run_parallel", "default_jobs"]

_USER_ERRORS = {"BadInputError": BadInputError, "CheckpointError": CheckpointError}


def default_jobs() -> int:
    """The CPU cores this process may use (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _worker(task: Any, conn: Connection, default_threads: int) -> None:
    """Body of a worker process: run one task and send ('done', result) or ('error', kind, text)."""
    os.environ["ETUDE_PROGRESS"] = "0"  # one combined bar in the parent instead
    from etude.studies.runner import run_task

    try:
        result = run_task(task, default_threads=default_threads)
        conn.send(("done", result.to_dict()))
    except (BadInputError, CheckpointError) as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
    except KeyboardInterrupt:
        conn.send(("error", "KeyboardInterrupt", ""))
    finally:
        conn.close()


def run_parallel(tasks: list, jobs: int) -> list[Result]:
    """Run `tasks` (runner.Task) in at most `jobs` processes; results in the order of `tasks`."""
    from etude.studies.runner import _load_study, crashed_result

    ctx = mp.get_context("spawn")  # fork is unsafe once torch's thread pools exist
    threads = max(1, default_jobs() // jobs)
    pending = list(enumerate(tasks))
    running: dict[Connection, tuple[int, Any, Any, float]] = {}
    results: dict[int, Result] = {}
    bar = progress(total=len(tasks), desc=f"reproduce ({jobs} jobs)")
    try:
        while pending or running:
            while pending and len(running) < jobs:
                index, task = pending.pop(0)
                receive, send = ctx.Pipe(duplex=False)
                process = ctx.Process(target=_worker, args=(task, send, threads), name=f"etude-{task.label}")
                process.start()
                send.close()
                running[receive] = (index, task, process, time.perf_counter())
            bar.set_postfix_str("running: " + ", ".join(t.label for _, t, _, _ in running.values()))
            for conn in wait(list(running)):
                index, task, process, started = running.pop(conn)  # type: ignore[arg-type]
                try:
                    message = conn.recv()  # type: ignore[union-attr]
                except EOFError:
                    message = None
                conn.close()  # type: ignore[union-attr]
                process.join()
                if message is not None and message[0] == "error":
                    kind, text = message[1], message[2]
                    if kind == "KeyboardInterrupt":
                        raise KeyboardInterrupt
                    raise _USER_ERRORS[kind](text)
                if message is None:  # the process died without a word (killed, out of memory, segfault)
                    result = crashed_result(_load_study(task.spec), task,
                                            f"worker process for {task.label} died with exit code {process.exitcode}")
                    result.wall_time_s = time.perf_counter() - started
                    result.write(task.study_dir)
                else:
                    result = Result.from_dict(message[1])
                results[index] = result
                bar.update(1)
                status = "" if result.status == "ok" else " CRASHED"
                bar.write(f"{task.label}: done in {result.wall_time_s:.1f} s{status}")
    finally:
        for _, _, process, _ in running.values():
            process.terminate()
        for _, _, process, _ in running.values():
            process.join()
        bar.close()
    return [results[i] for i in range(len(tasks))]
