"""``snsm bench``: our optimizers against the peers on one harness, with a results ledger.

* ``peers``        adapters (torch AdamW/Adafactor/Muon, GaLore, APOLLO, Fira, Adam-mini, ...)
* ``contenders``   one optimizer setting (ours or a peer) -> the Trainer's optimizer factory
* ``suites``       the catalogue of suites: demo / quick / full / finetune
* ``tuning``       lr grid on a short budget, best by validation loss
* ``run_one``      one run on the training harness (reused when finished)
* ``run_suite``    a whole suite: tune, run, time, summarize, write the record
* ``interleaved``  step times of all contenders, interleaved in one process
* ``summary``      rows against AdamW; ``report`` report.md, goals and PNGs from results.json
* ``finetune``     Shakespeare-pretrained model continued on the KJV Bible
* ``demo``         ``snsm demo``: AdamW, AdamSN and AdamSNSM on the tiny model

Peers need the ``peers`` extra; a missing one is skipped with a line in the report.
"""
