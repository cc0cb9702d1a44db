"""``snsm bench``: our optimizers against the peers on one harness, with a results ledger.

* ``peers``       adapters (torch AdamW/Adafactor/Muon, GaLore, APOLLO, Fira, Adam-mini, ...)
* ``contenders``  one optimizer setting (ours or a peer) -> the Trainer's optimizer factory
* ``suites``      demo / quick / full / finetune
* ``tuning``      lr grid on a short budget, best by validation loss
* ``runner``      one run on the training harness; ``run`` a whole suite (+ environment.json)
* ``state``       optimizer-state bytes of any optimizer (tensors inside helper objects too)
* ``timing``      step times of all contenders, interleaved in one process
* ``summary``     rows against AdamW; ``report`` report.md, goals and PNGs from results.json
* ``finetune``    Shakespeare-pretrained model continued on the KJV Bible
* ``cli``         ``snsm bench``

Peers need the ``peers`` extra; a missing one is skipped with a line in the report.
"""
