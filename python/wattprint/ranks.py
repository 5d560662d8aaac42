"""Which process of a multi-rank job measures.

On 8 ranks of one job, one process measures the node and the others do nothing. The job key
and the leader rules are the session crate's (the many-jobs issue); until they land, this is
the one place a ``Tracker`` asks, and it follows the launchers' local-rank variables: the
local rank 0 measures, the others stand by.
"""

from __future__ import annotations

_LOCAL_RANK_VARS = ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID")


def local_rank(env: dict) -> int:
    """This process's rank on its node (0 when no launcher says)."""
    for var in _LOCAL_RANK_VARS:
        value = env.get(var)
        if value is not None and value.strip().isdigit():
            return int(value.strip())
    return 0


def measures(env: dict) -> bool:
    """Whether this process is the one that measures (hook for the job key / leader rules)."""
    return local_rank(env) == 0
