"""The workbench above the :mod:`snsm` library: the training harness (``train``), the benches
(``bench``), the theory lab (``lab``), the measurement tools (``measure``) and the ``snsm``
command line (``cli``). It needs the ``train`` extra; the library needs torch alone."""
