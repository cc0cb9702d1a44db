"""The training harness: pre-train a LLaMA offline with any optimizer of the registry.

An application (docs/architecture.md): it uses the library and the measurements, never
the bench or the command line.

* ``config``     the TrainConfig schema (typed defaults, ``None``: derived) and its validation;
  TOML/JSON settings files (the flags are :mod:`snsm_workbench.cli.train_flags`)
* ``run_config`` the settings resolved once into a frozen RunConfig (lr, plain_lr, seq_len,
  weight dtype)
* ``resume``     resume policy: what a resumed run may change, and the record of what changed
* ``record``     the run record (``config.json``), read and written
* ``run_folder`` the run folder's life: chosen, created and locked, checkpoints, released
* ``models``     presets (the catalogue of :mod:`snsm_workbench.measure.models`) -> ``LlamaForCausalLM``
* ``corpora``    text sources: Shakespeare (embedded), KJV Bible, local files, HF streaming
* ``tokens``     byte-level BPE tokenizer + memory-mapped token cache; deterministic batches
* ``checkpoint`` atomic save / ``weights_only`` load of model, optimizer, schedule, RNG, data position
* ``loop``       the training loop: clipping, accumulation, eval, checkpoints, faults
* ``schedule``   warmup + cosine lr schedule, continued (or rebuilt) when a resume extends the run
* ``metering``   the memory fields of a step's record; ``progress`` the bar and evaluation lines
* ``metrics``    metrics.jsonl (append-only, trimmed on resume) and the evaluation table
* ``signals``    SIGINT / SIGTERM: finish the step and save, or abandon it
* ``step_memory`` one real step per setup, its peak beside the estimate (``snsm memory --measure``)
* ``parallel``   DDP / FSDP2 under torchrun; ``dist_checkpoint`` DCP checkpoints
* ``plots``      curves.png

Needs the ``train`` extra (transformers, tokenizers, numpy, tqdm, matplotlib).
"""
