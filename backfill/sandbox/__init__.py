"""Local sandbox: Auth0 and Tinybird emulators on 127.0.0.1, fed by a synthetic tenant.

For the demo, the end-to-end tests, the fault drills and the benchmark of the backfill. Start it
in-process with `Sandbox(SandboxConfig(...))` (several tenants: `MultiTenantSandbox`), or
as a process with `python -m backfill.sandbox`.
"""

from backfill.sandbox.faults import FaultSettings
from backfill.sandbox.multitenant import MultiTenantSandbox
from backfill.sandbox.runner import Sandbox, SandboxConfig

__all__ = ["FaultSettings", "MultiTenantSandbox", "Sandbox", "SandboxConfig"]
