"""`agent-ticket dev` as a user runs it: embedded Temporal, worker and bot up, a ticket done, Ctrl-C, nothing left."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.cli.conftest import CliEnv
from tests.support import free_port

AGENT_TICKET = str(Path(sys.executable).parent / "agent-ticket")
READY_MARK = "agent-ticket dev is ready"


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions `text` (here: the test's own data dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def read_lines(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)


def test_dev_runs_a_ticket_and_stops_cleanly_on_ctrl_c(cli_env: CliEnv, tmp_path: Path) -> None:
    cli_env.set("TEMPORAL_ADDRESS", f"localhost:{free_port()}")
    cli_env.set("TEMPORAL_UI_PORT", str(free_port()))
    bot_port = free_port()
    cli_env.set("BOT_PORT", str(bot_port))
    stderr_file = (tmp_path / "dev.stderr").open("w")
    dev = subprocess.Popen(
        [AGENT_TICKET, "dev"],
        env={**os.environ, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=read_lines, args=(dev.stdout, lines), daemon=True).start()
    output: list[str] = []

    def drain_until(mark: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                output.append(lines.get(timeout=0.5))
            except queue.Empty:
                if dev.poll() is not None:
                    return any(mark in line for line in output)
                continue
            if mark in output[-1]:
                return True
        return False

    data_dir = str(cli_env.data_dir.resolve())
    try:
        assert drain_until(READY_MARK, 90), "".join(output) + (tmp_path / "dev.stderr").read_text()
        banner = "".join(output)
        for expected in (f"localhost:{bot_port}/slack/events", "offline planner", "SLACK_BOT_TOKEN", data_dir):
            assert expected in banner, banner
        assert processes_mentioning(f"{data_dir}/temporal.db"), "the embedded server is not running"
        assert httpx.get(f"http://127.0.0.1:{bot_port}/healthz", timeout=10).status_code == 200

        result = cli_env.invoke("submit", "upgrade acme-corp to the pro plan", "--wait", "--timeout", "60")
        assert result.exit_code == 0, result.output
        assert "done: executed: 1 row(s) changed" in result.output

        dev.send_signal(signal.SIGINT)
        assert dev.wait(timeout=45) == 0, "".join(output) + (tmp_path / "dev.stderr").read_text()
        drain_until("Stopped cleanly", 5)
        assert "Stopped cleanly" in "".join(output)
        time.sleep(0.5)
        assert processes_mentioning(data_dir) == [], "a process of `dev` outlived it"
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait(timeout=10)
        for pid in processes_mentioning(data_dir):
            os.kill(pid, signal.SIGKILL)
        stderr_file.close()
