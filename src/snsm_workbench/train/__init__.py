"""The training harness: pre-train a LLaMA offline with any optimizer of the registry.

An application (docs/architecture.md): it uses the library and the measurements, never
the bench or the command line.

* ``config``     TrainConfig (typed defaults) <- TOML/JSON file <- CLI flags
* ``models``     presets (the catalogue of :mod:`snsm_workbench.measure.models`) -> ``LlamaForCausalLM``
* ``corpora``    text sources: Shakespeare (embedded), KJV Bible, local files, HF streaming
* ``tokens``     byte-level BPE tokenizer + memory-mapped token cache; deterministic batches
* ``checkpoint`` atomic save / ``weights_only`` load of model, optimizer, schedule, RNG, data position
* ``loop``       the training loop: schedule, clipping, accumulation, eval, checkpoints, faults
* ``metrics``    metrics.jsonl (append-only, trimmed on resume) and the evaluation table
* ``signals``    SIGINT / SIGTERM: finish the step and save, or abandon it
* ``step_memory`` one real step per setup, its peak beside the estimate (``snsm memory --measure``)
* ``parallel``   DDP / FSDP2 under torchrun; ``dist_checkpoint`` DCP checkpoints
* ``plots``      curves.png

Needs the ``train`` extra (transformers, tokenizers, numpy, tqdm, matplotlib).
"""
