"""The GPU remediation check: hold GPU memory as the demo app does, empty it through the agent.

Run on a machine with an NVIDIA GPU and torch (CUDA build):

    python deploy/demo-app/gpu_check.py --mb 8192 --require-gpu

It needs neither PostgreSQL nor Redis: it uses the demo app's own GPU cache (`GpuCache` from
demo_app.py) to hold tensors on cuda:0 (what `POST /fault/hold-gpu` does, and what
GPUMemoryExhaustion sees through nvidia_gpu_memory_used_bytes), mounts the remediation agent with
the demo app's hook (`GpuCache.empty_cache`: drop the cache, gc.collect(),
torch.cuda.empty_cache()) on a loopback port, and runs the `gpu.empty_cache` action through a
signed AgentClient, exactly as the remediation service does. It prints the
driver's view of used memory (nvidia-smi's) and the action's result, and exits 0 when at least
90 % of the held memory went back to the driver, 1 when not, 2 when --require-gpu is given and
no GPU is visible. Without a GPU (and without --require-gpu) it shows the action's clean
"no GPU" result and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import secrets
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from aiohttp import web

from schemas.remediation import GpuEmptyCacheParams
from services.remediation.actions.app_agent import gpu_empty_cache
from services.remediation.agent import AgentClient, AgentHooks, agent_app
from services.runtime.embedded import free_port

_MIB = 1024 * 1024


def _demo_app() -> ModuleType:
    """deploy/demo-app/demo_app.py as a module (its folder name is not importable)."""
    path = Path(__file__).with_name("demo_app.py")
    spec = importlib.util.spec_from_file_location("tocsin_demo_app", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _driver_used(cache: Any) -> int:
    """Bytes in use on device 0 as the driver sees them (0 without a GPU)."""
    memory = cache.memory()
    return int(memory[0][1]) if memory else 0


async def check(mb: int, require_gpu: bool, out: list[str]) -> int:
    """Hold `mb` MiB, run gpu.empty_cache through the agent; the exit status."""
    cache = _demo_app().GpuCache()
    if not cache.present and require_gpu:
        out.append("FAILED  no GPU visible to torch (torch missing or no CUDA device)")
        return 2
    held = 0
    if cache.present:
        held = cache.hold(mb, None)
        out.append(f"held      {held / _MIB:,.0f} MiB in tensors on cuda:0 (the demo's hold-gpu)")
    secret = secrets.token_bytes(32)
    runner = web.AppRunner(agent_app(secret, AgentHooks(gpu_empty_cache=cache.empty_cache)))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    agent = AgentClient(f"http://127.0.0.1:{port}/", secret)
    try:
        before = _driver_used(cache)
        result = await gpu_empty_cache(agent, GpuEmptyCacheParams(), target="gpu-check")
        after = _driver_used(cache)
    finally:
        await agent.close()
        await runner.cleanup()
    out.append("gpu.empty_cache result: " + json.dumps(result.model_dump(mode="json")))
    if not result.gpu:
        out.append(f"ok        no GPU: the action reports {result.detail!r} cleanly")
        return 0
    freed = before - after
    out.append(
        f"driver    used {before / _MIB:,.0f} MiB before, {after / _MIB:,.0f} MiB after: "
        f"{freed / _MIB:,.0f} MiB freed (action reports {result.bytes_freed / _MIB:,.0f} MiB)"
    )
    if freed >= 0.9 * held:
        out.append("ok        the held memory went back to the driver")
        return 0
    out.append(f"FAILED  only {freed / _MIB:,.0f} of {held / _MIB:,.0f} MiB went back")
    return 1


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the check, print its lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mb", type=int, default=4096, help="MiB to hold (default 4096)")
    parser.add_argument("--require-gpu", action="store_true", help="exit 2 when no GPU is visible")
    args = parser.parse_args(argv)
    lines: list[str] = []
    status = asyncio.run(check(args.mb, args.require_gpu, lines))
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
