"""The standard suite's ``muon`` stage: the Muon family (issue 23) under the same fair tuning as
every other contender, beside ``torch.optim.Muon`` (the ``peers`` stage's ``muon``).

Its items are ``muon`` in ``snsm_workbench/suites/standard.json``, in priority order (the pool
trains an earlier item's runs first, so an interrupted stage has its most informative runs,
and a rerun resumes from the cached ones); ``settings.muon_labels`` names the items that run.

* An **entry** (ours ``muon`` as ``snsm_muon``, a label apart from the peer's ``muon`` so that
  their cached runs never mix; ``muon_sn``; ``muon_sm`` at two ranks; ``muon_snsm``) runs the
  whole protocol of :meth:`StagedSuite.tune`: lr grid, plain-group lr, full-horizon
  confirmation, ``seeds`` seeds.
* A **lean level** (8-bit states, pure-bf16 weights, a lean auxiliary group) is its base item
  with extra optimizer arguments, at the base's tuned lrs, ``seeds`` seeds. A level with
  ``tune_plain`` changes the plain group's rule (``aux="sn_8bit"`` wants about 10x AdamW's lr),
  so its plain-group lr is searched again (step 2 of the protocol, at the base's matrix lr).

Every item's optimizer state is measured on a 1-step run with the suite's others
(:meth:`StagedSuite.state`). The stage's value: ``{label: Tuned}`` (a level's ``grid`` empty);
with a read-only pool (``--cached-only``) an item whose runs are not all cached, or whose base's
are not, is ``None``, so a stage in progress reports the items it has finished.
"""

from __future__ import annotations

from concurrent.futures import Future

from snsm_workbench.bench import tuning
from snsm_workbench.bench.contenders import Contender
from snsm_workbench.bench.run_pool import MissingRuns
from snsm_workbench.bench.stage_plan import Entry, LeanLevel, item_label
from snsm_workbench.bench.tuning import Tuned


def _contenders(items) -> dict[str, Contender]:
    """Each item's contender: an entry's own; a level's, its base's with its changes."""
    contenders: dict[str, Contender] = {}
    for item in items:
        if isinstance(item, Entry):
            contenders[item.contender.label] = item.contender
            continue
        contenders[item.label] = item.contender(contenders[item.base])
    return contenders


def _tune_plain(suite, contender: Contender, lr: float, priority: float):
    """(scores, chosen) of the plain-group lr at matrix lr ``lr`` (the protocol's step 2)."""
    s, steps = suite.settings, suite.plan.tuning

    def point(p):  # "the same as the matrices" is the unset plain lr
        return lr, None if p == lr else p
    return tuning.search((*s.plain_grid, lr), suite.scores(contender, s.short_steps, point,
                                                           priority),
                         steps["plain_step"], steps["max_extensions"])


def _level(suite, level: LeanLevel, contender: Contender, base, priority: float):
    """A lean level's Tuned record: its base's lrs (its plain lr searched with tune_plain)."""
    tuned = Tuned(level.label, lr=base.lr, plain_lr=base.plain_lr)
    if level.tune_plain:
        tuned.plain_grid, chosen = _tune_plain(suite, contender, base.lr, priority)
        plain = chosen.value
        tuned.plain_edge = chosen.edge
        tuned.plain_lr = None if plain == base.lr else plain
    plain = base.lr if tuned.plain_lr is None else tuned.plain_lr
    tuned.runs = suite.seeded(contender, tuned.lr, plain, suite.settings.seeds,
                              priority=priority)
    return tuned


def muon_stage(suite) -> dict:
    """Run the stage's items on ``suite`` (a :class:`StagedSuite`); {label: Tuned}."""
    items = [item for item in suite.plan.muon if item_label(item) in suite.settings.muon_labels]
    contenders = _contenders(items)
    first = suite.priority_of("muon")
    done: dict[str, Future] = {}

    def run(item, priority: float) -> Tuned | None:
        try:
            if isinstance(item, Entry):
                return suite.tune(item, seeds=suite.settings.seeds, priority=priority)
            base = done[item.base].result()
            return None if base is None else _level(suite, item, contenders[item.label], base,
                                                    priority)
        except MissingRuns:  # only a read-only pool raises it: the item is not finished
            return None

    with suite.threads(len(items)) as threads:
        for i, item in enumerate(items):  # an earlier item first: a smaller priority number
            label = item_label(item)
            done[label] = threads.submit(run, item, first + i / (len(items) + 1))
        return {label: future.result() for label, future in done.items()}
