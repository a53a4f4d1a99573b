"""``okno worker`` as its own process: it works off due jobs and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.system import server as srv

pytestmark = pytest.mark.slow


def test_worker_process_runs_jobs_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = srv.okno_env(tmp_path, extra={"OKNO_LOG_LEVEL": "info"})
    srv.run_cli(["migrate"], env)
    db = sqlite3.connect(tmp_path / "okno.db")
    db.execute(
        "INSERT INTO jobs (kind, queue, priority, payload, status, attempts, max_attempts, "
        "run_at, created_at) VALUES ('events.prune', 'maintenance', 50, '{}', 'pending', 0, 3, "
        "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    )
    db.commit()
    proc = subprocess.Popen(
        [*srv.okno_command(), "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        statuses: list[str] = []
        while time.monotonic() < deadline:
            statuses = [r[0] for r in db.execute("SELECT status FROM jobs ORDER BY id")]
            # our job plus the periodic ones the worker scheduled itself, all done
            if len(statuses) >= 4 and set(statuses) == {"done"}:
                break
            time.sleep(0.2)
        assert len(statuses) >= 4 and set(statuses) == {"done"}, statuses
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
        assert b"worker.stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
        db.close()
