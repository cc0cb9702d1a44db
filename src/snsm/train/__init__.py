"""The training harness: pre-train a LLaMA offline with any optimizer of the registry.

Layers (one direction only; the optimizers know nothing of this package):

* ``config``     TrainConfig (typed defaults) <- TOML/JSON file <- CLI flags
* ``models``     presets -> ``transformers.LlamaForCausalLM`` (untied lm_head)
* ``corpora``    text sources: Shakespeare (embedded), KJV Bible, local files, HF streaming
* ``tokens``     byte-level BPE tokenizer + memory-mapped token cache; deterministic batches
* ``checkpoint`` atomic save / ``weights_only`` load of model, optimizer, schedule, RNG, data position
* ``loop``       the training loop: schedule, clipping, accumulation, eval, metrics, faults
* ``plots``      curves.png
* ``demo``       ``snsm demo``: adamw vs adamw_sn vs adamw_snsm on the tiny model

Needs the ``train`` extra (transformers, tokenizers, numpy, tqdm, matplotlib).
"""
