"""How busy the machine was while a benchmark ran, and how much of that was someone else.

The machines are shared: a figure measured while other work used one of the two cores says
little on its own. `LoadMonitor` samples once a second, from /proc, the 1-minute load average,
the CPU the whole machine used (/proc/stat) and the CPU this benchmark's own process tree used
(this process and every descendant: server, worker, bot, fakes). The difference is the other
tenants' share, which every report row states.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU-seconds the machine has spent not idle since boot, over all cores (first line of /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    steal_guest = sum(fields[7:]) if len(fields) > 7 else 0  # steal, guest, guest_nice: not ours to use
    return (sum(fields) - idle - steal_guest) / CLOCK_TICKS


def _stat_fields(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of `pid`, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(root: int) -> dict[int, float]:
    """CPU-seconds so far of `root` and each of its living descendants, by pid."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        found = _stat_fields(int(entry.name))
        if found is not None:
            parents[int(entry.name)], cpu[int(entry.name)] = found
    ours = {root}
    grew = True
    while grew:  # descendants: any process whose parent is already ours
        grew = False
        for pid, parent in parents.items():
            if parent in ours and pid not in ours:
                ours.add(pid)
                grew = True
    return {pid: cpu[pid] for pid in ours if pid in cpu}


@dataclass
class LoadSummary:
    """The machine while a benchmark ran: load average range, and cores used by all, by us, by others."""

    seconds: float
    load1_min: float
    load1_max: float
    machine_cores: float  # mean cores busy, everything on the machine
    bench_cores: float  # of which this benchmark's process tree
    other_cores: float  # of which everything else
    cores: int

    def brief(self) -> str:
        return (
            f"load {self.load1_min:.1f}-{self.load1_max:.1f}; others used {self.other_cores:.2f} of "
            f"{self.cores} cores (this benchmark {self.bench_cores:.2f})"
        )


@dataclass
class LoadMonitor:
    """Samples the machine every `interval` seconds from `start()` until `stop()`."""

    interval: float = 1.0
    root: int = field(default_factory=os.getpid)
    _loads: list[float] = field(default_factory=list)
    _last_cpu: dict[int, float] = field(default_factory=dict)
    _bench_cpu: float = 0.0
    _machine_start: float = 0.0
    _began: float = 0.0
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._began = time.monotonic()
        self._machine_start = machine_busy_seconds()
        self._last_cpu = tree_cpu_seconds(self.root)
        self._sample_load()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await asyncio.to_thread(self.sample)

    def _sample_load(self) -> None:
        self._loads.append(float(Path("/proc/loadavg").read_text().split()[0]))

    def sample(self) -> None:
        """Add the CPU our tree used since the last sample; processes born since count from zero."""
        now = tree_cpu_seconds(self.root)
        for pid, seconds in now.items():
            self._bench_cpu += max(0.0, seconds - self._last_cpu.get(pid, 0.0))
        # A pid we saw before and that is gone: its last interval is lost (at most `interval` of its CPU).
        self._last_cpu = now
        self._sample_load()

    def summary(self) -> LoadSummary:
        self.sample()
        elapsed = max(time.monotonic() - self._began, 1e-6)
        cores = os.cpu_count() or 1
        # Jiffies are 10 ms: over a window of a second or two the ratios are rough, so clamp them.
        machine = min(float(cores), (machine_busy_seconds() - self._machine_start) / elapsed)
        ours = min(machine, self._bench_cpu / elapsed)
        return LoadSummary(
            seconds=round(elapsed, 1),
            load1_min=min(self._loads),
            load1_max=max(self._loads),
            machine_cores=round(machine, 2),
            bench_cores=round(ours, 2),
            other_cores=round(max(0.0, machine - ours), 2),
            cores=cores,
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
