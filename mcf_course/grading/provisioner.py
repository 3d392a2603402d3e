"""A Jupyter kernel provisioner that starts kernels inside the worker's grading sandbox.

nbgrader (through nbclient and jupyter_client) starts a kernel as a child process of the
grader. This provisioner, named in the grading kernelspec (see ``write_kernelspec``), asks
the worker's sandbox (``mcf_course.grading.sandbox.Sandbox``) for a kernel instead: the
sandbox's parent forks one, and this object stands in for the process, so that the kernel
manager's interrupts, kills and liveness checks reach the kernel inside.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner

from mcf_course.grading.sandbox import INSIDE_RUN, Sandbox

KERNEL_NAME = "mcf-sandbox"
PROVISIONER_NAME = "mcf-sandbox-provisioner"  # the entry point in pyproject.toml
ACTIVE: Sandbox | None = None  # the worker's sandbox; set by the worker before grading
LAUNCHED = [0]  # kernels started so far (the worker tells from it whether any code ran)


def write_kernelspec(folder: Path) -> Path:
    """Write the ``mcf-sandbox`` kernelspec under ``folder/kernels`` (put ``folder`` on
    JUPYTER_PATH). Its argv is never run: the provisioner starts the kernel."""
    spec = folder / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (grading sandbox)", "language": "python",
        "metadata": {"kernel_provisioner": {"provisioner_name": PROVISIONER_NAME}},
    }))
    return spec


class SandboxProvisioner(LocalProvisioner):
    """Runs the kernel in ``ACTIVE`` (the worker's sandbox), never as a local process."""

    pid: int | None = None

    def _sandbox(self) -> Sandbox:
        if ACTIVE is None:
            raise RuntimeError("no grading sandbox: this kernel can only start inside mcf-grade")
        return ACTIVE

    async def launch_kernel(self, cmd, **kwargs):
        sandbox = self._sandbox()
        info = dict(self.connection_info)
        host_ip = str(sandbox.layout.run / "kernel")
        if info.get("transport") != "ipc" or info.get("ip") != host_ip:
            raise RuntimeError(f"grading kernels talk over files in {host_ip}, not {info.get('ip')}")
        inside = {**info, "ip": f"{INSIDE_RUN}/kernel",
                  "key": info["key"].decode() if isinstance(info["key"], bytes) else info["key"]}
        connection = sandbox.layout.run / "connection.json"
        connection.write_text(json.dumps(inside))
        if sandbox.root:
            os.chown(connection, sandbox.uid, sandbox.uid)
        connection.chmod(0o600)
        # nbgrader's own variables reach the kernel (NBGRADER_EXECUTION=autograde), nothing
        # else of the grader's environment
        env = kwargs.get("env") or {}
        self.pid = sandbox.start_kernel({k: v for k, v in env.items() if k.startswith("NBGRADER_")})
        LAUNCHED[0] += 1
        return self.connection_info

    @property
    def has_process(self) -> bool:
        return self.pid is not None

    async def poll(self) -> int | None:
        if self.pid is None:
            return 0
        return self._sandbox().exit_status(self.pid)

    async def wait(self) -> int | None:
        while (status := await self.poll()) is None:
            await asyncio.sleep(0.05)
        self.pid = None
        return status

    async def send_signal(self, signum: int) -> None:
        if self.pid is not None and signum:
            self._sandbox().signal(self.pid, signum)

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)
