"""``snsm bench``: our optimizers against the peers on one harness, with records and reports.

Every suite's numbers live in ``snsm_workbench/suites/<name>.json``; the modules hold the protocol.

Settings
* ``suite_files``   load a suite file; check its keys and types (errors name file and key)
* ``suites``        the short suites (demo, quick, full, finetune, gpu) as ``Suite`` objects
* ``stage_plan``    the standard suite's plan: settings, stages, entries, lean levels, variants

What runs
* ``peers``         adapters (torch AdamW/Adafactor/Muon, GaLore, APOLLO, Fira, Adam-mini, ...)
* ``contenders``    one optimizer setting (ours or a peer) -> the Trainer's optimizer factory
* ``run_one``       one run on the training harness, and the compact result saved of it
* ``run_pool``      every suite's runs, in worker processes, cached under ``<record>/runs``
* ``run_cache``     a cached run checked before use (damaged, misplaced, other settings)
* ``records``       which suite a record folder holds (no suite writes over another's)
* ``tuning``        the lr-tuning protocol (grid, edge extensions, plain group, confirm) and
                    ``tune_lr``, its first step alone for the short suites
* ``finetune``      the Shakespeare-pretrained model continued on the KJV Bible
* ``interleaved``   step times of all contenders, interleaved in one process

Suites
* ``short_suite``   a short suite on the run pool: tune, run, time, summarize, write the record
* ``staged_suite``  the standard suite: its stages on the run pool, resumable
* ``muon_stage``    the standard suite's Muon-family stage (issue 23)
* ``demo``          ``snsm demo``: AdamW, AdamSN and AdamSNSM on the tiny model

Numbers and reports
* ``statistics``    mean ± sd, steps-to-target, t intervals over seeds (paired, Welch, log ratio)
* ``student_t``     Student's t CDF and quantile (no scipy)
* ``summary``       a short suite's rows against AdamW
* ``comparison``    the standard suite's comparisons against AdamW (Δ loss, steps fraction)
* ``table_report``  a short suite's report.md from results.json
* ``staged_report`` the standard suite's report.md from results.json
* ``figures``       the PNGs of both reports

Peers need the ``peers`` extra; a missing one is skipped with a line in the report.
"""
