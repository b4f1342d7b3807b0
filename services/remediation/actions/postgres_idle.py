"""`postgres.terminate_idle`: end client sessions stuck idle (in transaction) past a threshold.

Only client backends in the configured state for longer than `idle_seconds`, limited to the
configured application names / users / databases, are candidates; superusers and our own backend
never are. Each candidate is terminated by a statement that re-checks that its state has not
changed since it was selected, and `pg_terminate_backend(pid, timeout)` (PostgreSQL 14+) waits
until the backend is gone, so the count afterwards is accurate.
"""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from schemas.remediation import (
    ActionName,
    TerminatedSession,
    TerminateIdleParams,
    TerminateIdleResult,
)

__all__ = ["terminate_idle"]

_CANDIDATES = """
SELECT a.pid, a.usename, a.application_name, a.datname, a.state, a.state_change,
       extract(epoch FROM clock_timestamp() - a.state_change)::float8 AS idle_seconds
FROM pg_stat_activity AS a
JOIN pg_roles AS r ON r.oid = a.usesysid
WHERE a.backend_type = 'client backend'
  AND a.state = $1
  AND a.state_change < clock_timestamp() - make_interval(secs => $2)
  AND a.pid <> pg_backend_pid()
  AND NOT r.rolsuper
  AND (cardinality($3::text[]) = 0 OR a.application_name = ANY($3::text[]))
  AND (cardinality($4::text[]) = 0 OR a.usename = ANY($4::text[]))
  AND (cardinality($5::text[]) = 0 OR a.datname = ANY($5::text[]))
ORDER BY a.state_change
LIMIT $6
"""

# A fresh statement sees a fresh pg_stat_activity snapshot: terminate only if unchanged.
_TERMINATE = """
SELECT pg_terminate_backend(pid, $4)
FROM pg_stat_activity
WHERE pid = $1 AND state = $2 AND state_change = $3
"""


async def terminate_idle(
    conn: asyncpg.Connection,
    params: TerminateIdleParams,
    *,
    target: str,
    wait_ms: int = 2000,
) -> TerminateIdleResult:
    """Terminate the matching sessions through `conn` and count those still matching after."""
    args = (
        params.state,
        params.idle_seconds,
        params.application_names,
        params.users,
        params.databases,
        params.max_sessions,
    )
    terminated: list[TerminatedSession] = []
    for row in await conn.fetch(_CANDIDATES, *args):
        ended = await conn.fetchval(
            _TERMINATE, row["pid"], row["state"], row["state_change"], wait_ms
        )
        if ended:
            terminated.append(
                TerminatedSession(
                    pid=row["pid"],
                    user=row["usename"],
                    application=row["application_name"],
                    database=row["datname"],
                    state=row["state"],
                    idle_seconds=row["idle_seconds"],
                )
            )
    remaining = len(await conn.fetch(_CANDIDATES, *args))
    return TerminateIdleResult(
        action=ActionName.POSTGRES_TERMINATE_IDLE,
        target=target,
        terminated=terminated,
        remaining=remaining,
    )
