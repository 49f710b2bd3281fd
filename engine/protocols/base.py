"""What an experiment protocol is: the part of a run that differs between kinds of experiment.

A protocol turns one spec (with the plan frozen when its job was queued) into an
`ExperimentOutcome`: the runs it recorded, its paired per-example evidence as statistics
(`MetricOutcome`, computed by `engine.protocols.evidence`), its cost measurements and whatever
it measures on its own (`variant_stats`, `costs`). What comes after is shared by every
protocol and not its business: the batch-wide Benjamini-Hochberg family, the gates, the
verdict and the comparison row (`engine.decision`), and every view of the stored result.

The A/B protocol (`engine.protocols.ab`) trains a baseline and a variant arm and scores both
on one eval set; a stream (OL), a curve (VC) or a second modality (MM) is another protocol,
added as one module and one registry entry (`engine.protocols.registry`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from engine.outcome import ExperimentOutcome
    from engine.plan import FrozenPlan
    from engine.runner import ExperimentRunner
    from engine.spec import LoadedSpec


class ExperimentProtocol(ABC):
    """One way of running an experiment. Subclasses are stateless: `run` gets all it needs.

    `runner` is the job's context: settings, store, device, progress sink, the job and its
    attempt, and the arm machinery the A/B protocol uses (train, evaluate, measure), which
    other protocols may reuse.
    """

    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def run(
        self, runner: ExperimentRunner, loaded: LoadedSpec, frozen: FrozenPlan
    ) -> ExperimentOutcome:
        """Run the experiment and return its outcome, verdict left empty for the batch."""
