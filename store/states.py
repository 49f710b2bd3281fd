"""Every state a stored row can be in, as `StrEnum`s: one place for the strings.

The store is the lowest layer, so the engine (queue, gates, decision) and the console
(CLI, TUI, reports) import these from here. A member *is* its string (`RunStatus.RUNNING ==
"running"`, `json.dumps` and f-strings give the bare value), so the stored values, the JSON
reports and any code still spelling the literal keep working unchanged. The database holds
the same sets as CHECK constraints (schema 0007, and `__table_args__` in `store.models`,
built by `check_in`): a value outside them is an IntegrityError, not a silent new state.

Changing a value is a schema change: it needs a migration that rewrites the rows and the
CHECK constraint, and old reports keep the old string.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """`run.status`: one arm (baseline or variant) with one seed, trained and evaluated.

    - QUEUED: created by its job's worker (`queries.create_run`), not started yet.
    - RUNNING: training or evaluating (`queries.mark_run_running`).
    - SUCCEEDED: trained, evaluated and measured; its scores can be compared.
    - FAILED: stopped by an error, or its job failed.
    - CANCELLED: the user cancelled its job (or abandoned its batch).
    - INTERRUPTED: its worker died or was stopped; the job was requeued and a new attempt
      creates new runs (schema 0004).

    Transitions: QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED; QUEUED or RUNNING ->
    INTERRUPTED | CANCELLED | FAILED when its job is requeued, cancelled or fails
    (`store.jobs`, `store.leases`, `store.batches`). The last four are terminal: a run
    never leaves them.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class JobStatus(StrEnum):
    """`job.status`: one experiment (both arms, every seed) in the work queue (schema 0004).

    - QUEUED: waiting for a worker (also after a lapsed lease or a released job).
    - RUNNING: held by a worker under a lease it renews with each heartbeat.
    - SUCCEEDED: every arm finished; its outcome waits in `outcome_json` for the batch.
    - FAILED: an error, `max_attempts` lapsed leases, or the batch decision refused it.
    - CANCELLED: cancelled while queued, or its worker saw the cancel flag.

    Transitions: QUEUED -> RUNNING (`claim`) | CANCELLED (`cancel_jobs`, `abandon_batch`);
    RUNNING -> QUEUED (lease lapsed or `release_job`; the attempt's runs are INTERRUPTED) |
    SUCCEEDED | FAILED | CANCELLED (`finish_job`, lapsed lease past max_attempts, cancel);
    SUCCEEDED -> FAILED only when the batch decision refuses its comparison (`refuse_job`).
    A retry is a new job; the terminal statuses are `TERMINAL_JOB_STATUSES`.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BatchStatus(StrEnum):
    """`batch.status`: jobs queued together, one Benjamini-Hochberg family (schema 0004).

    - OPEN: some job still to finish; no verdict written yet.
    - DECIDED: every job finished; comparisons written for its succeeded jobs.
    - ABANDONED: the user stopped the whole batch (Ctrl-C on `bemctl run`); no verdicts.

    Transitions: OPEN -> DECIDED (`close_batch`, by whichever worker finishes last) |
    ABANDONED (`abandon_batch`). Both are terminal.
    """

    OPEN = "open"
    DECIDED = "decided"
    ABANDONED = "abandoned"


class Role(StrEnum):
    """`run.role`: which arm of a comparison a run is. Fixed when the run is created.

    - BASELINE: the reference adapter the spec compares against.
    - VARIANT: the adapter under test; a PROMOTE is about it.
    """

    BASELINE = "baseline"
    VARIANT = "variant"


class Verdict(StrEnum):
    """`comparison.verdict`: what the gates say about the variant (`engine.gates.verdict`).

    - PROMOTE: every gate passed.
    - REJECT: a cost gate failed (more data cannot fix a budget), or a quality gate failed
      on a comparison with enough power.
    - INCONCLUSIVE_UNDERPOWERED: too few examples or discordant pairs to trust either
      answer (and no cost gate failed).
    - INCONCLUSIVE_COST: no gate failed but a cost gate could not decide (its interval
      straddles the budget after the capped number of rounds).

    Written once, when the batch is decided; a comparison's verdict never changes.
    """

    PROMOTE = "PROMOTE"
    REJECT = "REJECT"
    INCONCLUSIVE_UNDERPOWERED = "INCONCLUSIVE (underpowered)"
    INCONCLUSIVE_COST = "INCONCLUSIVE (cost)"


class GateOutcome(StrEnum):
    """`gate_decision.outcome`: one promotion gate's result (schema 0006; NULL before it,
    when `passed` alone said pass or fail).

    - PASS: the observed value met its threshold (`passed` is true only for this).
    - FAIL: it did not.
    - INCONCLUSIVE: the measurement could not decide (a cost gate's interval straddles
      its budget); makes the verdict INCONCLUSIVE (cost) unless something failed.

    Written with its comparison; never changes.
    """

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
TERMINAL_JOB_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


def check_in(column: str, states: type[StrEnum]) -> str:
    """The SQL of a CHECK constraint holding `column` to the values of `states`.

    A NULL passes (SQL CHECK semantics), which a nullable column such as
    `gate_decision.outcome` needs. Migration 0007 spells its constraints out literally
    (a migration must never change meaning); tests check the two agree."""
    values = ", ".join("'" + s.value.replace("'", "''") + "'" for s in states)
    return f"{column} IN ({values})"
