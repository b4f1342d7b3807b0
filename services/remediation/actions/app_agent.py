"""`app.pool_resize` and `gpu.empty_cache`: performed by the app agent, which is not built yet."""

from __future__ import annotations

from schemas.remediation import ActionName, ActionResult, AppAgentParams
from services.remediation.safety import ActionRefused, RefusalReason

__all__ = ["app_agent_action"]


async def app_agent_action(
    action: ActionName, params: AppAgentParams, *, target: str
) -> ActionResult:
    """Refuse: these actions run inside the application, through its agent (not built yet)."""
    del params  # the agent will define and use them
    raise ActionRefused(
        RefusalReason.NEEDS_APP_AGENT,
        f"{action.value} on {target} needs the app agent (not built yet)",
    )
