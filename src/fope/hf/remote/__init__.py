"""Remote code copied next to every saved HF model (self-contained: torch + transformers only, never fope).

The model file imports ``.functional``, ``.scaling`` and ``.options`` relatively. In a saved directory they are copies
of fope.pos.functional, fope.pos.scaling and fope.pos.options (fope.hf.io.save writes them); inside fope they are
those very modules, registered below under this package's name, so native and exported models run one
implementation.
"""

import sys

from fope.pos import functional, options, scaling

for _module in (functional, scaling, options):
    sys.modules[f"{__name__}.{_module.__name__.rsplit('.', 1)[-1]}"] = _module
