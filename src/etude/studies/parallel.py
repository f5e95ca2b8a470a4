"""Run (study, seed) tasks in parallel worker processes.

Each of at most ``jobs`` spawned workers runs `etude.studies.task.run_task`, the code of a
sequential run, on one task after another (imports are paid once per worker), so results are
identical to ``jobs = 1``: every task seeds itself and every study fixes its torch thread count.
A task whose worker dies (killed, out of memory) is recorded as crashed, a fresh worker takes
the next task, and the others go on; a user error (`BadInputError`, `CheckpointError`) stops
the run and is raised here, as in a sequential run. One progress bar counts finished tasks and
names the running ones; the workers' own bars are off.
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
from etude.studies.registry import load_study
from etude.studies.task import Task, crashed_result, run_task

__all__ = ["run_parallel", "default_jobs"]

_USER_ERRORS = {"BadInputError": BadInputError, "CheckpointError": CheckpointError}


def default_jobs() -> int:
    """The CPU cores this process may use (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _worker(conn: Connection, default_threads: int) -> None:
    """Body of a worker process: run the tasks it receives until it receives None.

    Answers each task with ('done', result dict) or ('error', kind, text).
    """
    os.environ["ETUDE_PROGRESS"] = "0"  # one combined bar in the parent instead
    while (task := conn.recv()) is not None:
        try:
            conn.send(("done", run_task(task, default_threads=default_threads).to_dict()))
        except (BadInputError, CheckpointError) as exc:
            conn.send(("error", type(exc).__name__, str(exc)))
        except KeyboardInterrupt:
            conn.send(("error", "KeyboardInterrupt", ""))
            break
    conn.close()


class _Slot:
    """One worker process, its end of the pipe, and the task it is running (index, task, start)."""

    def __init__(self, ctx: Any, threads: int) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker, args=(child, threads), name="etude-worker", daemon=True)
        self.process.start()
        child.close()
        self.task: tuple[int, Any, float] | None = None

    def give(self, index: int, task: Any) -> None:
        self.conn.send(task)
        self.task = (index, task, time.perf_counter())

    def stop(self, force: bool = False) -> None:
        if force:
            self.process.terminate()
        else:
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        self.process.join()
        self.conn.close()


def run_parallel(tasks: list[Task], jobs: int) -> list[Result]:
    """Run `tasks` in at most `jobs` worker processes; results in the order of `tasks`."""
    ctx = mp.get_context("spawn")  # fork is unsafe once torch's thread pools exist
    threads = max(1, default_jobs() // jobs)
    pending = list(enumerate(tasks))
    results: dict[int, Result] = {}
    slots = [_Slot(ctx, threads) for _ in range(min(jobs, len(tasks)))]
    bar = progress(total=len(tasks), desc=f"reproduce ({jobs} jobs)")
    try:
        for slot in slots:
            slot.give(*pending.pop(0))
        while any(slot.task is not None for slot in slots):
            busy = {slot.conn: slot for slot in slots if slot.task is not None}
            bar.set_postfix_str("running: " + ", ".join(s.task[1].label for s in busy.values() if s.task))
            for conn in wait(list(busy)):
                slot = busy[conn]
                assert slot.task is not None  # busy holds the slots running a task
                index, task, started = slot.task
                try:
                    message = slot.conn.recv()
                except (EOFError, ConnectionResetError):
                    message = None
                slot.task = None
                if message is not None and message[0] == "error":
                    kind, text = message[1], message[2]
                    if kind == "KeyboardInterrupt":
                        raise KeyboardInterrupt
                    raise _USER_ERRORS[kind](text)
                if message is None:  # the worker died without a word (killed, out of memory, segfault)
                    slot.process.join()
                    result = crashed_result(
                        load_study(task.spec),
                        task,
                        f"worker process for {task.label} died with exit code {slot.process.exitcode}",
                    )
                    result.wall_time_s = time.perf_counter() - started
                    result.write(task.study_dir)
                    slot.conn.close()
                    slots[slots.index(slot)] = slot = _Slot(ctx, threads)
                else:
                    result = Result.from_dict(message[1])
                results[index] = result
                bar.update(1)
                status = "" if result.status == "ok" else " CRASHED"
                bar.write(f"{task.label}: done in {result.wall_time_s:.1f} s{status}")
                if pending:
                    slot.give(*pending.pop(0))
    except BaseException:
        for slot in slots:
            slot.stop(force=True)
        raise
    else:
        for slot in slots:
            slot.stop()
    finally:
        bar.close()
    return [results[i] for i in range(len(tasks))]
